//! Tests of the built-in rules against stacks captured on this machine with
//! `perf record -g` (profiler/tests/data/stacks/, see its README.md and
//! capture.sh): Mono 6.8, .NET CoreCLR 3.1, Node 20, OpenJDK 17 and a native C program.

use std::collections::BTreeMap;
use std::path::PathBuf;

use super::{Classifier, Runtime, detect_runtime};
use crate::stacks::{Category, Frame, FrameKind};

/// One captured process: what `detect_runtime` sees and its samples.
struct Fixture {
    name: String,
    exe: String,
    modules: Vec<String>,
    samples: Vec<(String, Vec<Frame>)>,
}

fn malformed(path: &std::path::Path, line_no: usize, line: &str) -> ! {
    panic!("{}:{line_no}: malformed line {line:?}", path.display())
}

fn load(name: &str) -> Fixture {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data/stacks")
        .join(format!("{name}.stacks"));
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("reading fixture {}: {e}", path.display()));
    let mut fx = Fixture {
        name: name.to_string(),
        exe: String::new(),
        modules: Vec::new(),
        samples: Vec::new(),
    };
    let mut frames: BTreeMap<usize, Frame> = BTreeMap::new();
    for (n, line) in text.lines().enumerate() {
        if line.starts_with('#') || line.is_empty() {
            continue;
        }
        let fields: Vec<&str> = line.split('\t').collect();
        match fields.as_slice() {
            ["exe", exe] => fx.exe = exe.to_string(),
            ["module", m] => fx.modules.push(m.to_string()),
            ["frame", id, kind, module, sym] => {
                let kind = match *kind {
                    "native" => FrameKind::Native,
                    "jit" => FrameKind::Jit,
                    "kernel" => FrameKind::Kernel,
                    "unknown" => FrameKind::Unknown,
                    _ => malformed(&path, n + 1, line),
                };
                let frame = Frame {
                    name: sym.to_string(),
                    module: (*module != "-").then(|| module.to_string()),
                    kind,
                };
                let id: usize = id.parse().unwrap_or_else(|_| malformed(&path, n + 1, line));
                frames.insert(id, frame);
            }
            ["sample", _tid, thread, ids] => {
                let stack = ids
                    .split(' ')
                    .map(|id| {
                        let id: usize =
                            id.parse().unwrap_or_else(|_| malformed(&path, n + 1, line));
                        frames
                            .get(&id)
                            .cloned()
                            .unwrap_or_else(|| malformed(&path, n + 1, line))
                    })
                    .collect();
                fx.samples.push((thread.to_string(), stack));
            }
            _ => malformed(&path, n + 1, line),
        }
    }
    assert!(!fx.samples.is_empty(), "{}: no samples", path.display());
    fx
}

impl Fixture {
    fn runtime(&self) -> Runtime {
        let modules: Vec<&str> = self.modules.iter().map(String::as_str).collect();
        let threads: Vec<&str> = self.samples.iter().map(|s| s.0.as_str()).collect();
        detect_runtime(&self.exe, &modules, &threads)
    }

    /// Samples per category, printed for the record (`--nocapture`).
    fn counts(&self, c: &Classifier) -> BTreeMap<Category, usize> {
        let rt = self.runtime();
        let mut counts = BTreeMap::new();
        for (thread, frames) in &self.samples {
            *counts.entry(c.classify(rt, thread, frames)).or_insert(0) += 1;
        }
        let list: Vec<String> = counts
            .iter()
            .map(|(k, v)| format!("{} {v}", k.as_str()))
            .collect();
        println!(
            "{} ({:?}, {} samples): {}",
            self.name,
            rt,
            self.samples.len(),
            list.join(", ")
        );
        counts
    }

    /// Categories of the samples whose thread and whole stack satisfy `pred`.
    fn categories_of(
        &self,
        c: &Classifier,
        pred: impl Fn(&str, &[Frame]) -> bool,
    ) -> Vec<Category> {
        let rt = self.runtime();
        self.samples
            .iter()
            .filter(|(thread, frames)| pred(thread, frames))
            .map(|(thread, frames)| c.classify(rt, thread, frames))
            .collect()
    }

