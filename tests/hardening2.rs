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

/// A state store as `run` leaves it: a week of simulated traffic across the March/April 2024
/// edge, checkpointed as partition t/0 under the built-in definitions.
fn checkpointed_store(path: &Path) {
    use srv_opr::config::Config;
    use srv_opr::engine::correlate::Pos;
    use srv_opr::engine::pipeline::{Pipeline, SourceName, VecDeadLetters};
    use srv_opr::engine::time::parse_rfc3339;
    use srv_opr::simulate::{SimConfig, Simulator};
    use srv_opr::store::sqlite::SqliteStore;
    use srv_opr::store::{Checkpoint, Identity, Store};
    let cfg = Config::builtin().unwrap();
    let p = |s: &str| parse_rfc3339(s.as_bytes()).unwrap();
    let mut bytes = Vec::new();
    Simulator::new(SimConfig {
        seed: 5,
        start: p("2024-03-28T00:00:00Z"),
        end: p("2024-04-04T00:00:00Z"),
        rate: 0.02,
        ..SimConfig::default()
    })
    .run(&mut bytes)
    .unwrap();
    let id = Identity {
        topics: Some("t".into()),
        group: Some("g".into()),
        definitions: cfg.definitions.sha256.clone(),
        accept_config_change: false,
        read_only: false,
    };
    let mut store = SqliteStore::open(path.to_str().unwrap(), &id, &cfg.definitions).unwrap();
    let epoch = store.claim("t", 0, "test").unwrap().epoch;
    let name = SourceName {
        name: "t/0".into(),
        separator: '/',
    };
    let mut pipeline = Pipeline::new(
        &cfg.pipeline().unwrap(),
        vec![name],
        VecDeadLetters::default(),
    );
    pipeline.track_changes();
    let mut max_at = srv_opr::engine::time::Ts::MIN;
    let mut next = 0u64;
    for line in bytes.split(|&b| b == b'\n').filter(|l| !l.is_empty()) {
        if let Some(t) = pipeline.process(line, Pos::new(0, next)).unwrap()
            && t > max_at
        {
            max_at = t;
            pipeline
                .advance(t.minus(cfg.settings.time.allowed_lateness))
                .unwrap();
        }
        next += 1;
    }
    let delta = pipeline.take_delta(true).unwrap();
    store
        .checkpoint(&Checkpoint {
            topic: "t",
            partition: 0,
            epoch,
            next_offset: next as i64,
            max_at: max_at.0,
            delta: &delta,
        })
        .unwrap();
}

/// `rollup --month M` with the store at `db` and its outputs in `dir/out`.
fn rollup(dir: &Path, db: &Path, month: &str) -> Output {
    Command::new(env!("CARGO_BIN_EXE_srv-opr"))
        .args(["rollup", "--month", month, "--out", "out"])
        .current_dir(dir)
        .env_remove("RUST_LOG")
        .env_remove("SRV_OPR_CONFIG")
        .env("SRV_OPR__STATE__URL", format!("sqlite://{}", db.display()))
        .output()
        .unwrap()
}

fn sha256(path: &Path) -> String {
    use sha2::Digest;
    sha2::Sha256::digest(std::fs::read(path).unwrap())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

#[test]
fn a_damaged_or_foreign_store_file_is_named_in_the_error() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let good = d.join("good.db");
    checkpointed_store(&good);
    assert!(rollup(d, &good, "2024-03").status.success());
    std::fs::remove_dir_all(d.join("out")).unwrap();
    let bytes = std::fs::read(&good).unwrap();
    // Truncated in the middle of its pages, overwritten with text, and an SQLite database of
    // something else: each names the file, none is taken for a store.
    let truncated = d.join("truncated.db");
    std::fs::write(&truncated, &bytes[..bytes.len() / 3]).unwrap();
    let overwritten = d.join("overwritten.db");
    std::fs::write(&overwritten, "this is not a database\n".repeat(400)).unwrap();
    let foreign = d.join("foreign.db");
    rusqlite::Connection::open(&foreign)
        .unwrap()
        .execute_batch("CREATE TABLE songs (title TEXT); INSERT INTO songs VALUES ('x');")
        .unwrap();
    // A store whose month rows were dropped.
    let tableless = d.join("tableless.db");
    std::fs::copy(&good, &tableless).unwrap();
    rusqlite::Connection::open(&tableless)
        .unwrap()
        .execute_batch("DROP VIEW month_totals; DROP TABLE month_rows;")
        .unwrap();
    for (form, db) in [
        ("truncated", &truncated),
        ("overwritten", &overwritten),
        ("foreign", &foreign),
        ("table-less", &tableless),
    ] {
        let before = sha256(db);
        let o = rollup(d, db, "2024-03");
        let e = stderr(&o);
        assert!(!o.status.success(), "{form}: {e}");
        assert!(
            e.contains(&db.display().to_string()),
            "{form}: the file is not named: {e}"
        );
        assert!(!d.join("out/rpl.csv").exists(), "{form}: figures written");
        assert_eq!(sha256(db), before, "{form}: reading changed the file");
    }
}

