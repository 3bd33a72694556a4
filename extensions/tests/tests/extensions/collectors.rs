//! Each preset extension driven through the Extensions API (the test driver, no emulator):
//! the event collectors store exactly one object per INVOKE, with the documented shape and the
//! invocations' request ids, in a real local S3 server; with the endpoint down they still call
//! next promptly and log the error; csharp-blank logs each event.

use std::collections::BTreeSet;
use std::time::Duration;

use lxprof_extension_tests::driver::{DriveReport, drive};
use lxprof_extension_tests::local_s3::LocalS3;
use lxprof_extension_tests::s3_reader::{read_objects, read_objects_trusting};
use lxprof_extension_tests::{facility, layout};

use crate::shapes::{check_object, shape_of};

/// The preset is built and its runtime is installed (else skip, or fail under CI).
fn ready(test: &str, name: &str) -> bool {
    let runtime_ok = if name.starts_with("csharp") {
        facility::has_program("mono")
    } else if name.starts_with("node") {
        facility::has_program("node")
    } else {
        true
    };
    facility::require(
        runtime_ok,
        test,
        &format!("the runtime of {name} is not installed"),
    ) && facility::require(
        layout::extension_file(name).exists(),
        test,
        &format!(
            "{} is missing: run extensions/build.sh",
            layout::extension_file(name).display()
        ),
    ) && facility::require(
        facility::has_program("python3"),
        test,
        "python3 not installed",
    )
}

fn logged(report: &DriveReport, name: &str, event: &str) -> usize {
    report
        .stdout
        .lines()
        .filter(|l| l.starts_with(&format!("[{name}] {event}")))
        .count()
}

fn stores_one_object_per_invoke(name: &str) {
    let test = format!("{name}_stores_one_object_per_invoke");
    if !ready(&test, name) {
        return;
    }
    let s3 = LocalS3::start(&format!("{name}-bucket")).expect("local S3");
    let function = format!("fn-{name}");
    let report = drive(
        &layout::extension_file(name),
        &function,
        &s3.env(),
        20,
        Duration::from_secs(55),
    )
    .unwrap_or_else(|e| panic!("{test}: {e}"));
    assert_eq!(
        report.registered_name.as_deref(),
        Some(name),
        "registered under its file name"
    );
    assert_eq!(report.request_ids.len(), 20);
    assert_eq!(
        report.invoke_durations.len(),
        20,
        "every INVOKE finished with a next: {report:#?}"
    );
    assert_eq!(logged(&report, name, "INVOKE"), 20, "{}", report.stdout);
    assert_eq!(
        logged(&report, name, "SHUTDOWN spindown"),
        1,
        "{}",
        report.stdout
    );
    assert!(!report.stderr.contains("failed"), "{}", report.stderr);

    let objects =
        read_objects(&s3.endpoint(), s3.bucket(), &format!("{function}/")).expect("read S3");
    assert_eq!(
        objects.len(),
        20,
        "objects: {:?}",
        objects.iter().map(|o| &o.key).collect::<Vec<_>>()
    );
    let stored: BTreeSet<String> = objects
        .iter()
        .map(|o| {
            check_object(shape_of(name), &function, &o.key, &o.body)
                .unwrap_or_else(|e| panic!("{e}"))
        })
        .collect();
    let sent: BTreeSet<String> = report.request_ids.iter().cloned().collect();
    assert_eq!(
        stored, sent,
        "stored request ids differ from the invocations'"
    );
    // Nothing outside the function's prefix.
    assert_eq!(
        read_objects(&s3.endpoint(), s3.bucket(), "")
            .expect("read S3")
            .len(),
        20
    );
    s3.stop().expect("stop S3");
}

#[test]
fn rust_event_collector_stores_one_object_per_invoke() {
    stores_one_object_per_invoke("rust-event-collector");
}

#[test]
fn csharp_event_collector_stores_one_object_per_invoke() {
    stores_one_object_per_invoke("csharp-event-collector");
}

#[test]
fn csharp_aot_event_collector_stores_one_object_per_invoke() {
    stores_one_object_per_invoke("csharp-aot-event-collector");
}

#[test]
fn dotnet_event_collector_stores_one_object_per_invoke() {
    stores_one_object_per_invoke("dotnet-event-collector");
}

#[test]
fn node_event_collector_stores_one_object_per_invoke() {
    stores_one_object_per_invoke("node-event-collector");
}

