//! `srv-opr status`: the status page of a running `run` in a terminal, for someone on a jump
//! host: it reads `/status.json` (over TLS, verified, and with basic auth when the endpoint
//! asks for them) and prints the month's measures, the alerts firing and the pipeline as
//! tables, coloured only on a terminal. With `--check` it is a monitoring check: exit 2 when a
//! critical alert fires, 1 when a warning does, 0 when none, 3 when it cannot tell.

use std::fmt::Write as _;
use std::io::IsTerminal;
use std::path::PathBuf;
use std::time::Duration;

use ureq::tls::{RootCerts, TlsConfig, TlsProvider};

use crate::config::Config;
use crate::config::secrets::Secret;
use crate::echo::{acts, printable};
use crate::error::Error;
use crate::ops::status::model::{RegionView, Status};

/// `status`'s arguments.
#[derive(clap::Args, Debug)]
pub(crate) struct Args {
    /// The endpoint's base URL (default: `http.listen` of the configuration, over HTTP).
    #[arg(long, value_name = "URL")]
    url: Option<String>,
    /// PEM certificates to trust for an HTTPS endpoint (default: the system's trust store).
    #[arg(long, value_name = "FILE")]
    ca_file: Option<PathBuf>,
    /// User for basic auth; the password comes from the environment variable
    /// SRV_OPR_STATUS_PASSWORD or --password-file, never the command line.
    #[arg(long, value_name = "NAME")]
    user: Option<String>,
    /// A file holding the basic-auth password (its first line).
    #[arg(long, value_name = "FILE")]
    password_file: Option<PathBuf>,
    /// Print `/status.json` instead of tables (re-encoded: whatever would act on a terminal is
    /// escaped, as JSON allows).
    #[arg(long)]
    json: bool,
    /// Every region of every measure, not only those each measure is judged on.
    #[arg(long)]
    all: bool,
    /// A monitoring check: exit 2 if a critical alert fires, 1 if a warning does, 0 if none, 3
    /// if the status cannot be read.
    #[arg(long)]
    check: bool,
}

/// Exit code of `--check` when the status cannot be read.
const UNKNOWN: u8 = 3;

/// Reads the status and prints it; the exit code (`--check`'s, else 0).
pub(crate) fn main(cfg: &Config, a: Args) -> Result<u8, Error> {
    let fetched = fetch(cfg, &a);
    let (status, body) = match fetched {
        Ok(x) => x,
        Err(e) if a.check => {
            eprintln!("srv-opr status: UNKNOWN: {}", e.report());
            return Ok(UNKNOWN);
        }
        Err(e) => return Err(e),
    };
    if a.json {
        crate::outln!("{}", body.trim_end())?;
    } else {
        let colour = std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none();
        crate::outp!("{}", render(&status, a.all, colour))?;
    }
    let critical = status
        .alerts
        .iter()
        .filter(|x| x.severity == "critical")
        .count();
    let warning = status.alerts.len() - critical;
    if !a.check {
        return Ok(0);
    }
    let (code, word) = match (critical, warning) {
        (0, 0) => (0, "OK"),
        (0, _) => (1, "WARNING"),
        _ => (2, "CRITICAL"),
    };
    let names: Vec<String> = status
        .alerts
        .iter()
        .map(|x| match (&x.measure, &x.region) {
            (Some(m), Some(r)) => format!("{} {m} {r}", x.alert),
            _ => x.alert.clone(),
        })
        .collect();
    crate::outln!(
        "srv-opr status: {word}: {critical} critical, {warning} warning alerts firing{}",
        if names.is_empty() {
            String::new()
        } else {
            format!(": {}", names.join(", "))
        }
    )?;
    Ok(code)
}

