//! Native code: the test binary itself, a C child after exit and deletion, cost.

use super::*;

#[inline(never)]
fn integration_marker_fn() -> u32 {
    std::hint::black_box(42)
}

#[test]
fn own_rust_function_resolves() {
    if available("own_rust_function_resolves", &[]).is_none() {
        return;
    }
    let pid = std::process::id();
    let mut s = Symbolizer::new();
    s.observe_process(pid).expect("observe self");
    let addr = integration_marker_fn as *const () as u64;
    let f = &s.symbolize_user(pid, &[addr + 1])[0];
    let exe = std::env::current_exe().expect("exe");
    let stripped = !std::fs::read(&exe)
        .expect("read exe")
        .windows(8)
        .any(|w| w == b".symtab\0");
    if stripped {
        // The workspace's release profile has `strip = true`: nothing to name.
        eprintln!("test binary stripped: {f:?}");
        assert_eq!(f.kind, FrameKind::Unknown);
        assert!(
            f.module
                .as_deref()
                .is_some_and(|m| m.starts_with("symbolize"))
        );
        return;
    }
    assert_eq!(f.kind, FrameKind::Native);
    assert_eq!(f.name, "symbolize::native::integration_marker_fn", "{f:?}");
}

const C_PROGRAM: &str = r#"
#include <stdio.h>
#include <unistd.h>
__attribute__((noinline)) long burn_cpu_here(long n) {
volatile long x = 0;
for (long i = 0; i < n; i++) x += i;
return x;
}
int main(void) {
burn_cpu_here(1000);
printf("%p\n", (void *)burn_cpu_here);
fflush(stdout);
char c;
read(0, &c, 1);
return 0;
}
"#;

/// The C program's own function address (printed by itself) resolves after it exited
/// and after its executable was deleted: the snapshot holds the file.
#[test]
fn c_child_after_exit_and_deletion() {
    if available("c_child_after_exit_and_deletion", &["cc"]).is_none() {
        return;
    }
    let dir = temp_dir("c");
    let exe = dir.join("cprog");
    std::fs::write(dir.join("prog.c"), C_PROGRAM).expect("write C");
    let st = Command::new("cc")
        .args(["-O1", "-fno-omit-frame-pointer", "-o"])
        .arg(&exe)
        .arg(dir.join("prog.c"))
        .status()
        .expect("cc");
    assert!(st.success());
    let mut child = Guard::spawn(Command::new(&exe));
    let addr = u64::from_str_radix(child.line().trim_start_matches("0x"), 16).expect("addr");
    let pid = child.child.id();
    let mut s = Symbolizer::new();
    let t = Instant::now();
    s.observe_process(pid).expect("observe");
    eprintln!("observe_process(C child): {:?}", t.elapsed());
    child.finish();
    wait_gone(pid);
    std::fs::remove_dir_all(&dir).expect("delete the executable");
    let frames = s.symbolize_user(pid, &[addr, addr + 4]);
    for f in &frames {
        assert_eq!(f.name, "burn_cpu_here", "{f:?}");
        assert_eq!(f.module.as_deref(), Some("cprog"));
        assert_eq!(f.kind, FrameKind::Native);
    }
}

/// Cost of symbolizing many real code addresses of a live process (every 256th byte
/// of its libraries' executable mappings), printed for the report.
#[test]
fn cost_of_many_addresses() {
    if available("cost_of_many_addresses", &[]).is_none() {
        return;
    }
    let pid = std::process::id();
    let maps = std::fs::read_to_string(format!("/proc/{pid}/maps")).expect("maps");
    let addrs: Vec<u64> = lxprof::symbolize::process::parse_maps(&maps)
        .iter()
        .filter(|m| m.is_file() && !m.module_name().starts_with("symbolize"))
        .flat_map(|m| (m.start..m.end).step_by(256))
        .take(20_000)
        .collect();
    let mut s = Symbolizer::new();
    s.observe_process(pid).expect("observe");
    let t = Instant::now();
    let frames = s.symbolize_user(pid, &addrs);
    let first = t.elapsed();
    let t = Instant::now();
    let again = s.symbolize_user(pid, &addrs);
    let second = t.elapsed();
    let known = frames
        .iter()
        .filter(|f| f.kind == FrameKind::Native)
        .count();
    eprintln!(
        "symbolize_user: {} addresses, {known} named: first {first:?} (parsing), again {second:?}",
        addrs.len()
    );
    assert_eq!(frames, again);
    assert!(known * 2 > addrs.len(), "{known} of {}", addrs.len());
}
