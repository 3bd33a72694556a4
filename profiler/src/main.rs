//! The `lxprof` command line: parses arguments, calls the library, prints errors.

fn main() {
    println!("lxprof {}", env!("CARGO_PKG_VERSION"));
}
