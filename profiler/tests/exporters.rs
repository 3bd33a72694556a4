//! Exporters decoded back: folded stacks and `compare.md` against golden
//! files in `tests/data/flame/` (`LXPROF_BLESS=1` rewrites them), SVGs
//! parsed as XML, and the Perfetto trace decoded with Perfetto's own proto
//! classes (the `perfetto` PyPI package, in a venv under the target dir).

use std::path::{Path, PathBuf};

use lxprof::stacks::{Category, Frame, FrameKind, ResolvedSample};

/// Compares `actual` with `tests/data/flame/<name>`, or rewrites it when
/// `LXPROF_BLESS=1`.
fn golden(name: &str, actual: &str) {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data/flame")
        .join(name);
    if std::env::var("LXPROF_BLESS").is_ok_and(|v| v == "1") {
        std::fs::write(&path, actual).expect("write golden");
        return;
    }
    let expected = std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!(
            "{}: {e}; run with LXPROF_BLESS=1 to create it",
            path.display()
        )
    });
    assert_eq!(
        actual,
        expected,
        "{} differs (LXPROF_BLESS=1 rewrites it after review)",
        path.display()
    );
}

/// inferno's SVGs start with the SVG 1.1 DOCTYPE: allow it.
fn xml_options() -> roxmltree::ParsingOptions {
    roxmltree::ParsingOptions {
        allow_dtd: true,
        ..Default::default()
    }
}

/// A fresh directory under the target's tmp dir.
fn scratch(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("flame-{name}"));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("create scratch dir");
    dir
}

fn f(name: &str, module: &str, kind: FrameKind) -> Frame {
    Frame {
        name: name.to_string(),
        module: Some(module.to_string()),
        kind,
    }
}

/// A sample; `stack` is root first (as written in folded files).
fn s(tid: u32, thread: &str, ts: u64, w: u64, cat: Category, stack: &[Frame]) -> ResolvedSample {
    ResolvedSample {
        pid: 100,
        tid,
        thread_name: thread.to_string(),
        ts_ns: ts,
        weight: w,
        frames: stack.iter().rev().cloned().collect(),
        category: cat,
    }
}

/// A Mono-like process: app code, JIT compiles, a nursery GC on the main
/// thread, a GC worker thread, a page fault in the kernel. `gc_scale`
/// multiplies the GC weights (to make two different recordings).
fn mono_samples(origin: u64, gc_scale: u64) -> Vec<ResolvedSample> {
    use FrameKind::{Jit, Kernel, Native};
    let main = f("main", "mono-sgen", Native);
    let exec = f("mono_jit_exec", "mono-sgen", Native);
    let run = f("Program:Main ()", "[jit]", Jit);
    let work = f("Collector:Handle (Event)", "[jit]", Jit);
    let compile = f("mini_method_compile", "mono-sgen", Native);
    let to_ir = f("mono_method_to_ir", "mono-sgen", Native);
    let alloc = f("mono_gc_alloc_obj", "mono-sgen", Native);
    let collect = f("sgen_perform_collection", "mono-sgen", Native);
    let copy = f("sgen_copy_object", "mono-sgen", Native);
    let fault = f("asm_exc_page_fault", "[kernel]", Kernel);
    let clear = f("clear_page_erms", "[kernel]", Kernel);
    let worker = f("thread_func", "mono-sgen", Native);
    let mark = f("sgen_drain_gray_stack", "mono-sgen", Native);
    let ms = 1_000_000;
    vec![
        s(
            100,
            "mono",
            origin + ms,
            3 * ms,
            Category::App,
            &[main.clone(), exec.clone(), run.clone(), work.clone()],
        ),
        s(
            100,
            "mono",
            origin + 2 * ms,
            2 * ms,
            Category::Jit,
            &[main.clone(), exec.clone(), compile.clone(), to_ir],
        ),
        s(
            100,
            "mono",
            origin + 3 * ms,
            ms,
            Category::Jit,
            &[main.clone(), exec.clone(), compile],
        ),
        s(
            100,
            "mono",
            origin + 4 * ms,
            gc_scale * ms,
            Category::Gc,
            &[
                main.clone(),
                exec.clone(),
                run.clone(),
                work.clone(),
                alloc.clone(),
                collect,
                copy,
            ],
        ),
        s(
            100,
            "mono",
            origin + 5 * ms,
            ms,
            Category::Kernel,
            &[main.clone(), exec.clone(), run, work, alloc, fault, clear],
        ),
        s(
            101,
            "SGen worker",
            origin + 6 * ms,
            gc_scale * ms,
            Category::Gc,
            &[worker, mark],
        ),
        s(
            100,
            "mono",
            origin + 7 * ms,
            3 * ms,
            Category::App,
            &[
                main,
                exec,
                f("Program:Main ()", "[jit]", Jit),
                f("Collector:Handle (Event)", "[jit]", Jit),
            ],
        ),
    ]
}

