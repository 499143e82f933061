//! `srv-opr check`: with the configuration `run` would use, tries each connection `run` makes
//! (the Kafka brokers with their TLS and authentication, the topics and their partitions, the
//! dead-letter and availability topics, the state store, Alertmanager) and prints one line per
//! connection with what succeeded or why it failed. Nothing is consumed, produced or written.

use crate::config::Config;
use crate::error::Error;

/// `check`'s arguments.
#[derive(clap::Args, Debug)]
pub(crate) struct Args {}

/// Tries every connection; exit 0 only when all work, 1 when one does not.
pub(crate) fn main(cfg: &Config, _a: Args) -> Result<u8, Error> {
    let mut lines = crate::kafka::check::check(cfg);
    lines.push(store(cfg));
    if let Some(l) = alertmanager(cfg) {
        lines.push(l);
    }
    let failed = lines.iter().filter(|(_, r)| r.is_err()).count();
    for (what, result) in &lines {
        match result {
            Ok(how) => crate::outln!("ok    {what}: {how}")?,
            Err(why) => crate::outln!("FAIL  {what}: {why}")?,
        }
    }
    crate::outln!(
        "{}",
        if failed == 0 {
            format!("all {} connections work", lines.len())
        } else {
            format!("{failed} of {} connections failed", lines.len())
        }
    )?;
    Ok(u8::from(failed > 0))
}

/// The state store, opened as a reader with `run`'s identity: its schema and the topics, group
/// and definitions it was made for are checked, and nothing is created, migrated or written.
fn store(cfg: &Config) -> crate::kafka::check::Line {
    let url = &cfg.settings.state.url;
    let what = format!("state store {}", crate::store::redacted(url));
    if url.is_empty() {
        return (
            what,
            Ok(
                "none configured (state.url is empty): partitions restart from the beginning"
                    .into(),
            ),
        );
    }
    if let Some(path) = url.strip_prefix("sqlite://")
        && !std::path::Path::new(path).exists()
    {
        return (
            what,
            Ok("does not exist yet: `run` creates it at its first start".into()),
        );
    }
    let id = crate::store::Identity {
        read_only: true,
        ..crate::store::Identity::of_run(cfg, false)
    };
    let result = crate::store::open_configured(cfg, &id)
        .and_then(|mut s| s.partitions())
        .map(|p| {
            format!(
                "opened (schema {}, made for these topics, group and definitions); {} \
                 partitions checkpointed",
                crate::store::SCHEMA_VERSION,
                p.len()
            )
        })
        .map_err(|e| crate::diagnostic::chain(&e));
    (what, result)
}

/// Alertmanager, when `alerts.alertmanager_url` names one: its status, with the configured TLS
/// and credentials.
fn alertmanager(cfg: &Config) -> Option<crate::kafka::check::Line> {
    let s = &cfg.settings.alerts.alertmanager;
    if s.url.is_empty() {
        return None;
    }
    let what = format!("alertmanager {}", s.url);
    let result = crate::ops::alerts::Alertmanager::new(s)
        .and_then(|am| am.status())
        .map_err(|e| crate::diagnostic::chain(&e));
    Some((what, result))
}
