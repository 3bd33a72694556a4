//! Per-category CPU time: sums of sample weights, scaled to exact CPU time, and
//! the one-sentence explanation of where a process's CPU went.

use serde::{Deserialize, Serialize};

use crate::stacks::{Category, ResolvedSample};

/// CPU time split by [`Category`], in nanoseconds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CategoryTotals {
    pub app_ns: u64,
    pub jit_ns: u64,
    pub gc_ns: u64,
    pub runtime_ns: u64,
    pub kernel_ns: u64,
    /// Part of `jit_ns`: re-compiling hot methods at tier 1 in the background
    /// (CoreCLR's tiered compilation, see [`super::is_tier_up`]). Omitted when zero.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub jit_tier1_ns: u64,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

impl CategoryTotals {
    /// Sums the weights (ns of CPU: samples × interval) of classified samples.
    pub fn from_samples<'a>(samples: impl IntoIterator<Item = &'a ResolvedSample>) -> Self {
        let mut t = CategoryTotals::default();
        for s in samples {
            t.add_sample(s);
        }
        t
    }

    /// Adds one classified sample's weight (to `jit_tier1_ns` too when it re-compiles
    /// at tier 1).
    pub fn add_sample(&mut self, s: &ResolvedSample) {
        self.add(s.category, s.weight);
        if s.category == Category::Jit && super::is_tier_up(&s.thread_name, &s.frames) {
            self.jit_tier1_ns = self.jit_tier1_ns.saturating_add(s.weight);
        }
    }

    /// Adds every part of `other`.
    pub fn merge(&mut self, other: &CategoryTotals) {
        for c in Category::ALL {
            self.add(c, other.get(c));
        }
        self.jit_tier1_ns = self.jit_tier1_ns.saturating_add(other.jit_tier1_ns);
    }

    pub fn add(&mut self, category: Category, ns: u64) {
        let slot = self.slot(category);
        *slot = slot.saturating_add(ns);
    }

    pub fn get(&self, category: Category) -> u64 {
        match category {
            Category::App => self.app_ns,
            Category::Jit => self.jit_ns,
            Category::Gc => self.gc_ns,
            Category::Runtime => self.runtime_ns,
            Category::Kernel => self.kernel_ns,
        }
    }

    fn slot(&mut self, category: Category) -> &mut u64 {
        match category {
            Category::App => &mut self.app_ns,
            Category::Jit => &mut self.jit_ns,
            Category::Gc => &mut self.gc_ns,
            Category::Runtime => &mut self.runtime_ns,
            Category::Kernel => &mut self.kernel_ns,
        }
    }

    pub fn total_ns(&self) -> u64 {
        Category::ALL
            .iter()
            .fold(0u64, |acc, &c| acc.saturating_add(self.get(c)))
    }

    /// The same proportions scaled so the parts sum exactly to `total_cpu_ns`
    /// (the exact CPU time measured by eBPF). Rounding remainders go to the
    /// categories with the largest fractional parts. With no samples at all the
    /// time cannot be split and stays all-zero.
    pub fn scale_to(&self, total_cpu_ns: u64) -> CategoryTotals {
        let sampled = u128::from(self.total_ns());
        if sampled == 0 {
            return CategoryTotals::default();
        }
        let target = u128::from(total_cpu_ns);
        let mut parts: Vec<(Category, u128, u128)> = Category::ALL
            .iter()
            .map(|&c| {
                let num = u128::from(self.get(c)) * target;
                (c, num / sampled, num % sampled)
            })
            .collect();
        let assigned: u128 = parts.iter().map(|p| p.1).sum();
        let mut left = target - assigned;
        let mut order: Vec<usize> = (0..parts.len()).collect();
        order.sort_by(|&a, &b| parts[b].2.cmp(&parts[a].2).then(a.cmp(&b)));
        for i in order {
            if left == 0 {
                break;
            }
            if parts[i].2 > 0 {
                parts[i].1 += 1;
                left -= 1;
            }
        }
        let mut out = CategoryTotals::default();
        for (c, ns, _) in parts {
            // ns <= target <= u64::MAX by construction.
            out.add(c, u64::try_from(ns).unwrap_or(u64::MAX));
        }
        // The tier-1 part keeps its share of the JIT time.
        if self.jit_ns > 0 {
            let tier1 = u128::from(out.jit_ns) * u128::from(self.jit_tier1_ns.min(self.jit_ns))
                / u128::from(self.jit_ns);
            out.jit_tier1_ns = u64::try_from(tier1).unwrap_or(out.jit_ns);
        }
        out
    }

    /// Whole percent of the total for `category` (0 when there is no time).
    pub fn percent(&self, category: Category) -> u64 {
        self.percent_of(self.get(category))
    }

    fn percent_of(&self, ns: u64) -> u64 {
        let total = u128::from(self.total_ns());
        if total == 0 {
            return 0;
        }
        let pct = (u128::from(ns) * 100 + total / 2) / total;
        u64::try_from(pct).unwrap_or(100)
    }

    /// One sentence on where `role`'s CPU went, biggest share first, e.g.
    /// "csharp-event-collector: 38 % of its CPU was JIT compilation, 21 % GC,
    /// 30 % application code, 11 % kernel". Shares under 1 % are left out. The
    /// tier-1 part of the JIT is named after it: "JIT compilation (44 % re-compiling
    /// hot methods at tier 1)".
    pub fn describe(&self, role: &str) -> String {
        if self.total_ns() == 0 {
            return format!("{role}: no CPU samples to explain its CPU time");
        }
        let mut shares: Vec<(Category, u64)> = Category::ALL
            .iter()
            .map(|&c| (c, self.percent(c)))
            .filter(|&(_, p)| p > 0)
            .collect();
        // Runtime costs first (they are the explanation), then by size.
        shares.sort_by(|a, b| {
            let rank = |c: Category| u8::from(matches!(c, Category::App | Category::Kernel));
            rank(a.0).cmp(&rank(b.0)).then(b.1.cmp(&a.1))
        });
        let label = |c: Category| match c {
            Category::App => "application code",
            Category::Jit => "JIT compilation",
            Category::Gc => "GC",
            Category::Runtime => "other runtime work",
            Category::Kernel => "kernel",
        };
        let tier1 = self.percent_of(self.jit_tier1_ns);
        let mut out = format!("{role}: ");
        for (i, (c, p)) in shares.iter().enumerate() {
            if i == 0 {
                out.push_str(&format!("{p} % of its CPU was {}", label(*c)));
            } else {
                out.push_str(&format!(", {p} % {}", label(*c)));
            }
            if *c == Category::Jit && tier1 > 0 {
                out.push_str(&format!(" ({tier1} % re-compiling hot methods at tier 1)"));
            }
        }
        if shares.is_empty() {
            out.push_str("less than 1 % in every category");
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scale_to_sums_exactly_and_keeps_proportions() {
        let t = CategoryTotals {
            app_ns: 3,
            jit_ns: 3,
            gc_ns: 3,
            runtime_ns: 0,
            kernel_ns: 1,
            ..Default::default()
        };
        for target in [0u64, 1, 7, 999, 1_000_000_007, u64::MAX / 3] {
            let s = t.scale_to(target);
            assert_eq!(s.total_ns(), target, "target {target}");
            assert_eq!(s.runtime_ns, 0);
        }
        let s = t.scale_to(1_000);
        assert_eq!(
            (s.app_ns, s.jit_ns, s.gc_ns, s.kernel_ns),
            (300, 300, 300, 100)
        );
        assert_eq!(
            CategoryTotals::default().scale_to(5),
            CategoryTotals::default()
        );
    }

    #[test]
    fn describe_puts_runtime_costs_first() {
        let t = CategoryTotals {
            app_ns: 30,
            jit_ns: 38,
            gc_ns: 21,
            runtime_ns: 0,
            kernel_ns: 11,
            ..Default::default()
        };
        assert_eq!(
            t.describe("csharp-event-collector"),
            "csharp-event-collector: 38 % of its CPU was JIT compilation, 21 % GC, \
             30 % application code, 11 % kernel"
        );
        let rust = CategoryTotals {
            app_ns: 9,
            kernel_ns: 1,
            ..Default::default()
        };
        assert_eq!(
            rust.describe("rust-ext"),
            "rust-ext: 90 % of its CPU was application code, 10 % kernel"
        );
        assert!(
            CategoryTotals::default()
                .describe("x")
                .contains("no CPU samples")
        );
    }

    #[test]
    fn tier1_share_is_named_and_scaled_with_the_jit() {
        let t = CategoryTotals {
            app_ns: 20,
            jit_ns: 60,
            runtime_ns: 20,
            jit_tier1_ns: 44,
            ..Default::default()
        };
        assert_eq!(
            t.describe("dotnet-event-collector"),
            "dotnet-event-collector: 60 % of its CPU was JIT compilation (44 % re-compiling \
             hot methods at tier 1), 20 % other runtime work, 20 % application code"
        );
        let s = t.scale_to(1_000);
        assert_eq!((s.jit_ns, s.jit_tier1_ns), (600, 440));
        let mut m = s;
        m.merge(&s);
        assert_eq!((m.jit_ns, m.jit_tier1_ns, m.total_ns()), (1200, 880, 2000));
        let json = serde_json::to_string(&CategoryTotals::default()).expect("json");
        assert!(!json.contains("tier1"), "omitted when zero: {json}");
    }

    #[test]
    fn from_samples_sums_weights_by_category() {
        let mk = |category, weight| ResolvedSample {
            pid: 1,
            tid: 1,
            thread_name: "t".into(),
            ts_ns: 0,
            weight,
            frames: Vec::new(),
            category,
        };
        let samples = [
            mk(Category::Gc, 10),
            mk(Category::Gc, 5),
            mk(Category::Kernel, 2),
        ];
        let t = CategoryTotals::from_samples(&samples);
        assert_eq!((t.gc_ns, t.kernel_ns, t.total_ns()), (15, 2, 17));
    }
}
