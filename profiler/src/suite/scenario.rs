//! The suite's matrix: which extensions run, whether their builds are there
//! (a missing preset or AOT image is a per-scenario error, not a crash), and
//! how big each extension is on disk.

use std::path::{Path, PathBuf};

use lxprof_emulator::presets::{self, ExtensionSource};

/// The suite's function: the AWS experiment's HeaderCounter was C# on .NET, whose runtime
/// shares the memory and CPU with the extension; the Rust `header-counter` is the other
/// baseline (`no-extension@header-counter`).
pub const DEFAULT_SUITE_FUNCTION: &str = "header-counter-dotnet";

/// The AWS experiment's scenarios: no extension (with the suite's function and with the
/// Rust function), then each extension preset: C# on Mono (`csharp-*`) and on .NET
/// CoreCLR (`dotnet-*`), Rust, Node.
pub const DEFAULT_SCENARIOS: [&str; 10] = [
    NO_EXTENSION,
    "no-extension@header-counter",
    "rust-blank",
    "csharp-blank",
    "dotnet-blank",
    "rust-event-collector",
    "csharp-event-collector",
    "dotnet-event-collector",
    "csharp-aot-event-collector",
    "node-event-collector",
];

/// The scenario name of the function alone.
pub const NO_EXTENSION: &str = "no-extension";

/// One column of the matrix: the function alone or with one extension.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scenario {
    /// Directory and table name (`no-extension`, `rust-blank`, …).
    pub name: String,
    /// The `--extension` argument (preset name or file); None: no extension.
    pub extension: Option<String>,
    /// This scenario's function when it is not the suite's (`SCENARIO@FUNCTION`).
    pub function: Option<String>,
}

impl Scenario {
    /// `no-extension` (or `none`) is the function alone; anything else an extension.
    /// `SCENARIO@FUNCTION` runs it with another function (preset or package directory),
    /// e.g. `no-extension@header-counter`; the name keeps the suffix.
    pub fn parse(arg: &str) -> Scenario {
        if let Some((sc, function)) = arg.rsplit_once('@')
            && !function.is_empty()
        {
            let mut s = Scenario::parse(sc);
            s.name = format!("{}@{}", s.name, crate::lambda::label(function));
            s.function = Some(function.to_string());
            return s;
        }
        if arg == NO_EXTENSION || arg == "none" {
            return Scenario {
                name: NO_EXTENSION.to_string(),
                extension: None,
                function: None,
            };
        }
        let name = Path::new(arg)
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| arg.to_string());
        Scenario {
            name,
            extension: Some(arg.to_string()),
            function: None,
        }
    }

    /// The scenarios of the AWS experiment.
    pub fn defaults() -> Vec<Scenario> {
        DEFAULT_SCENARIOS
            .iter()
            .map(|s| Scenario::parse(s))
            .collect()
    }
}

/// Why a scenario cannot run before anything is started.
#[derive(Debug, thiserror::Error)]
pub enum ScenarioError {
    #[error(transparent)]
    Preset(#[from] presets::PresetError),
    #[error("AOT images missing in {dir}: {missing} (build them with `extensions/build.sh aot`)")]
    AotImages { dir: PathBuf, missing: String },
}

/// Where an extension's files are: the layer directory of a preset (its
/// `extensions/<name>` launcher and `<name>/` payload) or a single file.
#[derive(Debug, Clone, PartialEq)]
pub enum Footprint {
    Layer(PathBuf),
    File(PathBuf),
}

impl Footprint {
    /// The path summed for the size on disk.
    pub fn path(&self) -> &Path {
        match self {
            Footprint::Layer(p) | Footprint::File(p) => p,
        }
    }
}

/// Resolves the scenario's extension as `lxprof run` would and checks that
/// its build is complete (for Mono full-AOT layers: every assembly has its
/// `.so` image, without which mono aborts at start). None: no extension.
pub fn check(
    scenario: &Scenario,
    build: Option<&Path>,
) -> Result<Option<Footprint>, ScenarioError> {
    if let Some(function) = &scenario.function {
        presets::resolve_function(function, build)?;
    }
    let Some(ext) = &scenario.extension else {
        return Ok(None);
    };
    match presets::resolve_extension(ext, build)? {
        ExtensionSource::File(f) => Ok(Some(Footprint::File(f))),
        ExtensionSource::Layer(layer) => {
            if scenario.name.contains("aot") {
                check_aot_images(&layer.join(&scenario.name))?;
            }
            Ok(Some(Footprint::Layer(layer)))
        }
    }
}

/// Every `*.dll`/`*.exe` in `dir` needs `<file>.so` beside it.
fn check_aot_images(dir: &Path) -> Result<(), ScenarioError> {
    let assemblies: Vec<String> = std::fs::read_dir(dir)
        .map(|rd| {
            rd.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| n.ends_with(".dll") || n.ends_with(".exe"))
                .collect()
        })
        .unwrap_or_default();
    let mut missing: Vec<String> = if assemblies.is_empty() {
        vec!["no assemblies".to_string()]
    } else {
        assemblies
            .into_iter()
            .filter(|a| !dir.join(format!("{a}.so")).is_file())
            .map(|a| format!("{a}.so"))
            .collect()
    };
    if missing.is_empty() {
        return Ok(());
    }
    missing.sort();
    Err(ScenarioError::AotImages {
        dir: dir.to_path_buf(),
        missing: missing.join(", "),
    })
}

