//! Integration tests of the compared extensions: the C# SigV4 signer against AWS's published
//! examples, the full-AOT build, the local S3 server script, the docker/ image's COPY sources,
//! and (through the emulator) each event collector end to end.
//! Facilities (mono, node, the moto venv, built presets) are required under `CI=true`.

#[path = "extensions/aot.rs"]
mod aot;
#[path = "extensions/collectors.rs"]
mod collectors;
#[path = "extensions/docker.rs"]
mod docker;
#[path = "extensions/emulator.rs"]
mod emulator;
#[path = "extensions/local_s3.rs"]
mod local_s3;
#[path = "extensions/shapes.rs"]
mod shapes;
#[path = "extensions/sigv4.rs"]
mod sigv4;
