//! `srv-opr signoff` (record what is submitted for a month) and `srv-opr restatements` (what
//! changed in a signed month since, and why), both on the state store of `run`.

use std::io::Write as _;
use std::path::PathBuf;

use crate::config::Config;
use crate::error::Error;
use crate::signoff::compare::{self, Change};
use crate::signoff::{self, Request};
use crate::sink::outdir::OutDir;

use super::args::MonthArg;

/// `signoff`'s arguments.
#[derive(clap::Args, Debug)]
pub(crate) struct SignArgs {
    /// The month, YYYY-MM.
    #[arg(long, value_name = "YYYY-MM")]
    month: String,
    /// The view (`opr`, or another the exemption register names).
    #[arg(long, default_value = "opr", value_name = "VIEW")]
    view: String,
    /// Who signs (recorded).
    #[arg(long, value_name = "NAME")]
    by: String,
    /// A note for the record.
    #[arg(long, value_name = "TEXT")]
    note: Option<String>,
    /// Sign a month that is not final yet (with --reason, which is recorded).
    #[arg(long, requires = "reason")]
    force: bool,
    /// Why a month not yet final is signed.
    #[arg(long, value_name = "TEXT", requires = "force")]
    reason: Option<String>,
    #[command(flatten)]
    exemptions: super::args::Exemptions,
}

/// Records the sign-off and says what was recorded.
pub(crate) fn sign_main(cfg: &Config, a: SignArgs) -> Result<(), Error> {
    let cfg = &*a.exemptions.apply(cfg)?;
    let MonthArg(month) = a.month.parse()?;
    let forced = if a.force {
        match a.reason.as_deref().map(str::trim) {
            Some(r) if !r.is_empty() => Some(r.to_string()),
            _ => {
                return Err(Error::Usage(
                    "--force needs --reason TEXT saying why a month not final is signed".into(),
                ));
            }
        }
    } else {
        None
    };
    let s = signoff::sign(
        cfg,
        &Request {
            month,
            view: a.view.clone(),
            by: a.by,
            note: a.note,
            forced,
        },
    )?;
    let rows = s.rpl_csv.lines().count().saturating_sub(1);
    let interfaces = s.availability_csv.lines().count().saturating_sub(1);
    crate::outln!(
        "signed {month} ({} view) as sign-off {}: by {} at {}; {rows} rows, {interfaces} \
         interface rows; definitions {}; register {}{}",
        s.view,
        s.id,
        s.signed_by,
        s.signed_at,
        &s.definitions_sha256[..s.definitions_sha256.len().min(12)],
        if s.register_sha256.is_empty() {
            "none".to_string()
        } else {
            format!(
                "{} ({} exemptions)",
                &s.register_sha256[..s.register_sha256.len().min(12)],
                s.register_ids.len()
            )
        },
        s.forced
            .as_deref()
            .map(|r| format!("; NOT FINAL, signed with --force: {r}"))
            .unwrap_or_default()
    )?;
    Ok(())
}

/// `restatements`' arguments.
#[derive(clap::Args, Debug)]
pub(crate) struct RestatementsArgs {
    /// Only this month (default: every signed month).
    #[arg(long, value_name = "YYYY-MM")]
    month: Option<String>,
    /// Only this view (default: every signed view).
    #[arg(long, value_name = "VIEW")]
    view: Option<String>,
    /// Write restatements.csv here.
    #[arg(long, value_name = "DIR")]
    out: Option<PathBuf>,
    /// Exit 1 when a signed month differs from its latest sign-off, 0 when none does, 2 when
    /// it cannot be told (a usage or store error).
    #[arg(long)]
    check: bool,
    /// Print the changes as JSON instead of a table.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    exemptions: super::args::Exemptions,
}

/// Compares every signed month (or the one named) with its current figures: the exit code.
pub(crate) fn restatements_main(cfg: &Config, a: RestatementsArgs) -> Result<u8, Error> {
    let check = a.check;
    match restatements(cfg, a) {
        Ok(changed) if check && changed => Ok(1),
        Ok(_) => Ok(0),
        // Under --check every failure to tell is 2, a store that cannot be read included.
        Err(e) if check => Err(Error::Usage(e.report())),
        Err(e) => Err(e),
    }
}

/// Lists the changes; whether any signed month differs.
fn restatements(cfg: &Config, a: RestatementsArgs) -> Result<bool, Error> {
    let cfg = &*a.exemptions.apply(cfg)?;
    let month = a
        .month
        .as_deref()
        .map(|m| m.parse::<MonthArg>().map(|x| x.0))
        .transpose()?;
    let compared = signoff::compare_all(cfg, month, a.view.as_deref())?;
    if compared.is_empty() {
        eprintln!(
            "srv-opr: no sign-off{}{} in the state store",
            month.map(|m| format!(" of {m}")).unwrap_or_default(),
            a.view
                .as_deref()
                .map(|v| format!(" in view {v}"))
                .unwrap_or_default()
        );
    }
    let changes: Vec<Change> = compared
        .iter()
        .flat_map(|(_, _, c)| c.iter().cloned())
        .collect();
    if let Some(dir) = &a.out {
        let out = OutDir::create(dir)?;
        out.write("restatements.csv", compare::csv(&changes).as_bytes())?;
        out.publish()?;
    }
    let mut stdout = std::io::stdout().lock();
    if a.json {
        let text = serde_json::to_string_pretty(&changes)
            .map_err(|e| Error::Internal(format!("restatements as JSON: {e}")))?;
        let _ = writeln!(stdout, "{text}");
    } else {
        for (s, now, c) in &compared {
            let month = s.month.map(|m| m.to_string()).unwrap_or_default();
            let fields = c.len();
            let _ = writeln!(
                stdout,
                "{month} ({} view): signed {} by {}{}; {}",
                s.view,
                s.signed_at,
                s.signed_by,
                if now.is_final { "" } else { " (not final yet)" },
                if fields == 0 {
                    "unchanged".to_string()
                } else {
                    format!("{fields} fields restated")
                }
            );
            for ch in c {
                let _ = writeln!(
                    stdout,
                    "  {} {} {}: {} -> {}  ({})",
                    ch.measure,
                    if ch.region.is_empty() {
                        "-"
                    } else {
                        &ch.region
                    },
                    ch.field,
                    if ch.signed.is_empty() {
                        "(none)"
                    } else {
                        &ch.signed
                    },
                    if ch.current.is_empty() {
                        "(none)"
                    } else {
                        &ch.current
                    },
                    ch.causes.join("; ")
                );
            }
        }
    }
    Ok(!changes.is_empty())
}
