//! How to make stacks and JIT names visible for known runtimes.
