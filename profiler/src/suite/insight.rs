//! Why an extension costs what it costs: its runtime (from its scenario
//! name), its CPU per invocation and per cold start split app / JIT / GC /
//! runtime / kernel (from the recording's per-role categories), the sentence
//! naming its largest avoidable cost, and the native peer its differential
//! flamegraph is drawn against. Data-driven: any scenario list, any name.

use crate::classify::CategoryTotals;
use crate::stacks::Category;

use super::results::{RoleFigures, ScenarioMetrics};

/// What runs an extension, as far as its name tells.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Runtime {
    /// Compiled to machine code, no runtime (Rust, Go, C).
    Native,
    /// C# on Mono's JIT.
    MonoJit,
    /// C# on Mono, compiled ahead of time (`--full-aot`).
    MonoAot,
    /// C# on .NET (CoreCLR, RyuJIT).
    CoreClr,
    /// C# compiled with .NET Native AOT.
    DotnetAot,
    /// JavaScript on Node.js (V8).
    Node,
    /// A JVM (HotSpot).
    Jvm,
    Python,
    /// Not told by the name.
    Unknown,
}

impl Runtime {
    /// From a scenario or extension name (`csharp-event-collector`,
    /// `extension:dotnet-blank`, `/path/to/my-node-ext`, …).
    pub fn detect(name: &str) -> Runtime {
        let n = name
            .rsplit(['/', ':'])
            .next()
            .unwrap_or(name)
            .to_lowercase();
        let has = |w: &str| n.split(['-', '_', '.']).any(|part| part == w);
        let aot = has("aot");
        if has("rust") || has("go") || has("native") || has("c") || has("cpp") {
            Runtime::Native
        } else if has("dotnet") || has("coreclr") || has("net") {
            if aot {
                Runtime::DotnetAot
            } else {
                Runtime::CoreClr
            }
        } else if has("csharp") || has("mono") || has("cs") {
            if aot {
                Runtime::MonoAot
            } else {
                Runtime::MonoJit
            }
        } else if has("node") || has("js") || has("javascript") || has("ts") {
            Runtime::Node
        } else if has("java") || has("jvm") || has("kotlin") {
            Runtime::Jvm
        } else if has("python") || has("py") {
            Runtime::Python
        } else {
            Runtime::Unknown
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            Runtime::Native => "native",
            Runtime::MonoJit => "Mono JIT",
            Runtime::MonoAot => "Mono full AOT",
            Runtime::CoreClr => ".NET CoreCLR JIT",
            Runtime::DotnetAot => ".NET Native AOT",
            Runtime::Node => "Node.js (V8)",
            Runtime::Jvm => "JVM",
            Runtime::Python => "Python",
            Runtime::Unknown => "unknown",
        }
    }

    /// A runtime with a JIT or a garbage collector of its own.
    pub fn managed(self) -> bool {
        !matches!(self, Runtime::Native | Runtime::Unknown)
    }
}

/// CPU split in ms: app, JIT, GC, runtime, kernel (the order of [`Category::ALL`]).
pub type Split = [f64; 5];

fn split_ms(c: &CategoryTotals, per: f64) -> Split {
    let mut s = [0.0; 5];
    for (i, cat) in Category::ALL.iter().enumerate() {
        s[i] = c.get(*cat) as f64 / 1e6 / per.max(1.0);
    }
    s
}

/// One extension's cost in one scenario.
#[derive(Debug, Clone, PartialEq)]
pub struct ExtensionCost {
    pub scenario: String,
    pub role: String,
    pub runtime: Runtime,
    /// CPU per invocation (invoke phase), ms, and its part after the
    /// function's response.
    pub cpu_ms: f64,
    pub post_runtime_cpu_ms: f64,
    /// The per-invocation CPU by category (None without samples).
    pub split: Option<Split>,
    /// CPU of a cold start's init, ms (avg over cold starts; 0 without).
    pub init_cpu_ms: f64,
    pub init_split: Option<Split>,
    /// Of the JIT figures, the part re-compiling hot methods at tier 1 (.NET's
    /// tiered compilation), ms per invocation and per cold start.
    pub tier1_ms: f64,
    pub init_tier1_ms: f64,
    pub cold_starts: u64,
    pub invocations: usize,
}

impl ExtensionCost {
    /// The extension roles of a scenario (`extension:*`).
    pub fn of(scenario: &str, m: &ScenarioMetrics) -> Vec<ExtensionCost> {
        m.roles
            .iter()
            .filter(|r| r.billed && r.role.starts_with("extension"))
            .map(|r| Self::of_role(scenario, r, m.invocations))
            .collect()
    }