mod folded_golden {
    use super::*;
    use lxprof::flamegraph::{FoldOptions, folded, folded_with};

    #[test]
    fn mono_folded_with_threads_and_categories() {
        golden("mono.folded", &folded(&mono_samples(0, 2)));
    }

    #[test]
    fn mono_folded_without_threads_or_categories() {
        let opts = FoldOptions {
            thread_names: false,
            categories: false,
        };
        golden(
            "mono.plain.folded",
            &folded_with(&mono_samples(0, 2), &opts),
        );
    }

    #[test]
    fn folded_weights_add_up_to_the_samples() {
        let samples = mono_samples(0, 2);
        let total: u64 = samples.iter().map(|s| s.weight).sum();
        let out = folded(&samples);
        let sum: u64 = lxprof::flamegraph::parse_lines(&out).map(|(_, w)| w).sum();
        assert_eq!(sum, total);
    }
}

mod svg_xml {
    use super::*;
    use lxprof::flamegraph::{FlameOptions, category_color, differential, folded, svg};

    /// `(title, fill)` of every frame rectangle of an SVG.
    fn frames(svg: &[u8]) -> Vec<(String, String)> {
        let text = std::str::from_utf8(svg).expect("SVG is UTF-8");
        let doc = roxmltree::Document::parse_with_options(text, xml_options())
            .expect("SVG is well-formed XML");
        assert_eq!(doc.root_element().tag_name().name(), "svg");
        doc.descendants()
            .filter(|n| n.has_tag_name("g"))
            .filter_map(|g| {
                let title = g
                    .children()
                    .find(|c| c.has_tag_name("title"))?
                    .text()?
                    .to_string();
                let fill = g
                    .children()
                    .find(|c| c.has_tag_name("rect"))?
                    .attribute("fill")?
                    .to_string();
                Some((title, fill))
            })
            .collect()
    }

    #[test]
    fn svg_is_well_formed_and_coloured_by_category() {
        let folded = folded(&mono_samples(0, 2));
        let out = svg(
            &folded,
            &FlameOptions {
                title: "mono".into(),
                ..Default::default()
            },
        )
        .unwrap();
        let frames = frames(&out);
        let find = |prefix: &str| {
            frames
                .iter()
                .find(|(t, _)| t.starts_with(prefix))
                .unwrap_or_else(|| panic!("no frame {prefix} in {frames:?}"))
        };
        for (name, cat) in [
            ("sgen_copy_object [gc]", Category::Gc),
            ("mono_method_to_ir [jit]", Category::Jit),
            ("clear_page_erms [kernel]", Category::Kernel),
            ("Collector:Handle (Event) ", Category::App),
        ] {
            let c = category_color(cat, name.trim_end());
            assert_eq!(
                find(name).1,
                format!("rgb({},{},{})", c.r, c.g, c.b),
                "{name}"
            );
        }
    }

