//! Shared helpers: fixture binaries, deployment packages, the facility check, an observer that
//! records everything, and the leftover check.
use lxprof_emulator::{
    EmulatorConfig, InvocationMetrics, LambdaReport, PhaseEvent, Role, RunObserver,
};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Duration;

static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// Serializes the tests of this binary (each has its own runtime: an async lock).
pub async fn serial() -> tokio::sync::MutexGuard<'static, ()> {
    SERIAL.lock().await
}

/// `<target>/debug` (the test binary lives in `<target>/debug/deps`).
pub fn target_debug() -> PathBuf {
    let exe = std::env::current_exe().expect("current_exe");
    exe.parent()
        .and_then(Path::parent)
        .expect("test binary under <target>/debug/deps")
        .to_path_buf()
}

/// A workspace binary; panics with what to run when it is missing.
pub fn bin(name: &str) -> PathBuf {
    let p = target_debug().join(name);
    assert!(
        p.is_file(),
        "{} is missing: run cargo build --workspace (or cargo build -p header-counter -p rust-blank -p lxprof-fixtures)",
        p.display()
    );
    p
}

/// Where the scratch directories go: `<target>/debug/lambda-tests`, unless a mount of the
/// environment hides that path from the fixtures that write files there (a checkout under /tmp:
/// the environment has its own /tmp), then `/var/tmp/lxprof-lambda-tests`.
pub fn scratch_root() -> PathBuf {
    let under_target = target_debug().join("lambda-tests");
    match lxprof_emulator::sandbox::hidden_inside(&under_target) {
        None => under_target,
        Some(_) => PathBuf::from("/var/tmp/lxprof-lambda-tests"),
    }
}

/// A scratch directory every user can write and the environment's processes see (they run as
/// nobody; the host file system outside /tmp, /var/task and /opt is visible to them).
pub fn scratch(tag: &str) -> PathBuf {
    let d = scratch_root().join(format!("{tag}-{}-{}", std::process::id(), uuid_like()));
    std::fs::create_dir_all(&d).expect("create scratch dir");
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&d, std::fs::Permissions::from_mode(0o777)).expect("chmod scratch");
    d
}

fn uuid_like() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    N.fetch_add(1, Ordering::SeqCst)
}

/// A deployment package whose `bootstrap` is the fixture binary `name`.
pub fn function(name: &str) -> PathBuf {
    let dir = scratch(&format!("fn-{name}"));
    let boot = dir.join("bootstrap");
    if std::fs::hard_link(bin(name), &boot).is_err() {
        std::fs::copy(bin(name), &boot).expect("copy bootstrap");
    }
    dir
}

/// Whether root and cgroups are available; prints the reason (or panics under CI=true).
pub fn facility() -> bool {
    // SAFETY: geteuid has no preconditions.
    let root = unsafe { libc::geteuid() } == 0;
    let cgroups = Path::new("/sys/fs/cgroup").is_dir();
    if root && cgroups {
        return true;
    }
    let why = format!("needs root ({root}) and /sys/fs/cgroup ({cgroups})");
    if std::env::var("CI").as_deref() == Ok("true") {
        panic!("CI=true: {why}");
    }
    eprintln!("skipping: {why}");
    false
}

/// A config for `function` with a unique tag in the environment (for the leftover check).
pub fn config(function_dir: PathBuf, tag: &str) -> EmulatorConfig {
    let mut c = EmulatorConfig::new(function_dir);
    c.env.push(("LXPROF_TEST_TAG".into(), tag.to_string()));
    c.print_logs = true;
    c
}

/// Records every callback.
#[derive(Default)]
pub struct Recorder {
    /// (env, pid, role, exe at gate time).
    pub spawned: Mutex<Vec<(usize, u32, Role, PathBuf)>>,
    /// (env, role, line).
    pub logs: Mutex<Vec<(usize, Role, String)>>,
    /// Finished invocations.
    pub done: Mutex<Vec<InvocationMetrics>>,
    /// (env, event, ns) in call order.
    pub phases: Mutex<Vec<(usize, PhaseEvent, u64)>>,
    /// (env, ns, bytes) memory samples in call order.
    pub memory: Mutex<Vec<(usize, u64, u64)>>,
}

impl Recorder {
    /// The phase events of each environment, in call order.
    pub fn phases_by_env(&self) -> BTreeMap<usize, Vec<(PhaseEvent, u64)>> {
        let mut m: BTreeMap<usize, Vec<(PhaseEvent, u64)>> = BTreeMap::new();
        for (env, ev, ns) in self.phases.lock().map(|p| p.clone()).unwrap_or_default() {
            m.entry(env).or_default().push((ev, ns));
        }
        m
    }

    /// The memory samples of each environment: (ns, bytes) in call order.
    pub fn memory_by_env(&self) -> BTreeMap<usize, Vec<(u64, u64)>> {
        let mut m: BTreeMap<usize, Vec<(u64, u64)>> = BTreeMap::new();
        for (env, ns, b) in self.memory.lock().map(|p| p.clone()).unwrap_or_default() {
            m.entry(env).or_default().push((ns, b));
        }
        m
    }
}

