//! The full-AOT C# collector really runs ahead-of-time code: its launcher starts Mono with
//! `--full-aot`, every image loads from its own folder, and a missing image aborts loudly
//! instead of falling back to the JIT.

use std::path::Path;
use std::process::{Command, Output};

use lxprof_extension_tests::{facility, layout};

const NAME: &str = "csharp-aot-event-collector";

fn built(test: &str) -> bool {
    if !facility::require(
        facility::has_program("mono") && facility::has_program("mcs"),
        test,
        "mono/mcs not installed (scripts/setup.sh installs them)",
    ) {
        return false;
    }
    if let Err(e) = layout::build_steps(&["csharp", "aot"]) {
        panic!("{test}: {e}");
    }
    true
}

/// A copy of the layer in a temporary directory (to break it without touching the build).
fn copy_layer(tmp: &Path) -> std::path::PathBuf {
    let dst = tmp.join("layer");
    let status = Command::new("cp")
        .arg("-a")
        .arg(layout::layer_dir(NAME))
        .arg(&dst)
        .status()
        .expect("cp");
    assert!(status.success(), "copying the AOT layer failed");
    dst
}

/// Runs the launcher against a closed Extensions API port: managed code reaches `register`
/// and fails there (exit 1), unless the runtime aborts first.
fn run_launcher(layer: &Path, cwd: &Path) -> Output {
    Command::new(layer.join("extensions").join(NAME))
        .current_dir(cwd)
        .env_clear()
        .env("PATH", "/usr/bin:/bin")
        .env("AWS_LAMBDA_RUNTIME_API", "127.0.0.1:9")
        .env("EVENT_COLLECTOR_BUCKET", "unused-bucket")
        .env("AWS_ACCESS_KEY_ID", "testing")
        .env("AWS_SECRET_ACCESS_KEY", "testing")
        .env("MONO_LOG_LEVEL", "info")
        .env("MONO_LOG_MASK", "aot")
        .output()
        .expect("run launcher")
}

#[test]
fn launcher_starts_mono_with_full_aot_and_every_image_is_found() {
    if !built("launcher_starts_mono_with_full_aot_and_every_image_is_found") {
        return;
    }
    let launcher = std::fs::read_to_string(layout::extension_file(NAME)).expect("launcher");
    assert!(launcher.contains("mono --full-aot"), "{launcher}");

    let tmp = tempfile::tempdir().expect("tempdir");
    let layer = copy_layer(tmp.path());
    let out = run_launcher(&layer, tmp.path());
    let stderr = String::from_utf8_lossy(&out.stderr);
    let stdout = String::from_utf8_lossy(&out.stdout);
    // Managed Main ran (it reports the failed register itself) ...
    assert_eq!(
        out.status.code(),
        Some(1),
        "stdout: {stdout}\nstderr: {stderr}"
    );
    assert!(stderr.contains(&format!("[{NAME}] fatal:")), "{stderr}");
    // ... on images loaded from the layer's own folder, one per assembly of the closure.
    let images: Vec<_> = std::fs::read_dir(layer.join(NAME))
        .expect("layer dir")
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".so"))
        .collect();
    assert!(images.len() >= 10, "too few AOT images: {images:?}");
    let all = format!("{stdout}{stderr}");
    for image in [
        "mscorlib.dll.so",
        "System.Net.Http.dll.so",
        "EventCollector.exe.so",
    ] {
        let path = layer.join(NAME).join(image);
        assert!(
            all.contains(&format!("AOT: image '{}' found", path.display())),
            "image {image} not loaded from the layer:\n{all}"
        );
    }
}

#[test]
fn a_missing_aot_image_fails_loudly_without_jit_fallback() {
    if !built("a_missing_aot_image_fails_loudly_without_jit_fallback") {
        return;
    }
    let tmp = tempfile::tempdir().expect("tempdir");
    let layer = copy_layer(tmp.path());
    let missing = layer.join(NAME).join("System.Net.Http.dll.so");
    std::fs::remove_file(&missing).expect("remove one image");

    let out = run_launcher(&layer, tmp.path());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "ran without an image:\n{stderr}");
    assert_ne!(
        out.status.code(),
        Some(1),
        "reached managed error handling:\n{stderr}"
    );
    assert!(
        stderr.contains(&format!(
            "Failed to load AOT module '{}' in aot-only mode",
            missing.display()
        )),
        "no loud error naming the image:\n{stderr}"
    );
    assert!(!stderr.contains(&format!("[{NAME}] fatal:")), "{stderr}");
}