    /// Categories of the samples whose leaf frame is a user-space frame
    /// satisfying `pred` (or, with `under_kernel`, whose leaf is in the kernel
    /// and whose leaf-most user frame satisfies `pred`).
    fn categories_where(
        &self,
        c: &Classifier,
        under_kernel: bool,
        pred: impl Fn(&str, &Frame) -> bool,
    ) -> Vec<Category> {
        let rt = self.runtime();
        self.samples
            .iter()
            .filter(|(thread, frames)| {
                let leaf_in_kernel = frames.first().is_some_and(|f| f.kind == FrameKind::Kernel);
                leaf_in_kernel == under_kernel
                    && frames
                        .iter()
                        .find(|f| f.kind != FrameKind::Kernel)
                        .is_some_and(|f| pred(thread, f))
            })
            .map(|(thread, frames)| c.classify(rt, thread, frames))
            .collect()
    }
}

fn classifier() -> Classifier {
    Classifier::builtin().expect("built-in rules are valid")
}

/// Asserts that `fixture` has samples of every category in `want`.
fn assert_has(fixture: &str, counts: &BTreeMap<Category, usize>, want: &[Category]) {
    for cat in want {
        assert!(
            counts.get(cat).copied().unwrap_or(0) > 0,
            "{fixture}: no {cat:?}"
        );
    }
}

/// Asserts that some samples match and all of them have category `want`.
fn assert_all(got: &[Category], want: Category, what: &str) {
    assert!(!got.is_empty(), "no sample for {what}");
    assert!(
        got.iter().all(|&c| c == want),
        "{what}: want all {want:?}, got {got:?}"
    );
}

#[test]
fn mono_fixture_has_jit_gc_and_app() {
    let c = classifier();
    let fx = load("mono");
    assert_eq!(fx.runtime(), Runtime::Mono);
    let n = fx.counts(&c);
    for cat in [Category::App, Category::Jit, Category::Gc] {
        assert!(n.get(&cat).copied().unwrap_or(0) > 0, "mono: no {cat:?}");
    }
    let sgen_worker = fx.categories_where(&c, false, |t, _| t == "SGen worker");
    assert_all(&sgen_worker, Category::Gc, "SGen worker thread");
    let compile = fx.categories_where(&c, false, |_, f| {
        f.name.starts_with("mono_local_")
            || f.name == "mini_method_compile"
            || f.name.starts_with("mono_arch_output")
    });
    assert_all(&compile, Category::Jit, "mini compiler passes");
    // An allocation is its caller's cost (as Mono's GC log counts collections, not
    // allocations), a collection inside it is GC.
    let allocating = |frames: &[Frame]| {
        let is = |f: &Frame, p: &[&str]| p.iter().any(|p| f.name.starts_with(p));
        let alloc = frames.iter().any(|f| {
            is(
                f,
                &["mono_gc_alloc_", "sgen_alloc_obj", "sgen_try_alloc_obj"],
            )
        });
        let collects = frames
            .iter()
            .any(|f| is(f, &["sgen_ensure_free_space", "sgen_perform_collection"]));
        alloc && !collects
    };
    let gc_leaf = |f: &Frame| {
        f.name.starts_with("sgen_") || f.name.starts_with("ms_") || f.name.starts_with("major_")
    };
    let nursery = fx.categories_of(&c, |_, frames| {
        frames.first().is_some_and(gc_leaf) && !allocating(frames)
    });
    assert_all(&nursery, Category::Gc, "sgen_/ms_/major_ leaves");
    let gc_faults = fx.categories_where(&c, true, |t, f| {
        t == "mono" && (f.name.starts_with("sgen_") || f.name.starts_with("ms_"))
    });
    assert_all(
        &gc_faults,
        Category::Gc,
        "kernel work under sgen_/ms_ frames",
    );
    // libc has no frame pointers here: who called munmap is lost, so it stays kernel.
    let syscalls = fx.categories_where(&c, true, |_, f| f.name == "__munmap" || f.name == "__mmap");
    assert_all(
        &syscalls,
        Category::Kernel,
        "mmap/munmap with unknown callers",
    );
    let managed = fx.categories_where(&c, false, |_, f| f.name.starts_with("Program:"));
    assert_all(&managed, Category::App, "JIT-compiled Program methods");
}

