//! The second adversarial round (issue 28), as a careless operator and an attacker meet the
//! commands that read configuration, stores and outputs: each test reproduces a finding against
//! the real binary and real files (a real SQLite store, a real full disk, real signals) and holds
//! the fix. The Kafka findings are in `kafka_brokers`, the HTTP ones in `http`, `status`'s in
//! `status`.

use std::path::Path;
use std::process::{Command, Output};

fn srv(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_srv-opr"))
        .args(args)
        .current_dir(dir)
        .env_remove("RUST_LOG")
        .env_remove("SRV_OPR_CONFIG")
        .output()
        .unwrap()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[test]
fn absurd_sizes_and_percentages_are_refused_naming_the_key_never_an_abort() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::write(
        d.join("e.jsonl"),
        "{\"type\":\"response\",\"id\":\"A\",\"code\":\"I0\",\"at\":\"2024-03-01T00:00:00Z\"}\n",
    )
    .unwrap();
    for (table, key, value) in [
        // Aborted with "memory allocation of 200000000000000 bytes failed" (SIGABRT).
        ("input", "max_event_bytes", "99999999999999"),
        ("input", "max_event_bytes", "0"),
        ("time", "max_waiting_responses", "99999999999999"),
        ("state", "checkpoint_events", "-1"),
        ("http", "ready_max_lag", "-5"),
        // Accepted, which made the alert impossible.
        ("alerts", "dead_letter_percent", "1000"),
        ("alerts", "dead_letter_percent", "0"),
        ("alerts", "dead_letter_percent", "nan"),
    ] {
        std::fs::write(
            d.join("srv-opr.toml"),
            format!("[{table}]\n{key} = {value}\n"),
        )
        .unwrap();
        let o = srv(d, &["--config", ".", "replay", "e.jsonl", "--out", "o"]);
        let e = stderr(&o);
        assert_eq!(o.status.code(), Some(2), "{table}.{key} = {value}: {e}");
        assert!(
            e.contains(&format!("{table}.{key}")),
            "{key} = {value}: {e}"
        );
        assert!(!e.contains("memory allocation"), "{e}");
        assert!(
            !d.join("o/rpl.csv").exists(),
            "{key} = {value}: figures written"
        );
    }
    // The bounds themselves are accepted.
    for (table, key, value) in [
        ("input", "max_event_bytes", "67108864"),
        ("alerts", "dead_letter_percent", "100"),
    ] {
        std::fs::write(
            d.join("srv-opr.toml"),
            format!("[{table}]\n{key} = {value}\n"),
        )
        .unwrap();
        let o = srv(d, &["--config", ".", "replay", "e.jsonl", "--out", "o"]);
        assert!(o.status.success(), "{key} = {value}: {}", stderr(&o));
    }
}

#[test]
fn an_empty_provider_list_is_refused_as_an_empty_srv_list_is() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let measures =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("config/measures.toml"))
            .unwrap();
    for (list, emptied) in [
        ("providers = [\"csp\"]", "providers = []"),
        ("srvs = [\"CSP-HAN-TEST\"]", "srvs = []"),
    ] {
        // PM4.3 of the shipped file, with one list emptied.
        assert!(measures.contains(list), "{list}");
        let edited = measures.replacen(list, emptied, 1);
        std::fs::write(d.join("measures.toml"), &edited).unwrap();
        std::fs::write(d.join("e.jsonl"), "").unwrap();
        let o = srv(d, &["--config", ".", "replay", "e.jsonl", "--out", "o"]);
        let e = stderr(&o);
        assert_eq!(o.status.code(), Some(2), "{emptied}: {e}");
        assert!(e.contains("measures.toml") && e.contains("PM4.3"), "{e}");
    }
}
