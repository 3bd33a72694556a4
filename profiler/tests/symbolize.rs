//! Symbolization of real processes: a native child, Mono and Node JIT code through
//! their perf maps, a process in a private mount + pid namespace (the Lambda case),
//! all symbolized after the process EXITED from a snapshot taken while it was alive;
//! kernel addresses from kallsyms. Needs root (map_files, unshare); with `CI=true` a
//! missing facility (root, cc, mono, node) fails the test, otherwise it is skipped.

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::time::{Duration, Instant};

use lxprof::stacks::FrameKind;
use lxprof::symbolize::Symbolizer;

/// `Some(())` when everything in `needs` is there; panics under CI, else prints why not.
fn available(test: &str, needs: &[&str]) -> Option<()> {
    let mut missing = Vec::new();
    if unsafe { libc::geteuid() } != 0 {
        missing.push("root".to_string());
    }
    for tool in needs {
        let found = Command::new("sh")
            .args(["-c", &format!("command -v {tool}")])
            .stdout(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if !found {
            missing.push((*tool).to_string());
        }
    }
    if missing.is_empty() {
        return Some(());
    }
    let why = format!("{test}: needs {}", missing.join(", "));
    if std::env::var("CI").as_deref() == Ok("true") {
        panic!("CI=true but {why}");
    }
    eprintln!("skipping {why}");
    None
}

fn temp_dir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("lxprof-sym-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).expect("temp dir");
    d
}

/// A child that prints lines, then waits for its stdin to close; killed on drop.
struct Guard {
    child: Child,
    stdin: Option<ChildStdin>,
    stdout: BufReader<ChildStdout>,
}

impl Guard {
    fn spawn(mut cmd: Command) -> Guard {
        let mut child = cmd
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("spawn child");
        let stdin = child.stdin.take();
        let stdout = BufReader::new(child.stdout.take().expect("stdout"));
        Guard {
            child,
            stdin,
            stdout,
        }
    }

    fn line(&mut self) -> String {
        let mut l = String::new();
        self.stdout.read_line(&mut l).expect("read child");
        assert!(!l.is_empty(), "child ended early");
        l.trim().to_string()
    }

    fn send(&mut self, line: &str) {
        let stdin = self.stdin.as_mut().expect("stdin open");
        writeln!(stdin, "{line}").expect("write child");
        stdin.flush().expect("flush child");
    }

    /// Closes stdin and waits until the child has exited.
    fn finish(&mut self) {
        if let Some(mut s) = self.stdin.take() {
            let _ = s.write_all(b"\n");
        }
        let status = self.child.wait().expect("wait");
        assert!(status.success(), "{status}");
    }
}

impl Drop for Guard {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn wait_gone(pid: u32) {
    let t = Instant::now();
    while Path::new(&format!("/proc/{pid}")).exists() {
        assert!(
            t.elapsed() < Duration::from_secs(10),
            "pid {pid} still there"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// First perf-map entry whose name contains `needle`: (start, name).
fn perf_map_entry(path: &Path, needle: &str) -> Option<(u64, String)> {
    let text = std::fs::read_to_string(path).ok()?;
    text.lines().find_map(|l| {
        let mut f = l.splitn(3, ' ');
        let start = u64::from_str_radix(f.next()?.trim_start_matches("0x"), 16).ok()?;
        let _size = f.next()?;
        let name = f.next()?;
        name.contains(needle).then(|| (start, name.to_string()))
    })
}

/// Polls until the perf map at `path` names `needle`.
fn wait_perf_map_entry(path: &Path, needle: &str) -> (u64, String) {
    let t = Instant::now();
    loop {
        if let Some(e) = perf_map_entry(path, needle) {
            return e;
        }
        assert!(
            t.elapsed() < Duration::from_secs(20),
            "{needle} not in {}",
            path.display()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[path = "symbolize/debuginfo.rs"]
mod debuginfo;
#[path = "symbolize/jit.rs"]
mod jit;
#[path = "symbolize/kernel.rs"]
mod kernel;
#[path = "symbolize/native.rs"]
mod native;