/// Checks every environment's phase events: a valid lifecycle sequence in call order with
/// non-decreasing ns, ending with `ShutdownEnd`. `cancelled`: the run was cancelled, so a
/// shutdown may cut any phase short. Returns the events by environment.
pub fn assert_phase_order(
    obs: &Recorder,
    cancelled: bool,
) -> BTreeMap<usize, Vec<(PhaseEvent, u64)>> {
    use PhaseEvent::*;
    let by_env = obs.phases_by_env();
    assert!(!by_env.is_empty(), "no phase events");
    for (env, evs) in &by_env {
        let mut prev: Option<(PhaseEvent, u64)> = None;
        for &(ev, ns) in evs {
            let ok = match prev.map(|p| p.0) {
                None | Some(ShutdownEnd) => ev == InitStart,
                Some(InitStart) => matches!(ev, ExtensionsRegistered | InitEnd),
                Some(ExtensionsRegistered) => ev == InitEnd,
                Some(InitEnd) => matches!(ev, InvokeStart | ShutdownStart),
                Some(InvokeStart) => matches!(ev, RuntimeDone | InvokeEnd),
                Some(RuntimeDone) => matches!(ev, RuntimeNext | InvokeEnd),
                Some(RuntimeNext) => ev == InvokeEnd,
                Some(InvokeEnd) => matches!(ev, Frozen | ShutdownStart),
                Some(Frozen) => ev == Thawed,
                Some(Thawed) => matches!(ev, InvokeStart | ShutdownStart),
                Some(ShutdownStart) => ev == ShutdownEnd,
            } || (cancelled && ev == ShutdownStart);
            assert!(ok, "env {env}: {ev:?} after {prev:?} in {evs:?}");
            if let Some((p, pns)) = prev {
                assert!(
                    pns <= ns,
                    "env {env}: {ev:?} at {ns} before {p:?} at {pns}: {evs:?}"
                );
            }
            prev = Some((ev, ns));
        }
        assert_eq!(
            prev.map(|p| p.0),
            Some(ShutdownEnd),
            "env {env} does not end with ShutdownEnd: {evs:?}"
        );
    }
    by_env
}

impl RunObserver for Recorder {
    fn phase(&self, env: usize, event: PhaseEvent, ns: u64) {
        self.phases
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push((env, event, ns));
    }
    fn memory(&self, env: usize, ns: u64, bytes: u64) {
        self.memory
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push((env, ns, bytes));
    }
    fn process_spawned(&self, env: usize, pid: u32, role: &Role) {
        let exe = std::fs::read_link(format!("/proc/{pid}/exe")).unwrap_or_default();
        self.spawned
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push((env, pid, role.clone(), exe));
    }
    fn invocation_done(&self, m: &InvocationMetrics) {
        self.done
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(m.clone());
    }
    fn log_line(&self, env: usize, role: &Role, line: &str) {
        self.logs.lock().unwrap_or_else(|p| p.into_inner()).push((
            env,
            role.clone(),
            line.to_string(),
        ));
    }
}

/// Runs with a 60 s guard.
pub async fn run(cfg: EmulatorConfig, obs: &Recorder) -> LambdaReport {
    let tag = cfg
        .env
        .iter()
        .find(|(k, _)| k == "LXPROF_TEST_TAG")
        .map(|(_, v)| v.clone())
        .unwrap_or_default();
    let function_dir = cfg.function.clone();
    let r = tokio::time::timeout(Duration::from_secs(60), lxprof_emulator::run(cfg, obs))
        .await
        .expect("the run hung for 60 s")
        .expect("run");
    assert_nothing_left(&tag);
    if function_dir.starts_with(scratch_root()) {
        let _ = std::fs::remove_dir_all(&function_dir);
    }
    for m in &r.invocations {
        eprintln!("{}", m.report_line(r.memory_mb));
    }
    r
}

fn walk(dir: &Path, depth: usize, prefix: &str, out: &mut Vec<PathBuf>) {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return;
    };
    for e in rd.flatten() {
        let p = e.path();
        if !p.is_dir() {
            continue;
        }
        if e.file_name().to_string_lossy().starts_with(prefix) {
            out.push(p.clone());
        }
        if depth > 0 {
            walk(&p, depth - 1, prefix, out);
        }
    }
}

/// No process carries `tag` in its environment; no cgroup or state directory of this test
/// process (`lxprof-<pid>-*`) remains.
pub fn assert_nothing_left(tag: &str) {
    let needle = format!("LXPROF_TEST_TAG={tag}");
    let mut live = Vec::new();
    if let Ok(rd) = std::fs::read_dir("/proc") {
        for e in rd.flatten() {
            let Ok(pid) = e.file_name().to_string_lossy().parse::<u32>() else {
                continue;
            };
            if let Ok(env) = std::fs::read(format!("/proc/{pid}/environ"))
                && env.split(|b| *b == 0).any(|kv| kv == needle.as_bytes())
            {
                live.push(pid);
            }
        }
    }
    assert!(live.is_empty(), "processes left behind: {live:?}");
    let prefix = format!("lxprof-{}-", std::process::id());
    let mut dirs = Vec::new();
    walk(Path::new("/sys/fs/cgroup"), 3, &prefix, &mut dirs);
    walk(Path::new("/run/lxprof"), 2, &prefix, &mut dirs);
    assert!(dirs.is_empty(), "directories left behind: {dirs:?}");
}

/// JSON lines of a file written by a fixture.
pub fn json_lines(p: &Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(p)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect()
}
