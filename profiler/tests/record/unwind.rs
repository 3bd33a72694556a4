//! Stacks a person can read: a call chain main → outer → middle → inner → leaf in a C
//! program built without frame pointers, in a Mono C# program and in a Node script is
//! whole in ≥ 90 % of the samples taken in it, and ≤ 5 % of the sample weight carries
//! an unresolved frame (`[unknown]`, `[truncated]`, `[no unwind info: …]`); so are the
//! C program's chains while one of its threads maps and unmaps memory (the kernel then
//! refuses the sampler's look-up of the stack's mapping).

use super::*;
use std::process::Command;

/// The chain programs (`profiler/tests/data/chain/`): ROUNDS calls of `outer`.
const C_PROGRAM: &str = include_str!("../data/chain/chain.c");
/// A signal handler burning CPU (main → spin → raise; on_signal → handler_leaf).
const C_SIGNAL_PROGRAM: &str = include_str!("../data/chain/signal.c");
const CS_PROGRAM: &str = include_str!("../data/chain/chain.cs");
/// Run with `--no-turbo-inlining`: each function keeps its own frame.
const JS_PROGRAM: &str = include_str!("../data/chain/chain.js");

/// What the folded stacks of one role say about a chain.
#[derive(Debug)]
struct ChainStats {
    /// Weight of the samples whose stack holds the chain's leaf.
    in_chain: u64,
    /// Of those, the weight whose stack holds the whole chain in order.
    whole: u64,
    /// Weight of the samples with an unresolved frame.
    unresolved: u64,
    total: u64,
}

fn is_unresolved(f: &str) -> bool {
    let f = frame_name(f);
    f == "[unknown]" || f.starts_with("[truncated]") || f.starts_with("[no unwind info")
}

/// `chain`: root first, each entry a substring of its frame's name (consecutive frames).
fn chain_stats(folded: &str, chain: &[&str]) -> ChainStats {
    let mut s = ChainStats {
        in_chain: 0,
        whole: 0,
        unresolved: 0,
        total: 0,
    };
    let leaf = chain.last().expect("chain");
    for (stack, w) in folded_lines(folded) {
        let frames: Vec<&str> = stack.split(';').collect();
        s.total += w;
        if frames.iter().any(|f| is_unresolved(f)) {
            s.unresolved += w;
        }
        if !frames.iter().any(|f| frame_name(f).contains(leaf)) {
            continue;
        }
        s.in_chain += w;
        let whole = frames.windows(chain.len()).any(|win| {
            win.iter()
                .zip(chain)
                .all(|(f, c)| frame_name(f).contains(c))
        });
        if whole {
            s.whole += w;
        }
    }
    s
}

/// Records `argv` (sampling at 499 Hz) and checks the chain in the command's flamegraph.
fn check_chain(name: &str, argv: Vec<std::ffi::OsString>, chain: &[&str]) {
    check_chains(name, argv, &[chain]);
}

/// Records `argv` (sampling at 499 Hz) and checks each chain in the command's
/// flamegraph; the first one's leaf must hold a third of the weight at least.
fn check_chains(name: &str, argv: Vec<std::ffi::OsString>, chains: &[&[&str]]) {
    let mut opts = RecordOptions::new(Target::Command(argv));
    opts.output_dir = Some(scratch(name));
    opts.freq = Some(499);
    let outcome = record(&opts).expect("record");
    assert_eq!(outcome.exit_status.and_then(|s| s.code), Some(0));
    let folded = command_folded(&outcome.output_dir);
    let sample_lines: String = folded.lines().take(12).collect::<Vec<_>>().join("\n");
    for (i, chain) in chains.iter().enumerate() {
        let s = chain_stats(&folded, chain);
        let whole = s.whole as f64 / s.in_chain.max(1) as f64;
        let unresolved = s.unresolved as f64 / s.total.max(1) as f64;
        eprintln!(
            "{name}: {:.1} % of the weight of {chain:?} has the whole chain; {:.1} % of all \
             weight has an unresolved frame ({s:?})",
            100.0 * whole,
            100.0 * unresolved
        );
        assert!(
            s.in_chain > if i == 0 { s.total / 3 } else { 0 },
            "the leaf of {chain:?} is in too few samples:\n{sample_lines}"
        );
        assert!(
            whole >= 0.90,
            "whole chain {chain:?} in {:.1} %:\n{sample_lines}",
            100.0 * whole
        );
        assert!(
            unresolved <= 0.05,
            "unresolved frames in {:.1} %:\n{sample_lines}",
            100.0 * unresolved
        );
    }
}

