//! A sample workload for lxprof's tests, benchmark and demo.
//!
//! - `burn [--threads N] [--ms MS]`: N threads named `burner-1`… each burn MS
//!   ms of CPU; prints `{"pid":…,"cpu_ns":…}` (getrusage of the whole process).
//! - `threads [--threads N] [--ms MS] [--pages P] [--out FILE]`: N threads
//!   named `worker-1`… each burn MS ms of CPU, then touch P fresh pages (and
//!   unmap them); the main thread burns MS ms too; each thread reads its own
//!   CPU time (CLOCK_THREAD_CPUTIME_ID) as its last act; prints (or writes to
//!   FILE) `{"pid":…,"threads":[{"tid":…,"name":…,"cpu_ns":…},…]}`.
//! - `yield [--threads N] [--ms MS]`: N threads call sched_yield for MS ms of
//!   wall time (a context switch per call when threads share a CPU: the
//!   densest stream of scheduler records); prints `{"pid":…,"yields":…}`.
//! - `touch [--pages N] [--threads T]`: touches N fresh anonymous pages, split
//!   among T threads (default 1) touching at once; prints `{"pages":N}`.
//! - `chain`: fork+exec chain workload → /bin/sh → sleep (three processes).
//! - `mixed [--ms MS]`: CPU, page faults and context switches together.
//! - `alloc [--count N] [--mmap-mb M] [--wait-ms MS]`: after MS ms of sleep
//!   (default 0), N `libc::malloc` calls of sizes
//!   cycling through [`ALLOC_SIZES`], in batches of [`ALLOC_BATCH`], each
//!   block written then freed; then one anonymous mmap of M MiB (0: none);
//!   prints `{"pid":…,"mallocs":N,"malloc_bytes":…,"frees":N,"mmap_bytes":…,"ns":…}`
//!   (`ns`: wall time of the malloc loop).

use std::io::{Read, Write};
use std::time::{Duration, Instant};

fn arg(args: &[String], name: &str, default: u64) -> u64 {
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn thread_cpu_ns() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: valid out pointer.
    unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

fn rusage_cpu_ns() -> u64 {
    // SAFETY: zeroed rusage is valid; valid out pointer.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut ru) };
    let tv = |t: libc::timeval| t.tv_sec as u64 * 1_000_000_000 + t.tv_usec as u64 * 1000;
    tv(ru.ru_utime) + tv(ru.ru_stime)
}

/// Spins until this thread has used `ms` of CPU.
fn burn_cpu(ms: u64) -> u64 {
    let until = thread_cpu_ns() + ms * 1_000_000;
    let mut x = 0u64;
    while thread_cpu_ns() < until {
        for i in 0..1000u64 {
            x = x.wrapping_mul(6364136223846793005).wrapping_add(i);
        }
        std::hint::black_box(x);
    }
    x
}

fn burn(threads: u64, ms: u64) {
    let handles: Vec<_> = (1..=threads)
        .map(|i| {
            std::thread::Builder::new()
                .name(format!("burner-{i}"))
                .spawn(move || burn_cpu(ms))
                .expect("spawn burner thread")
        })
        .collect();
    for h in handles {
        let _ = h.join();
    }
    println!(
        "{{\"pid\":{},\"cpu_ns\":{}}}",
        std::process::id(),
        rusage_cpu_ns()
    );
}

fn gettid() -> u32 {
    // SAFETY: gettid has no preconditions.
    unsafe { libc::gettid() as u32 }
}

/// `{"tid":…,"name":…,"cpu_ns":…}` of the calling thread, its CPU read last.
fn thread_line(name: &str) -> String {
    let tid = gettid();
    let cpu = thread_cpu_ns();
    format!("{{\"tid\":{tid},\"name\":\"{name}\",\"cpu_ns\":{cpu}}}")
}

fn threads(n: u64, ms: u64, pages: u64, out: Option<&str>) {
    let handles: Vec<_> = (1..=n)
        .map(|i| {
            let name = format!("worker-{i}");
            std::thread::Builder::new()
                .name(name.clone())
                .spawn(move || {
                    burn_cpu(ms);
                    touch_and_unmap(pages);
                    thread_line(&name)
                })
                .expect("spawn worker thread")
        })
        .collect();
    burn_cpu(ms);
    let mut lines: Vec<String> = handles.into_iter().filter_map(|h| h.join().ok()).collect();
    lines.push(thread_line("main"));
    let json = format!(
        "{{\"pid\":{},\"threads\":[{}]}}\n",
        std::process::id(),
        lines.join(",")
    );
    match out {
        Some(path) => std::fs::write(path, json).expect("writing --out"),
        None => print!("{json}"),
    }
}

fn touch_and_unmap(pages: u64) {
    let len = (pages as usize).max(1) * 4096;
    // SAFETY: anonymous private mapping, checked below, unmapped at the end.
    let p = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            len,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
            -1,
            0,
        )
    };
    if p == libc::MAP_FAILED {
        eprintln!("mmap of {len} bytes failed");
        std::process::exit(1);
    }
    for i in 0..pages as usize {
        // SAFETY: inside the mapping.
        unsafe { p.cast::<u8>().add(i * 4096).write_volatile(1) };
    }
    // SAFETY: the mapping made above, no longer used.
    unsafe { libc::munmap(p, len) };
}

