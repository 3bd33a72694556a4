//! The environment variables Lambda gives a runtime, and the subset an extension gets.
use crate::config::EmulatorConfig;

/// The environment a runtime gets (Lambda's variables, then the user's).
pub fn runtime_env(cfg: &EmulatorConfig, api: &str) -> Vec<(String, String)> {
    let name = &cfg.function_name;
    let stream = format!("2026/01/01/[$LATEST]{}", uuid::Uuid::new_v4().simple());
    let mut env: Vec<(String, String)> = [
        ("AWS_LAMBDA_RUNTIME_API", api.to_string()),
        ("AWS_LAMBDA_FUNCTION_NAME", name.clone()),
        ("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", cfg.memory_mb.to_string()),
        ("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST".into()),
        ("AWS_LAMBDA_INITIALIZATION_TYPE", "on-demand".into()),
        ("AWS_REGION", "us-east-1".into()),
        ("AWS_DEFAULT_REGION", "us-east-1".into()),
        ("AWS_EXECUTION_ENV", "AWS_Lambda_provided.al2023".into()),
        ("AWS_LAMBDA_LOG_GROUP_NAME", format!("/aws/lambda/{name}")),
        ("AWS_LAMBDA_LOG_STREAM_NAME", stream),
        ("_HANDLER", "bootstrap".into()),
        ("LAMBDA_TASK_ROOT", "/var/task".into()),
        ("LAMBDA_RUNTIME_DIR", "/var/runtime".into()),
        ("LANG", "en_US.UTF-8".into()),
        ("TZ", ":UTC".into()),
        ("PATH", "/usr/local/bin:/usr/bin/:/bin:/opt/bin".into()),
        (
            "LD_LIBRARY_PATH",
            "/lib64:/usr/lib64:/var/runtime:/var/runtime/lib:/var/task:/var/task/lib:/opt/lib"
                .into(),
        ),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    for (k, v) in &cfg.env {
        env.retain(|(e, _)| e != k);
        env.push((k.clone(), v.clone()));
    }
    env
}

/// The environment an extension gets: the runtime's minus what Lambda withholds.
pub fn extension_env(runtime_env: &[(String, String)]) -> Vec<(String, String)> {
    const HIDDEN: [&str; 6] = [
        "AWS_EXECUTION_ENV",
        "AWS_LAMBDA_LOG_GROUP_NAME",
        "AWS_LAMBDA_LOG_STREAM_NAME",
        "LAMBDA_RUNTIME_DIR",
        "LAMBDA_TASK_ROOT",
        "_HANDLER",
    ];
    runtime_env
        .iter()
        .filter(|(k, _)| {
            !HIDDEN.contains(&k.as_str()) && !k.starts_with("AWS_XRAY_") && k != "_X_AMZN_TRACE_ID"
        })
        .cloned()
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn extension_env_hides_runtime_only_variables() {
        let cfg = {
            let mut c = EmulatorConfig::new("/x".into());
            c.env = vec![
                ("AWS_REGION".into(), "eu-west-1".into()),
                ("K".into(), "V".into()),
            ];
            c
        };
        let r = runtime_env(&cfg, "127.0.0.1:1");
        let get = |e: &[(String, String)], k: &str| {
            e.iter().find(|(a, _)| a == k).map(|(_, v)| v.clone())
        };
        assert_eq!(get(&r, "AWS_REGION").as_deref(), Some("eu-west-1"));
        assert_eq!(
            get(&r, "AWS_LAMBDA_FUNCTION_MEMORY_SIZE").as_deref(),
            Some("128")
        );
        assert_eq!(get(&r, "_HANDLER").as_deref(), Some("bootstrap"));
        let x = extension_env(&r);
        assert_eq!(get(&x, "_HANDLER"), None);
        assert_eq!(get(&x, "LAMBDA_TASK_ROOT"), None);
        assert_eq!(get(&x, "K").as_deref(), Some("V"));
        assert_eq!(
            get(&x, "AWS_LAMBDA_RUNTIME_API").as_deref(),
            Some("127.0.0.1:1")
        );
    }
}