/// Over HTTPS, as real S3: the server's certificate comes from a CA made at start, which the
/// collector trusts only through its runtime's standard setting (SSL_CERT_FILE,
/// NODE_EXTRA_CA_CERTS, Mono's store under XDG_CONFIG_HOME); every PutObject lands.
fn stores_over_https(name: &str) {
    let test = format!("{name}_stores_over_https");
    if !ready(&test, name)
        || !facility::require(
            std::process::Command::new("openssl")
                .arg("version")
                .output()
                .is_ok_and(|o| o.status.success()),
            &test,
            "openssl not installed (scripts/setup.sh installs it)",
        )
    {
        return;
    }
    let s3 = LocalS3::start_tls(&format!("{name}-tls")).expect("local S3 over TLS");
    assert!(s3.endpoint().starts_with("https://"), "{}", s3.endpoint());
    let ca = std::fs::read(s3.ca_file().expect("CA file")).expect("read CA");
    let function = format!("fn-{name}");
    let report = drive(
        &layout::extension_file(name),
        &function,
        &s3.env(),
        3,
        Duration::from_secs(55),
    )
    .unwrap_or_else(|e| panic!("{test}: {e}"));
    assert_eq!(report.invoke_durations.len(), 3, "{report:#?}");
    assert!(
        !report.stderr.contains("failed") && !report.stdout.contains("failed"),
        "{}\n{}",
        report.stdout,
        report.stderr
    );
    let objects = read_objects_trusting(
        &s3.endpoint(),
        s3.bucket(),
        &format!("{function}/"),
        Some(&ca),
    )
    .expect("read S3 over HTTPS");
    assert_eq!(
        objects.len(),
        3,
        "objects: {:?}",
        objects.iter().map(|o| &o.key).collect::<Vec<_>>()
    );
    // Without the CA the same server is refused: the trust is what made it work.
    assert!(read_objects(&s3.endpoint(), s3.bucket(), "").is_err());
    s3.stop().expect("stop S3");
}

#[test]
fn rust_event_collector_stores_over_https() {
    stores_over_https("rust-event-collector");
}

#[test]
fn csharp_event_collector_stores_over_https() {
    stores_over_https("csharp-event-collector");
}

// Not csharp-aot-event-collector: under `mono --full-aot` (Mono 6.8) every HTTPS request
// fails with "ExecutionEngineException: Attempting to JIT compile method '(wrapper
// native-to-managed) Mono.Btls.MonoBtlsSslCtx:NativeVerifyCallback'": the TLS stack's
// certificate callback is never compiled ahead of time. It writes over plain HTTP only.

#[test]
fn node_event_collector_stores_over_https() {
    stores_over_https("node-event-collector");
}

#[test]
fn dotnet_event_collector_stores_over_https() {
    stores_over_https("dotnet-event-collector");
}

/// The S3 endpoint refuses connections: each INVOKE still ends with a next within the
/// collectors' bound (5 s per PutObject, retries included), and the error is logged.
fn survives_a_down_endpoint(name: &str) {
    let test = format!("{name}_survives_a_down_endpoint");
    if !ready(&test, name) {
        return;
    }
    let closed = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = closed.local_addr().expect("addr").port();
    drop(closed);
    let env: Vec<(String, String)> = [
        ("AWS_ENDPOINT_URL_S3", format!("http://127.0.0.1:{port}")),
        ("AWS_REGION", "us-east-1".into()),
        ("AWS_ACCESS_KEY_ID", "testing".into()),
        ("AWS_SECRET_ACCESS_KEY", "testing".into()),
        ("EVENT_COLLECTOR_BUCKET", "down-bucket".into()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    let report = drive(
        &layout::extension_file(name),
        "fn-down",
        &env,
        3,
        Duration::from_secs(50),
    )
    .unwrap_or_else(|e| panic!("{test}: {e}"));
    assert_eq!(report.invoke_durations.len(), 3, "{report:#?}");
    for d in &report.invoke_durations {
        assert!(
            *d < Duration::from_secs(10),
            "an INVOKE took {d:?} with S3 down: {report:#?}"
        );
    }
    let errors = report
        .stderr
        .lines()
        .filter(|l| {
            l.starts_with(&format!("[{name}] PutObject s3://down-bucket/fn-down/"))
                && l.contains("failed")
        })
        .count();
    assert_eq!(errors, 3, "one logged error per INVOKE:\n{}", report.stderr);
    assert_eq!(logged(&report, name, "SHUTDOWN"), 1, "{}", report.stdout);
}

#[test]
fn rust_event_collector_survives_a_down_endpoint() {
    survives_a_down_endpoint("rust-event-collector");
}

#[test]
fn csharp_event_collector_survives_a_down_endpoint() {
    survives_a_down_endpoint("csharp-event-collector");
}

#[test]
fn csharp_aot_event_collector_survives_a_down_endpoint() {
    survives_a_down_endpoint("csharp-aot-event-collector");
}

#[test]
fn dotnet_event_collector_survives_a_down_endpoint() {
    survives_a_down_endpoint("dotnet-event-collector");
}

#[test]
fn node_event_collector_survives_a_down_endpoint() {
    survives_a_down_endpoint("node-event-collector");
}

#[test]
fn csharp_blank_logs_each_invoke_and_the_shutdown() {
    let name = "csharp-blank";
    if !ready("csharp_blank_logs_each_invoke_and_the_shutdown", name) {
        return;
    }
    let report = drive(
        &layout::extension_file(name),
        "fn-blank",
        &[],
        5,
        Duration::from_secs(30),
    )
    .expect("drive csharp-blank");
    assert_eq!(report.registered_name.as_deref(), Some(name));
    for id in &report.request_ids {
        assert!(
            report
                .stdout
                .lines()
                .any(|l| l == format!("[{name}] INVOKE {id}")),
            "{id} not logged:\n{}",
            report.stdout
        );
    }
    assert_eq!(
        logged(&report, name, "SHUTDOWN spindown"),
        1,
        "{}",
        report.stdout
    );
    assert_eq!(report.invoke_durations.len(), 5);
}
