//! Symbolization of native, JIT and kernel addresses.
