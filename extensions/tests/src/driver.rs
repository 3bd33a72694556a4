//! A minimal Extensions API (2020-01-01) that drives ONE extension process through N INVOKE
//! events and a SHUTDOWN, without the emulator: register → identifier, each
//! `GET /extension/event/next` → the next event. It records when each `next` arrived, so a
//! test can see how long the extension took per INVOKE. The emulator's own tests cover the
//! full lifecycle; this isolates the extensions' behaviour (S3 writes, logging, error paths).

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// Errors of the driver.
#[derive(Debug, thiserror::Error)]
pub enum DriverError {
    #[error("cannot listen on 127.0.0.1: {0}")]
    Listen(#[source] std::io::Error),
    #[error("cannot start {program}: {source}")]
    Spawn {
        program: String,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "{program} did not finish {invokes} invokes and the SHUTDOWN within {timeout:?}; stderr so far:\n{stderr}"
    )]
    Timeout {
        program: String,
        invokes: usize,
        timeout: Duration,
        stderr: String,
    },
}

/// What happened during a drive.
#[derive(Debug, Clone, Default)]
pub struct DriveReport {
    /// `Lambda-Extension-Name` sent at register.
    pub registered_name: Option<String>,
    /// Request ids sent, in order.
    pub request_ids: Vec<String>,
    /// Time from handing out INVOKE i to the extension's next `GET /next`.
    pub invoke_durations: Vec<Duration>,
    /// True once the SHUTDOWN event was handed out.
    pub shutdown_sent: bool,
    pub stdout: String,
    pub stderr: String,
}

#[derive(Default)]
struct State {
    registered_name: Option<String>,
    sent: usize,
    last_sent_at: Option<Instant>,
    durations: Vec<Duration>,
    request_ids: Vec<String>,
    shutdown_sent: bool,
}

fn read_request(stream: &mut TcpStream) -> std::io::Result<(String, Vec<(String, String)>)> {
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut line = String::new();
    reader.read_line(&mut line)?;
    let mut headers = Vec::new();
    let mut length = 0usize;
    loop {
        let mut h = String::new();
        reader.read_line(&mut h)?;
        let h = h.trim_end();
        if h.is_empty() {
            break;
        }
        if let Some((k, v)) = h.split_once(':') {
            let (k, v) = (k.trim().to_ascii_lowercase(), v.trim().to_string());
            if k == "content-length" {
                length = v.parse().unwrap_or(0);
            }
            headers.push((k, v));
        }
    }
    let mut body = vec![0; length];
    reader.read_exact(&mut body)?;
    Ok((line, headers))
}

fn respond(stream: &mut TcpStream, headers: &[(&str, String)], body: &str) -> std::io::Result<()> {
    let mut out = format!(
        "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nContent-Type: application/json\r\nConnection: close\r\n",
        body.len()
    );
    for (k, v) in headers {
        out.push_str(&format!("{k}: {v}\r\n"));
    }
    out.push_str("\r\n");
    out.push_str(body);
    stream.write_all(out.as_bytes())
}

