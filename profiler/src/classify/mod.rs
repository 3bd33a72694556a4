//! Sample classification: app / JIT / GC / runtime / kernel, from per-runtime rules.
