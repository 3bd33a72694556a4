//! Symbolized stacks and their categories: the types shared by symbolization,
//! classification, flamegraphs and the Perfetto exporter.

use serde::{Deserialize, Serialize};

/// What a CPU sample was spent on: the explanation lxprof gives.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Category {
    /// The program's own code (and native libraries it calls).
    App,
    /// A managed runtime compiling code (Mono mini, V8 TurboFan/Maglev, HotSpot C1/C2, RyuJIT).
    Jit,
    /// A managed runtime's garbage collector.
    Gc,
    /// Other runtime work: class loading, stubs, interpreter, runtime startup.
    Runtime,
    /// The kernel, on behalf of the process (syscalls, faults, scheduling).
    Kernel,
}

impl Category {
    pub const ALL: [Category; 5] = [
        Category::App,
        Category::Jit,
        Category::Gc,
        Category::Runtime,
        Category::Kernel,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Category::App => "app",
            Category::Jit => "jit",
            Category::Gc => "gc",
            Category::Runtime => "runtime",
            Category::Kernel => "kernel",
        }
    }
}

/// Where a frame's code lives.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FrameKind {
    /// Machine code of an ELF file (executable or shared library).
    Native,
    /// Code a JIT wrote, named by the process's perf map.
    Jit,
    /// Kernel code.
    Kernel,
    /// No symbol found.
    Unknown,
}

/// One symbolized frame.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Frame {
    /// Function name (demangled), or `[unknown]` / `0xADDR` when none was found.
    pub name: String,
    /// File name of the module (`libc.so.6`, `mono-sgen`, `[kernel]`, `[jit]`), if known.
    pub module: Option<String>,
    pub kind: FrameKind,
}

/// One sampled stack of one thread, symbolized.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ResolvedSample {
    pub pid: u32,
    pub tid: u32,
    /// Thread name when sampled.
    pub thread_name: String,
    /// CLOCK_MONOTONIC ns.
    pub ts_ns: u64,
    /// What the sample stands for: ns of CPU (interval), faults, or bytes.
    pub weight: u64,
    /// Leaf first: `frames[0]` is where the CPU was. Kernel frames come before user frames.
    pub frames: Vec<Frame>,
    pub category: Category,
}