    #[test]
    fn differential_svg_is_well_formed_and_shows_growth() {
        let before = folded(&mono_samples(0, 1));
        let after = folded(&mono_samples(0, 8));
        let out = differential(&before, &after, &FlameOptions::default()).unwrap();
        let frames = frames(&out);
        // A frame that grew carries a positive delta in its title.
        let gc = frames
            .iter()
            .find(|(t, _)| t.starts_with("sgen_copy_object "))
            .expect("gc frame");
        assert!(gc.0.contains("; +"), "{gc:?}");
        assert!(
            !frames.iter().any(|(t, _)| t.contains("[gc]")),
            "suffixes are stripped"
        );
    }
}

mod perfetto_decode {
    use super::*;
    use lxprof::perfetto::{
        Counter, PerfettoInput, ProcessInfo, SampleStream, ThreadInfo, WeightUnit, category_slices,
        to_protobuf,
    };
    use serde_json::Value;
    use std::process::Command;

    /// Python with the `perfetto` package: `LXPROF_PERFETTO_PYTHON`, or a venv
    /// made (once) under the target's tmp dir with pip from PyPI.
    fn python() -> Result<PathBuf, String> {
        if let Ok(p) = std::env::var("LXPROF_PERFETTO_PYTHON") {
            return Ok(p.into());
        }
        let venv = Path::new(env!("CARGO_TARGET_TMPDIR")).join("venv-perfetto");
        let py = venv.join("bin/python");
        let ok = |py: &Path| {
            Command::new(py)
                .args([
                    "-c",
                    "import perfetto.protos.perfetto.trace.perfetto_trace_pb2",
                ])
                .status()
                .is_ok_and(|s| s.success())
        };
        if ok(&py) {
            return Ok(py);
        }
        let run = |cmd: &mut Command| match cmd.status() {
            Ok(s) if s.success() => Ok(()),
            other => Err(format!("{cmd:?} failed: {other:?}")),
        };
        run(Command::new("python3").args(["-m", "venv"]).arg(&venv))?;
        run(Command::new(venv.join("bin/pip")).args(["install", "-q", "perfetto==0.59.1"]))?;
        if ok(&py) {
            Ok(py)
        } else {
            Err("perfetto package not importable after pip install".into())
        }
    }

