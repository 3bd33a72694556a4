//! End to end through the emulator: HeaderCounter with each event collector's layer, 20
//! invocations at 512 MB (CPU capped at 512/1769 of a CPU), a real local S3 server.

use std::collections::BTreeSet;
use std::sync::Mutex;
use std::time::Duration;

use lxprof_emulator::{EmulatorConfig, LambdaReport, NoObserver, Status};
use lxprof_extension_tests::local_s3::LocalS3;
use lxprof_extension_tests::s3_reader::read_objects;
use lxprof_extension_tests::{facility, layout};

use crate::shapes::{check_object, shape_of};

/// One emulator run at a time: each one is CPU-capped, and the machine has 2 cores.
static SERIAL: Mutex<()> = Mutex::new(());

fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .map(|s| {
            s.lines()
                .find(|l| l.starts_with("Uid:"))
                .and_then(|l| l.split_whitespace().nth(2))
                == Some("0")
        })
        .unwrap_or(false)
}

fn ready(test: &str, name: &str) -> bool {
    let runtime_ok = if name.starts_with("csharp") {
        facility::has_program("mono")
    } else if name.starts_with("node") {
        facility::has_program("node")
    } else {
        true
    };
    facility::require(
        is_root(),
        test,
        "the emulator needs root (cgroups, mount namespaces)",
    ) && facility::require(
        runtime_ok,
        test,
        &format!("the runtime of {name} is not installed"),
    ) && facility::require(
        layout::extension_file(name).exists()
            && layout::function_dir("header-counter")
                .join("bootstrap")
                .exists(),
        test,
        "presets missing: run extensions/build.sh",
    ) && facility::require(
        facility::has_program("python3"),
        test,
        "python3 not installed",
    )
}

fn emulate(
    name: &str,
    function: &str,
    env: Vec<(String, String)>,
    invocations: u32,
) -> LambdaReport {
    let mut config = EmulatorConfig::new(layout::function_dir("header-counter"));
    config.layers = vec![layout::layer_dir(name)];
    config.memory_mb = 512;
    config.invocations = invocations;
    config.timeout = Duration::from_secs(10);
    config.env = env;
    config.function_name = function.to_string();
    config.print_reports = false;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime");
    runtime
        .block_on(lxprof_emulator::run(config, &NoObserver))
        .unwrap_or_else(|e| panic!("emulating {name}: {e}"))
}

fn twenty_invocations_store_twenty_objects(name: &str) {
    let test = format!("{name}_through_the_emulator");
    if !ready(&test, name) {
        return;
    }
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let s3 = LocalS3::start(&format!("e2e-{name}")).expect("local S3");
    let function = format!("e2e-{name}");
    let report = emulate(name, &function, s3.env(), 20);
    assert_eq!(report.invocations.len(), 20);
    for inv in &report.invocations {
        assert_eq!(inv.status, Status::Success, "{inv:#?}");
    }
    assert!(
        report.extensions.iter().any(|e| e == name),
        "{:?}",
        report.extensions
    );
    let objects =
        read_objects(&s3.endpoint(), s3.bucket(), &format!("{function}/")).expect("read S3");
    assert_eq!(
        objects.len(),
        20,
        "{:?}",
        objects.iter().map(|o| &o.key).collect::<Vec<_>>()
    );
    let stored: BTreeSet<String> = objects
        .iter()
        .map(|o| {
            check_object(shape_of(name), &function, &o.key, &o.body)
                .unwrap_or_else(|e| panic!("{e}"))
        })
        .collect();
    let invoked: BTreeSet<String> = report
        .invocations
        .iter()
        .map(|i| i.request_id.clone())
        .collect();
    assert_eq!(
        stored, invoked,
        "stored request ids differ from the invocations'"
    );
    s3.stop().expect("stop S3");
}

#[test]
fn rust_event_collector_through_the_emulator() {
    twenty_invocations_store_twenty_objects("rust-event-collector");
}

#[test]
fn csharp_event_collector_through_the_emulator() {
    twenty_invocations_store_twenty_objects("csharp-event-collector");
}

#[test]
fn csharp_aot_event_collector_through_the_emulator() {
    twenty_invocations_store_twenty_objects("csharp-aot-event-collector");
}

/// The same C# on .NET CoreCLR 3.1 (runtime and libssl 1.1 inside the layer).
#[test]
fn dotnet_event_collector_through_the_emulator() {
    twenty_invocations_store_twenty_objects("dotnet-event-collector");
}

#[test]
fn node_event_collector_through_the_emulator() {
    twenty_invocations_store_twenty_objects("node-event-collector");
}

/// S3 down: every invocation still completes within the timeout and the emulator records it.
#[test]
fn an_event_collector_with_s3_down_never_hangs_an_invocation() {
    let name = "rust-event-collector";
    if !ready(
        "an_event_collector_with_s3_down_never_hangs_an_invocation",
        name,
    ) {
        return;
    }
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let closed = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = closed.local_addr().expect("addr").port();
    drop(closed);
    let env = vec![
        (
            "AWS_ENDPOINT_URL_S3".to_string(),
            format!("http://127.0.0.1:{port}"),
        ),
        ("AWS_REGION".to_string(), "us-east-1".to_string()),
        ("AWS_ACCESS_KEY_ID".to_string(), "testing".to_string()),
        ("AWS_SECRET_ACCESS_KEY".to_string(), "testing".to_string()),
        (
            "EVENT_COLLECTOR_BUCKET".to_string(),
            "down-bucket".to_string(),
        ),
    ];
    let report = emulate(name, "e2e-s3-down", env, 3);
    assert_eq!(report.invocations.len(), 3);
    for inv in &report.invocations {
        assert_eq!(inv.status, Status::Success, "{inv:#?}");
        assert!(inv.duration_ms < 10_000.0, "{inv:#?}");
        // The failed PutObject (with the SDK's retries) happened after the response.
        assert!(inv.post_runtime_extensions_duration_ms > 0.0, "{inv:#?}");
    }
}
