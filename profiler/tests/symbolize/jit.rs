//! JIT code named by perf maps: Mono, Node, JVM; private namespaces; perf cross-check.

use super::*;
use std::os::fd::AsRawFd;

const CS_PROGRAM: &str = r#"
using System;
class P {
static long CrunchNumbersJitted(int n) { long s = 0; for (int i = 0; i < n; i++) s += i * 3; return s; }
static void Main() {
    Console.WriteLine(CrunchNumbersJitted(100000));
    Console.Out.Flush();
    Console.ReadLine();
}
}
"#;

fn build_mono(dir: &Path) -> PathBuf {
    std::fs::write(dir.join("p.cs"), CS_PROGRAM).expect("write cs");
    let exe = dir.join("p.exe");
    let st = Command::new("mcs")
        .arg(format!("-out:{}", exe.display()))
        .arg(dir.join("p.cs"))
        .stdout(Stdio::null())
        .status()
        .expect("mcs");
    assert!(st.success());
    exe
}

/// `MONO_ENV_OPTIONS=--jitmap` (the env form lxprof sets) writes the perf map; the C#
/// method is named from it after the process exited and its map file was deleted.
#[test]
fn mono_method_after_exit() {
    if available("mono_method_after_exit", &["mono", "mcs"]).is_none() {
        return;
    }
    let dir = temp_dir("mono");
    let exe = build_mono(&dir);
    let mut cmd = Command::new("mono");
    cmd.arg(&exe)
        .envs(lxprof::runtime_env::profiling_env("mono"));
    let mut child = Guard::spawn(cmd);
    child.line();
    let pid = child.child.id();
    let map = PathBuf::from(format!("/proc/{pid}/root/tmp/perf-{pid}.map"));
    let (start, name) = wait_perf_map_entry(&map, "CrunchNumbersJitted");
    let mut s = Symbolizer::new();
    let t = Instant::now();
    s.observe_process(pid).expect("observe");
    eprintln!(
        "observe_process(mono): {:?}, {} perf map entries",
        t.elapsed(),
        s.perf_map_len(pid)
    );
    child.finish();
    wait_gone(pid);
    let _ = std::fs::remove_file(format!("/tmp/perf-{pid}.map"));
    let _ = std::fs::remove_dir_all(&dir);
    let f = &s.symbolize_user(pid, &[start + 1])[0];
    assert_eq!(f.kind, FrameKind::Jit, "{f:?}");
    assert_eq!(f.name, name);
    assert!(f.name.contains("P:CrunchNumbersJitted"), "{f:?}");
}

/// The Lambda case: the process has a private /tmp (tmpfs in its own mount namespace,
/// holding its program too) and its own pid namespace (it writes /tmp/perf-1.map). Nothing is on the host's
/// /tmp; it is still symbolized after exit, when its namespaces are gone.
#[test]
fn mono_in_private_namespaces_after_exit() {
    if available(
        "mono_in_private_namespaces_after_exit",
        &["mono", "mcs", "unshare"],
    )
    .is_none()
    {
        return;
    }
    let dir = temp_dir("mono-ns");
    let exe = build_mono(&dir);
    let mut cmd = Command::new("unshare");
    cmd.args(["-m", "-p", "-f", "--mount-proc", "sh", "-c"])
        .arg(format!(
            "exec 3<{} && mount -t tmpfs none /tmp && mkdir /tmp/task && \
             cat <&3 >/tmp/task/p.exe && exec 3<&- && exec mono --jitmap /tmp/task/p.exe",
            exe.display()
        ));
    let mut child = Guard::spawn(cmd);
    child.line();
    let unshare_pid = child.child.id();
    let children =
        std::fs::read_to_string(format!("/proc/{unshare_pid}/task/{unshare_pid}/children"))
            .expect("children of unshare");
    let pid: u32 = children.trim().parse().expect("one child: mono");
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("status");
    let ns_pid = lxprof::symbolize::process::namespace_pid(&status, pid);
    assert_ne!(ns_pid, pid, "mono runs in its own pid namespace");
    let map = PathBuf::from(format!("/proc/{pid}/root/tmp/perf-{ns_pid}.map"));
    let (start, name) = wait_perf_map_entry(&map, "CrunchNumbersJitted");
    assert!(
        !Path::new(&format!("/tmp/perf-{ns_pid}.map")).exists()
            || perf_map_entry(Path::new(&format!("/tmp/perf-{ns_pid}.map")), &name).is_none(),
        "the map must not be visible on the host /tmp"
    );
    let mut s = Symbolizer::new();
    s.observe_process(pid).expect("observe");
    child.finish();
    wait_gone(pid);
    let _ = std::fs::remove_dir_all(&dir);
    let f = &s.symbolize_user(pid, &[start + 1])[0];
    assert_eq!(f.kind, FrameKind::Jit, "{f:?}");
    assert_eq!(f.name, name);
}

