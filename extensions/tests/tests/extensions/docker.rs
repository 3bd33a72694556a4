//! docker/Dockerfile: every path it COPYs exists (relative to the build context, the repo).

use lxprof_extension_tests::{facility, layout};

/// The sources of each `COPY` (without `--from`), as (line number, path).
fn copy_sources(dockerfile: &str) -> Vec<(usize, String)> {
    let mut sources = Vec::new();
    for (n, line) in dockerfile.lines().enumerate() {
        let words: Vec<&str> = line.split_whitespace().collect();
        if words.first().map(|w| w.eq_ignore_ascii_case("COPY")) != Some(true) {
            continue;
        }
        let args: Vec<&str> = words[1..].to_vec();
        if args.iter().any(|a| a.starts_with("--from")) {
            continue;
        }
        let args: Vec<&str> = args.into_iter().filter(|a| !a.starts_with("--")).collect();
        if let Some((_dest, srcs)) = args.split_last() {
            sources.extend(srcs.iter().map(|s| (n + 1, s.to_string())));
        }
    }
    sources
}

#[test]
fn every_copy_source_exists() {
    let root = layout::repo_root();
    let path = root.join("docker/Dockerfile");
    let text = std::fs::read_to_string(&path).expect("docker/Dockerfile");
    let sources = copy_sources(&text);
    assert!(sources.len() >= 3, "expected COPY lines, got {sources:?}");
    let built = layout::build_dir().join("layers").exists();
    if !facility::require(
        built,
        "every_copy_source_exists",
        "extensions/build is missing: run extensions/build.sh",
    ) {
        return;
    }
    let missing: Vec<_> = sources
        .iter()
        .filter(|(_, s)| !root.join(s).exists())
        .collect();
    assert!(
        missing.is_empty(),
        "COPY sources missing (line, path): {missing:?}"
    );
}

#[test]
fn copy_parser_reads_multi_source_and_skips_stage_copies() {
    let text = "FROM x\nCOPY a b /dst/\ncopy --chmod=755 c /d\nCOPY --from=build /x /y\n";
    let got: Vec<String> = copy_sources(text).into_iter().map(|(_, s)| s).collect();
    assert_eq!(got, ["a", "b", "c"]);
}
