//! `lxprof compare` of two real recordings through the binary: the table and the
//! differential flamegraph of the role both have.

use std::process::Command;

use super::*;

#[test]
fn compare_two_recordings_writes_table_and_differential_flamegraph() {
    let Some(_g) = bpf_available() else { return };
    // Sampling on (the library's default is off; the CLI's is 499 Hz).
    let sampled = |name: &str, args: &[&str]| {
        let mut argv = vec![workload().into_os_string()];
        argv.extend(args.iter().map(Into::into));
        let mut opts = RecordOptions::new(Target::Command(argv));
        opts.output_dir = Some(scratch(name));
        opts.freq = Some(499);
        record(&opts).expect("record")
    };
    let a = sampled("compare-a", &["burn", "--threads", "1", "--ms", "150"]);
    let b = sampled("compare-b", &["burn", "--threads", "2", "--ms", "300"]);
    let out = scratch("compare-out");
    let res = Command::new(env!("CARGO_BIN_EXE_lxprof"))
        .arg("compare")
        .arg(&a.output_dir)
        .arg(&b.output_dir)
        .arg("-o")
        .arg(&out)
        .output()
        .expect("running lxprof compare");
    assert!(
        res.status.success(),
        "{}",
        String::from_utf8_lossy(&res.stderr)
    );
    let md = std::fs::read_to_string(out.join("compare.md")).expect("compare.md");
    assert!(md.contains("## Role `command`"), "{md}");
    // B burned about four times A's CPU: the CPU row's ratio says more than 1.
    let cpu_row = md
        .lines()
        .find(|l| l.starts_with("| CPU |"))
        .expect("CPU row");
    let ratio: f64 = cpu_row
        .rsplit('|')
        .nth(1)
        .and_then(|c| c.trim().trim_end_matches('×').parse().ok())
        .unwrap_or_else(|| panic!("no ratio in {cpu_row}"));
    assert!(ratio > 1.5, "{cpu_row}");
    let svg = std::fs::read_to_string(out.join("flamegraphs/diff-command.svg")).expect("diff svg");
    let opts = roxmltree::ParsingOptions {
        allow_dtd: true,
        ..Default::default()
    };
    roxmltree::Document::parse_with_options(&svg, opts)
        .expect("differential flamegraph is well-formed SVG");
}
