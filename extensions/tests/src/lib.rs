//! Test support for the compared extensions: where `extensions/build.sh` puts the presets,
//! facility checks (CI=true turns a missing facility into a failure), a local S3 server
//! guard that stops the server by PID on drop, and an S3 reader for checking what the
//! event collectors stored.

pub mod driver;
pub mod facility;
pub mod layout;
pub mod local_s3;
pub mod s3_reader;