#[test]
fn an_empty_store_file_is_not_taken_for_a_new_store_and_stays_empty() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let db = d.join("state.db");
    std::fs::write(&db, "").unwrap();
    let o = rollup(d, &db, "2024-03");
    let e = stderr(&o);
    assert_eq!(o.status.code(), Some(1), "{e}");
    assert!(
        e.contains("empty (0 bytes)") && e.contains(&db.display().to_string()),
        "{e}"
    );
    assert_eq!(
        std::fs::metadata(&db).unwrap().len(),
        0,
        "rollup wrote into it"
    );
    assert!(!d.join("out/rpl.csv").exists());
}

/// Makes `path` immutable (`chattr +i`, which binds root too) or, for a user who cannot,
/// read-only by its mode; undone on drop so the temporary directory can go.
struct Frozen(std::path::PathBuf, bool);

impl Frozen {
    fn new(path: &Path) -> Frozen {
        let chattr = Command::new("chattr")
            .arg("+i")
            .arg(path)
            .status()
            .is_ok_and(|s| s.success());
        if !chattr {
            use std::os::unix::fs::PermissionsExt;
            let mode = if path.is_dir() { 0o555 } else { 0o444 };
            std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
        }
        Frozen(path.to_path_buf(), chattr)
    }
}

impl Drop for Frozen {
    fn drop(&mut self) {
        if self.1 {
            let _ = Command::new("chattr").arg("-i").arg(&self.0).status();
        } else {
            use std::os::unix::fs::PermissionsExt;
            let _ = std::fs::set_permissions(&self.0, std::fs::Permissions::from_mode(0o755));
        }
    }
}

#[test]
fn reading_commands_read_a_read_only_or_busy_store_and_never_change_it() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let store_dir = d.join("store");
    std::fs::create_dir(&store_dir).unwrap();
    let db = store_dir.join("state.db");
    checkpointed_store(&db);
    let want = {
        let o = rollup(d, &db, "2024-03");
        assert!(o.status.success(), "{}", stderr(&o));
        std::fs::read_to_string(d.join("out/rpl.csv")).unwrap()
    };
    // A plain rollup changes nothing (it used to migrate and write its identity).
    let before = sha256(&db);
    let o = rollup(d, &db, "2024-03");
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(sha256(&db), before, "a plain rollup changed the store");
    // Another process in the middle of a write: read at once, not after 30 s of "locked".
    {
        let writer = rusqlite::Connection::open(&db).unwrap();
        writer
            .execute_batch("BEGIN IMMEDIATE; UPDATE partitions SET owner = 'x';")
            .unwrap();
        let started = std::time::Instant::now();
        let o = rollup(d, &db, "2024-03");
        assert!(o.status.success(), "{}", stderr(&o));
        assert_eq!(
            std::fs::read_to_string(d.join("out/rpl.csv")).unwrap(),
            want
        );
        // Not a timing bound: SQLite's busy timeout is 30 s, which a reader that needs no
        // lock never meets.
        assert!(started.elapsed() < std::time::Duration::from_secs(25));
        writer.execute_batch("ROLLBACK").unwrap();
    }
    // An immutable file in a directory nobody may write: read as it is.
    let before = sha256(&db);
    for f in std::fs::read_dir(&store_dir).unwrap() {
        let f = f.unwrap().path();
        if f != db {
            std::fs::remove_file(f).unwrap();
        }
    }
    let _file = Frozen::new(&db);
    let _dir = Frozen::new(&store_dir);
    let o = rollup(d, &db, "2024-03");
    assert!(o.status.success(), "read-only store: {}", stderr(&o));
    assert_eq!(
        std::fs::read_to_string(d.join("out/rpl.csv")).unwrap(),
        want
    );
    assert_eq!(sha256(&db), before);
    let o = Command::new(env!("CARGO_BIN_EXE_srv-opr"))
        .args(["report", "--year", "RY23/24", "--inputs"])
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("config/opr/RY23-24-external.csv"))
        // A few days of events: no month is complete (issue 33).
        .args(["--out", "report", "--allow-incomplete"])
        .current_dir(d)
        .env_remove("RUST_LOG")
        .env("SRV_OPR__STATE__URL", format!("sqlite://{}", db.display()))
        .output()
        .unwrap();
    assert!(
        o.status.success(),
        "report of a read-only store: {}",
        stderr(&o)
    );
}

