//! `JIT` and `GC` phase slices from runs of consecutive samples of one
//! category on a thread, for the Perfetto trace (and any timeline exporter).

use std::collections::BTreeMap;

use super::Slice;
use crate::stacks::{Category, ResolvedSample};

/// One slice per run of consecutive CPU samples of `categories` on a thread.
/// A run ends at a sample of another category, or when the next sample
/// starts more than `max_gap_ns` after the previous one ended (the thread
/// was off CPU). A slice spans from its first sample's `ts_ns` to its last
/// sample's `ts_ns + weight` (weights are CPU ns). Names: `JIT`, `GC`,
/// `Runtime`, `App`, `Kernel`; category strings as in [`Category::as_str`].
/// Output is sorted by (pid, tid, start).
pub fn category_slices(
    samples: &[ResolvedSample],
    categories: &[Category],
    max_gap_ns: u64,
) -> Vec<Slice> {
    let mut by_thread: BTreeMap<(u32, u32), Vec<&ResolvedSample>> = BTreeMap::new();
    for s in samples {
        by_thread.entry((s.pid, s.tid)).or_default().push(s);
    }
    let mut out = Vec::new();
    for ((pid, tid), mut list) in by_thread {
        list.sort_by_key(|s| s.ts_ns);
        let mut run: Option<(Category, u64, u64)> = None; // (category, start, end)
        let mut flush = |run: &mut Option<(Category, u64, u64)>| {
            if let Some((cat, start, end)) = run.take() {
                out.push(Slice {
                    pid,
                    tid,
                    name: slice_name(cat).to_string(),
                    category: Some(cat.as_str().to_string()),
                    start_ns: start,
                    dur_ns: end.saturating_sub(start),
                });
            }
        };
        for s in list {
            let end = s.ts_ns.saturating_add(s.weight);
            match run {
                Some((cat, _, prev_end))
                    if cat == s.category && s.ts_ns <= prev_end.saturating_add(max_gap_ns) =>
                {
                    if let Some(r) = run.as_mut() {
                        r.2 = r.2.max(end);
                    }
                }
                _ => {
                    flush(&mut run);
                    if categories.contains(&s.category) {
                        run = Some((s.category, s.ts_ns, end));
                    }
                }
            }
        }
        flush(&mut run);
    }
    out
}

fn slice_name(cat: Category) -> &'static str {
    match cat {
        Category::App => "App",
        Category::Jit => "JIT",
        Category::Gc => "GC",
        Category::Runtime => "Runtime",
        Category::Kernel => "Kernel",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(tid: u32, ts: u64, cat: Category) -> ResolvedSample {
        ResolvedSample {
            pid: 1,
            tid,
            thread_name: "t".into(),
            ts_ns: ts,
            weight: 10,
            frames: Vec::new(),
            category: cat,
        }
    }

    #[test]
    fn runs_break_on_other_categories_and_gaps() {
        use Category::{App, Gc, Jit};
        let samples = [
            s(1, 0, Jit),
            s(1, 10, Jit),
            s(1, 20, App),
            s(1, 30, Gc),
            s(1, 40, Gc),
            s(1, 500, Gc), // after a gap: a new GC slice
            s(2, 5, Jit),
        ];
        let got: Vec<_> = category_slices(&samples, &[Jit, Gc], 50)
            .into_iter()
            .map(|s| (s.tid, s.name, s.start_ns, s.dur_ns))
            .collect();
        assert_eq!(
            got,
            vec![
                (1, "JIT".to_string(), 0, 20),
                (1, "GC".to_string(), 30, 20),
                (1, "GC".to_string(), 500, 10),
                (2, "JIT".to_string(), 5, 10),
            ]
        );
    }
}