fn yield_storm(threads: u64, ms: u64) {
    let until = Instant::now() + Duration::from_millis(ms);
    let handles: Vec<_> = (0..threads.max(1))
        .map(|_| {
            std::thread::spawn(move || {
                let mut n = 0u64;
                while Instant::now() < until {
                    for _ in 0..100 {
                        // SAFETY: sched_yield has no preconditions.
                        unsafe { libc::sched_yield() };
                    }
                    n += 100;
                }
                n
            })
        })
        .collect();
    let yields: u64 = handles.into_iter().filter_map(|h| h.join().ok()).sum();
    println!("{{\"pid\":{},\"yields\":{yields}}}", std::process::id());
}

fn touch(pages: u64, threads: u64) {
    if threads > 1 {
        let each = pages / threads;
        let handles: Vec<_> = (0..threads)
            .map(|i| {
                let n = if i == 0 {
                    pages - each * (threads - 1)
                } else {
                    each
                };
                std::thread::spawn(move || touch_pages(n))
            })
            .collect();
        for h in handles {
            let _ = h.join();
        }
    } else {
        touch_pages(pages);
    }
    println!("{{\"pid\":{},\"pages\":{pages}}}", std::process::id());
}

fn touch_pages(pages: u64) {
    let len = (pages as usize) * 4096;
    // SAFETY: anonymous private mapping, checked below.
    let p = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            len.max(4096),
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
            -1,
            0,
        )
    };
    if p == libc::MAP_FAILED {
        eprintln!("mmap of {len} bytes failed");
        std::process::exit(1);
    }
    let base = p.cast::<u8>();
    for i in 0..pages as usize {
        // SAFETY: inside the mapping.
        unsafe { base.add(i * 4096).write_volatile(1) };
    }
}

fn chain() {
    let status = std::process::Command::new("/bin/sh")
        .args(["-c", "sleep 0.05; true"])
        .status();
    match status {
        Ok(s) if s.success() => println!("{{\"pid\":{}}}", std::process::id()),
        other => {
            eprintln!("chain failed: {other:?}");
            std::process::exit(1);
        }
    }
}

