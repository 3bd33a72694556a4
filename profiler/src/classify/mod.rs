//! Sample classification: app / JIT / GC / runtime / kernel, from per-runtime rules.
//!
//! Rules are data: one TOML file per runtime under `profiler/rules/` (embedded at
//! build time, parsed and validated by [`Classifier::builtin`]). `native.toml`
//! identifies kernel frames for every process; `mono.toml`, `coreclr.toml`,
//! `v8.toml` and `hotspot.toml` add thread and frame rules for their runtime.
//!
//! Precedence, for a stack given leaf first (see `profiler/rules/README.md`):
//! 0. the innermost user-space frame of a `scope = "whole"` rule (a collection or
//!    compilation entry point) decides; else the frames of an allocation (up to the
//!    outermost `scope = "caller"` frame) are skipped: its callers decide;
//! 1. the innermost user-space frame matching a `jit` or `gc` frame rule decides;
//! 2. else a thread rule matching the thread name (`C2 CompilerThre` → jit);
//! 3. else the innermost user-space frame matching an `app` / `runtime` rule;
//! 4. else `app`.
//!
//! A sample whose leaf frame is in the kernel is `kernel`, unless step 1 or 2
//! decided `jit` or `gc`: the kernel work a collector or compiler causes (page
//! faults on fresh heap blocks, unmapping freed ones, compiler threads'
//! syscalls) is part of that cost. Native programs get only `app` / `kernel`.

mod rules;
mod tiering;
mod totals;

#[cfg(test)]
mod fixtures;

use std::path::Path;

pub use rules::RulesError;
use rules::{FileRole, RuleSet, Scope};
pub use tiering::is_tier_up;
pub use totals::CategoryTotals;

use crate::stacks::{Category, Frame, FrameKind, ResolvedSample};

/// The language runtime a process runs, which selects its rules.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Runtime {
    /// No managed runtime: a compiled program (Rust, C, Go, ...).
    Native,
    /// Mono (C#): JIT and SGen GC inside `mono-sgen` / `libmonosgen-2.0.so`.
    Mono,
    /// .NET CoreCLR: `libcoreclr.so` + `libclrjit.so`.
    CoreClr,
    /// Node.js / V8.
    V8,
    /// OpenJDK HotSpot (`libjvm.so`).
    HotSpot,
}

impl Runtime {
    pub const ALL: [Runtime; 5] = [
        Runtime::Native,
        Runtime::Mono,
        Runtime::CoreClr,
        Runtime::V8,
        Runtime::HotSpot,
    ];

    /// The rules file stem: `native`, `mono`, `coreclr`, `v8`, `hotspot`.
    pub fn as_str(self) -> &'static str {
        match self {
            Runtime::Native => "native",
            Runtime::Mono => "mono",
            Runtime::CoreClr => "coreclr",
            Runtime::V8 => "v8",
            Runtime::HotSpot => "hotspot",
        }
    }
}

fn file_name(path: &str) -> &str {
    Path::new(path)
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or(path)
}

/// Which runtime a process runs, from its executable, its mapped modules (paths
/// or file names) and its thread names. Modules decide first (a runtime embedded
/// in another executable), then the executable's name, then thread names.
pub fn detect_runtime(exe: &str, modules: &[&str], thread_names: &[&str]) -> Runtime {
    let has_module = |pred: &dyn Fn(&str) -> bool| modules.iter().any(|m| pred(file_name(m)));
    if has_module(&|m| m == "libjvm.so") {
        return Runtime::HotSpot;
    }
    if has_module(&|m| m == "libcoreclr.so" || m == "libclrjit.so") {
        return Runtime::CoreClr;
    }
    if has_module(&|m| m.starts_with("libmonosgen-2.0.so") || m.starts_with("libmono-2.0.so")) {
        return Runtime::Mono;
    }
    if has_module(&|m| m.starts_with("libnode.so")) {
        return Runtime::V8;
    }
    match file_name(exe) {
        "mono" | "mono-sgen" | "mono-boehm" => return Runtime::Mono,
        "node" | "nodejs" => return Runtime::V8,
        "java" => return Runtime::HotSpot,
        "dotnet" => return Runtime::CoreClr,
        _ => {}
    }
    let has_thread = |pred: &dyn Fn(&str) -> bool| thread_names.iter().any(|t| pred(t));
    if has_thread(&|t| t.starts_with("SGen worker")) {
        return Runtime::Mono;
    }
    if has_thread(&|t| t.starts_with(".NET ")) {
        return Runtime::CoreClr;
    }
    if has_thread(&|t| t.starts_with("C2 CompilerThre") || t.starts_with("C1 CompilerThre")) {
        return Runtime::HotSpot;
    }
    Runtime::Native
}