#[test]
fn coreclr_fixture_separates_jit_tier1_gc_runtime_and_app() {
    let c = classifier();
    let fx = load("coreclr");
    assert_eq!(fx.runtime(), Runtime::CoreClr);
    let all = [
        Category::App,
        Category::Jit,
        Category::Gc,
        Category::Runtime,
    ];
    assert_has("coreclr", &fx.counts(&c), &all);
    let has = |frames: &[Frame], prefix: &str| frames.iter().any(|f| f.name.starts_with(prefix));
    let rt = fx.runtime();
    let under = |prefix: &str| -> Vec<Category> {
        fx.samples
            .iter()
            .filter(|(_, frames)| has(frames, prefix))
            .map(|(t, frames)| c.classify(rt, t, frames))
            .collect()
    };
    let ryujit = fx.categories_where(&c, false, |_, f| {
        f.module.as_deref() == Some("libclrjit.so")
    });
    assert_all(&ryujit, Category::Jit, "RyuJIT (libclrjit.so) leaves");
    // The background worker re-compiling hot methods at tier 1, kernel work included.
    assert_all(
        &under("TieredCompilationManager::OptimizeMethods"),
        Category::Jit,
        "tier-1 re-compilation",
    );
    let gc = fx.categories_where(&c, false, |_, f| f.name.starts_with("WKS::gc_heap::"));
    assert_all(&gc, Category::Gc, "WKS::gc_heap leaves");
    // An allocation context refill clears memory in libc (no frame pointer: the GC frames
    // that called it decide).
    let clearing: Vec<Category> = fx
        .samples
        .iter()
        .filter(|(_, fr)| fr[0].name.starts_with("__memset") && has(fr, "WKS::gc_heap::"))
        .map(|(t, fr)| c.classify(rt, t, fr))
        .collect();
    assert_all(&clearing, Category::Gc, "memset under the GC's allocator");
    // Not GC: the finalizer thread's startup spin calibration, and the JIT committing code
    // pages (ClrVirtualAlloc under CEEJitInfo::allocMem), which the documented rules
    // (`FinalizerThread::`, `Alloc(`) had counted as GC.
    assert_all(
        &under("EnsureYieldProcessorNormalizedInitialized"),
        Category::Runtime,
        "finalizer thread start-up calibration",
    );
    let code_pages: Vec<Category> = fx
        .samples
        .iter()
        .filter(|(_, fr)| has(fr, "ClrVirtualAlloc") && has(fr, "CEEJitInfo::allocMem"))
        .map(|(t, fr)| c.classify(rt, t, fr))
        .collect();
    assert!(
        code_pages.iter().all(|&k| k == Category::Jit),
        "{code_pages:?}"
    );
    let stubs = fx.categories_where(&c, false, |_, f| f.name.starts_with("stub<"));
    assert_all(&stubs, Category::Runtime, "stub<N> perf-map entries");
    let managed = fx.categories_where(&c, false, |_, f| {
        f.kind == FrameKind::Jit && f.name.contains("[JitAlloc] Program::")
    });
    assert_all(&managed, Category::App, "JIT-compiled Program methods");
    let r2r = fx.categories_where(&c, false, |_, f| {
        f.module.as_deref() == Some("System.Private.CoreLib.dll")
    });
    assert_all(
        &r2r,
        Category::App,
        "ReadyToRun code of System.Private.CoreLib",
    );
}

