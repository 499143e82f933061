//! The deployment files cannot be run here (no container engine), so what can be checked is
//! checked: every `SRV_OPR__…` setting they pass is one the service accepts, with a valid value,
//! and the container's listen address and shutdown grace agree with the configuration.

use std::process::Command;

/// `KEY: value` pairs of `SRV_OPR__…` settings in a YAML file (plain `KEY: value` lines).
fn settings(path: &str) -> Vec<(String, String)> {
    let text = std::fs::read_to_string(path).unwrap();
    text.lines()
        .filter_map(|l| {
            let (k, v) = l.trim().split_once(':')?;
            k.starts_with("SRV_OPR__").then(|| {
                let v = v.trim();
                let v = v
                    .strip_prefix('\'')
                    .and_then(|v| v.strip_suffix('\''))
                    .or_else(|| v.strip_prefix('"').and_then(|v| v.strip_suffix('"')))
                    .unwrap_or(v);
                (k.to_string(), v.to_string())
            })
        })
        .collect()
}

fn accepted(env: &[(String, String)]) {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("empty.jsonl"), "").unwrap();
    // `replay` loads and validates the whole configuration first (exit 2 on any problem).
    let o = Command::new(env!("CARGO_BIN_EXE_srv-opr"))
        .args(["replay", "empty.jsonl", "--out", "out"])
        .envs(env.iter().map(|(k, v)| (k, v)))
        .current_dir(dir.path())
        .output()
        .unwrap();
    assert!(
        o.status.success(),
        "{env:?}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
}

#[test]
fn kubernetes_settings_are_valid_configuration() {
    let env = settings("deploy/k8s/configmap.yaml");
    assert!(env.len() >= 5, "{env:?}");
    accepted(&env);
    let listen = env
        .iter()
        .find(|(k, _)| k == "SRV_OPR__HTTP__LISTEN")
        .unwrap();
    assert!(listen.1.ends_with(":9898"));
    // The kubelet's SIGKILL must come after the service's own shutdown deadline.
    let deployment = std::fs::read_to_string("deploy/k8s/deployment.yaml").unwrap();
    let grace: u64 = deployment
        .lines()
        .find_map(|l| l.trim().strip_prefix("terminationGracePeriodSeconds:"))
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    let timeout = env
        .iter()
        .find(|(k, _)| k == "SRV_OPR__KAFKA__SHUTDOWN_TIMEOUT")
        .unwrap();
    let secs: u64 = timeout.1.trim_end_matches('s').parse().unwrap();
    assert!(grace > secs, "grace {grace} s, shutdown timeout {secs} s");
}

#[test]
fn compose_settings_are_valid_configuration() {
    let env = settings("deploy/docker-compose.yml");
    assert!(env.len() >= 2, "{env:?}");
    accepted(&env);
}