/// Observed at fork, before it enters a new mount namespace with a private /tmp (as a
/// sandbox does between fork and exec): a refresh while it runs follows it there.
#[test]
fn mono_observed_before_unshare() {
    if available("mono_observed_before_unshare", &["mono", "mcs", "unshare"]).is_none() {
        return;
    }
    let dir = temp_dir("mono-late-ns");
    let exe = build_mono(&dir);
    let mut cmd = Command::new("sh");
    cmd.arg("-c").arg(format!(
        "read x && exec 3<{} && exec unshare -m sh -c 'mount -t tmpfs none /tmp && \
         mkdir /tmp/task && cat <&3 >/tmp/task/p.exe && exec 3<&- && \
         exec mono --jitmap /tmp/task/p.exe'",
        exe.display()
    ));
    let mut child = Guard::spawn(cmd);
    let pid = child.child.id();
    let mut s = Symbolizer::new();
    s.observe_process(pid).expect("observe the shell");
    child.send("go");
    child.line();
    let map = PathBuf::from(format!("/proc/{pid}/root/tmp/perf-{pid}.map"));
    let (start, name) = wait_perf_map_entry(&map, "CrunchNumbersJitted");
    assert!(perf_map_entry(Path::new(&format!("/tmp/perf-{pid}.map")), &name).is_none());
    s.refresh(pid).expect("refresh while mono runs");
    child.finish();
    wait_gone(pid);
    let _ = std::fs::remove_dir_all(&dir);
    let f = &s.symbolize_user(pid, &[start + 1])[0];
    assert_eq!((f.kind, f.name.as_str()), (FrameKind::Jit, name.as_str()));
}

const CS_LOOP: &str = r#"
using System;
class P {
static long CrunchNumbersJitted(int n) { long s = 0; for (int i = 0; i < n; i++) s += i * 3; return s; }
static void Main() {
    Console.WriteLine("ready");
    Console.Out.Flush();
    long t = 0; var sw = System.Diagnostics.Stopwatch.StartNew();
    while (sw.ElapsedMilliseconds < 2500) t += CrunchNumbersJitted(100000);
    Console.WriteLine(t);
    Console.Out.Flush();
    Console.ReadLine();
}
}
"#;

