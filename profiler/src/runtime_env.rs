//! How to make stacks and JIT names visible for known runtimes: the environment lxprof
//! sets on processes it launches.
//!
//! Every runtime below honours an environment variable, so the settings also reach a
//! runtime started by a wrapper script (a Lambda extension is often a shell script that
//! execs `mono`/`node`/`java`). With them, the runtime writes `/tmp/perf-PID.map`
//! (`START SIZE name`, PID as seen in its own pid namespace) and keeps frame pointers
//! where it can, which is what [`crate::symbolize`] reads.
//!
//! For processes lxprof only attaches to (`--pid`), the runtime must have been started
//! with these settings already; set them in the function's or extension's environment:
//!
//! | runtime | environment | effect |
//! |---|---|---|
//! | Mono | `MONO_ENV_OPTIONS=--jitmap` | perf map of JIT'd methods (`mono --jitmap` on the command line is the same) |
//! | Mono | `MONO_DEBUG=disable_omit_fp` | frame pointers in JIT'd code |
//! | Node/V8 | `NODE_OPTIONS=--perf-basic-prof-only-functions --interpreted-frames-native-stack` | perf map of JS functions (`JS:~`, `JS:^`, `JS:+`, `JS:*` tiers); interpreted frames on the native stack |
//! | .NET | `DOTNET_PerfMapEnabled=1` and `COMPlus_PerfMapEnabled=1` | perf map of JIT'd methods with their tier (`[QuickJitted]`, `[OptimizedTier1]`, …) and `stub<N>` entries (.NET 8 adds a jitdump); ReadyToRun code is not in the map |
//! | JVM | `JAVA_TOOL_OPTIONS=-XX:+UnlockDiagnosticVMOptions -XX:+DumpPerfMapAtExit -XX:+PreserveFramePointer` | perf map written at exit only; `jcmd PID Compiler.perfmap` writes it for a running JVM |
//!
//! .NET reads `DOTNET_*` settings only since .NET 6; .NET Core 3.1 and 5 read the same
//! setting as `COMPlus_*` (checked with 3.1.23: `DOTNET_PerfMapEnabled` alone writes no map,
//! every managed frame stays `[unknown]`). Both are set; .NET 6+ prefers `DOTNET_`.
//!
//! A JVM's map appears only when it exits: lxprof can read it only if it observed the
//! process (holding its mount namespace's `/tmp` open) before, and only after that exit.
//!
//! Node: `--perf-basic-prof-only-functions`, not `--perf-basic-prof`. Measured with Node
//! 20.20.2: `--perf-basic-prof` also makes V8 write an `isolate-0x…-v8.log` into the
//! working directory, and when that directory is read-only (`/var/task` in Lambda) V8
//! writes that log to the process's **stdout** instead, which would corrupt an
//! extension's output. No option allowed in `NODE_OPTIONS` turns that log off
//! (`--logfile`, `--no-logfile-per-isolate` are rejected there). What the restricted map
//! lacks (`Builtin:`, `BytecodeHandler:` entries) is named by the `node` ELF's own
//! `Builtins_*` symbols, which the symbolizer prefers anyway; only compiled RegExp code
//! stays unnamed. Both flags are accepted in `NODE_OPTIONS` (tested below).

/// A managed runtime lxprof knows how to make visible.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Runtime {
    Mono,
    Node,
    DotNet,
    Jvm,
}

impl Runtime {
    pub const ALL: [Runtime; 4] = [Runtime::Mono, Runtime::Node, Runtime::DotNet, Runtime::Jvm];

    /// The runtime an executable or command line starts, from the program's file name
    /// (`/usr/bin/mono-sgen`, `node`, `dotnet`, `java`); `None` for anything else.
    pub fn detect(exe_or_command: &str) -> Option<Runtime> {
        let program = exe_or_command.split_whitespace().next().unwrap_or("");
        let name = program.rsplit('/').next().unwrap_or(program);
        match name {
            "mono" | "mono-sgen" | "mono-boehm" => Some(Runtime::Mono),
            "node" | "nodejs" => Some(Runtime::Node),
            "dotnet" => Some(Runtime::DotNet),
            "java" => Some(Runtime::Jvm),
            _ => None,
        }
    }