const BUILTIN: [(Runtime, &str); 5] = [
    (Runtime::Native, include_str!("../../rules/native.toml")),
    (Runtime::Mono, include_str!("../../rules/mono.toml")),
    (Runtime::CoreClr, include_str!("../../rules/coreclr.toml")),
    (Runtime::V8, include_str!("../../rules/v8.toml")),
    (Runtime::HotSpot, include_str!("../../rules/hotspot.toml")),
];

/// Assigns each sample one [`Category`] from the rules of its process's runtime.
#[derive(Debug)]
pub struct Classifier {
    /// `native.toml`: kernel-frame identification, applied to every runtime.
    base: RuleSet,
    /// Indexed like [`Runtime::ALL`]; `None` for `Native`.
    runtimes: [Option<RuleSet>; 5],
}

impl Classifier {
    /// Parses the rules files built into lxprof (`profiler/rules/*.toml`).
    pub fn builtin() -> Result<Classifier, RulesError> {
        let mut base = None;
        let mut runtimes: [Option<RuleSet>; 5] = Default::default();
        for (runtime, text) in BUILTIN {
            let file = format!("profiler/rules/{}.toml", runtime.as_str());
            let role = if runtime == Runtime::Native {
                FileRole::Base
            } else {
                FileRole::Runtime
            };
            let set = RuleSet::parse(&file, runtime.as_str(), role, text)?;
            if runtime == Runtime::Native {
                base = Some(set);
            } else {
                runtimes[runtime as usize] = Some(set);
            }
        }
        let base = base.ok_or_else(|| RulesError::EmptyRule {
            file: "profiler/rules/native.toml".into(),
            kind: "file",
            index: 0,
        })?;
        Ok(Classifier { base, runtimes })
    }

    /// Number of rules loaded for `runtime` (the native ones included).
    pub fn rule_count(&self, runtime: Runtime) -> usize {
        self.base.rule_count()
            + self.runtimes[runtime as usize]
                .as_ref()
                .map_or(0, RuleSet::rule_count)
    }

    fn is_kernel(&self, frame: &Frame) -> bool {
        frame.kind == FrameKind::Kernel
            || self.base.frame_category(frame, |c| c == Category::Kernel) == Some(Category::Kernel)
    }

    /// The category of one stack (`frames` leaf first) of thread `thread_name`.
    pub fn classify(&self, runtime: Runtime, thread_name: &str, frames: &[Frame]) -> Category {
        let leaf_in_kernel = frames.first().is_some_and(|f| self.is_kernel(f));
        let Some(rules) = &self.runtimes[runtime as usize] else {
            return if leaf_in_kernel {
                Category::Kernel
            } else {
                Category::App
            };
        };
        let user: Vec<&Frame> = frames.iter().filter(|f| !self.is_kernel(f)).collect();
        // 0. A collection or compilation entry point: all it calls is its category.
        if let Some(c) = user
            .iter()
            .find_map(|f| rules.scoped_category(f, Scope::Whole))
        {
            return c;
        }
        // An allocation's own frames are its caller's cost: the callers decide.
        let callers_from = user
            .iter()
            .rposition(|f| rules.scoped_category(f, Scope::Caller).is_some())
            .map_or(0, |i| i + 1);
        let user = || user[callers_from..].iter().copied();
        let strong = |c: Category| matches!(c, Category::Jit | Category::Gc);
        let decided = user()
            .find_map(|f| rules.frame_category(f, strong))
            .or_else(|| rules.thread_category(thread_name));
        match decided {
            Some(c) if strong(c) => c,
            _ if leaf_in_kernel => Category::Kernel,
            Some(c) => c,
            None => user()
                .find_map(|f| rules.frame_category(f, |c| !strong(c)))
                .unwrap_or(Category::App),
        }
    }