    #[test]
    fn trace_decodes_with_perfettos_protos_and_callstacks_resolve() {
        let py = match python() {
            Ok(py) => py,
            Err(e) if std::env::var("CI").is_ok_and(|v| v == "true") => panic!("{e}"),
            Err(e) => {
                eprintln!("skipping: no python with the perfetto package: {e}");
                return;
            }
        };
        let origin = 5_000_000_000;
        let cpu = mono_samples(origin, 2);
        let mut faults = mono_samples(origin, 1);
        faults.truncate(2);
        for (i, s) in faults.iter_mut().enumerate() {
            s.weight = 3 + i as u64;
            s.ts_ns += 500;
        }
        let mut allocs = mono_samples(origin, 1);
        allocs.truncate(1);
        allocs[0].weight = 4096;
        allocs[0].ts_ns += 700;
        // JIT and GC phases: JIT at 2-4 ms on mono, GC at 4 ms on mono and
        // at 6 ms on the SGen worker.
        let slices = category_slices(&cpu, &[Category::Jit, Category::Gc], 1_000_000);
        assert_eq!(slices.len(), 3, "{slices:?}");
        let input = PerfettoInput {
            origin_mono_ns: origin,
            processes: vec![ProcessInfo {
                pid: 100,
                name: "csharp-extension".into(),
                threads: vec![ThreadInfo {
                    tid: 100,
                    name: "mono".into(),
                }],
            }],
            samples: vec![
                SampleStream {
                    unit: WeightUnit::CpuNanoseconds,
                    samples: &cpu,
                },
                SampleStream {
                    unit: WeightUnit::PageFaults,
                    samples: &faults,
                },
                SampleStream {
                    unit: WeightUnit::AllocatedBytes,
                    samples: &allocs,
                },
            ],
            slices: slices.clone(),
            counters: vec![Counter {
                pid: 100,
                name: "rss_bytes".into(),
                points: vec![(origin, 1e6), (origin + 5_000_000, 2e6)],
            }],
        };
        let path = scratch("perfetto").join("trace.perfetto-trace");
        std::fs::write(&path, to_protobuf(&input)).unwrap();
        let script =
            Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/flame/decode_perfetto.py");
        let out = Command::new(&py)
            .arg(&script)
            .arg(&path)
            .output()
            .expect("run python");
        assert!(
            out.status.success(),
            "decode failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let v: Value = serde_json::from_slice(&out.stdout).expect("decoder prints JSON");

        assert_eq!(
            v["unknown_fields"], 0,
            "a field number differs from Perfetto's"
        );
        assert_eq!(v["defaults_source"], "lxprof");
        assert!(
            v["clocks"]
                .as_array()
                .unwrap()
                .contains(&serde_json::json!([3, origin]))
        );
        // Every sample, with its callstack resolved to the names written.
        let mut expected: Vec<Value> = Vec::new();
        for (unit, set) in [
            ("UNIT_NANOSECONDS", &cpu),
            ("UNIT_PAGE_FAULTS", &faults),
            ("UNIT_BYTES", &allocs),
        ] {
            for s in set.iter() {
                let names: Vec<&str> = s.frames.iter().rev().map(|f| f.name.as_str()).collect();
                expected.push(serde_json::json!([
                    s.ts_ns - origin,
                    s.tid,
                    names,
                    s.weight,
                    unit
                ]));
            }
        }
        let mut got: Vec<Value> = v["stack_samples"]
            .as_array()
            .expect("stack_samples")
            .iter()
            .map(|s| serde_json::json!([s["ts"], s["tid"], s["frames"], s["weight"], s["unit"]]))
            .collect();
        let key = |x: &Value| x.to_string();
        expected.sort_by_key(key);
        got.sort_by_key(key);
        assert_eq!(got, expected);
        let in_kernel = |s: &&ResolvedSample| s.frames[0].kind == FrameKind::Kernel;
        let kernel_samples = [&cpu, &faults, &allocs]
            .iter()
            .flat_map(|v| v.iter())
            .filter(in_kernel)
            .count();
        let kernel = v["stack_samples"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|s| s["mode"] == "MODE_KERNEL");
        assert_eq!(
            kernel.count(),
            kernel_samples,
            "samples with a kernel leaf are in kernel mode"
        );
        assert!(kernel_samples > 0);
        // PerfSample copies of the CPU samples only.
        let perf = v["perf_samples"].as_array().expect("perf_samples");
        assert_eq!(perf.len(), cpu.len());
        assert_eq!(perf[0]["frames"][0], "main");
        // Threads named (the worker from its samples), slices, counters.
        let threads = v["threads"].as_array().unwrap();
        assert!(threads.contains(&serde_json::json!([100, 100, "mono"])));
        assert!(threads.contains(&serde_json::json!([100, 101, "SGen worker"])));
        assert_eq!(
            v["processes"],
            serde_json::json!([[100, "csharp-extension"]])
        );
        assert_eq!(v["slices"], slices.len());
        assert_eq!(v["counters"], 2);
    }
}

mod compare_golden {
    use super::*;
    use lxprof::compare::{CompareOptions, compare};
    use lxprof::flamegraph::{FlameOptions, folded, write_role};
    use serde_json::json;