/// Total size in bytes of the regular files under `path` (symlinks to files
/// count as their target; symlinked directories are not followed).
pub fn size_on_disk(path: &Path) -> u64 {
    let Ok(meta) = std::fs::symlink_metadata(path) else {
        return 0;
    };
    if meta.is_dir() {
        std::fs::read_dir(path)
            .map(|rd| rd.flatten().map(|e| size_on_disk(&e.path())).sum())
            .unwrap_or(0)
    } else if meta.is_symlink() {
        std::fs::metadata(path)
            .ok()
            .filter(|m| m.is_file())
            .map_or(0, |m| m.len())
    } else {
        meta.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tmp(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("lxprof-suite-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).expect("mkdir");
        d
    }

    #[test]
    fn scenarios_parse() {
        let all = Scenario::defaults();
        assert_eq!(all.len(), 10);
        assert_eq!(all[0].extension, None);
        assert_eq!(
            (all[1].name.as_str(), all[1].extension.as_deref()),
            ("no-extension@header-counter", None)
        );
        assert_eq!(all[1].function.as_deref(), Some("header-counter"));
        let s = Scenario::parse("rust-blank@/fns/my-fn/");
        assert_eq!(
            (
                s.name.as_str(),
                s.extension.as_deref(),
                s.function.as_deref()
            ),
            ("rust-blank@my-fn", Some("rust-blank"), Some("/fns/my-fn/"))
        );
        assert_eq!(Scenario::parse("none").name, NO_EXTENSION);
        let s = Scenario::parse("/x/y/my-ext");
        assert_eq!(
            (s.name.as_str(), s.extension.as_deref()),
            ("my-ext", Some("/x/y/my-ext"))
        );
    }

    #[test]
    fn sizes_sum_files_and_follow_file_links_only() {
        let d = tmp("size");
        std::fs::create_dir_all(d.join("a/b")).expect("mkdir");
        std::fs::write(d.join("a/one"), [0u8; 100]).expect("write");
        std::fs::write(d.join("a/b/two"), [0u8; 23]).expect("write");
        std::os::unix::fs::symlink(d.join("a/one"), d.join("link")).expect("symlink");
        std::os::unix::fs::symlink(d.join("a"), d.join("dirlink")).expect("symlink");
        assert_eq!(size_on_disk(&d), 223);
        assert_eq!(size_on_disk(&d.join("a/one")), 100);
        assert_eq!(size_on_disk(&d.join("nothing")), 0);
        let _ = std::fs::remove_dir_all(&d);
    }

    #[test]
    fn missing_presets_and_aot_images_are_errors() {
        let build = tmp("build");
        let layer = build.join("layers/x-aot-ext");
        std::fs::create_dir_all(layer.join("extensions")).expect("mkdir");
        std::fs::create_dir_all(layer.join("x-aot-ext")).expect("mkdir");
        std::fs::write(layer.join("x-aot-ext/A.exe"), b"a").expect("write");
        std::fs::write(layer.join("x-aot-ext/B.dll"), b"b").expect("write");
        std::fs::write(layer.join("x-aot-ext/B.dll.so"), b"b").expect("write");
        let s = Scenario::parse("x-aot-ext");
        let err = check(&s, Some(&build))
            .expect_err("A.exe.so missing")
            .to_string();
        assert!(
            err.contains("A.exe.so") && err.contains("build.sh aot"),
            "{err}"
        );
        std::fs::write(layer.join("x-aot-ext/A.exe.so"), b"a").expect("write");
        assert_eq!(
            check(&s, Some(&build)).expect("complete"),
            Some(Footprint::Layer(layer.clone()))
        );
        let err = check(&Scenario::parse("nope"), Some(&build))
            .expect_err("unknown")
            .to_string();
        assert!(err.contains("nope") && err.contains("x-aot-ext"), "{err}");
        assert_eq!(
            check(&Scenario::parse("none"), Some(&build)).expect("none"),
            None
        );
        let _ = std::fs::remove_dir_all(&build);
    }
}
