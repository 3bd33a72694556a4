//! Tiered compilation's second compile: which JIT samples re-compile methods that
//! proved hot with full optimization ("tier up"), so that share of the JIT can be
//! named apart (`CategoryTotals::jit_tier1_ns`): it is the cost a user can act on
//! (CoreCLR: `TieredCompilation`, `TieredPGO`, ReadyToRun).
//!
//! CoreCLR compiles a method first at tier 0 (quickly, unoptimized) on the thread
//! that calls it; methods called 30 times are queued and re-compiled at tier 1 by a
//! background worker: `TieredCompilationManager::OptimizeMethods` on a thread-pool
//! thread in .NET Core 3.1 (threads are unnamed there), on the
//! ".NET Tiered Compilation Worker" thread in .NET 5+ (cut to 15 bytes by Linux).

use crate::stacks::Frame;

/// Frames (name prefixes) of CoreCLR's background tier-1 re-compilation.
const TIER_UP_FRAMES: [&str; 2] = [
    "TieredCompilationManager::OptimizeMethods",
    "TieredCompilationManager::CompileCodeVersion",
];

/// The 15-byte name of .NET 5+'s tiered compilation worker thread.
const TIER_UP_THREAD: &str = ".NET Tiered Com";

/// True when a sample (of thread `thread_name`, `frames` in any order) is a
/// background tier-1 re-compilation.
pub fn is_tier_up(thread_name: &str, frames: &[Frame]) -> bool {
    thread_name.starts_with(TIER_UP_THREAD)
        || frames
            .iter()
            .any(|f| TIER_UP_FRAMES.iter().any(|p| f.name.starts_with(p)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stacks::FrameKind;

    fn frame(name: &str) -> Frame {
        Frame {
            name: name.into(),
            module: Some("libcoreclr.so".into()),
            kind: FrameKind::Native,
        }
    }

    #[test]
    fn background_optimize_methods_is_tier_up_first_jit_is_not() {
        let tier1 = [
            frame("Compiler::fgMorph()"),
            frame("UnsafeJitFunction(NativeCodeVersion)"),
            frame("TieredCompilationManager::OptimizeMethods()"),
        ];
        assert!(is_tier_up("dotnet", &tier1));
        let tier0 = [
            frame("Compiler::fgMorph()"),
            frame("UnsafeJitFunction(NativeCodeVersion)"),
            frame("MethodDesc::DoPrestub(MethodTable*)"),
        ];
        assert!(!is_tier_up("dotnet", &tier0));
        assert!(is_tier_up(".NET Tiered Com", &tier0[..1]));
    }
}