/// Real instruction pointers of a sampled Mono process (`perf record -g`): every JIT
/// frame perf names is named the same by the Symbolizer, after exit, and so are
/// (nearly) all native frames of mono-sgen.
#[test]
fn mono_perf_samples_match_perf_script() {
    if available(
        "mono_perf_samples_match_perf_script",
        &["mono", "mcs", "perf"],
    )
    .is_none()
    {
        return;
    }
    let dir = temp_dir("mono-perf");
    std::fs::write(dir.join("p.cs"), CS_LOOP).expect("write cs");
    let exe = dir.join("p.exe");
    let st = Command::new("mcs")
        .arg(format!("-out:{}", exe.display()))
        .arg(dir.join("p.cs"))
        .stdout(Stdio::null())
        .status()
        .expect("mcs");
    assert!(st.success());
    let mut cmd = Command::new("mono");
    cmd.arg(&exe)
        .envs(lxprof::runtime_env::profiling_env("mono"));
    let mut child = Guard::spawn(cmd);
    child.line();
    let pid = child.child.id();
    let mut s = Symbolizer::new();
    s.observe_process(pid).expect("observe");
    let data = dir.join("perf.data");
    perf_record(pid, &data);
    child.line();
    s.refresh(pid).expect("refresh before exit");
    let maps = std::fs::read_to_string(format!("/proc/{pid}/maps")).expect("maps");
    let mono_text = lxprof::symbolize::process::parse_maps(&maps)
        .into_iter()
        .find(|m| m.path.ends_with("/mono-sgen"))
        .expect("mono-sgen text mapping");
    child.finish();
    wait_gone(pid);
    let out = Command::new("perf")
        .args(["script", "-F", "ip,sym,dso", "-i"])
        .arg(&data)
        .stderr(Stdio::null())
        .output()
        .expect("perf script");
    let text = String::from_utf8_lossy(&out.stdout);
    let _ = std::fs::remove_file(format!("/tmp/perf-{pid}.map"));
    let _ = std::fs::remove_dir_all(&dir);
    // "\t 40530658 P:CrunchNumbersJitted (int) (/tmp/perf-N.map)"
    let jit: Vec<(u64, String)> = text
        .lines()
        .filter_map(|l| {
            let l = l.trim();
            let (ip, rest) = l.split_once(' ')?;
            let ip = u64::from_str_radix(ip, 16).ok()?;
            let (sym, dso) = rest.rsplit_once(" (")?;
            dso.contains("/perf-").then(|| (ip, sym.to_string()))
        })
        .collect();
    assert!(!jit.is_empty(), "no JIT frames sampled:\n{text}");
    let ours = s.symbolize_user(pid, &jit.iter().map(|f| f.0).collect::<Vec<_>>());
    for (f, o) in jit.iter().zip(&ours) {
        assert_eq!(
            (o.name.as_str(), o.kind),
            (f.1.as_str(), FrameKind::Jit),
            "{:x}",
            f.0
        );
    }
    assert!(jit.iter().any(|f| f.1.contains("CrunchNumbersJitted")));
    // perf prints mono-sgen frames as file-relative addresses (its text segment has
    // vaddr == offset): back to absolute through the mapping. Names come from the
    // separate debug file (mono-runtime-dbg, found by build id).
    let native: Vec<(u64, String)> = text
        .lines()
        .filter_map(|l| {
            let (ip, rest) = l.trim().split_once(' ')?;
            let rel = u64::from_str_radix(ip, 16).ok()?;
            let (sym, dso) = rest.rsplit_once(" (")?;
            (dso.ends_with("/mono-sgen)") && sym != "[unknown]")
                .then(|| (mono_text.start - mono_text.offset + rel, sym.to_string()))
        })
        .collect();
    assert!(!native.is_empty(), "no mono-sgen frames sampled:\n{text}");
    let ours = s.symbolize_user(pid, &native.iter().map(|f| f.0).collect::<Vec<_>>());
    let same = native
        .iter()
        .zip(&ours)
        .filter(|(f, o)| f.1 == o.name && o.module.as_deref() == Some("mono-sgen"))
        .count();
    eprintln!("perf cross-check: mono-sgen {same}/{} equal", native.len());
    assert!(same * 10 >= native.len() * 9, "{same} of {}", native.len());
    eprintln!("perf cross-check: {} JIT frames, all equal", jit.len());
}

const JAVA_PROGRAM: &str = r#"
public class Hot {
static long crunchJavaJitted(int n) { long s = 0; for (int i = 0; i < n; i++) s += i * 3; return s; }
public static void main(String[] a) throws Exception {
    long t = 0;
    for (int k = 0; k < 20000; k++) t += crunchJavaJitted(10000);
    System.out.println(t);
    System.out.flush();
    System.in.read();
}
}
"#;

