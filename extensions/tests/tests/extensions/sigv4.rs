//! The hand-written C# SigV4 signer (extensions/csharp/SigV4.cs), run on Mono (and once on
//! .NET CoreCLR, whose crypto goes through the layer's libssl 1.1).

use std::collections::BTreeMap;
use std::process::Command;
use std::time::{Duration, UNIX_EPOCH};

use aws_credential_types::Credentials;
use aws_sigv4::http_request::{
    PayloadChecksumKind, PercentEncodingMode, SessionTokenMode, SignableBody, SignableRequest,
    SigningSettings, UriPathNormalizationMode, sign,
};
use aws_sigv4::sign::v4;
use aws_smithy_runtime_api::client::identity::Identity;
use lxprof_extension_tests::{facility, layout};

fn sigv4_test_exe(test: &str) -> Option<std::path::PathBuf> {
    if !facility::require(
        facility::has_program("mono") && facility::has_program("mcs"),
        test,
        "mono/mcs not installed (scripts/setup.sh installs them)",
    ) {
        return None;
    }
    if let Err(e) = layout::build_steps(&["csharp"]) {
        panic!("{test}: {e}");
    }
    Some(layout::csharp_obj("SigV4Test.exe"))
}

/// Every documented value: signing key (IAM example), GET Object (canonical request, string to
/// sign, signature, Authorization), PUT Object (payload hash, canonical URI, string to sign,
/// signed headers, signature), GET Bucket lifecycle and list objects (query canonicalisation).
#[test]
fn csharp_sigv4_reproduces_aws_published_examples() {
    let Some(exe) = sigv4_test_exe("csharp_sigv4_reproduces_aws_published_examples") else {
        return;
    };
    let out = Command::new("mono").arg(&exe).output().expect("run mono");
    check_published_examples(&out);
}

/// The same checks with the assembly on .NET CoreCLR 3.1: HMAC-SHA256 and SHA-256 through the
/// runtime's OpenSSL shim and the layer's libssl 1.1 (the host has only OpenSSL 3).
#[test]
fn csharp_sigv4_reproduces_aws_published_examples_on_dotnet() {
    let test = "csharp_sigv4_reproduces_aws_published_examples_on_dotnet";
    let Some(exe) = sigv4_test_exe(test) else {
        return;
    };
    let layer = layout::layer_dir("dotnet-event-collector").join("dotnet-event-collector");
    let rt = layer.join("dotnet");
    if !facility::require(
        rt.join("dotnet").is_file(),
        test,
        "the .NET runtime is not built: run extensions/build.sh dotnet",
    ) {
        return;
    }
    let out = Command::new(rt.join("dotnet"))
        .arg("exec")
        .arg("--runtimeconfig")
        .arg(layer.join("EventCollector.runtimeconfig.json"))
        .arg(&exe)
        .env("DOTNET_ROOT", &rt)
        .env("LD_LIBRARY_PATH", rt.join("lib"))
        .output()
        .expect("run dotnet");
    check_published_examples(&out);
}

fn check_published_examples(out: &std::process::Output) {
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "SigV4Test failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for check in [
        "signing-key",
        "empty-payload-hash",
        "get-object-canonical-request",
        "get-object-string-to-sign",
        "get-object-signature",
        "get-object-authorization",
        "put-object-payload-hash",
        "put-object-canonical-uri",
        "put-object-string-to-sign",
        "put-object-signed-headers",
        "put-object-signature",
        "get-bucket-lifecycle-query",
        "get-bucket-lifecycle-signature",
        "list-objects-signature",
        "uri-encode",
    ] {
        assert!(
            stdout.lines().any(|l| l == format!("PASS {check}")),
            "check {check} did not pass:\n{stdout}"
        );
    }
    assert!(!stdout.contains("FAIL"), "{stdout}");
}

/// The exact request S3Client sends (path-style URL with a port, session token) carries the
/// same Authorization as AWS's own Rust signer (aws-sigv4) computes for it.
#[test]
fn csharp_put_object_signature_matches_aws_sigv4_crate() {
    let Some(exe) = sigv4_test_exe("csharp_put_object_signature_matches_aws_sigv4_crate") else {
        return;
    };
    let (endpoint, bucket, key, body) = (
        "http://127.0.0.1:45678",
        "events-bucket",
        "fn-name/134401976565769800.json",
        r#"{"eventType":"INVOKE","requestId":"r-1"}"#,
    );
    let (access, secret, token) = ("AKIDTEST", "secret/with+chars", "session-token-value");
    let out = Command::new("mono")
        .arg(&exe)
        .args([
            "put-object",
            endpoint,
            "eu-west-1",
            bucket,
            key,
            body,
            "20261126T201500Z",
            access,
            secret,
            token,
        ])
        .output()
        .expect("run mono");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let url = stdout
        .lines()
        .find_map(|l| l.strip_prefix("url "))
        .expect("url line");
    assert_eq!(url, format!("{endpoint}/{bucket}/{key}"), "path-style URL");
    let headers: BTreeMap<String, String> = stdout
        .lines()
        .filter_map(|l| l.strip_prefix("header "))
        .filter_map(|l| l.split_once(": "))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();

    // Sign the same request with aws-sigv4, the signer the Rust SDK uses for S3.
    let identity: Identity = Credentials::new(access, secret, Some(token.into()), None, "t").into();
    let mut settings = SigningSettings::default();
    settings.payload_checksum_kind = PayloadChecksumKind::XAmzSha256;
    settings.percent_encoding_mode = PercentEncodingMode::Single;
    settings.uri_path_normalization_mode = UriPathNormalizationMode::Disabled;
    settings.session_token_mode = SessionTokenMode::Include;
    // 2026-11-26T20:15:00Z
    let time = UNIX_EPOCH + Duration::from_secs(1_795_724_100);
    let params = v4::SigningParams::builder()
        .identity(&identity)
        .region("eu-west-1")
        .name("s3")
        .time(time)
        .settings(settings)
        .build()
        .expect("params")
        .into();
    let request = SignableRequest::new(
        "PUT",
        url,
        [("host", "127.0.0.1:45678")].into_iter(),
        SignableBody::Bytes(body.as_bytes()),
    )
    .expect("signable");
    let (instructions, _) = sign(request, &params).expect("sign").into_parts();
    let expected: BTreeMap<String, String> = instructions
        .headers()
        // aws-sigv4 separates the Authorization parts with ", ", S3Client with ","; both valid.
        .map(|(k, v)| (k.to_ascii_lowercase(), v.replace(", ", ",")))
        .collect();
    assert_eq!(
        expected.get("x-amz-date").map(String::as_str),
        Some("20261126T201500Z")
    );
    for name in [
        "authorization",
        "x-amz-date",
        "x-amz-content-sha256",
        "x-amz-security-token",
    ] {
        assert_eq!(
            headers.get(name),
            expected.get(name),
            "header {name}: C# vs aws-sigv4\nC#: {headers:#?}\naws-sigv4: {expected:#?}"
        );
    }
}
