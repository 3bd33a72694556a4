//! Build script: generates the Rust side of `ebpf/lxprof.h` (the kernel/user
//! contract) with bindgen, and compiles every `ebpf/*.bpf.c` with Debian's clang
//! into `$OUT_DIR/<name>.bpf.o`, embedded by the probes.

use std::{env, path::PathBuf, process::Command};

use anyhow::{Context, bail};

fn main() -> anyhow::Result<()> {
    let manifest = PathBuf::from(env::var("CARGO_MANIFEST_DIR")?);
    let ebpf = manifest
        .join("../ebpf")
        .canonicalize()
        .context("ebpf/ directory")?;
    let out = PathBuf::from(env::var("OUT_DIR")?);
    println!("cargo:rerun-if-changed={}", ebpf.display());
    println!("cargo:rerun-if-env-changed=LXPROF_CLANG");

    generate_bindings(&ebpf, &out)?;
    compile_bpf_programs(&ebpf, &out)?;
    generate_perfetto_protos(&manifest, &out)?;
    Ok(())
}

/// `lxprof.h` → `$OUT_DIR/lxprof_bindings.rs`.
fn generate_bindings(ebpf: &std::path::Path, out: &std::path::Path) -> anyhow::Result<()> {
    if env::var_os("LIBCLANG_PATH").is_none() && PathBuf::from("/usr/lib/llvm-19/lib").exists() {
        // SAFETY: build scripts are single-threaded.
        unsafe { env::set_var("LIBCLANG_PATH", "/usr/lib/llvm-19/lib") };
    }
    let bindings = bindgen::Builder::default()
        .header(ebpf.join("lxprof.h").to_string_lossy())
        .allowlist_type("lxprof_.*")
        .allowlist_var("LXPROF_.*")
        .rustified_enum("lxprof_.*")
        .derive_default(true)
        .derive_debug(true)
        .derive_copy(true)
        .layout_tests(true)
        .use_core()
        .generate()
        .context("bindgen could not read ebpf/lxprof.h (is libclang-19-dev installed? run scripts/setup.sh)")?;
    bindings.write_to_file(out.join("lxprof_bindings.rs"))?;
    Ok(())
}

fn clang() -> String {
    if let Ok(c) = env::var("LXPROF_CLANG") {
        return c;
    }
    for c in ["clang-19", "clang"] {
        if Command::new(c).arg("--version").output().is_ok() {
            return c.to_string();
        }
    }
    "clang".to_string()
}

/// Each `ebpf/NAME.bpf.c` → `$OUT_DIR/NAME.bpf.o`.
fn compile_bpf_programs(ebpf: &std::path::Path, out: &std::path::Path) -> anyhow::Result<()> {
    let clang = clang();
    let mut sources: Vec<_> = std::fs::read_dir(ebpf)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.to_string_lossy().ends_with(".bpf.c"))
        .collect();
    sources.sort();
    for src in sources {
        let name = src
            .file_name()
            .unwrap()
            .to_string_lossy()
            .trim_end_matches(".c")
            .to_string();
        let obj = out.join(format!("{name}.o"));
        let status = Command::new(&clang)
            .args([
                "-target",
                "bpf",
                "-g",
                "-O2",
                "-D__TARGET_ARCH_x86",
                "-Wall",
                "-Werror",
            ])
            .arg("-I")
            .arg(ebpf)
            .arg("-c")
            .arg(&src)
            .arg("-o")
            .arg(&obj)
            .status()
            .with_context(|| format!("running {clang} (install clang-19: run scripts/setup.sh)"))?;
        if !status.success() {
            bail!("{clang} failed on {}", src.display());
        }
    }
    Ok(())
}

/// `proto/perfetto_subset.proto` → `$OUT_DIR/perfetto.protos.rs` with prost;
/// protox parses the .proto in Rust, so no `protoc` is needed.
fn generate_perfetto_protos(
    manifest: &std::path::Path,
    out: &std::path::Path,
) -> anyhow::Result<()> {
    let dir = manifest.join("proto");
    let file = dir.join("perfetto_subset.proto");
    println!("cargo:rerun-if-changed={}", file.display());
    let fds = protox::compile([&file], [&dir]).context("parsing proto/perfetto_subset.proto")?;
    prost_build::Config::new()
        .out_dir(out)
        .compile_fds(fds)
        .context("generating Rust for proto/perfetto_subset.proto")?;
    Ok(())
}