#[test]
fn node_fixture_has_gc_and_jit() {
    let c = classifier();
    let fx = load("node");
    assert_eq!(fx.runtime(), Runtime::V8);
    let all = [
        Category::App,
        Category::Jit,
        Category::Gc,
        Category::Runtime,
    ];
    assert_has("node", &fx.counts(&c), &all);
    let scavenge =
        fx.categories_where(&c, false, |_, f| f.name.contains("v8::internal::Scavenger"));
    assert_all(&scavenge, Category::Gc, "Scavenger leaves");
    let scavenge_kernel = fx.categories_where(&c, true, |_, f| f.name.contains("Scavenger"));
    assert_all(
        &scavenge_kernel,
        Category::Gc,
        "kernel work under the Scavenger",
    );
    let turbofan = fx.categories_where(&c, false, |_, f| {
        f.name.contains("v8::internal::compiler::")
    });
    assert_all(&turbofan, Category::Jit, "TurboFan leaves");
    let js = fx.categories_where(&c, false, |_, f| f.name.starts_with("JS:*"));
    assert_all(&js, Category::App, "optimized JS leaves");
    let ignition = fx.categories_where(&c, false, |_, f| {
        f.name.starts_with("Builtins_") && f.name.ends_with("Handler")
    });
    assert_all(&ignition, Category::Runtime, "bytecode handler leaves");
}

#[test]
fn java_fixture_has_compiler_and_gc_threads() {
    let c = classifier();
    let fx = load("java");
    assert_eq!(fx.runtime(), Runtime::HotSpot);
    let n = fx.counts(&c);
    for cat in [Category::App, Category::Jit, Category::Gc] {
        assert!(n.get(&cat).copied().unwrap_or(0) > 0, "java: no {cat:?}");
    }
    let compilers = fx.categories_where(&c, false, |t, _| t.contains("CompilerThre"));
    assert_all(&compilers, Category::Jit, "C1/C2 compiler threads");
    let gc = fx.categories_where(&c, false, |t, _| {
        t.starts_with("GC Thread#") || t.starts_with("G1 ")
    });
    assert_all(&gc, Category::Gc, "GC Thread# / G1 threads");
    let gc_kernel = fx.categories_where(&c, true, |t, _| t.starts_with("GC Thread#"));
    assert_all(&gc_kernel, Category::Gc, "kernel work on GC Thread#");
    let app_kernel = fx.categories_where(&c, true, |t, f| {
        t == "java" && f.kind == FrameKind::Jit && f.name.contains("JitAlloc")
    });
    assert_all(
        &app_kernel,
        Category::Kernel,
        "kernel work under compiled JitAlloc code",
    );
    let compiled = fx.categories_where(&c, false, |t, f| {
        t == "java" && f.kind == FrameKind::Jit && f.name.contains("JitAlloc")
    });
    assert_all(&compiled, Category::App, "compiled JitAlloc methods");
    let interp = fx.categories_where(&c, false, |_, f| f.name == "Interpreter");
    assert_all(&interp, Category::Runtime, "template interpreter");
}

#[test]
fn native_fixture_is_only_app_and_kernel() {
    let c = classifier();
    let fx = load("native");
    assert_eq!(fx.runtime(), Runtime::Native);
    let n = fx.counts(&c);
    assert!(n.get(&Category::App).copied().unwrap_or(0) > 0);
    assert!(n.get(&Category::Kernel).copied().unwrap_or(0) > 0);
    assert!(
        n.keys()
            .all(|k| matches!(k, Category::App | Category::Kernel)),
        "{n:?}"
    );
    let hashing = fx.categories_where(&c, false, |_, f| f.name == "fnv1a" || f.name == "hash_work");
    assert_all(&hashing, Category::App, "fnv1a");
}

#[test]
fn fixtures_stay_small() {
    for name in ["mono", "coreclr", "node", "java", "native"] {
        let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("tests/data/stacks")
            .join(format!("{name}.stacks"));
        let len = std::fs::metadata(&path)
            .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
            .len();
        assert!(len < 100_000, "{} is {len} bytes", path.display());
    }
}
