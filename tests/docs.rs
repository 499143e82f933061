//! The documentation, run: every `sh` block of the README and `docs/` is run in order, page by
//! page, in a scratch directory (against the test broker's SASL_SSL listener where the page
//! connects to Kafka), or names the test that runs it elsewhere; every link between the pages
//! resolves; and the example events of `docs/events.md` are replayed, every statement the page
//! makes about them checked against the files `replay` writes.
//!
//! A block is marked by the HTML comment on the line before it:
//! - none: run, in order with the page's other blocks, by one `bash -euo pipefail`;
//! - `<!-- docs-test: settings -->`: only assignments the reader adapts (where their brokers or
//!   store are); the test puts its own in their place, and checks the block holds nothing else;
//! - `<!-- docs-test: elsewhere TARGET… -->`: run by each named test (`tests/FILE.rs::fn_name`)
//!   or file (`.ci/run`), which must exist;
//! - `<!-- docs-test: file NAME -->` (any language): written to NAME before the blocks after it.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::support::tls::{SecuredListeners, files_under};
use crate::support::{create_topic, create_topic_on, free_port, srv_ok, unique};

const ROOT: &str = env!("CARGO_MANIFEST_DIR");

/// A fenced block of a page.
struct Block {
    /// `page:line` of its opening fence.
    at: String,
    lang: String,
    body: String,
    /// What the `docs-test` comment before it says, if any.
    mark: Option<String>,
}

/// The pages: the README and every `docs/*.md`.
fn pages() -> Vec<PathBuf> {
    let mut p = vec![Path::new(ROOT).join("README.md")];
    let mut docs: Vec<PathBuf> = std::fs::read_dir(Path::new(ROOT).join("docs"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "md"))
        .collect();
    docs.sort();
    p.extend(docs);
    p
}

fn name(page: &Path) -> String {
    page.strip_prefix(ROOT).unwrap().display().to_string()
}

fn blocks(page: &Path) -> Vec<Block> {
    let text = std::fs::read_to_string(page).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < lines.len() {
        let Some(lang) = lines[i].strip_prefix("```") else {
            i += 1;
            continue;
        };
        let mark = lines[..i]
            .iter()
            .rev()
            .find(|l| !l.trim().is_empty())
            .and_then(|l| l.trim().strip_prefix("<!-- docs-test:"))
            .and_then(|l| l.strip_suffix("-->"))
            .map(|m| m.trim().to_string());
        let start = i;
        i += 1;
        let mut body = String::new();
        while i < lines.len() && !lines[i].starts_with("```") {
            body.push_str(lines[i]);
            body.push('\n');
            i += 1;
        }
        assert!(
            i < lines.len(),
            "{}:{}: a block never closed",
            name(page),
            start + 1
        );
        out.push(Block {
            at: format!("{}:{}", name(page), start + 1),
            lang: lang.trim().to_string(),
            body,
            mark,
        });
        i += 1;
    }
    out
}

/// The script that runs a page's blocks in order, `settings` standing for the page's settings
/// blocks; `None` when the page has nothing to run.
fn script(page: &Path, settings: Option<&str>) -> Option<String> {
    let mut s = String::from("set -euo pipefail\n");
    let mut runs = false;
    for b in blocks(page) {
        match (b.lang.as_str(), b.mark.as_deref()) {
            ("sh", None) => {
                runs = true;
                s.push_str(&format!("echo '@@ {}' >&2\n{}", b.at, b.body));
            }
            ("sh", Some("settings")) => {
                let settings = settings.unwrap_or_else(|| {
                    panic!(
                        "{}: a settings block, and the test gives no settings for it",
                        b.at
                    )
                });
                s.push_str(&format!(
                    "echo '@@ {} (settings of the test)' >&2\n{settings}\n",
                    b.at
                ));
            }
            (_, Some(m)) if m.starts_with("file ") => {
                let file = m["file ".len()..].trim();
                s.push_str(&format!(
                    "cat > '{file}' <<'DOCS_TEST_END'\n{}DOCS_TEST_END\n",
                    b.body
                ));
            }
            _ => {}
        }
    }
    runs.then_some(s)
}