/// A JVM with `JAVA_TOOL_OPTIONS=... -XX:+DumpPerfMapAtExit` (the env form lxprof sets)
/// writes its map only at exit, into its private /tmp: observed before, the Symbolizer
/// still finds the map after the process and its mount namespace are gone.
#[test]
fn jvm_map_written_at_exit_in_private_tmp() {
    if available(
        "jvm_map_written_at_exit_in_private_tmp",
        &["java", "javac", "unshare"],
    )
    .is_none()
    {
        return;
    }
    let dir = temp_dir("jvm");
    std::fs::write(dir.join("Hot.java"), JAVA_PROGRAM).expect("write java");
    let st = Command::new("javac")
        .arg(dir.join("Hot.java"))
        .status()
        .expect("javac");
    assert!(st.success());
    let mut cmd = Command::new("unshare");
    cmd.args(["-m", "-p", "-f", "--mount-proc", "sh", "-c"])
        .arg(format!(
            "exec 3<{} && mount -t tmpfs none /tmp && mkdir /tmp/task && \
             cat <&3 >/tmp/task/Hot.class && exec 3<&- && exec java -Xmx64m -cp /tmp/task Hot",
            dir.join("Hot.class").display()
        ))
        .envs(lxprof::runtime_env::profiling_env("java"))
        .stderr(Stdio::null());
    let mut child = Guard::spawn(cmd);
    child.line();
    let unshare_pid = child.child.id();
    let children =
        std::fs::read_to_string(format!("/proc/{unshare_pid}/task/{unshare_pid}/children"))
            .expect("children of unshare");
    let pid: u32 = children.trim().parse().expect("one child: java");
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("status");
    let ns_pid = lxprof::symbolize::process::namespace_pid(&status, pid);
    let tmp = std::fs::File::open(format!("/proc/{pid}/root/tmp")).expect("private /tmp");
    let map_name = format!("perf-{ns_pid}.map");
    let map_via_tmp = PathBuf::from(format!("/proc/self/fd/{}/{map_name}", tmp.as_raw_fd()));
    assert!(!map_via_tmp.exists(), "the JVM writes its map only at exit");
    let mut s = Symbolizer::new();
    s.observe_process(pid).expect("observe");
    child.finish();
    wait_gone(pid);
    let _ = std::fs::remove_dir_all(&dir);
    let (start, name) = perf_map_entry(&map_via_tmp, "crunchJavaJitted")
        .expect("JVM map written at exit, in the gone namespace's /tmp");
    let f = &s.symbolize_user(pid, &[start + 1])[0];
    assert_eq!(f.kind, FrameKind::Jit, "{f:?}");
    assert_eq!(f.name, name);
}

const JS_PROGRAM: &str = r#"
function hotLoopForPerfMap(n) { let s = 0; for (let i = 0; i < n; i++) s += i % 7; return s; }
let t = 0; for (let k = 0; k < 2000; k++) t += hotLoopForPerfMap(10000);
console.log(t);
process.stdin.on('data', () => process.exit(0));
process.stdin.on('end', () => process.exit(0));
"#;

/// `NODE_OPTIONS=--perf-basic-prof-only-functions …` (what lxprof sets) names JS functions.
#[test]
fn node_function_after_exit() {
    if available("node_function_after_exit", &["node"]).is_none() {
        return;
    }
    let dir = temp_dir("node");
    let script = dir.join("hot.js");
    std::fs::write(&script, JS_PROGRAM).expect("write js");
    let mut cmd = Command::new("node");
    cmd.arg(&script)
        .envs(lxprof::runtime_env::profiling_env("node"));
    let mut child = Guard::spawn(cmd);
    child.line();
    let pid = child.child.id();
    let map = PathBuf::from(format!("/proc/{pid}/root/tmp/perf-{pid}.map"));
    let (start, name) = wait_perf_map_entry(&map, "hotLoopForPerfMap");
    let mut s = Symbolizer::new();
    let t = Instant::now();
    s.observe_process(pid).expect("observe");
    eprintln!(
        "observe_process(node): {:?}, {} perf map entries",
        t.elapsed(),
        s.perf_map_len(pid)
    );
    child.finish();
    wait_gone(pid);
    let _ = std::fs::remove_file(format!("/tmp/perf-{pid}.map"));
    let _ = std::fs::remove_dir_all(&dir);
    let f = &s.symbolize_user(pid, &[start + 1])[0];
    assert_eq!(f.kind, FrameKind::Jit, "{f:?}");
    assert_eq!(f.name, name);
    assert!(f.name.starts_with("JS:"), "{f:?}");
}