/// `/status.json` of the endpoint, parsed, and its text.
fn fetch(cfg: &Config, a: &Args) -> Result<(Status, String), Error> {
    let base = match &a.url {
        // The page's URL or the JSON's, as a browser shows them, name the same endpoint.
        Some(u) => {
            let u = u.trim_end_matches('/');
            u.strip_suffix("/status.json")
                .or_else(|| u.strip_suffix("/index.html"))
                .unwrap_or(u)
                .trim_end_matches('/')
                .to_string()
        }
        None if cfg.settings.http.listen.is_empty() => {
            return Err(Error::Usage(
                "http.listen is empty (no endpoint is served): give --url".into(),
            ));
        }
        None => format!("http://{}", cfg.settings.http.listen),
    };
    if !base.starts_with("http://") && !base.starts_with("https://") {
        return Err(Error::Usage(format!(
            "--url {base:?} is not an http:// or https:// URL"
        )));
    }
    let url = format!("{base}/status.json");
    let roots = match &a.ca_file {
        None => RootCerts::PlatformVerifier,
        Some(path) => RootCerts::Specific(std::sync::Arc::new(certificates(path)?)),
    };
    let tls = TlsConfig::builder()
        .provider(TlsProvider::NativeTls)
        .root_certs(roots)
        .build();
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .tls_config(tls)
        .timeout_global(Some(Duration::from_secs(15)))
        .http_status_as_error(false)
        // A redirect could carry the credentials elsewhere.
        .max_redirects(0)
        .user_agent(concat!("srv-opr/", env!("CARGO_PKG_VERSION")))
        .build()
        .into();
    let mut req = agent.get(&url);
    if let Some(user) = &a.user {
        let password = password(a)?;
        let pair = format!("{user}:{}", password.expose());
        // Registered as a secret: the encoded pair is as good as the password.
        let header = Secret::new(format!(
            "Basic {}",
            openssl::base64::encode_block(pair.as_bytes())
        ));
        req = req.header("Authorization", header.expose());
    }
    let world = |what: String| Error::Output(std::io::Error::other(what));
    let mut resp = req.call().map_err(|e| {
        world(format!(
            "cannot read {url}: {}",
            crate::diagnostic::chain(&e)
        ))
    })?;
    let code = resp.status().as_u16();
    let body = resp
        .body_mut()
        .with_config()
        .limit(16 << 20)
        .read_to_string()
        .map_err(|e| world(format!("cannot read {url}: {e}")))?;
    match code {
        200 => {}
        401 => {
            return Err(Error::Usage(format!(
                "{url} answered 401 Unauthorized: give --user with SRV_OPR_STATUS_PASSWORD or \
                 --password-file (the endpoint's web configuration asks for basic auth)"
            )));
        }
        404 => {
            return Err(world(format!(
                "{url} answered 404: not an srv-opr endpoint with a status page"
            )));
        }
        other => {
            let text: String = body.trim().chars().take(200).collect();
            return Err(world(format!(
                "{url} answered {other}: {}",
                printable(&text)
            )));
        }
    }
    read_status(&body).map_err(|e| {
        world(format!(
            "{url} did not answer a status srv-opr knows: {}",
            printable(&e.to_string())
        ))
    })
}

/// A `/status.json` body as the status to show, every string made printable, and the body as
/// JSON a terminal only shows (for `--json`).
pub fn read_status(body: &str) -> Result<(Status, String), serde_json::Error> {
    let mut value: serde_json::Value = serde_json::from_str(body)?;
    let json = json_for_a_terminal(&value);
    // Every string the server sent, names and keys alike, made printable before anything is
    // shown: a CR LF in a group name once forged `srv-opr status: OK` lines that a monitoring
    // plugin would have read.
    make_printable(&mut value);
    let status: Status = serde_json::from_value(value)?;
    Ok((status, json))
}

/// Every string of `v`, and every key, through [`printable`].
fn make_printable(v: &mut serde_json::Value) {
    use serde_json::Value;
    match v {
        Value::String(s) => {
            if let std::borrow::Cow::Owned(p) = printable(s) {
                *s = p;
            }
        }
        Value::Array(items) => items.iter_mut().for_each(make_printable),
        Value::Object(map) => {
            let entries = std::mem::take(map);
            for (k, mut item) in entries {
                make_printable(&mut item);
                map.insert(printable(&k).into_owned(), item);
            }
        }
        Value::Null | Value::Bool(_) | Value::Number(_) => {}
    }
}

