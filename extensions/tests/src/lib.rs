//! End-to-end tests of the compared extensions live in `tests/`.