const JS_LOOP: &str = r#"
function hotLoopForPerfMap(n) { let s = 0; for (let i = 0; i < n; i++) s += i % 7; return s; }
console.log("ready");
const t0 = Date.now(); let t = 0;
while (Date.now() - t0 < 2500) t += hotLoopForPerfMap(10000);
console.log(t);
process.stdin.on('data', () => process.exit(0));
process.stdin.on('end', () => process.exit(0));
"#;

/// Real instruction pointers of a sampled Node process (`perf record -g`): every frame
/// perf names from the perf map is named the same by the Symbolizer, after exit.
#[test]
fn node_perf_samples_match_perf_script() {
    if available("node_perf_samples_match_perf_script", &["node", "perf"]).is_none() {
        return;
    }
    let dir = temp_dir("node-perf");
    let script = dir.join("loop.js");
    std::fs::write(&script, JS_LOOP).expect("write js");
    let mut cmd = Command::new("node");
    cmd.arg(&script)
        .envs(lxprof::runtime_env::profiling_env("node"));
    let mut child = Guard::spawn(cmd);
    child.line();
    let pid = child.child.id();
    let mut s = Symbolizer::new();
    s.observe_process(pid).expect("observe");
    let data = dir.join("perf.data");
    perf_record(pid, &data);
    child.line();
    child.finish();
    wait_gone(pid);
    let out = Command::new("perf")
        .args(["script", "-F", "ip,sym,dso", "-i"])
        .arg(&data)
        .stderr(Stdio::null())
        .output()
        .expect("perf script");
    let text = String::from_utf8_lossy(&out.stdout);
    let _ = std::fs::remove_file(format!("/tmp/perf-{pid}.map"));
    let _ = std::fs::remove_dir_all(&dir);
    let jit: Vec<(u64, String)> = text
        .lines()
        .filter_map(|l| {
            let (ip, rest) = l.trim().split_once(' ')?;
            let ip = u64::from_str_radix(ip, 16).ok()?;
            let (sym, dso) = rest.rsplit_once(" (")?;
            dso.contains("/perf-").then(|| (ip, sym.to_string()))
        })
        .collect();
    assert!(!jit.is_empty(), "no JIT frames sampled:\n{text}");
    let ours = s.symbolize_user(pid, &jit.iter().map(|f| f.0).collect::<Vec<_>>());
    let same = jit
        .iter()
        .zip(&ours)
        .filter(|(f, o)| o.kind == FrameKind::Jit && f.1 == o.name)
        .count();
    eprintln!(
        "node perf cross-check: {same}/{} JIT frames equal",
        jit.len()
    );
    // hotLoopForPerfMap may be inlined into the optimized top-level loop (OSR): any
    // JS-named frame will do; the point is that both name every frame alike.
    assert!(jit.iter().any(|f| f.1.starts_with("JS:")), "{jit:?}");
    assert_eq!(same, jit.len());
}

/// `perf record -g` of `pid` for one second into `data` (the reference the
/// tests compare lxprof's symbols with).
fn perf_record(pid: u32, data: &std::path::Path) {
    let st = Command::new("perf")
        .args([
            "record",
            "-q",
            "-F",
            "499",
            "-g",
            "-p",
            &pid.to_string(),
            "-o",
        ])
        .arg(data)
        .args(["--", "sleep", "1"])
        .stderr(Stdio::null())
        .status()
        .expect("perf record");
    assert!(st.success());
}