    fn of_role(scenario: &str, r: &RoleFigures, invocations: usize) -> ExtensionCost {
        let by_name = Runtime::detect(&r.role);
        let runtime = if by_name == Runtime::Unknown {
            Runtime::detect(scenario)
        } else {
            by_name
        };
        let cold = r.cold_starts.max(1) as f64;
        ExtensionCost {
            scenario: scenario.to_string(),
            role: r.role.clone(),
            runtime,
            cpu_ms: r.cpu_ns.avg / 1e6,
            post_runtime_cpu_ms: r.post_runtime_cpu_ns.avg / 1e6,
            split: r.categories.map(|c| split_ms(&c, invocations as f64)),
            init_cpu_ms: r.init_cpu_ns.avg / 1e6,
            init_split: r.init_categories.map(|c| split_ms(&c, cold)),
            tier1_ms: r.categories.map_or(0.0, |c| {
                c.jit_tier1_ns as f64 / 1e6 / (invocations as f64).max(1.0)
            }),
            init_tier1_ms: r
                .init_categories
                .map_or(0.0, |c| c.jit_tier1_ns as f64 / 1e6 / cold),
            cold_starts: r.cold_starts,
            invocations,
        }
    }

    /// Category totals over the whole scenario (every invocation and every
    /// cold start's init), ms.
    pub fn whole_run(&self) -> Option<Split> {
        let mut t = [0.0; 5];
        let mut any = false;
        if let Some(s) = self.split {
            any = true;
            for (i, v) in s.iter().enumerate() {
                t[i] += v * self.invocations as f64;
            }
        }
        if let Some(s) = self.init_split {
            any = true;
            for (i, v) in s.iter().enumerate() {
                t[i] += v * self.cold_starts as f64;
            }
        }
        any.then_some(t)
    }

    /// One sentence naming its largest avoidable cost (JIT, GC or other
    /// runtime work: what a native build does not pay), with the figures.
    pub fn sentence(&self) -> String {
        let name = self.role.strip_prefix("extension:").unwrap_or(&self.role);
        let head = format!(
            "{name} ({}): {:.2} ms of CPU per invocation, {:.0} ms per cold start",
            self.runtime.label(),
            self.cpu_ms,
            self.init_cpu_ms
        );
        let Some(total) = self.whole_run() else {
            return format!("{head}; no stack samples, so no split (recorded with --freq 0?).");
        };
        let sum: f64 = total.iter().sum();
        if sum <= 0.0 {
            return format!("{head}; too little CPU sampled to split.");
        }
        let pct = |v: f64| v / sum * 100.0;
        // JIT, GC, runtime: indices 1..=3.
        let (i, v) = (1..4)
            .map(|k| (k, total[k]))
            .fold((0, 0.0), |best, x| if x.1 > best.1 { x } else { best });
        if i == 0 || pct(v) < 10.0 {
            return format!(
                "{head}; nothing large to avoid: {:.0} % is its own code and {:.0} % the kernel \
                 (syscalls, network, page faults) — JIT, GC and runtime together {:.0} %.",
                pct(total[0]),
                pct(total[4]),
                pct(total[1] + total[2] + total[3])
            );
        }
        let per_inv = self.split.map_or(0.0, |s| s[i]);
        let per_init = self.init_split.map_or(0.0, |s| s[i]);
        let (what, remedy) = match (Category::ALL[i], self.runtime) {
            (Category::Jit, Runtime::MonoJit) => (
                "JIT compilation",
                "compiling ahead of time (mono --aot=full, as csharp-aot-event-collector) removes it",
            ),
            (Category::Jit, Runtime::CoreClr) => (
                "JIT compilation",
                "ReadyToRun or Native AOT compilation removes most of it",
            ),
            (Category::Jit, Runtime::Node) => (
                "JIT compilation",
                "a V8 code cache or snapshot, or a compiled language, removes most of it",
            ),
            (Category::Jit, _) => (
                "JIT compilation",
                "ahead-of-time compilation removes most of it",
            ),
            (Category::Gc, _) => (
                "garbage collection",
                "fewer allocations per event (reused buffers, no per-event JSON trees) or a \
                 smaller heap reduce it; a native build has none",
            ),
            _ => (
                "runtime work (start-up, type loading, stubs, interpreter)",
                "a runtime-free build (Native AOT, Rust) does not pay it",
            ),
        };
        // .NET's tiered compilation: the part of the JIT re-compiling hot methods.
        let tier1 =
            self.tier1_ms * self.invocations as f64 + self.init_tier1_ms * self.cold_starts as f64;
        let tiered = if Category::ALL[i] == Category::Jit && tier1 > 0.0 {
            format!(
                ", {:.0} % of its CPU re-compiling hot methods at tier 1 ({:.2} ms of each \
                 invocation; TieredCompilation, TieredPGO and ReadyToRun decide it)",
                pct(tier1),
                self.tier1_ms
            )
        } else {
            String::new()
        };
        format!(
            "{head}; its largest avoidable cost is {what}: {:.0} % of its CPU over the run \
             ({per_init:.1} ms of each cold start, {per_inv:.2} ms of each invocation){tiered}; \
             {remedy}.",
            pct(v)
        )
    }
}

