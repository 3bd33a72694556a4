//! What an environment's task hands the [`RunObserver`] while one of its phases runs: spawn
//! gates (before exec), log lines of its processes, and samples of its cgroup memory.
use std::future::Future;
use std::sync::{Arc, Mutex};

use serde_json::json;
use tokio::io::{AsyncBufReadExt, AsyncRead, BufReader};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio::time::MissedTickBehavior;

use crate::api::Shared;
use crate::metrics::monotonic_ns;
use crate::sandbox::Sandbox;
use crate::{MEMORY_SAMPLE_PERIOD, Role, RunObserver};

/// Messages from spawn gates and log readers to the task that holds the observer.
pub(crate) enum Note {
    /// A process was created (pid, role); the gate waits for the ack before the exec.
    Spawned(u32, Role, std::sync::mpsc::Sender<()>),
    /// A line of a process's stdout or stderr.
    Log(Role, String),
}

/// The sandbox whose memory is sampled (set while the environment is live).
pub(crate) type MemorySlot = Arc<Mutex<Option<Arc<Sandbox>>>>;

/// Reads the environment's memory once, unless it is frozen or gone.
fn sample_memory(slot: &MemorySlot, index: usize, obs: &dyn RunObserver) {
    let sb = slot.lock().unwrap_or_else(|p| p.into_inner()).clone();
    if let Some(sb) = sb
        && !sb.is_frozen()
        && let Ok(bytes) = sb.memory_current_bytes()
    {
        obs.memory(index, monotonic_ns(), bytes);
    }
}

/// Runs `fut` while handing spawn gates and log lines to the observer and sampling the
/// environment's memory every [`MEMORY_SAMPLE_PERIOD`].
pub(crate) async fn pump<T>(
    rx: &mut mpsc::UnboundedReceiver<Note>,
    index: usize,
    obs: &dyn RunObserver,
    print_logs: bool,
    memory: &MemorySlot,
    fut: impl Future<Output = T>,
) -> T {
    let handle = |n: Note| match n {
        Note::Spawned(pid, role, ack) => {
            obs.process_spawned(index, pid, &role);
            let _ = ack.send(());
        }
        Note::Log(role, line) => {
            if print_logs {
                eprintln!("[env {index} {role}] {line}");
            }
            obs.log_line(index, &role, &line);
        }
    };
    let mut tick = tokio::time::interval(MEMORY_SAMPLE_PERIOD);
    tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
    tokio::pin!(fut);
    loop {
        tokio::select! {
            biased;
            Some(n) = rx.recv() => handle(n),
            t = &mut fut => {
                while let Ok(n) = rx.try_recv() {
                    handle(n);
                }
                return t;
            }
            _ = tick.tick() => sample_memory(memory, index, obs),
        }
    }
}

/// Forwards the lines of a process's stdout or stderr to telemetry and to the observer.
pub(crate) fn spawn_reader<R: AsyncRead + Unpin + Send + 'static>(
    r: R,
    role: Role,
    shared: Arc<Shared>,
    notes: mpsc::UnboundedSender<Note>,
) -> JoinHandle<()> {
    let cat = if role == Role::Function {
        "function"
    } else {
        "extension"
    };
    tokio::spawn(async move {
        let mut lines = BufReader::new(r).lines();
        while let Ok(Some(line)) = lines.next_line().await {
            shared.telemetry.emit(cat, json!(line));
            let _ = notes.send(Note::Log(role.clone(), line));
        }
    })
}
