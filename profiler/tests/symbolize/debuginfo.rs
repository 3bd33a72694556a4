//! Native names that only a separate debug file holds: Debian's `mono-sgen` is stripped,
//! its `sgen_*` / `mono_*` symbols are in `/usr/lib/debug` (mono-runtime-dbg).

use super::*;

/// `(vaddr, size, name)` of the defined code symbols `nm` lists in `file`.
fn nm_code_symbols(file: &Path) -> Vec<(u64, u64, String)> {
    let out = Command::new("nm")
        .args(["-S", "--defined-only"])
        .arg(file)
        .output()
        .expect("nm");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            let [addr, size, kind, name] = f.as_slice() else {
                return None;
            };
            matches!(*kind, "T" | "t").then_some(())?;
            Some((
                u64::from_str_radix(addr, 16).ok()?,
                u64::from_str_radix(size, 16).ok()?,
                name.to_string(),
            ))
        })
        .collect()
}

/// `(vaddr, file offset, memsz)` of the PT_LOAD segments of `file` (`readelf -lW`).
fn load_segments(file: &Path) -> Vec<(u64, u64, u64)> {
    let out = Command::new("readelf")
        .arg("-lW")
        .arg(file)
        .output()
        .expect("readelf");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            (f.first() == Some(&"LOAD")).then_some(())?;
            let hex = |s: &str| u64::from_str_radix(s.trim_start_matches("0x"), 16).ok();
            Some((hex(f.get(2)?)?, hex(f.get(1)?)?, hex(f.get(5)?)?))
        })
        .collect()
}

/// The stripped `mono-sgen` of a Mono process that has exited: functions named only by its
/// debug file (found through `.gnu_debuglink` under `/usr/lib/debug`, CRC-checked by
/// blazesym) resolve to their `nm` names; their addresses come from `nm` of the debug file,
/// the binary's program headers and the process's `/proc/PID/maps`. GCC's clones of a
/// function are named after the function itself (from DWARF), which perf does not do.
#[test]
fn mono_sgen_functions_from_the_debug_file_after_exit() {
    if available(
        "mono_sgen_functions_from_the_debug_file_after_exit",
        &["mono", "nm", "readelf"],
    )
    .is_none()
    {
        return;
    }
    let dir = temp_dir("mono-dbg");
    std::fs::write(
        dir.join("w.cs"),
        "class W { static void Main() { System.Console.WriteLine(\"up\"); \
         System.Console.Out.Flush(); System.Console.ReadLine(); } }",
    )
    .expect("write cs");
    let exe = dir.join("w.exe");
    let st = Command::new("mcs")
        .arg(format!("-out:{}", exe.display()))
        .arg(dir.join("w.cs"))
        .stdout(Stdio::null())
        .status()
        .expect("mcs");
    assert!(st.success());
    let mut child = Guard::spawn({
        let mut c = Command::new("mono");
        c.arg(&exe);
        c
    });
    child.line();
    let pid = child.child.id();
    let maps = std::fs::read_to_string(format!("/proc/{pid}/maps")).expect("maps");
    let text = lxprof::symbolize::process::parse_maps(&maps)
        .into_iter()
        .find(|m| m.is_file() && m.path.ends_with("/mono-sgen"))
        .expect("mono-sgen text mapping");
    let binary = std::fs::canonicalize(&text.path).expect("mono-sgen path");
    let debug_file = Path::new("/usr/lib/debug").join(binary.strip_prefix("/").expect("abs"));
    if !debug_file.exists() {
        let why = format!("no debug file {} (mono-runtime-dbg)", debug_file.display());
        assert_ne!(
            std::env::var("CI").as_deref(),
            Ok("true"),
            "CI=true but {why}"
        );
        eprintln!("skipping: {why}");
        return;
    }
    assert!(
        nm_code_symbols(&binary).is_empty(),
        "{} is expected stripped",
        binary.display()
    );
    let mut s = Symbolizer::new();
    s.observe_process(pid).expect("observe");
    child.finish();
    wait_gone(pid);
    let _ = std::fs::remove_dir_all(&dir);

    let segments = load_segments(&binary);
    let symbols = nm_code_symbols(&debug_file);
    // Names per address: aliases (two names, one address) are all acceptable.
    let mut by_addr: std::collections::BTreeMap<u64, Vec<String>> = Default::default();
    for (v, _, n) in &symbols {
        by_addr.entry(*v).or_default().push(n.clone());
    }
    // (absolute address in the exited process, vaddr in the file, name)
    let wanted: Vec<(u64, u64, &str)> = symbols
        .iter()
        .filter(|(_, size, n)| *size > 8 && (n.starts_with("sgen_") || n.starts_with("mono_")))
        .filter_map(|(v, _, n)| {
            let (seg_v, seg_off, _) = segments
                .iter()
                .find(|(sv, _, len)| *sv <= *v && *v < sv + len)?;
            let file_off = v - seg_v + seg_off;
            let in_text =
                text.offset <= file_off && file_off < text.offset + (text.end - text.start);
            in_text.then(|| (text.start + file_off - text.offset, *v, n.as_str()))
        })
        .collect();
    assert!(
        wanted.iter().any(|w| w.2.starts_with("sgen_")) && wanted.len() > 100,
        "{} sgen_/mono_ functions found in the text mapping",
        wanted.len()
    );
    let addrs: Vec<u64> = wanted.iter().map(|(a, _, _)| a + 1).collect();
    let t = Instant::now();
    let frames = s.symbolize_user(pid, &addrs);
    let took = t.elapsed();
    let mut same = 0;
    for ((addr, vaddr, name), f) in wanted.iter().zip(&frames) {
        // GCC clones (`f.part.0`, `f.cold`, `f.isra.0`, `f.constprop.0`) are named by
        // their function (`f`) through DWARF: that is what classification rules match.
        let clone_of = |a: &str| a.split_once('.').is_some_and(|(base, _)| base == f.name);
        if by_addr[vaddr].iter().any(|a| *a == f.name || clone_of(a)) {
            assert_eq!(f.module.as_deref(), Some("mono-sgen"), "{f:?}");
            assert_eq!(f.kind, FrameKind::Native, "{f:?}");
            same += 1;
        } else {
            eprintln!("{addr:x}: {name} named {f:?}");
        }
    }
    eprintln!(
        "mono-sgen debug file: {same}/{} sgen_/mono_ functions named, {took:?}",
        wanted.len()
    );
    assert!(
        same * 100 >= wanted.len() * 99,
        "{same} of {}",
        wanted.len()
    );
}
