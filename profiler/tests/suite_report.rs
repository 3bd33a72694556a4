//! The suite's report through the real binary and a real browser engine: a
//! short real suite (no extension, the Rust and the C# EventCollector)
//! writes suite.md with the CPU split, the sentences, the charts, the
//! differential flamegraph and the seed comparison, every link of it points
//! at a file that exists, and headless Chromium loads suite.html without a
//! script error and lays every chart out. Needs root, BPF, the built presets
//! and chromium (scripts/setup.sh); with `CI=true` a missing one fails.

use std::{path::PathBuf, process::Command, time::Instant};

mod support;

use support::{LocalS3, lambda_facility, scratch, skip_or_fail};

/// Debian's `chromium` (or `chromium-browser`) on PATH.
fn chromium() -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .flat_map(|d| [d.join("chromium"), d.join("chromium-browser")])
        .find(|p| p.is_file())
}

/// The relative link targets of a markdown text (`](target)`).
fn relative_links(md: &str) -> Vec<String> {
    md.split("](")
        .skip(1)
        .filter_map(|rest| rest.split(')').next())
        .filter(|t| !t.contains("://") && !t.starts_with('#'))
        .map(str::to_string)
        .collect()
}

/// The value of `name="…"` in the `<body …>` tag of a dumped DOM.
fn body_attr(dom: &str, name: &str) -> Option<String> {
    let body = &dom[dom.find("<body")?..];
    let tag = &body[..body.find('>')?];
    let key = format!("{name}=\"");
    let v = &tag[tag.find(&key)? + key.len()..];
    Some(v[..v.find('"')?].to_string())
}

#[test]
fn the_report_explains_and_renders_in_a_browser() {
    let Some(build) = lambda_facility() else {
        return;
    };
    let Some(chromium) = chromium() else {
        skip_or_fail("chromium is not installed (scripts/setup.sh installs it)");
        return;
    };
    let tmp = scratch("suite-report");
    let bucket = "lxprof-suite-report";
    let Some(s3) = LocalS3::start(tmp.join("s3.state"), bucket) else {
        return;
    };
    let url = s3.endpoint();
    let dir = tmp.join("out");
    let started = Instant::now();
    let out = Command::new(env!("CARGO_BIN_EXE_lxprof"))
        .args(["suite", "--memory", "128", "--invocations", "4"])
        .args(["--concurrency", "2"])
        .args([
            "--scenarios",
            "no-extension,rust-event-collector,csharp-event-collector",
        ])
        .args(["--s3-endpoint", &url, "--bucket", bucket])
        .arg("-o")
        .arg(&dir)
        .env("LXPROF_EXTENSIONS_BUILD", &build)
        .env("LXPROF_S3_STATE", dir.join("no-such.state"))
        .output()
        .expect("running lxprof suite");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        matches!(out.status.code(), Some(0 | 3)),
        "lxprof suite exited {:?}\nstderr:\n{stderr}",
        out.status
    );
    eprintln!("suite of 3 scenarios: {:.1?}", started.elapsed());

    let md = std::fs::read_to_string(dir.join("suite.md")).expect("suite.md");
    assert!(
        md.contains("### Where each extension's CPU goes (128 MB)"),
        "{md}"
    );
    // The category row of the C# collector: five shares summing to ~100 %.
    let row = md
        .lines()
        .find(|l| l.starts_with("| csharp-event-collector | Mono JIT |"))
        .unwrap_or_else(|| panic!("no category row:\n{md}"));
    let shares: Vec<f64> = row
        .split(" | ")
        .filter_map(|c| c.trim_matches(['|', ' ']).strip_suffix(" %")?.parse().ok())
        .collect();
    assert_eq!(shares.len(), 10, "{row}");
    let inv: f64 = shares[..5].iter().sum();
    assert!((97.0..=103.0).contains(&inv), "{row}");
    // Its sentence names a runtime cost (the JIT compiles its code at start).
    let sentence = md
        .lines()
        .find(|l| l.starts_with("- csharp-event-collector (Mono JIT):"))
        .unwrap_or_else(|| panic!("no sentence:\n{md}"));
    assert!(
        sentence.contains("its largest avoidable cost is"),
        "{sentence}"
    );
    assert!(md.contains("- rust-event-collector (native):"), "{md}");
    // The seed's figures beside ours, with a reading.
    assert!(
        md.contains("## Beside the seed's published figures"),
        "{md}"
    );
    assert!(
        md.contains("| csharp-event-collector (ec-extension-128) |"),
        "{md}"
    );
    assert!(md.contains("- **csharp-event-collector**"), "{md}");
    // The differential flamegraph, made by the suite.
    let diff = dir.join("diffs/128mb-csharp-event-collector-vs-rust-event-collector.svg");
    let svg = std::fs::read_to_string(&diff).unwrap_or_else(|e| panic!("{diff:?}: {e}"));
    assert!(svg.contains("<svg"), "{diff:?}");
    // Every relative link points at something that exists.
    let links = relative_links(&md);
    assert!(links.len() >= 12, "{links:?}");
    for l in &links {
        assert!(
            dir.join(l).exists(),
            "suite.md links {l}, which is not in {dir:?}"
        );
    }
    let charts = std::fs::read_dir(dir.join("charts"))
        .expect("charts/")
        .filter(|e| {
            e.as_ref()
                .is_ok_and(|e| e.path().extension().is_some_and(|x| x == "svg"))
        })
        .count();
    assert!(charts >= 4, "{charts} charts");

    // A real browser engine: loads the page, runs its script, lays out the charts.
    let html = dir.join("suite.html");
    let page = std::fs::read_to_string(&html).expect("suite.html");
    assert!(
        !page.contains("<script src") && !page.contains("<link "),
        "self-contained"
    );
    let dom = Command::new("timeout")
        .arg("120")
        .arg(&chromium)
        .args([
            "--headless",
            "--disable-gpu",
            "--no-sandbox",
            "--allow-file-access-from-files",
            "--dump-dom",
        ])
        .arg(format!("file://{}", html.display()))
        .output()
        .expect("running chromium");
    let text = String::from_utf8_lossy(&dom.stdout);
    assert!(
        dom.status.success(),
        "chromium exited {:?}: {}",
        dom.status,
        String::from_utf8_lossy(&dom.stderr)
    );
    assert_eq!(
        body_attr(&text, "data-errors").as_deref(),
        Some("0"),
        "script errors"
    );
    assert_eq!(
        body_attr(&text, "data-charts"),
        Some(charts.to_string()),
        "every chart inlined"
    );
    assert_eq!(
        body_attr(&text, "data-charts-rendered"),
        Some(charts.to_string()),
        "every chart laid out with a non-empty box and its shapes"
    );
    drop(s3);
}