fn serve(listener: TcpListener, state: Arc<Mutex<State>>, invokes: usize, function: String) {
    for stream in listener.incoming() {
        let Ok(mut stream) = stream else { continue };
        let state = Arc::clone(&state);
        let function = function.clone();
        std::thread::spawn(move || {
            let Ok((line, headers)) = read_request(&mut stream) else {
                return;
            };
            let now_ms = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map(|d| d.as_millis() as u64)
                .unwrap_or_default();
            if line.starts_with("POST /2020-01-01/extension/register") {
                let mut st = state.lock().unwrap_or_else(|e| e.into_inner());
                st.registered_name = headers
                    .iter()
                    .find(|(k, _)| k == "lambda-extension-name")
                    .map(|(_, v)| v.clone());
                drop(st);
                let body = format!(
                    r#"{{"functionName":"{function}","functionVersion":"$LATEST","handler":"bootstrap"}}"#
                );
                let _ = respond(
                    &mut stream,
                    &[(
                        "Lambda-Extension-Identifier",
                        "00000000-0000-4000-8000-000000000001".into(),
                    )],
                    &body,
                );
            } else if line.starts_with("GET /2020-01-01/extension/event/next") {
                let event = {
                    let mut st = state.lock().unwrap_or_else(|e| e.into_inner());
                    if let Some(at) = st.last_sent_at.take() {
                        st.durations.push(at.elapsed());
                    }
                    if st.sent < invokes {
                        st.sent += 1;
                        let id = format!("req-{:04}-{}", st.sent, now_ms);
                        st.request_ids.push(id.clone());
                        st.last_sent_at = Some(Instant::now());
                        Some(format!(
                            r#"{{"eventType":"INVOKE","deadlineMs":{},"requestId":"{id}","invokedFunctionArn":"arn:aws:lambda:us-east-1:000000000000:function:{function}","tracing":{{"type":"X-Amzn-Trace-Id","value":"Root=1-00000000-000000000000000000000000;Sampled=0"}}}}"#,
                            now_ms + 30_000
                        ))
                    } else if !st.shutdown_sent {
                        st.shutdown_sent = true;
                        Some(format!(
                            r#"{{"eventType":"SHUTDOWN","shutdownReason":"spindown","deadlineMs":{}}}"#,
                            now_ms + 2_000
                        ))
                    } else {
                        None // after SHUTDOWN: never answer (Lambda kills the process)
                    }
                };
                match event {
                    Some(body) => {
                        let _ = respond(
                            &mut stream,
                            &[("Lambda-Extension-Event-Identifier", "e".into())],
                            &body,
                        );
                    }
                    None => std::thread::sleep(Duration::from_secs(3600)),
                }
            }
        });
    }
}

/// Runs `program` (an extension file) with `env` (plus `AWS_LAMBDA_RUNTIME_API` and
/// `AWS_LAMBDA_FUNCTION_NAME`) through `invokes` INVOKE events and a SHUTDOWN; kills it
/// at the latest 2 s after the SHUTDOWN (as Lambda does) or at `timeout`.
pub fn drive(
    program: &Path,
    function: &str,
    env: &[(String, String)],
    invokes: usize,
    timeout: Duration,
) -> Result<DriveReport, DriverError> {
    let listener = TcpListener::bind("127.0.0.1:0").map_err(DriverError::Listen)?;
    let port = listener.local_addr().map_err(DriverError::Listen)?.port();
    let state = Arc::new(Mutex::new(State::default()));
    {
        let state = Arc::clone(&state);
        let function = function.to_string();
        std::thread::spawn(move || serve(listener, state, invokes, function));
    }
    let mut child: Child = Command::new(program)
        .env_clear()
        .env("PATH", "/usr/bin:/bin")
        .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .env("AWS_LAMBDA_RUNTIME_API", format!("127.0.0.1:{port}"))
        .env("AWS_LAMBDA_FUNCTION_NAME", function)
        .current_dir(std::env::temp_dir())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|source| DriverError::Spawn {
            program: program.display().to_string(),
            source,
        })?;
    let out = collect(child.stdout.take());
    let err = collect(child.stderr.take());
    let started = Instant::now();
    let mut shutdown_at = None;
    loop {
        if let Ok(Some(_)) = child.try_wait() {
            break;
        }
        let shutdown_sent = state.lock().map(|s| s.shutdown_sent).unwrap_or(true);
        if shutdown_sent && shutdown_at.is_none() {
            shutdown_at = Some(Instant::now());
        }
        if shutdown_at.is_some_and(|t| t.elapsed() > Duration::from_secs(2)) {
            let _ = child.kill();
            let _ = child.wait();
            break;
        }
        if started.elapsed() > timeout {
            let _ = child.kill();
            let _ = child.wait();
            return Err(DriverError::Timeout {
                program: program.display().to_string(),
                invokes,
                timeout,
                stderr: join(err),
            });
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let st = state.lock().unwrap_or_else(|e| e.into_inner());
    Ok(DriveReport {
        registered_name: st.registered_name.clone(),
        request_ids: st.request_ids.clone(),
        invoke_durations: st.durations.clone(),
        shutdown_sent: st.shutdown_sent,
        stdout: join(out),
        stderr: join(err),
    })
}

fn collect(pipe: Option<impl Read + Send + 'static>) -> Option<JoinHandle<String>> {
    pipe.map(|mut p| {
        std::thread::spawn(move || {
            let mut s = String::new();
            let _ = p.read_to_string(&mut s);
            s
        })
    })
}

fn join(handle: Option<JoinHandle<String>>) -> String {
    handle.and_then(|h| h.join().ok()).unwrap_or_default()
}
