//! Kernel addresses from kallsyms, checked against perf.

use super::*;

/// A function's address from /proc/kallsyms resolves to its name.
#[test]
fn kallsyms_function_resolves() {
    if available("kallsyms_function_resolves", &[]).is_none() {
        return;
    }
    let text = std::fs::read_to_string("/proc/kallsyms").expect("kallsyms");
    let addr = text
        .lines()
        .find_map(|l| {
            let mut f = l.split_whitespace();
            let a = f.next()?;
            let _t = f.next()?;
            (f.next()? == "vfs_read").then(|| u64::from_str_radix(a, 16).ok())?
        })
        .expect("vfs_read in kallsyms");
    assert_ne!(addr, 0, "kallsyms hides addresses");
    let mut s = Symbolizer::new();
    let t = Instant::now();
    let f = &s.symbolize_kernel(&[addr + 1])[0];
    eprintln!("first symbolize_kernel (loads kallsyms): {:?}", t.elapsed());
    let t = Instant::now();
    let again = s.symbolize_kernel(&[addr + 1, addr + 2]);
    eprintln!("next symbolize_kernel (2 addresses): {:?}", t.elapsed());
    assert_eq!(again[1].name, "vfs_read");
    assert_eq!(f.kind, FrameKind::Kernel);
    assert_eq!(f.name, "vfs_read");
    assert_eq!(f.module.as_deref(), Some("[kernel]"));
}

/// Kernel IPs of real samples (`perf record -g` of a syscall-heavy `dd`): the
/// Symbolizer names them as perf does (aliases at one address may differ).
#[test]
fn kernel_samples_match_perf_script() {
    if available("kernel_samples_match_perf_script", &["perf", "dd"]).is_none() {
        return;
    }
    let dir = temp_dir("kperf");
    let data = dir.join("perf.data");
    let st = Command::new("perf")
        .args(["record", "-q", "-F", "999", "-g", "-o"])
        .arg(&data)
        .args([
            "--",
            "dd",
            "if=/dev/zero",
            "of=/dev/null",
            "bs=4k",
            "count=200000",
        ])
        .stderr(Stdio::null())
        .status()
        .expect("perf record");
    assert!(st.success());
    let out = Command::new("perf")
        .args(["script", "-F", "ip,sym,dso", "-i"])
        .arg(&data)
        .stderr(Stdio::null())
        .output()
        .expect("perf script");
    let _ = std::fs::remove_dir_all(&dir);
    let text = String::from_utf8_lossy(&out.stdout);
    let kern: Vec<(u64, String)> = text
        .lines()
        .filter_map(|l| {
            let (ip, rest) = l.trim().split_once(' ')?;
            let ip = u64::from_str_radix(ip, 16).ok()?;
            let (sym, dso) = rest.rsplit_once(" (")?;
            (dso.starts_with("[kernel") && sym != "[unknown]").then(|| (ip, sym.to_string()))
        })
        .collect();
    assert!(kern.len() > 10, "few kernel frames:\n{text}");
    let mut s = Symbolizer::new();
    let t = Instant::now();
    let ours = s.symbolize_kernel(&kern.iter().map(|f| f.0).collect::<Vec<_>>());
    let took = t.elapsed();
    let same = kern
        .iter()
        .zip(&ours)
        .filter(|(f, o)| f.1 == o.name)
        .count();
    eprintln!("kernel cross-check: {same}/{} equal, {took:?}", kern.len());
    assert!(same * 10 >= kern.len() * 9, "{same} of {}", kern.len());
}