fn mixed(ms: u64) {
    let deadline = Instant::now() + Duration::from_millis(ms);
    // Context switches: two threads ping-pong a byte over pipes.
    let (mut a_r, mut a_w) = std::io::pipe().expect("pipe");
    let (mut b_r, mut b_w) = std::io::pipe().expect("pipe");
    let echo = std::thread::Builder::new()
        .name("echo".into())
        .spawn(move || {
            let mut b = [0u8; 1];
            while a_r.read_exact(&mut b).is_ok() && b[0] != 0 {
                if b_w.write_all(&b).is_err() {
                    break;
                }
            }
        })
        .expect("spawn echo");
    let cpu = std::thread::Builder::new()
        .name("cpu".into())
        .spawn(move || {
            while Instant::now() < deadline {
                burn_cpu(5);
                // Page faults: map, touch and unmap 64 pages.
                let v = vec![1u8; 64 * 4096];
                std::hint::black_box(&v);
            }
        })
        .expect("spawn cpu");
    let mut b = [1u8; 1];
    let mut round_trips = 0u64;
    while Instant::now() < deadline {
        if a_w.write_all(&b).is_err() || b_r.read_exact(&mut b).is_err() {
            break;
        }
        round_trips += 1;
    }
    let _ = a_w.write_all(&[0]);
    let _ = echo.join();
    let _ = cpu.join();
    println!(
        "{{\"pid\":{},\"round_trips\":{round_trips}}}",
        std::process::id()
    );
}

/// Sizes the `alloc` workload asks malloc for, in turn (all below glibc's
/// mmap threshold: they come from the heap).
const ALLOC_SIZES: [usize; 4] = [16, 100, 1000, 4000];
/// Blocks held at once by the `alloc` workload.
const ALLOC_BATCH: usize = 1000;

fn alloc(count: u64, mmap_mb: u64, wait_ms: u64) {
    std::thread::sleep(Duration::from_millis(wait_ms));
    let count = count as usize;
    let mut held: Vec<*mut libc::c_void> = Vec::with_capacity(ALLOC_BATCH);
    let mut bytes = 0u64;
    let started = Instant::now();
    for i in 0..count {
        let size = ALLOC_SIZES[i % ALLOC_SIZES.len()];
        // SAFETY: plain malloc; checked for NULL; written inside its size.
        let p = unsafe { libc::malloc(size) };
        if p.is_null() {
            eprintln!("malloc({size}) failed");
            std::process::exit(1);
        }
        unsafe { p.cast::<u8>().write_volatile(1) };
        held.push(std::hint::black_box(p));
        bytes += size as u64;
        if held.len() == ALLOC_BATCH || i + 1 == count {
            for p in held.drain(..) {
                // SAFETY: each pointer came from malloc above, freed once.
                unsafe { libc::free(p) };
            }
        }
    }
    let ns = started.elapsed().as_nanos();
    let mmap_bytes = (mmap_mb as usize) << 20;
    if mmap_bytes > 0 {
        // SAFETY: anonymous private mapping, checked, never touched.
        let p = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                mmap_bytes,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                -1,
                0,
            )
        };
        if p == libc::MAP_FAILED {
            eprintln!("mmap of {mmap_bytes} bytes failed");
            std::process::exit(1);
        }
        // SAFETY: the mapping just made, unmapped once.
        unsafe { libc::munmap(p, mmap_bytes) };
    }
    println!(
        "{{\"pid\":{},\"mallocs\":{count},\"malloc_bytes\":{bytes},\"frees\":{count},\"mmap_bytes\":{mmap_bytes},\"ns\":{ns}}}",
        std::process::id()
    );
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("burn") => burn(arg(&args, "--threads", 2), arg(&args, "--ms", 300)),
        Some("threads") => threads(
            arg(&args, "--threads", 2),
            arg(&args, "--ms", 150),
            arg(&args, "--pages", 10_000),
            args.iter()
                .position(|a| a == "--out")
                .and_then(|i| args.get(i + 1))
                .map(String::as_str),
        ),
        Some("yield") => yield_storm(arg(&args, "--threads", 4), arg(&args, "--ms", 1000)),
        Some("touch") => touch(arg(&args, "--pages", 1000), arg(&args, "--threads", 1)),
        Some("chain") => chain(),
        Some("mixed") => mixed(arg(&args, "--ms", 1000)),
        Some("alloc") => alloc(
            arg(&args, "--count", 100_000),
            arg(&args, "--mmap-mb", 0),
            arg(&args, "--wait-ms", 0),
        ),
        Some("sleep") => std::thread::sleep(Duration::from_millis(arg(&args, "--ms", 1000))),
        _ => {
            eprintln!("usage: workload burn|threads|yield|touch|chain|mixed|alloc|sleep [options]");
            std::process::exit(2);
        }
    }
}