    fn recording(dir: &Path, gc_scale: u64, lambda_cpu: f64) {
        std::fs::create_dir_all(dir.join("flamegraphs")).unwrap();
        let report = json!({
            "duration_ns": 2_000_000_000u64,
            "processes": [
                {"pid": 100, "role": "extension", "comm": "mono", "cpu_ns": 40_000_000u64 * gc_scale,
                 "page_faults_minor": 1000 * gc_scale, "page_faults_major": 2,
                 "max_rss_bytes": 30_000_000u64 * gc_scale, "start_ns": 0, "end_ns": 1_500_000_000u64,
                 "alloc": {"malloc_bytes": 1_048_576u64 * gc_scale},
                 "categories": {"app_ns": 20_000_000u64, "jit_ns": 10_000_000u64,
                                "gc_ns": 10_000_000u64 * gc_scale, "runtime_ns": 0, "kernel_ns": 0}},
                {"pid": 90, "role": "function", "comm": "bootstrap", "cpu_ns": 5_000_000u64,
                 "page_faults_minor": 300, "page_faults_major": 0, "max_rss_bytes": 8_000_000u64}
            ],
            "lambda": {"invocations": [
                {"duration_ns": 20_000_000u64, "post_runtime_duration_ns": 5_000_000u64 * gc_scale,
                 "by_role": {"extension": {"cpu_ns": lambda_cpu, "post_runtime_cpu_ns": lambda_cpu / 2.0,
                                           "page_faults": 10, "alloc_bytes": 2048},
                             "function": {"cpu_ns": 1_000_000u64, "page_faults": 5}}},
                {"duration_ns": 22_000_000u64, "post_runtime_duration_ns": 5_000_000u64 * gc_scale,
                 "by_role": {"extension": {"cpu_ns": lambda_cpu, "page_faults": 12},
                             "function": {"cpu_ns": 1_200_000u64}}}
            ]}
        });
        std::fs::write(
            dir.join("report.json"),
            serde_json::to_vec_pretty(&report).unwrap(),
        )
        .unwrap();
        let files = write_role(
            dir,
            "extension",
            &mono_samples(0, gc_scale),
            &FlameOptions::default(),
        )
        .expect("write role flamegraph");
        assert_eq!(
            std::fs::read_to_string(&files.folded).unwrap(),
            folded(&mono_samples(0, gc_scale))
        );
        let svg = std::fs::read_to_string(files.svg.expect("an SVG")).unwrap();
        roxmltree::Document::parse_with_options(&svg, xml_options()).expect("role SVG is XML");
    }

    #[test]
    fn compare_md_and_differential_flamegraphs() {
        let root = scratch("compare");
        let (a, b) = (root.join("before"), root.join("after"));
        recording(&a, 1, 8_000_000.0);
        recording(&b, 3, 12_000_000.0);
        // A role flamegraph only in B gets no differential.
        std::fs::write(b.join("flamegraphs/function.folded"), "main;handler 5\n").unwrap();
        let out = compare(&a, &b, &CompareOptions::default()).unwrap();
        golden("compare.md", &out.markdown);
        assert_eq!(out.diffs.len(), 1);
        assert_eq!(out.diffs[0].role, "extension");
        roxmltree::Document::parse_with_options(
            std::str::from_utf8(&out.diffs[0].svg).unwrap(),
            xml_options(),
        )
        .expect("diff SVG is XML");
        let written = out.write(&root.join("out")).unwrap();
        assert!(written.iter().all(|p| p.is_file()));
        assert!(root.join("out/flamegraphs/diff-extension.svg").is_file());
    }

    #[test]
    fn plain_recordings_and_missing_files_degrade() {
        let root = scratch("compare-plain");
        let (a, b) = (root.join("a"), root.join("b"));
        for d in [&a, &b] {
            std::fs::create_dir_all(d).unwrap();
        }
        std::fs::write(
            a.join("report.json"),
            r#"{"processes":[{"pid":1,"comm":"sleep","cpu_ns":1000000}]}"#,
        )
        .unwrap();
        std::fs::write(b.join("report.json"), r#"{"processes":[]}"#).unwrap();
        let out = compare(&a, &b, &CompareOptions::default()).unwrap();
        assert!(out.markdown.contains("## Role `sleep`"));
        assert!(
            out.markdown.contains("| CPU | 1.00 ms | – | – |"),
            "{}",
            out.markdown
        );
        assert!(out.diffs.is_empty());
        let err = compare(&a, &root.join("missing"), &CompareOptions::default()).unwrap_err();
        assert!(err.to_string().contains("report.json"), "{err}");
    }
}