    /// `(variable, options)` this runtime needs. Options of one variable are joined with
    /// [`separator`] when merged into an existing value.
    pub fn env(self) -> &'static [(&'static str, &'static str)] {
        match self {
            Runtime::Mono => &[
                ("MONO_ENV_OPTIONS", "--jitmap"),
                ("MONO_DEBUG", "disable_omit_fp"),
            ],
            Runtime::Node => &[(
                "NODE_OPTIONS",
                "--perf-basic-prof-only-functions --interpreted-frames-native-stack",
            )],
            Runtime::DotNet => &[
                ("DOTNET_PerfMapEnabled", "1"),
                ("COMPlus_PerfMapEnabled", "1"),
            ],
            Runtime::Jvm => &[(
                "JAVA_TOOL_OPTIONS",
                "-XX:+UnlockDiagnosticVMOptions -XX:+DumpPerfMapAtExit -XX:+PreserveFramePointer",
            )],
        }
    }
}

/// How options of one variable are joined: `MONO_DEBUG` is comma-separated, the
/// `*_OPTIONS` variables are space-separated, anything else is replaced.
pub fn separator(var: &str) -> Option<&'static str> {
    match var {
        "MONO_DEBUG" => Some(","),
        "MONO_ENV_OPTIONS" | "NODE_OPTIONS" | "JAVA_TOOL_OPTIONS" => Some(" "),
        _ => None,
    }
}