/// `v` as JSON a terminal only shows: serde_json escapes C0 controls in strings, and the rest
/// that would act (DEL, C1 controls, bidirectional overrides) is escaped here the same way
/// (`\u009b`), which JSON reads back as the same text.
fn json_for_a_terminal(v: &serde_json::Value) -> String {
    let text = serde_json::to_string_pretty(v).unwrap_or_default();
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if c != '\n' && acts(c) {
            let mut units = [0u16; 2];
            for u in c.encode_utf16(&mut units) {
                out.push_str(&format!("\\u{u:04x}"));
            }
        } else {
            out.push(c);
        }
    }
    out
}

fn password(a: &Args) -> Result<Secret, Error> {
    if let Some(path) = &a.password_file {
        let text = std::fs::read_to_string(path)
            .map_err(|e| Error::Usage(format!("--password-file {}: {e}", path.display())))?;
        return Ok(Secret::new(text.lines().next().unwrap_or("").to_string()));
    }
    match std::env::var("SRV_OPR_STATUS_PASSWORD") {
        Ok(p) => Ok(Secret::new(p)),
        Err(_) => Err(Error::Usage(
            "--user needs a password: set SRV_OPR_STATUS_PASSWORD or give --password-file".into(),
        )),
    }
}

fn certificates(path: &PathBuf) -> Result<Vec<ureq::tls::Certificate<'static>>, Error> {
    let bad = |why: String| Error::Usage(format!("--ca-file {}: {why}", path.display()));
    crate::ops::pem::certificates(&std::fs::read(path).map_err(|e| bad(e.to_string()))?)
        .map_err(bad)
}

/// The status as text tables.
pub fn render(s: &Status, all: bool, colour: bool) -> String {
    let mut o = String::new();
    render_head(&mut o, s, colour);
    render_notes(&mut o, s, colour);
    render_objectives(&mut o, s, all, colour);
    render_pipeline(&mut o, s);
    o
}

/// `text` in the SGR colour `code` when writing to a terminal, else as it is.
fn painted(colour: bool, code: &str, text: &str) -> String {
    if colour {
        format!("\x1b[{code}m{text}\x1b[0m")
    } else {
        text.to_string()
    }
}

/// The overall state and its problems first (what a monitoring plugin reads), then who is
/// speaking and the month shown.
fn render_head(o: &mut String, s: &Status, colour: bool) {
    let paint = |code: &str, text: &str| painted(colour, code, text);
    // The overall state first: what a monitoring plugin reads.
    let hv = &s.health;
    let headline = if hv.headline.is_empty() {
        "UNKNOWN: the endpoint does not say its overall state (an older srv-opr)"
    } else {
        hv.headline.as_str()
    };
    let code = match hv.state.as_str() {
        "critical" => "1;31",
        "warning" => "1;33",
        _ => "1;32",
    };
    let _ = writeln!(o, "{}", paint(code, headline));
    for p in &hv.problems {
        let _ = writeln!(o, "  {p}");
    }
    let i = &s.instance;
    let _ = writeln!(
        o,
        "srv-opr {} on {} · group {} · topics {} · definitions {} · exemptions {}",
        i.version,
        i.name,
        i.group,
        i.topics.join(","),
        i.definitions_sha256
            .get(..12)
            .unwrap_or(&i.definitions_sha256),
        i.exemptions_sha256
            .as_deref()
            .map_or("none", |h| h.get(..12).unwrap_or(h))
    );
    match &s.month {
        None => {
            let _ = writeln!(o, "no event yet");
        }
        Some(m) => {
            let scope = match (&m.group, m.source.as_str()) {
                (Some(g), "group") => format!(
                    "whole group: {} partitions from the store, oldest checkpoint {}",
                    g.partitions,
                    g.oldest_checkpoint_age_seconds
                        .map_or_else(|| "unknown".into(), |a| format!("{a:.0} s ago"))
                ),
                (Some(g), _) => format!(
                    "THIS INSTANCE ONLY (store not used: {})",
                    g.error.as_deref().unwrap_or("not read yet")
                ),
                (None, _) => "this instance only (no state store)".to_string(),
            };
            let _ = writeln!(
                o,
                "month {} to date, {:.1} % gone, {} · watermark {} · {}",
                m.month,
                m.elapsed_percent,
                if m.is_final { "FINAL" } else { "not final" },
                m.watermark,
                scope
            );
        }
    }
}

