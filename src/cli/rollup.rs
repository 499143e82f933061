//! `srv-opr rollup --month YYYY-MM`: a month's outputs (SPEC §5) from the state store of `run`,
//! the partitions merged, without Kafka.

use std::path::{Path, PathBuf};
use std::time::Instant;

use crate::config::Config;
use crate::engine::aggregate::Aggregates;
use crate::engine::calendar::Month;
use crate::engine::pipeline::PipelineStats;
use crate::error::Error;
use crate::sink::outdir::OutDir;
use crate::sink::outputs::{Origin, write_outputs};
use crate::store::RevisionRecord;
use crate::store::load::{StoreLoad, load_months};

use super::args::MonthArg;

/// `rollup`'s arguments.
#[derive(clap::Args, Debug)]
pub(crate) struct Args {
    /// The month, YYYY-MM.
    #[arg(long, value_name = "YYYY-MM")]
    month: String,
    /// Output directory (default ./rollup-YYYY-MM).
    #[arg(long, value_name = "DIR")]
    out: Option<PathBuf>,
    #[command(flatten)]
    exemptions: super::args::Exemptions,
}

/// Writes the month's outputs and says how final they are.
pub(crate) fn main(cfg: &Config, a: Args) -> Result<(), Error> {
    let cfg = &*a.exemptions.apply(cfg)?;
    let MonthArg(month) = a.month.parse()?;
    let out = a
        .out
        .clone()
        .unwrap_or_else(|| PathBuf::from(format!("rollup-{month}")));
    let r = rollup(cfg, month, &out)?;
    if !r.is_final {
        eprintln!(
            "srv-opr: warning: {month} is not final yet (watermark {}): its figures can still \
             change",
            r.aggregates.watermark()
        );
    }
    for rev in &r.revisions {
        eprintln!(
            "srv-opr: revision {} of {} {} {} ({}): {}",
            rev.revision, rev.month, rev.measure, rev.region, rev.origin, rev.reason
        );
    }
    for s in &r.restatements {
        let list = |ids: &[String]| {
            if ids.is_empty() {
                "none".to_string()
            } else {
                ids.join(", ")
            }
        };
        eprintln!(
            "srv-opr: {} restated by the exemption register {}: added {}; withdrawn {}; {} rows \
             revised",
            s.month,
            s.recorded_at.as_deref().map_or_else(
                || "applied now (not recorded: `run` records it)".to_string(),
                |t| format!("recorded {t}")
            ),
            list(&s.added),
            list(&s.withdrawn),
            s.rows
        );
    }
    eprintln!(
        "srv-opr: rollup of {month} from {} partitions written to {}",
        r.partitions.len(),
        out.display()
    );
    Ok(())
}

/// What `rollup` found in the store.
pub struct RollupOutcome {
    /// The month's aggregates merged over partitions, with the store's combined watermark.
    pub aggregates: Aggregates,
    /// Event accounting summed over partitions (all months: the store counts events, not
    /// events per month).
    pub stats: PipelineStats,
    /// The month is final (the combined watermark passed its end + the longest deadline).
    pub is_final: bool,
    /// Partitions that contributed.
    pub partitions: Vec<String>,
    /// Revisions recorded for the month.
    pub revisions: Vec<RevisionRecord>,
    /// Changes of exemption register that restated the month.
    pub restatements: Vec<crate::store::load::Restatement>,
}

/// `rollup`: a month's outputs (SPEC §5) from the state store of a `run`, without Kafka.
pub(crate) fn rollup(cfg: &Config, month: Month, out: &Path) -> Result<RollupOutcome, Error> {
    let started = Instant::now();
    let loaded = load_months(cfg, &cfg.pipeline()?, &[month])?;
    let StoreLoad {
        aggregates: merged,
        stats,
        partitions: names,
        watermark,
        mut store,
        restatements,
    } = loaded;
    // A month the store holds nothing of would be an empty rpl.csv that looks like a month
    // without traffic: refuse it, saying what the store holds.
    // Months with requests, and months availability events cover (issue 30).
    crate::store::load::holds(&mut *store, &merged, month)?;
    let is_final = merged.is_final(month);
    if !is_final {
        tracing::warn!(%month, watermark = %watermark,
            "the month is not final yet: its figures can still change as events arrive");
    }
    let revisions = store.revisions(Some(month))?;
    let outdir = OutDir::create(out)?;
    write_outputs(
        &outdir,
        cfg,
        &merged,
        &stats,
        watermark,
        Origin {
            inputs: names.clone(),
            started,
            months: Some(&[month]),
        },
    )?;
    outdir.publish()?;
    Ok(RollupOutcome {
        aggregates: merged,
        stats,
        is_final,
        partitions: names,
        revisions,
        restatements,
    })
}
