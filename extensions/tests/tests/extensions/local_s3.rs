//! scripts/local-s3.sh: a real S3 server on loopback, started and stopped by PID.

use std::io::{Read, Write};
use std::net::TcpStream;

use lxprof_extension_tests::{facility, local_s3::LocalS3};

fn http_get(port: u16, path: &str) -> std::io::Result<String> {
    let mut stream = TcpStream::connect(("127.0.0.1", port))?;
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\r\n"
    )?;
    let mut text = String::new();
    stream.read_to_string(&mut text)?;
    Ok(text)
}

fn process_alive(pid: u32) -> bool {
    // A zombie (state Z) has exited already.
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .map(|stat| {
            stat.rsplit_once(')')
                .map(|(_, rest)| !rest.trim_start().starts_with('Z'))
                .unwrap_or(false)
        })
        .unwrap_or(false)
}

#[test]
fn starts_with_the_bucket_and_stops_by_pid() {
    if !facility::require(
        facility::has_program("python3"),
        "starts_with_the_bucket_and_stops_by_pid",
        "python3 not installed",
    ) {
        return;
    }
    let a = LocalS3::start("lxprof-test-a").expect("start server a");
    let b = LocalS3::start("lxprof-test-b").expect("start server b");
    assert_ne!(a.port(), b.port());
    for s3 in [&a, &b] {
        let cmdline = std::fs::read(format!("/proc/{}/cmdline", s3.pid())).expect("pid alive");
        assert!(String::from_utf8_lossy(&cmdline).contains("moto_server"));
        let listing = http_get(s3.port(), "/").expect("server answers");
        assert!(listing.starts_with("HTTP/1.1 200"), "{listing}");
        assert!(
            listing.contains(&format!("<Name>{}</Name>", s3.bucket())),
            "{listing}"
        );
    }
    let (pid_a, state_a, port_a) = (a.pid(), a.state_file().to_path_buf(), a.port());
    a.stop().expect("stop a");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while process_alive(pid_a) && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    assert!(
        !process_alive(pid_a),
        "moto server {pid_a} still running after stop"
    );
    assert!(!state_a.exists());
    assert!(
        http_get(port_a, "/").is_err(),
        "port {port_a} still answers"
    );
    // The other server is untouched.
    assert!(process_alive(b.pid()));
    assert!(http_get(b.port(), "/").expect("b answers").contains("200"));
    b.stop().expect("stop b");
}