/// The native scenario a managed one is compared with: `rust-` and the
/// longest tail of its name that exists (`csharp-aot-event-collector` →
/// `rust-event-collector`, `dotnet-blank` → `rust-blank`), else
/// `rust-event-collector` when it ran. None for native scenarios.
pub fn native_peer(scenario: &str, available: &[&str]) -> Option<String> {
    if !Runtime::detect(scenario).managed() {
        return None;
    }
    let parts: Vec<&str> = scenario.split('-').collect();
    (1..parts.len())
        .map(|k| format!("rust-{}", parts[k..].join("-")))
        .chain(std::iter::once("rust-event-collector".to_string()))
        .find(|c| c != scenario && available.contains(&c.as_str()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::suite::results::Agg;

    #[test]
    fn runtimes_come_from_names() {
        assert_eq!(Runtime::detect("rust-event-collector"), Runtime::Native);
        assert_eq!(Runtime::detect("csharp-blank"), Runtime::MonoJit);
        assert_eq!(
            Runtime::detect("extension:csharp-aot-event-collector"),
            Runtime::MonoAot
        );
        assert_eq!(Runtime::detect("dotnet-event-collector"), Runtime::CoreClr);
        assert_eq!(Runtime::detect("dotnet-aot-blank"), Runtime::DotnetAot);
        assert_eq!(Runtime::detect("/x/node-event-collector"), Runtime::Node);
        assert_eq!(Runtime::detect("my-ext"), Runtime::Unknown);
    }

    #[test]
    fn peers_are_the_rust_scenario_with_the_same_tail() {
        let av = [
            "no-extension",
            "rust-blank",
            "rust-event-collector",
            "csharp-event-collector",
        ];
        assert_eq!(
            native_peer("csharp-blank", &av).as_deref(),
            Some("rust-blank")
        );
        assert_eq!(
            native_peer("csharp-aot-event-collector", &av).as_deref(),
            Some("rust-event-collector")
        );
        assert_eq!(
            native_peer("dotnet-tracer", &av).as_deref(),
            Some("rust-event-collector")
        );
        assert_eq!(native_peer("rust-blank", &av), None);
        assert_eq!(native_peer("csharp-blank", &["no-extension"]), None);
    }

    fn cost(split: [u64; 5], init: [u64; 5]) -> ExtensionCost {
        let totals = |v: [u64; 5]| CategoryTotals {
            app_ns: v[0],
            jit_ns: v[1],
            gc_ns: v[2],
            runtime_ns: v[3],
            kernel_ns: v[4],
            ..CategoryTotals::default()
        };
        let r = RoleFigures {
            role: "extension:csharp-event-collector".into(),
            billed: true,
            cpu_ns: Agg {
                avg: split.iter().sum::<u64>() as f64 / 10.0,
                ..Agg::default()
            },
            init_cpu_ns: Agg {
                avg: init.iter().sum::<u64>() as f64,
                ..Agg::default()
            },
            cold_starts: 1,
            categories: Some(totals(split)),
            init_categories: Some(totals(init)),
            ..RoleFigures::default()
        };
        ExtensionCost::of_role("csharp-event-collector", &r, 10)
    }

    #[test]
    fn tiered_recompilation_is_named_in_the_jit_sentence() {
        let mut c = cost(
            [10_000_000, 40_000_000, 0, 10_000_000, 10_000_000],
            [10_000_000, 40_000_000, 0, 10_000_000, 10_000_000],
        );
        // 2 ms of each invocation's 4 ms of JIT re-compile at tier 1 (20 of 140 ms).
        c.tier1_ms = 2.0;
        let s = c.sentence();
        assert!(
            s.contains(
                "14 % of its CPU re-compiling hot methods at tier 1 (2.00 ms of each invocation"
            ),
            "{s}"
        );
        c.tier1_ms = 0.0;
        assert!(!c.sentence().contains("tier 1"));
    }

    #[test]
    fn the_sentence_names_the_largest_avoidable_category() {
        // 10 invocations of 8 ms (2 JIT), one 160 ms init (60 JIT, 40 runtime).
        let c = cost(
            [40_000_000, 20_000_000, 5_000_000, 5_000_000, 10_000_000],
            [30_000_000, 60_000_000, 10_000_000, 40_000_000, 20_000_000],
        );
        assert_eq!(c.runtime, Runtime::MonoJit);
        let s = c.sentence();
        assert!(
            s.contains("largest avoidable cost is JIT compilation"),
            "{s}"
        );
        // 80 of 240 ms.
        assert!(s.contains(": 33 % of its CPU"), "{s}");
        assert!(
            s.contains("60.0 ms of each cold start, 2.00 ms of each invocation"),
            "{s}"
        );
        assert!(s.contains("mono --aot=full"), "{s}");
        let native = cost([9_000_000, 0, 0, 0, 1_000_000], [1_000_000, 0, 0, 0, 0]);
        let s = native.sentence();
        assert!(
            s.contains("nothing large to avoid: 91 % is its own code"),
            "{s}"
        );
    }
}