/// Runs `page`'s blocks in a fresh directory that has the repository's `config/` and
/// `tests/fixtures/` where a reader at the repository's root has them, `srv-opr` on the path.
/// Returns the directory.
fn run_page(page: &str, settings: Option<&str>, env: &[(&str, &str)]) -> tempfile::TempDir {
    let script = script(&Path::new(ROOT).join(page), settings)
        .unwrap_or_else(|| panic!("{page} has nothing to run"));
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::os::unix::fs::symlink(Path::new(ROOT).join("config"), d.join("config")).unwrap();
    std::fs::create_dir(d.join("tests")).unwrap();
    std::os::unix::fs::symlink(
        Path::new(ROOT).join("tests/fixtures"),
        d.join("tests/fixtures"),
    )
    .unwrap();
    let bin = d.join(".bin");
    std::fs::create_dir(&bin).unwrap();
    std::os::unix::fs::symlink(env!("CARGO_BIN_EXE_srv-opr"), bin.join("srv-opr")).unwrap();
    let path = format!(
        "{}:{}",
        bin.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let o = Command::new("timeout")
        .args(["900", "bash", "-c", &script])
        .current_dir(d)
        .env("PATH", path)
        .env("NO_COLOR", "1")
        .envs(env.iter().copied())
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    if !o.status.success() {
        let block = err
            .lines()
            .rev()
            .find(|l| l.starts_with("@@ "))
            .unwrap_or("@@ ?");
        let tail: Vec<&str> = err
            .lines()
            .rev()
            .take(40)
            .collect::<Vec<_>>()
            .into_iter()
            .rev()
            .collect();
        panic!(
            "{page}: the block at {} failed ({}):\n{}\nstdout:\n{}",
            &block[3..],
            o.status,
            tail.join("\n"),
            String::from_utf8_lossy(&o.stdout)
        );
    }
    dir
}

/// GitHub's anchor of a heading.
fn anchor(heading: &str) -> String {
    heading
        .trim()
        .to_lowercase()
        .chars()
        .filter(|c| c.is_alphanumeric() || *c == '-' || *c == '_' || *c == ' ')
        .map(|c| if c == ' ' { '-' } else { c })
        .collect()
}

fn anchors(page: &Path) -> Vec<String> {
    let text = std::fs::read_to_string(page).unwrap();
    let mut fenced = false;
    let mut out = Vec::new();
    for l in text.lines() {
        if l.starts_with("```") {
            fenced = !fenced;
        } else if !fenced && l.starts_with('#') {
            out.push(anchor(l.trim_start_matches('#')));
        }
    }
    out
}

#[test]
fn every_shell_block_is_run_here_or_names_the_test_that_runs_it() {
    let mut seen = 0;
    for page in pages() {
        for b in blocks(&page) {
            match (b.lang.as_str(), b.mark.as_deref()) {
                ("sh", None) => seen += 1,
                ("sh", Some("settings")) => {
                    for l in b.body.lines() {
                        let l = l.split(" #").next().unwrap().trim();
                        let assignment = l.strip_prefix("export ").unwrap_or(l);
                        let (k, _) = assignment.split_once('=').unwrap_or(("", ""));
                        assert!(
                            l.is_empty()
                                || l.starts_with('#')
                                || (!k.is_empty()
                                    && k.chars().all(|c| c.is_ascii_uppercase() || c == '_')),
                            "{}: a settings block holds only assignments, not `{l}`",
                            b.at
                        );
                    }
                }
                ("sh", Some(m)) if m.starts_with("elsewhere ") => {
                    for target in m["elsewhere ".len()..].split_whitespace() {
                        let (file, function) = match target.split_once("::") {
                            Some((f, func)) => (f, Some(func)),
                            None => (target, None),
                        };
                        let text = std::fs::read_to_string(Path::new(ROOT).join(file))
                            .unwrap_or_else(|e| panic!("{}: {file}: {e}", b.at));
                        if let Some(func) = function {
                            assert!(
                                text.contains(&format!("fn {func}(")),
                                "{}: {file} has no fn {func}",
                                b.at
                            );
                        }
                    }
                }
                ("sh", Some(m)) => panic!("{}: unknown mark `{m}`", b.at),
                (_, Some(m)) => assert!(
                    m.starts_with("file ") || m.starts_with("tested"),
                    "{}: unknown mark `{m}`",
                    b.at
                ),
                _ => {}
            }
        }
    }
    assert!(seen > 10, "only {seen} blocks run: the marks are not read");
}

#[test]
fn every_link_between_the_pages_resolves() {
    for page in pages() {
        let text = std::fs::read_to_string(&page).unwrap();
        let targets = text
            .split("](")
            .skip(1)
            .filter_map(|rest| rest.split_once(')').map(|(t, _)| t))
            .filter(|t| !t.contains(char::is_whitespace));
        for target in targets {
            if target.starts_with("http") {
                continue;
            }
            let (file, frag) = target.split_once('#').unwrap_or((target, ""));
            let path = if file.is_empty() {
                page.clone()
            } else {
                page.parent().unwrap().join(file)
            };
            assert!(path.exists(), "{}: {target}: no such file", name(&page));
            if !frag.is_empty() {
                assert!(
                    anchors(&path).iter().any(|a| a == frag),
                    "{}: {target}: no such heading in {}",
                    name(&page),
                    path.display()
                );
            }
        }
    }
}

/// `docs/operating.md`'s walk-through, step by step, against the test broker's SASL_SSL
/// listener: check, simulate, a first run, the service looked at and stopped, the roll-up and
/// the rules; the password in no file the steps leave.
#[test]
fn the_operating_walk_through_runs_against_a_sasl_ssl_broker() {
    let tls = SecuredListeners::get();
    let topic = unique("docs-operating");
    let dead = format!("{topic}-dead-letters");
    create_topic(&topic, 3);
    create_topic(&dead, 1);
    let settings = format!(
        "BROKERS={}\nTOPIC={topic}\nDEAD_LETTER_TOPIC={dead}\nGROUP={topic}\nKAFKA_USER={}\n\
         CA={}\nLISTEN=127.0.0.1:{}\nexport SRV_OPR_KAFKA_PASSWORD=\"$(cat {})\"",
        tls.at("SASL_SSL"),
        tls.at("SCRAM_512_USER"),
        tls.at("CA"),
        free_port(),
        tls.at("PASSWORD_FILE")
    );
    let dir = run_page("docs/operating.md", Some(&settings), &[]);
    let d = dir.path();
    let read = |f: &str| std::fs::read_to_string(d.join(f)).unwrap();
    // The first run counted the simulated month; the service's status had its state first.
    let rpl = read("first-run/rpl.csv");
    assert!(
        rpl.lines().filter(|l| l.starts_with("2024-03,")).count() > 10,
        "{rpl}"
    );
    let status = read("status.txt");
    assert!(
        ["OK", "WARNING", "CRITICAL"]
            .iter()
            .any(|s| status.starts_with(s)),
        "{status}"
    );
    assert!(read("rollup-2024-03/rpl.csv").lines().count() > 10);
    assert!(read("srv-opr-rules.yml").contains("SrvRplBelowTarget"));
    let password = tls.password.as_bytes();
    for f in files_under(d) {
        let bytes = std::fs::read(&f).unwrap();
        assert!(
            !bytes.windows(password.len()).any(|w| w == password),
            "the password is in {}",
            f.display()
        );
    }
}

/// `docs/reporting.md`, every block in order, with a store of `run`'s that holds a final
/// March 2024 (simulated into the test broker and read by `run --until-caught-up`).
#[test]
fn the_reporting_page_runs_on_files_and_on_a_store_of_run() {
    let prep = tempfile::tempdir().unwrap();
    let p = prep.path();
    let brokers = crate::support::brokers();
    let topic = unique("docs-reporting");
    create_topic_on(&brokers, &topic, 2);
    let env = [
        ("SRV_OPR__KAFKA__BROKERS", brokers.as_str()),
        ("SRV_OPR__KAFKA__TOPICS", &format!("[\"{topic}\"]")),
        ("SRV_OPR__KAFKA__GROUP_ID", &topic),
        ("SRV_OPR__KAFKA__DEAD_LETTER_TOPIC", &format!("{topic}-dl")),
        ("SRV_OPR__HTTP__LISTEN", ""),
        ("SRV_OPR__STATE__URL", "sqlite://state.db"),
    ];
    let simulate = format!(
        "simulate --from 2024-03-01T00:00:00Z --to 2024-04-03T00:00:00Z --rate 0.005 \
         --kafka {brokers} --topic {topic}"
    );
    srv_ok(p, &simulate.split(' ').collect::<Vec<_>>(), &env);
    srv_ok(p, &["run", "--until-caught-up", "--out", "o"], &env);
    let settings = format!(
        "export SRV_OPR__STATE__URL=sqlite://{}/state.db",
        p.display()
    );
    let dir = run_page("docs/reporting.md", Some(&settings), &[]);
    let d = dir.path();
    for f in [
        "report-2024-03/srv-opr-2024-03.xlsx",
        "report-2024-03/index.html",
        "rollup-2024-03/rpl.csv",
        "aug-out/exemptions.csv",
        "restated/restatements.csv",
        "score/score.json",
        "report/opr-RY23-24.xlsx",
        "report-year/index.html",
    ] {
        assert!(d.join(f).is_file(), "{f} was not written");
    }
}

/// The first `jsonl` block of `docs/events.md`.
fn example() -> String {
    let page =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/events.md")).unwrap();
    let block = page
        .split("```jsonl\n")
        .nth(1)
        .and_then(|b| b.split("```").next())
        .expect("docs/events.md has a jsonl example");
    block.to_string()
}

#[test]
fn the_events_page_example_does_what_the_page_says() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::write(d.join("example.jsonl"), example()).unwrap();
    let o = Command::new(env!("CARGO_BIN_EXE_srv-opr"))
        .args(["replay", "example.jsonl", "--out", "o"])
        .current_dir(d)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let read = |f: &str| std::fs::read_to_string(d.join("o").join(f)).unwrap();
    let rpl = read("rpl.csv");
    let row = |m: &str, r: &str| -> Vec<String> {
        rpl.lines()
            .find(|l| l.starts_with(&format!("2024-03,{m},{r},")))
            .unwrap_or_else(|| panic!("{m} {r} not in rpl.csv:\n{rpl}"))
            .split(',')
            .map(String::from)
            .collect()
    };
    // A1: a hit for SRV8.11 and PM1.1-DSP; 400 ms to its acknowledgement, ~4.1 s after.
    let a1 = row("SRV8.11", "north");
    assert_eq!(&a1[3..7], ["1", "1", "1", "0"]);
    assert_eq!((a1[15].as_str(), a1[16].as_str()), ("1", "400"));
    let after: u64 = a1[18].parse().unwrap();
    assert!(after.abs_diff(4100) <= 10, "{after}");
    // PM1.1-DSP north is A1 alone: D4, future-dated, is not on demand.
    assert_eq!(&row("PM1.1-DSP", "north")[3..5], ["1", "1"]);
    // B2: a miss, bucket E20, for PM1.1-DSP and MP242-TARIFF.
    assert_eq!(&row("PM1.1-DSP", "central")[3..5], ["1", "0"]);
    assert_eq!(&row("MP242-TARIFF", "central")[3..6], ["1", "0", "0"]);
    let failures = read("failures.csv");
    for l in [
        "2024-03,PM1.1-DSP,central,E20,1",
        "2024-03,MP242-TARIFF,central,E20,1",
    ] {
        assert!(failures.lines().any(|x| x == l), "{l}: {failures}");
    }
    // C3: counted once its request came.
    assert_eq!(&row("SRV8.11", "south")[3..5], ["1", "1"]);
    // D4: MP242-TARIFF counts it, a success, in March.
    assert_eq!(&row("MP242-TARIFF", "north")[3..6], ["1", "1", "1"]);
    // Availability: five complete minutes down.
    let availability = read("availability.csv");
    assert!(
        availability
            .lines()
            .any(|l| l.starts_with("2024-03,DUIS,") && l.split(',').nth(3) == Some("5")),
        "{availability}"
    );
    // The user of A1 in users.csv.
    assert!(read("users.csv").contains("2024-03,SRV8.11,90-B3-D5-1F-30-01-00-00,1,1,1,0,"));
    // E5 and F6: dead letters, E5's with its detail.
    let dead: Vec<serde_json::Value> = read("deadletter.jsonl")
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(dead.len(), 2, "{dead:?}");
    assert_eq!(dead[0]["reason"], "missing_field");
    assert_eq!(dead[0]["detail"], "`code` is a number, not a string");
    assert_eq!(dead[1]["reason"], "unknown_type");
    // No month covered.
    assert!(rpl.lines().skip(1).all(|l| l.ends_with(",false")), "{rpl}");
}