#[test]
fn impossible_stored_counts_are_refused_naming_the_partition_and_month() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let db = d.join("state.db");
    checkpointed_store(&db);
    for (edit, says) in [
        // An RPL of 222 % once.
        (
            "UPDATE month_rows SET within_target = requests * 2 + 1",
            "within_target",
        ),
        // 18446744073709550879 once.
        ("UPDATE month_rows SET requests = -737", "requests -737"),
        (
            "UPDATE month_rows SET no_response = requests, succeeded = 1",
            "no_response",
        ),
    ] {
        let copy = d.join("edited.db");
        std::fs::copy(&db, &copy).unwrap();
        let c = rusqlite::Connection::open(&copy).unwrap();
        c.execute_batch(&format!(
            "{edit} WHERE month = '2024-03' AND measure = 'PM4.3' AND region = 'north'"
        ))
        .unwrap();
        drop(c);
        let o = rollup(d, &copy, "2024-03");
        let e = stderr(&o);
        assert_eq!(o.status.code(), Some(1), "{edit}: {e}");
        assert!(e.contains(says), "{edit}: {e}");
        assert!(
            e.contains("t/0") && e.contains("2024-03") && e.contains("PM4.3"),
            "{e}"
        );
        assert!(!d.join("out/rpl.csv").exists(), "{edit}: figures written");
        std::fs::remove_file(&copy).unwrap();
    }
}

#[test]
fn a_month_the_store_holds_nothing_of_is_an_error_saying_what_it_holds() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let db = d.join("state.db");
    checkpointed_store(&db);
    let o = rollup(d, &db, "2019-01");
    let e = stderr(&o);
    assert_eq!(o.status.code(), Some(1), "{e}");
    assert!(e.contains("no figures of 2019-01"), "{e}");
    assert!(e.contains("from 2024-03 to 2024-04"), "{e}");
    assert!(!d.join("out").join("rpl.csv").exists());
}

