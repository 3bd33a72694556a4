//! A local AWS Lambda execution environment.