    /// Sets `sample.category` from its thread name and frames.
    pub fn classify_sample(&self, runtime: Runtime, sample: &mut ResolvedSample) {
        sample.category = self.classify(runtime, &sample.thread_name, &sample.frames);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn f(name: &str, module: &str, kind: FrameKind) -> Frame {
        Frame {
            name: name.into(),
            module: Some(module.into()),
            kind,
        }
    }

    #[test]
    fn builtin_rules_parse() {
        let c = Classifier::builtin().expect("builtin rules are valid");
        for rt in Runtime::ALL {
            assert!(c.rule_count(rt) > 0, "{rt:?}");
        }
        assert!(c.rule_count(Runtime::Mono) > c.rule_count(Runtime::Native));
    }

    #[test]
    fn detects_runtimes() {
        assert_eq!(
            detect_runtime("/usr/bin/mono-sgen", &[], &[]),
            Runtime::Mono
        );
        assert_eq!(detect_runtime("/usr/bin/node", &[], &["node"]), Runtime::V8);
        assert_eq!(
            detect_runtime(
                "/usr/lib/jvm/java-17-openjdk-amd64/bin/java",
                &["/usr/lib/jvm/java-17-openjdk-amd64/lib/server/libjvm.so"],
                &[]
            ),
            Runtime::HotSpot
        );
        assert_eq!(
            detect_runtime(
                "/var/task/bootstrap",
                &["/usr/share/dotnet/shared/Microsoft.NETCore.App/8.0.0/libcoreclr.so"],
                &[]
            ),
            Runtime::CoreClr
        );
        assert_eq!(
            detect_runtime("/opt/extensions/x", &[], &["x", ".NET BGC"]),
            Runtime::CoreClr
        );
        assert_eq!(
            detect_runtime("/opt/extensions/rust-ext", &["libc.so.6"], &["rust-ext"]),
            Runtime::Native
        );
    }

    #[test]
    fn kernel_leaf_under_gc_is_gc_under_app_is_kernel() {
        let c = Classifier::builtin().expect("rules");
        let fault = f("exc_page_fault", "[kernel]", FrameKind::Kernel);
        let gc = [
            fault.clone(),
            f("ms_alloc_block", "mono-sgen", FrameKind::Native),
        ];
        let app = [fault, f("Program:Main ()", "[jit]", FrameKind::Jit)];
        assert_eq!(c.classify(Runtime::Mono, "mono", &gc), Category::Gc);
        assert_eq!(c.classify(Runtime::Mono, "mono", &app), Category::Kernel);
        assert_eq!(c.classify(Runtime::Native, "mono", &gc), Category::Kernel);
        assert_eq!(c.classify(Runtime::Native, "mono", &gc[1..]), Category::App);
        assert_eq!(c.classify(Runtime::Mono, "mono", &[]), Category::App);
    }

    #[test]
    fn whole_stacks_decide_for_malloc_and_allocation() {
        let c = Classifier::builtin().expect("rules");
        let n = |name: &str| f(name, "mono-sgen", FrameKind::Native);
        let main = f("Program:Main ()", "[jit]", FrameKind::Jit);
        let stack = |leaf: &[Frame], callers: &[&str]| -> Vec<Frame> {
            let mut v = leaf.to_vec();
            v.extend(callers.iter().map(|c| n(c)));
            v.push(main.clone());
            v
        };
        let cat = |frames: &[Frame]| c.classify(Runtime::Mono, "mono", frames);
        // malloc called from the compiler is JIT, from the collector GC, from the program app.
        let malloc = [
            f("_int_malloc", "libc.so.6", FrameKind::Native),
            f("__libc_malloc", "libc.so.6", FrameKind::Native),
        ];
        let jit = stack(&malloc, &["mono_regstate_new", "mini_method_compile"]);
        let gc = stack(
            &malloc,
            &[
                "sgen_pin_stats_register_object",
                "sgen_perform_collection_inner",
            ],
        );
        assert_eq!(cat(&jit), Category::Jit);
        assert_eq!(cat(&gc), Category::Gc);
        assert_eq!(cat(&stack(&malloc, &[])), Category::App);
        // A managed allocation is its caller's cost; a collection inside it is GC.
        let alloc = [
            n("sgen_try_alloc_obj_nolock"),
            n("mono_gc_alloc_vector"),
            f(
                "(wrapper alloc) object:AllocVector (intptr,intptr)",
                "[jit]",
                FrameKind::Jit,
            ),
        ];
        assert_eq!(cat(&stack(&alloc, &[])), Category::App);
        assert_eq!(cat(&stack(&alloc, &["mono_method_to_ir"])), Category::Jit);
        let mut collecting = vec![n("sgen_collect_nursery"), n("sgen_ensure_free_space")];
        collecting.extend(stack(&alloc, &[]));
        assert_eq!(cat(&collecting), Category::Gc);
    }

    #[test]
    fn innermost_jit_frame_beats_outer_app_frames() {
        let c = Classifier::builtin().expect("rules");
        let stack = [
            f("mono_local_cprop", "mono-sgen", FrameKind::Native),
            f("mini_method_compile", "mono-sgen", FrameKind::Native),
            f("mono_magic_trampoline", "mono-sgen", FrameKind::Native),
            f("Program:JitWork (int)", "[jit]", FrameKind::Jit),
        ];
        assert_eq!(c.classify(Runtime::Mono, "mono", &stack), Category::Jit);
        assert_eq!(
            c.classify(Runtime::Mono, "mono", &stack[3..]),
            Category::App
        );
        assert_eq!(
            c.classify(Runtime::Mono, "mono", &stack[2..]),
            Category::Runtime
        );
    }

    /// .NET 5+ thread names and hand-made stacks (the captured 3.1 ones are in
    /// `fixtures.rs`), to pin the rules' logic.
    #[test]
    fn coreclr_documented_fingerprints() {
        let c = Classifier::builtin().expect("rules");
        let jitted = f("[Tier1] Program::Main()", "[jit]", FrameKind::Jit);
        let rt = Runtime::CoreClr;
        assert_eq!(
            c.classify(rt, ".NET BGC", std::slice::from_ref(&jitted)),
            Category::Gc
        );
        assert_eq!(
            c.classify(rt, ".NET Tiered Com", std::slice::from_ref(&jitted)),
            Category::Jit
        );
        let compiling = [
            f(
                "Compiler::fgMorph",
                "/usr/share/dotnet/libclrjit.so",
                FrameKind::Native,
            ),
            f("MethodDesc::DoPrestub", "libcoreclr.so", FrameKind::Native),
            jitted.clone(),
        ];
        assert_eq!(c.classify(rt, "app", &compiling), Category::Jit);
        let collecting = [
            f(
                "WKS::gc_heap::mark_phase",
                "libcoreclr.so",
                FrameKind::Native,
            ),
            f("WKS::GCHeap::Alloc", "libcoreclr.so", FrameKind::Native),
            jitted.clone(),
        ];
        assert_eq!(c.classify(rt, "app", &collecting), Category::Gc);
        assert_eq!(c.classify(rt, "app", &compiling[1..]), Category::Runtime);
        assert_eq!(c.classify(rt, "app", &compiling[2..]), Category::App);
    }

    #[test]
    fn classify_sample_sets_the_category() {
        let c = Classifier::builtin().expect("rules");
        let mut s = ResolvedSample {
            pid: 1,
            tid: 2,
            thread_name: "C2 CompilerThre".into(),
            ts_ns: 0,
            weight: 1_001_001,
            frames: vec![f("PhaseChaitin::Split", "libjvm.so", FrameKind::Native)],
            category: Category::App,
        };
        c.classify_sample(Runtime::HotSpot, &mut s);
        assert_eq!(s.category, Category::Jit);
    }
}