#[test]
fn a_full_disk_names_the_file_and_leaves_the_previous_outputs_whole() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::copy(
        crate::support::replay::fixture("spec_example.jsonl"),
        d.join("small.jsonl"),
    )
    .unwrap();
    // Bad lines whose dead letters (about 185 bytes each) nearly fill the disk: with 2,270 of
    // them the dead letters fit and the month outputs after them do not, which is where the
    // files of two runs used to mix. Three sizes around it, each on a fresh disk.
    let sizes = [2150, 2270, 2350];
    for n in sizes {
        let line = format!("{{\"type\":\"request\",\"id\":{}\n", "9".repeat(90));
        std::fs::write(d.join(format!("big{n}.jsonl")), line.repeat(n)).unwrap();
    }
    // A real full disk: a 512 KiB tmpfs, mounted in a mount namespace of its own (unshare -rm),
    // so no privilege is needed and nothing outlives the test. On each, a first replay
    // succeeds and its outputs are listed; a second one fills the disk; they are listed again.
    let script = r#"
        set -u
        list() { (cd "out$1" && find . | sort && find . -type f | sort | xargs -r sha256sum); }
        for n in $SIZES; do
            mkdir "out$n" && mount -t tmpfs -o size=512k tmpfs "out$n" || exit 90
            "$SRV" replay small.jsonl --out "out$n" 2>/dev/null || exit 91
            list $n > "before$n.txt"
            "$SRV" replay "big$n.jsonl" --out "out$n" 2> "err$n.txt"
            echo $? > "rc$n.txt"
            list $n > "after$n.txt"
        done
    "#;
    let o = Command::new("unshare")
        .args(["-rm", "sh", "-c", script])
        .current_dir(d)
        .env("SRV", env!("CARGO_BIN_EXE_srv-opr"))
        .env(
            "SIZES",
            sizes
                .iter()
                .map(|n| n.to_string())
                .collect::<Vec<_>>()
                .join(" "),
        )
        .env_remove("RUST_LOG")
        .env_remove("SRV_OPR_CONFIG")
        .output()
        .unwrap();
    assert!(
        o.status.success(),
        "the full-disk namespace: {}",
        stderr(&o)
    );
    let read = |n: String| std::fs::read_to_string(d.join(n)).unwrap();
    let mut past_the_dead_letters = 0;
    for n in sizes {
        let err = read(format!("err{n}.txt"));
        assert_eq!(read(format!("rc{n}.txt")).trim(), "1", "{n}: {err}");
        assert!(err.contains("No space left on device"), "{n}: {err}");
        assert!(
            err.contains(&format!("out{n}/")),
            "{n}: the error names no file in the output directory: {err}"
        );
        if !err.contains("deadletter.jsonl") {
            past_the_dead_letters += 1;
        }
        let (before, after) = (
            read(format!("before{n}.txt")),
            read(format!("after{n}.txt")),
        );
        assert!(
            before.contains("./rpl.csv") && before.contains("./summary.json"),
            "{before}"
        );
        assert_eq!(
            after, before,
            "{n}: the outputs of the first replay did not stay whole"
        );
        assert!(
            !after.contains("/."),
            "{n}: a temporary file is left: {after}"
        );
    }
    assert!(
        past_the_dead_letters > 0,
        "no size filled the disk after the dead letters, where the outputs used to mix"
    );
}

#[test]
fn a_signal_leaves_no_temporary_file_and_no_half_of_a_run() {
    use std::io::Write as _;
    for signal in ["TERM", "INT"] {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        let out = d.join("out");
        std::fs::create_dir(&out).unwrap();
        std::fs::write(out.join("rpl.csv"), "earlier\n").unwrap();
        // A replay of standard input, kept waiting for more: it is mid-way, by construction.
        let mut child = Command::new(env!("CARGO_BIN_EXE_srv-opr"))
            .args(["replay", "-", "--out", "out"])
            .current_dir(d)
            .env_remove("RUST_LOG")
            .env_remove("SRV_OPR_CONFIG")
            .stdin(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let mut input = child.stdin.take().unwrap();
        for i in 0..2000 {
            writeln!(input, "{{\"type\":\"request\",\"id\":\"x{i}\",\"srv\":").unwrap();
        }
        input.flush().unwrap();
        // The replay has started writing: its staging directory is there.
        let staged = || {
            std::fs::read_dir(&out)
                .unwrap()
                .any(|e| e.unwrap().file_name().to_string_lossy().starts_with('.'))
        };
        crate::support::wait_until(d, &[], "the replay to stage its files", 60, || {
            if staged() {
                Ok(())
            } else {
                Err("no staging directory yet".into())
            }
        });
        let killed = Command::new("kill")
            .arg(format!("-{signal}"))
            .arg(child.id().to_string())
            .status()
            .unwrap();
        assert!(killed.success());
        let o = child.wait_with_output().unwrap();
        drop(input);
        let e = stderr(&o);
        assert_eq!(o.status.code(), Some(1), "SIG{signal}: {e}");
        assert!(e.contains("interrupted"), "{e}");
        let left: Vec<String> = std::fs::read_dir(&out)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert_eq!(left, vec!["rpl.csv".to_string()], "SIG{signal}");
        assert_eq!(
            std::fs::read_to_string(out.join("rpl.csv")).unwrap(),
            "earlier\n"
        );
    }
}
