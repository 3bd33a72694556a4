//! A local AWS Lambda execution environment.
pub mod sandbox;
