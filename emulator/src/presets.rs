//! Resolves `--function NAME|DIR`, `--extension NAME|FILE`: names are the builds of
//! `extensions/build.sh` under `<build>/functions/<name>/` and `<build>/layers/<name>/`.
use std::path::{Path, PathBuf};

/// A resolved `--extension`: a file or a preset layer.
#[derive(Debug, Clone, PartialEq)]
pub enum ExtensionSource {
    /// An executable file.
    File(PathBuf),
    /// A layer directory holding `extensions/<name>`.
    Layer(PathBuf),
}

/// A name that is no preset and no path.
#[derive(Debug, thiserror::Error)]
pub enum PresetError {
    /// Unknown preset.
    #[error(
        "{kind} {name:?} is neither a path nor a preset; available presets in {build}: {available}"
    )]
    Unknown {
        /// "function" or "extension".
        kind: &'static str,
        /// The argument.
        name: String,
        /// The build directory searched.
        build: String,
        /// Comma-separated names.
        available: String,
    },
    /// `--function` named a file that is not a `bootstrap`.
    #[error(
        "--function {0} is a file: give the directory (deployment package) holding the function's executable named `bootstrap` (Lambda runs /var/task/bootstrap)"
    )]
    FunctionFile(PathBuf),
}

/// The build directory: `$LXPROF_EXTENSIONS_BUILD`, or `extensions/build` found walking up
/// from the current executable's directory, then from the current directory.
pub fn build_dir() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("LXPROF_EXTENSIONS_BUILD") {
        return Some(PathBuf::from(p));
    }
    let starts = [
        std::env::current_exe()
            .ok()
            .and_then(|e| e.parent().map(Path::to_path_buf)),
        std::env::current_dir().ok(),
    ];
    for start in starts.into_iter().flatten() {
        for dir in start.ancestors() {
            let cand = dir.join("extensions").join("build");
            if cand.is_dir() {
                return Some(cand);
            }
        }
    }
    None
}

fn names(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .map(|rd| {
            rd.flatten()
                .filter(|e| e.path().is_dir())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

fn unknown(kind: &'static str, name: &str, build: Option<&Path>, sub: &str) -> PresetError {
    PresetError::Unknown {
        kind,
        name: name.to_string(),
        build: build.map_or(
            "(no extensions/build found; set LXPROF_EXTENSIONS_BUILD)".into(),
            |b| b.display().to_string(),
        ),
        available: build
            .map(|b| names(&b.join(sub)).join(", "))
            .unwrap_or_default(),
    }
}

/// `--function DIR|NAME` → the deployment package directory.
pub fn resolve_function(arg: &str, build: Option<&Path>) -> Result<PathBuf, PresetError> {
    let p = PathBuf::from(arg);
    if p.is_dir() {
        return Ok(p);
    }
    // The package's `bootstrap` itself: its directory is the package.
    if p.is_file() {
        return match p.parent() {
            Some(dir) if p.file_name().is_some_and(|n| n == "bootstrap") => {
                Ok(if dir.as_os_str().is_empty() {
                    PathBuf::from(".")
                } else {
                    dir.to_path_buf()
                })
            }
            _ => Err(PresetError::FunctionFile(p)),
        };
    }
    if let Some(b) = build {
        let cand = b.join("functions").join(arg);
        if cand.join("bootstrap").is_file() {
            return Ok(cand);
        }
    }
    Err(unknown("function", arg, build, "functions"))
}

/// `--extension FILE|NAME` → an executable or a preset layer.
pub fn resolve_extension(arg: &str, build: Option<&Path>) -> Result<ExtensionSource, PresetError> {
    let p = PathBuf::from(arg);
    if p.is_file() {
        return Ok(ExtensionSource::File(p));
    }
    if let Some(b) = build {
        let cand = b.join("layers").join(arg);
        if cand.join("extensions").is_dir() {
            return Ok(ExtensionSource::Layer(cand));
        }
    }
    Err(unknown("extension", arg, build, "layers"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolves_names_and_lists_available() {
        let tmp = std::env::temp_dir().join(format!("lxprof-presets-{}", std::process::id()));
        let f = tmp.join("functions/hc");
        std::fs::create_dir_all(&f).expect("mkdir");
        std::fs::write(f.join("bootstrap"), b"").expect("write");
        std::fs::create_dir_all(tmp.join("layers/blank/extensions")).expect("mkdir");
        assert_eq!(resolve_function("hc", Some(&tmp)).expect("hc"), f);
        let boot = f.join("bootstrap");
        assert_eq!(
            resolve_function(&boot.display().to_string(), None).expect("file"),
            f
        );
        std::fs::write(f.join("handler"), b"").expect("write");
        let other = f.join("handler").display().to_string();
        assert!(matches!(
            resolve_function(&other, None),
            Err(PresetError::FunctionFile(_))
        ));
        assert_eq!(
            resolve_extension("blank", Some(&tmp)).expect("blank"),
            ExtensionSource::Layer(tmp.join("layers/blank"))
        );
        let err = resolve_function("nope", Some(&tmp))
            .expect_err("unknown")
            .to_string();
        assert!(err.contains("hc"), "{err}");
        let err = resolve_extension("nope", Some(&tmp))
            .expect_err("unknown")
            .to_string();
        assert!(err.contains("blank"), "{err}");
        let _ = std::fs::remove_dir_all(&tmp);
    }
}
