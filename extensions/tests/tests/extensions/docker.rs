//! docker/Dockerfile: every path it COPYs from the build context (the repository root) exists,
//! and the sources it copies hold every workspace member (or `cargo build --locked` in the
//! image's build stage would fail).

use lxprof_extension_tests::layout;

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

/// `members = [...]` of the root Cargo.toml.
fn workspace_members(cargo_toml: &str) -> Vec<String> {
    let Some(start) = cargo_toml.find("members") else {
        return Vec::new();
    };
    let rest = &cargo_toml[start..];
    let (Some(open), Some(close)) = (rest.find('['), rest.find(']')) else {
        return Vec::new();
    };
    rest[open + 1..close]
        .split(',')
        .map(|m| m.trim().trim_matches('"').to_string())
        .filter(|m| !m.is_empty())
        .collect()
}

#[test]
fn every_copy_source_exists_and_covers_the_workspace() {
    let root = layout::repo_root();
    let text = std::fs::read_to_string(root.join("docker/Dockerfile")).expect("docker/Dockerfile");
    let sources = copy_sources(&text);
    assert!(sources.len() >= 3, "expected COPY lines, got {sources:?}");
    let missing: Vec<_> = sources
        .iter()
        .filter(|(_, s)| !root.join(s).exists())
        .collect();
    assert!(
        missing.is_empty(),
        "COPY sources missing (line, path): {missing:?}"
    );

    let cargo = std::fs::read_to_string(root.join("Cargo.toml")).expect("Cargo.toml");
    let members = workspace_members(&cargo);
    assert!(
        !members.is_empty(),
        "no workspace members found in Cargo.toml"
    );
    for member in &members {
        assert!(
            sources.iter().any(|(_, s)| member == s
                || member.starts_with(&format!("{}/", s.trim_end_matches('/')))),
            "workspace member {member} is not copied into the image's build stage"
        );
    }
    for (_, s) in &sources {
        assert!(
            !s.starts_with("target") && !s.starts_with("extensions/build"),
            "{s}: the image compiles its own binaries; do not COPY host build outputs"
        );
    }
}

#[test]
fn copy_parser_reads_multi_source_and_skips_stage_copies() {
    let text = "FROM x\nCOPY a b /dst/\ncopy --chmod=755 c /d\nCOPY --from=build /x /y\n";
    let got: Vec<String> = copy_sources(text).into_iter().map(|(_, s)| s).collect();
    assert_eq!(got, ["a", "b", "c"]);
    let members = workspace_members("[workspace]\nmembers = [\n  \"a\",\n  \"b/c\",\n]\n");
    assert_eq!(members, ["a", "b/c"]);
}
