//! `lxprof compare`: two recordings side by side.