/// The alerts firing, the exemption register, the interfaces and the signed months.
fn render_notes(o: &mut String, s: &Status, colour: bool) {
    let paint = |code: &str, text: &str| painted(colour, code, text);
    let _ = writeln!(o);
    if s.alerts.is_empty() {
        let _ = writeln!(o, "alerts firing: {}", paint("32", "none"));
    } else {
        let _ = writeln!(o, "alerts firing: {}", s.alerts.len());
        for a in &s.alerts {
            let sev = a.severity.to_uppercase();
            let sev = if a.severity == "critical" {
                paint("1;31", &sev)
            } else {
                paint("33", &sev)
            };
            let _ = writeln!(o, "  {sev} {} since {}: {}", a.alert, a.since, a.summary);
        }
    }
    if !s.exemptions.is_empty() {
        let active: Vec<&str> = s
            .exemptions
            .iter()
            .filter(|e| e.active)
            .map(|e| e.id.as_str())
            .collect();
        let _ = writeln!(
            o,
            "exemptions: {} in the register, {} active now{}",
            s.exemptions.len(),
            active.len(),
            if active.is_empty() {
                String::new()
            } else {
                format!(": {}", active.join(", "))
            }
        );
    }
    if !s.interfaces.is_empty() {
        let down: Vec<String> = s
            .interfaces
            .iter()
            .filter(|i| i.state == "down")
            .map(|i| {
                format!(
                    "{} DOWN since {}",
                    i.interface,
                    i.down_since.as_deref().unwrap_or("?")
                )
            })
            .collect();
        let figures: Vec<String> = s
            .interfaces
            .iter()
            .map(|i| {
                format!(
                    "{} {} %",
                    i.interface,
                    i.availability_percent.as_deref().unwrap_or("-")
                )
            })
            .collect();
        let _ = writeln!(
            o,
            "interfaces: {}; {} so far: {}",
            if down.is_empty() {
                "all up".to_string()
            } else {
                down.join(", ")
            },
            s.interfaces[0].month,
            figures.join(", ")
        );
    }
    if !s.signoffs.is_empty() {
        let restated: Vec<String> = s
            .signoffs
            .iter()
            .filter(|m| m.restated_fields > 0)
            .map(|m| {
                format!(
                    "{} ({}) RESTATED: {} fields ({})",
                    m.month,
                    m.view,
                    m.restated_fields,
                    m.causes.join("; ")
                )
            })
            .collect();
        let _ = writeln!(
            o,
            "signed months: {}; {}",
            s.signoffs.len(),
            if restated.is_empty() {
                "all stand".to_string()
            } else {
                restated.join(", ")
            }
        );
    }
}

