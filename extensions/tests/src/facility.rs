//! Facility checks: outside CI a test may skip with a printed reason; with `CI=true` a
//! missing facility is a failure.

use std::process::{Command, Stdio};

/// True when the environment says this is CI (`CI=true`).
pub fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true" || v == "1")
}

/// Whether `program --version` (or `-v`) runs.
pub fn has_program(program: &str) -> bool {
    ["--version", "-v"].iter().any(|flag| {
        Command::new(program)
            .arg(flag)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    })
}

/// Returns `true` when the test may go on. When `available` is false: panics under CI,
/// otherwise prints why the test is skipped and returns `false`.
pub fn require(available: bool, test: &str, reason: &str) -> bool {
    if available {
        return true;
    }
    if in_ci() {
        panic!("{test}: {reason} (CI=true: a missing facility is a failure)");
    }
    eprintln!("SKIP {test}: {reason}");
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_shell_exists_and_a_nonsense_program_does_not() {
        assert!(has_program("bash"));
        assert!(!has_program("lxprof-no-such-program-here"));
    }

    #[test]
    fn available_facility_never_skips() {
        assert!(require(true, "t", "unused"));
    }
}