/// chain.c built with `-O2 -fomit-frame-pointer`, or None (skip; panics under CI).
fn c_chain_program() -> Option<std::path::PathBuf> {
    c_program("chain", C_PROGRAM)
}

/// C source `text` built as `name` with `-O2 -fomit-frame-pointer`, or None (skip;
/// panics under CI).
fn c_program(name: &str, text: &str) -> Option<std::path::PathBuf> {
    let cc = first_tool(&["gcc", "clang-19", "cc"])?;
    let src = scratch("unwind-c-src");
    std::fs::create_dir_all(&src).expect("mkdir");
    let c = src.join(format!("{name}.c"));
    std::fs::write(&c, text).expect("write c");
    let exe = src.join(name);
    let st = Command::new(&cc)
        .args(["-O2", "-fomit-frame-pointer", "-pthread", "-o"])
        .arg(&exe)
        .arg(&c)
        .status()
        .expect("cc");
    assert!(st.success(), "{cc} failed");
    Some(exe)
}

const C_CHAIN: &[&str] = &[
    "main",
    "chain_outer",
    "chain_middle",
    "chain_inner",
    "chain_leaf",
];

#[test]
fn c_chain_without_frame_pointers_is_whole() {
    let Some(_g) = bpf_available() else { return };
    let Some(exe) = c_chain_program() else { return };
    check_chain(
        "unwind-c",
        vec![exe.into_os_string(), "4000".into()],
        C_CHAIN,
    );
}

/// While a thread changes mappings the process's mmap lock is held, and the kernel
/// refuses the sampler's look-up of the stack's mapping (bpf_find_vma only try-locks
/// it): 43 % of this program's weight was `[truncated]` (the main thread's chain), and
/// in Mono, whose GC unmaps blocks, a tenth of the GC's samples lost their callers.
#[test]
fn c_chains_are_whole_while_a_thread_holds_the_mmap_lock() {
    let Some(_g) = bpf_available() else { return };
    let Some(exe) = c_chain_program() else { return };
    // An empty environment: the main thread's stack then ends a few KiB above its
    // frames, as in a container (a read past that end fails).
    check_chains(
        "unwind-c-map",
        vec![
            "env".into(),
            "-i".into(),
            exe.into_os_string(),
            "4000".into(),
            "map".into(),
        ],
        &[C_CHAIN, &["mapper", "map_outer", "map_inner"]],
    );
}

/// A signal handler's samples go through the kernel's signal frame to the
/// interrupted code, and the trampoline between is named: a handler "returns" to the
/// first byte of glibc's `__restore_rt`, and the byte before it (where a return
/// address is looked up) is in no function (it came out `[unknown]`).
#[test]
fn c_signal_handler_chain_is_whole() {
    let Some(_g) = bpf_available() else { return };
    let Some(exe) = c_program("signal", C_SIGNAL_PROGRAM) else {
        return;
    };
    check_chains(
        "unwind-c-signal",
        vec![exe.into_os_string(), "2000".into()],
        &[
            &["main", "spin"],
            &["__restore_rt", "on_signal", "handler_leaf"],
        ],
    );
}

#[test]
fn mono_chain_is_whole() {
    let Some(_g) = bpf_available() else { return };
    if !tools_available(&["mono", "mcs"]) {
        return;
    }
    let exe = build_cs("unwind-mono-src", CS_PROGRAM);
    check_chain(
        "unwind-mono",
        vec!["mono".into(), exe.into_os_string(), "8000".into()],
        &[
            "P:Main",
            "P:ChainOuter",
            "P:ChainMiddle",
            "P:ChainInner",
            "P:ChainLeaf",
        ],
    );
}

#[test]
fn node_chain_is_whole() {
    let Some(_g) = bpf_available() else { return };
    if !tools_available(&["node"]) {
        return;
    }
    let src = scratch("unwind-node-src");
    std::fs::create_dir_all(&src).expect("mkdir");
    let script = src.join("chain.js");
    std::fs::write(&script, JS_PROGRAM).expect("write js");
    check_chain(
        "unwind-node",
        vec![
            "node".into(),
            "--no-turbo-inlining".into(),
            script.into_os_string(),
            "2000".into(),
        ],
        &[
            "main",
            "chainOuter",
            "chainMiddle",
            "chainInner",
            "chainLeaf",
        ],
    );
}