/// The objectives as on the page: judged rows, problems first (every row with `all`).
fn render_objectives(o: &mut String, s: &Status, all: bool, colour: bool) {
    let paint = |code: &str, text: &str| painted(colour, code, text);
    let _ = writeln!(o);
    let headers = [
        "measure",
        "region",
        "state",
        "rpl %",
        "tpl/mpl",
        "requests",
        "hits",
        "to tpl",
        "budget",
        "projected",
        "instance",
        "largest misses",
    ];
    let mut rows: Vec<(Vec<String>, &str)> = Vec::new();
    for m in &s.measures {
        let levels = match (&m.tpl, &m.mpl) {
            (Some(t), Some(p)) => format!("{t}/{p}"),
            (Some(t), None) => t.clone(),
            _ => "-".into(),
        };
        // As the page: the rows judged against a target, unless every row is asked for.
        for r in m
            .regions
            .iter()
            .filter(|r| all || (r.judged && m.tpl.is_some()))
        {
            rows.push((row_cells(&m.measure, &levels, r), r.state.as_str()));
        }
    }
    // Problems first, as on the page (stable: configuration order within a state).
    if !all {
        rows.sort_by_key(|(_, state)| crate::ops::status::model::urgency(state));
    }
    let mut widths: Vec<usize> = headers.iter().map(|h| h.len()).collect();
    for (cells, _) in &rows {
        for (w, c) in widths.iter_mut().zip(cells) {
            *w = (*w).max(c.chars().count());
        }
    }
    let line = |cells: &[String]| {
        cells
            .iter()
            .zip(&widths)
            .enumerate()
            .map(|(i, (c, w))| {
                if i >= 3 {
                    format!("{c:>w$}")
                } else {
                    format!("{c:<w$}")
                }
            })
            .collect::<Vec<_>>()
            .join("  ")
    };
    let head: Vec<String> = headers.iter().map(|h| h.to_string()).collect();
    let _ = writeln!(o, "{}", line(&head));
    for (cells, state) in &rows {
        let text = line(cells);
        let text = match *state {
            "below_minimum" => paint("1;31", &text),
            "below_target" => paint("33", &text),
            _ => text,
        };
        let _ = writeln!(o, "{text}");
    }
}

/// This instance's pipeline and its partitions.
fn render_pipeline(o: &mut String, s: &Status) {
    let p = &s.pipeline;
    let _ = writeln!(o);
    let _ = writeln!(
        o,
        "pipeline: {} partitions held, lag {} messages, {:.0} events/s, checkpoint age {}, {} \
         pending, {} waiting, {} dead letters in the last hour{}",
        p.partitions_held,
        p.lag_messages,
        p.events_per_second,
        p.checkpoint_age_seconds
            .map_or("- (no store)".into(), |a| format!("{a:.1} s")),
        p.pending_requests,
        p.waiting_responses,
        p.dead_letters_last_hour.values().sum::<u64>(),
        if p.dead_letters_last_hour.is_empty() {
            String::new()
        } else {
            format!(
                " ({})",
                p.dead_letters_last_hour
                    .iter()
                    .map(|(r, n)| format!("{r} {n}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        }
    );
    for q in &p.partitions {
        let _ = writeln!(
            o,
            "  {}/{}: offset {}, lag {}, watermark {} ({} behind the clock)",
            q.topic,
            q.partition,
            q.next_offset,
            q.lag.map_or("-".into(), |l| l.to_string()),
            q.watermark.as_deref().unwrap_or("-"),
            q.watermark_behind_seconds
                .map_or("-".into(), |s| format!("{s:.0} s"))
        );
    }
}

fn row_cells(measure: &str, levels: &str, r: &RegionView) -> Vec<String> {
    let state = match r.state.as_str() {
        "ok" => "ok",
        "below_target" => "BELOW TPL",
        "below_minimum" => "BELOW MPL",
        "no_target" => "no target",
        _ => "no requests",
    };
    vec![
        measure.to_string(),
        r.region.clone(),
        state.to_string(),
        r.rpl_percent.clone().unwrap_or_else(|| "-".into()),
        levels.to_string(),
        r.requests.to_string(),
        r.hits.to_string(),
        r.hits_to_target.map_or("-".into(), |v| v.to_string()),
        r.error_budget.map_or("-".into(), |v| v.to_string()),
        r.projected_rpl_percent
            .map_or("-".into(), |v| format!("{v:.2}")),
        r.instance.rpl_percent.clone().unwrap_or_else(|| "-".into()),
        if r.misses.is_empty() {
            "-".into()
        } else {
            r.misses
                .iter()
                .map(|m| format!("{} {}", m.bucket, m.count))
                .collect::<Vec<_>>()
                .join(", ")
        },
    ]
}