/// The configuration page's table names every setting of `config/srv-opr.toml` with its
/// default as the file has it, so a setting added to the code and the defaults file without its
/// line here (or a default changed in one place only) fails.
#[test]
fn every_setting_is_on_the_configuration_page_with_its_default() {
    let defaults: toml::Table = std::fs::read_to_string(format!("{ROOT}/config/srv-opr.toml"))
        .unwrap()
        .parse()
        .unwrap();
    let page = std::fs::read_to_string(format!("{ROOT}/docs/configuration.md")).unwrap();
    let rows: Vec<Vec<&str>> = page
        .lines()
        .map(str::trim)
        .filter(|l| l.starts_with("| `"))
        .map(|l| l.split(" | ").collect())
        .collect();
    let mut missing = Vec::new();
    for (table, keys) in &defaults {
        let toml::Value::Table(keys) = keys else {
            missing.push(format!("{table}: not a table"));
            continue;
        };
        for (key, value) in keys {
            let name = format!("`{table}.{key}`");
            let Some(row) = rows
                .iter()
                .find(|r| r[0].trim_start_matches("| ").contains(&name))
            else {
                missing.push(format!("{name}: no row"));
                continue;
            };
            let shown = match value {
                toml::Value::Table(t) if t.is_empty() => "(empty)".to_string(),
                toml::Value::String(s) if s.is_empty() => "(empty)".to_string(),
                toml::Value::String(s) if key == "sample" => format!("`\"{s}\"`"),
                toml::Value::String(s) => format!("`{s}`"),
                other => format!("`{other}`"),
            };
            let cell = row.get(1).copied().unwrap_or_default();
            // A row of several settings lists their defaults in order, or one for all.
            if !cell.contains(&shown) && !cell.contains(&shown.trim_matches('`').to_string()) {
                missing.push(format!("{name}: default {shown}, the page says {cell}"));
            }
        }
    }
    assert!(missing.is_empty(), "docs/configuration.md: {missing:#?}");
}