/// The variables to set for `exe_or_command`: its runtime's, or every runtime's when the
/// program is not one of them (a wrapper script may start any; the variables are inert
/// for other programs).
pub fn profiling_env(exe_or_command: &str) -> Vec<(String, String)> {
    let runtimes: Vec<Runtime> = match Runtime::detect(exe_or_command) {
        Some(r) => vec![r],
        None => Runtime::ALL.to_vec(),
    };
    runtimes
        .into_iter()
        .flat_map(|r| r.env().iter())
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// Merges `additions` into an environment: each option is appended to an existing value
/// of the same variable unless already there, other variables are set.
pub fn merge_env(env: &mut Vec<(String, String)>, additions: &[(String, String)]) {
    for (k, v) in additions {
        match env.iter_mut().find(|(ek, _)| ek == k) {
            Some((_, existing)) => match separator(k) {
                Some(sep) if !existing.trim().is_empty() => {
                    for option in v.split(sep).filter(|o| !o.is_empty()) {
                        if !existing.split(sep).any(|o| o == option) {
                            existing.push_str(sep);
                            existing.push_str(option);
                        }
                    }
                }
                _ => *existing = v.clone(),
            },
            None => env.push((k.clone(), v.clone())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn detects_runtimes_from_paths_and_commands() {
        assert_eq!(Runtime::detect("/usr/bin/mono-sgen"), Some(Runtime::Mono));
        assert_eq!(
            Runtime::detect("node /var/task/ext.js"),
            Some(Runtime::Node)
        );
        assert_eq!(
            Runtime::detect("/usr/bin/java -jar x.jar"),
            Some(Runtime::Jvm)
        );
        assert_eq!(Runtime::detect("dotnet ext.dll"), Some(Runtime::DotNet));
        assert_eq!(Runtime::detect("/opt/extensions/my-ext"), None);
    }

    #[test]
    fn unknown_programs_get_every_runtime() {
        let env = profiling_env("/opt/extensions/wrapper.sh");
        for r in Runtime::ALL {
            for (k, _) in r.env() {
                assert!(env.iter().any(|(ek, _)| ek == k), "{k} missing");
            }
        }
        assert_eq!(profiling_env("node x.js").len(), 1);
    }

    #[test]
    fn merge_appends_options_once() {
        let mut env = vec![
            (
                "NODE_OPTIONS".to_string(),
                "--max-old-space-size=100".to_string(),
            ),
            ("MONO_DEBUG".to_string(), "suspend-on-sigsegv".to_string()),
        ];
        let add = profiling_env("/opt/wrapper");
        merge_env(&mut env, &add);
        merge_env(&mut env, &add);
        let get = |k: &str| env.iter().find(|(ek, _)| ek == k).map(|(_, v)| v.as_str());
        assert_eq!(
            get("NODE_OPTIONS"),
            Some(
                "--max-old-space-size=100 --perf-basic-prof-only-functions \
                 --interpreted-frames-native-stack"
            )
        );
        assert_eq!(
            get("MONO_DEBUG"),
            Some("suspend-on-sigsegv,disable_omit_fp")
        );
        assert_eq!(get("DOTNET_PerfMapEnabled"), Some("1"));
        assert_eq!(get("COMPlus_PerfMapEnabled"), Some("1"));
    }

    #[test]
    fn merge_adds_only_the_missing_options() {
        let mut env = vec![(
            "NODE_OPTIONS".to_string(),
            "--interpreted-frames-native-stack".to_string(),
        )];
        merge_env(&mut env, &profiling_env("node"));
        assert_eq!(
            env[0].1,
            "--interpreted-frames-native-stack --perf-basic-prof-only-functions"
        );
    }

    /// Node with lxprof's `NODE_OPTIONS`, in a read-only working directory (as in Lambda):
    /// it runs, names the hot JS function in `/tmp/perf-PID.map`, and writes nothing but
    /// its own output to stdout (`--perf-basic-prof` would print V8's log there).
    #[test]
    fn node_env_writes_perf_map_and_keeps_stdout_clean() {
        use std::process::Command;
        let have = |t: &str| {
            Command::new("sh")
                .args(["-c", &format!("command -v {t}")])
                .output()
                .is_ok_and(|o| o.status.success())
        };
        if unsafe { libc::geteuid() } != 0 || !have("node") || !have("unshare") {
            let why = "node_env_writes_perf_map_and_keeps_stdout_clean: needs root, node, unshare";
            assert_ne!(
                std::env::var("CI").as_deref(),
                Ok("true"),
                "CI=true but {why}"
            );
            eprintln!("skipping {why}");
            return;
        }
        let dir = std::env::temp_dir().join(format!("lxprof-node-env-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        std::fs::write(
            dir.join("hot.js"),
            "function hotEnvCheckFn(n) { let s = 0; for (let i = 0; i < n; i++) s += i % 7; return s; }\n\
             let t = 0; for (let k = 0; k < 500; k++) t += hotEnvCheckFn(10000);\n\
             console.log(process.pid + ' ' + t);\n",
        )
        .expect("write js");
        let d = dir.display();
        let out = Command::new("unshare")
            .args(["-m", "sh", "-c"])
            .arg(format!(
                "mount --bind {d} {d} && mount -o remount,bind,ro {d} && cd {d} && \
                 exec node hot.js"
            ))
            .envs(profiling_env("node"))
            .output()
            .expect("run node");
        let listing: Vec<String> = std::fs::read_dir(&dir)
            .expect("list")
            .filter_map(|e| e.ok().map(|e| e.file_name().to_string_lossy().into_owned()))
            .collect();
        let _ = std::fs::remove_dir_all(&dir);
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let lines: Vec<&str> = stdout.lines().collect();
        assert_eq!(
            lines.len(),
            1,
            "only the program's line on stdout: {stdout}"
        );
        assert_eq!(
            listing,
            vec!["hot.js".to_string()],
            "nothing written to the cwd"
        );
        let pid = lines[0].split(' ').next().unwrap_or("");
        let map_path = format!("/tmp/perf-{pid}.map");
        let map = std::fs::read_to_string(&map_path).expect("node wrote its perf map");
        let _ = std::fs::remove_file(&map_path);
        assert!(
            map.lines()
                .any(|l| l.contains("JS:") && l.contains("hotEnvCheckFn")),
            "no JS entry for hotEnvCheckFn in {map_path}"
        );
    }
}
