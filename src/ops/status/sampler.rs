//! The status page's own thread: every few seconds it samples the live view (events per
//! second, dead letters by reason, the month's counts for the 24-hour trend) and, with a state
//! store, reads every partition's checkpointed month rows and merges them as `rollup` does. A
//! page request then only reads what it kept: it never waits for the store, and the store
//! sees one reader however often the page is refreshed.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant, SystemTime};

use crate::config::Config;
use crate::engine::aggregate::Aggregates;
use crate::engine::calendar::{Calendar, Month};
use crate::engine::domain::Basis;
use crate::engine::pipeline::PipelineConfig;
use crate::engine::time::Ts;
use crate::ops::live::{Counts, Live, MeasureBuckets, MeasureCounts, MeasureDays};
use crate::store::load::merge_months;
use crate::store::{Identity, Store, open_configured};

/// How often the thread looks.
const TICK: Duration = Duration::from_secs(2);
/// How often the store is read (its rows move at each checkpoint, every few seconds).
const GROUP_EVERY: Duration = Duration::from_secs(5);
/// How often a point of the 24-hour trend is taken…
const TREND_EVERY: Duration = Duration::from_secs(60);
/// …but this often for its first points, so a page opened soon after a start has a trend.
const TREND_FIRST_EVERY: Duration = Duration::from_secs(10);
const TREND_FIRST_POINTS: usize = 60;
/// How long the trend reaches back.
pub(super) const TREND_SPAN: Duration = Duration::from_secs(24 * 3600);
/// How often dead letters are counted for the last hour's.
const DEAD_EVERY: Duration = Duration::from_secs(60);
/// The window of dead letters shown.
pub(super) const DEAD_SPAN: Duration = Duration::from_secs(3600);
/// The window events per second are measured over.
const RATE_SPAN: Duration = Duration::from_secs(10);

/// Requests and hits by measure, then region (north, central, south, all).
pub(super) type Hits = Vec<[(u64, u64); 4]>;

/// The month's counts at one moment, for the trend.
#[derive(Debug, Clone)]
pub(super) struct TrendSample {
    pub(super) at: SystemTime,
    pub(super) month: Month,
    pub(super) counts: Hits,
}

/// The group's figures as last read from the store.
#[derive(Clone)]
pub(super) struct GroupRead {
    pub(super) month: Month,
    pub(super) counts: MeasureCounts,
    pub(super) days: MeasureDays,
    /// The month's misses by failure bucket.
    pub(super) buckets: MeasureBuckets,
    /// Requests the `opr` view's exemptions took out of the counts.
    pub(super) exempted: MeasureCounts,
    /// `(topic/partition, owner, when last checkpointed)`.
    pub(super) checkpoints: Vec<(String, String, Option<SystemTime>)>,
    pub(super) read_at: SystemTime,
    /// The month's aggregates, merged (kept as read, not copied): `/evidence/<measure>.csv`
    /// renders its sampled evidence when asked.
    pub(super) aggregates: Arc<Aggregates>,
}

/// What the thread keeps for the page.
#[derive(Default)]
pub(super) struct Kept {
    /// Events processed, sampled each tick.
    pub(super) rate: VecDeque<(Instant, u64)>,
    /// Dead letters by reason (in `DeadReason::ALL` order), sampled each minute.
    pub(super) dead: VecDeque<(Instant, Vec<u64>)>,
    /// Points of the trend (of the group's figures when there is a store).
    pub(super) trend: VecDeque<TrendSample>,
    /// The group's figures, when a store is configured and was read.
    pub(super) group: Option<GroupRead>,
    /// Why the store could not be read, the last time it was tried.
    pub(super) group_error: Option<String>,
}

/// The shared state and the thread that fills it.
pub(super) struct Sampler {
    pub(super) kept: Arc<Mutex<Kept>>,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Drop for Sampler {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            t.thread().unpark();
            let _ = t.join();
        }
    }
}

/// Locks what the thread keeps (its data are plain samples: a panic elsewhere leaves them
/// usable).
pub(super) fn lock(kept: &Mutex<Kept>) -> MutexGuard<'_, Kept> {
    kept.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Sampler {
    /// Starts the thread: it samples `live` and, when `cfg` names a store, reads it.
    pub(super) fn start(
        cfg: &Config,
        pipeline: &PipelineConfig,
        live: Arc<Live>,
    ) -> std::io::Result<Sampler> {
        let kept = Arc::new(Mutex::new(Kept::default()));
        let stop = Arc::new(AtomicBool::new(false));
        let (k, s, cfg, pipeline) = (kept.clone(), stop.clone(), cfg.clone(), pipeline.clone());
        let thread = std::thread::Builder::new()
            .name("srv-opr-status".into())
            .spawn(move || sample_loop(&cfg, &pipeline, &live, &k, &s))?;
        Ok(Sampler {
            kept,
            stop,
            thread: Some(thread),
        })
    }
}

fn sample_loop(
    cfg: &Config,
    pipeline: &PipelineConfig,
    live: &Live,
    kept: &Mutex<Kept>,
    stop: &AtomicBool,
) {
    let mut calendar = pipeline.calendar.clone();
    let mut store: Option<Box<dyn Store>> = None;
    let with_store = !cfg.settings.state.url.is_empty();
    let (mut last_group, mut last_trend, mut last_dead) = (None::<Instant>, None::<Instant>, None);
    let mut finished = false;
    while !stop.load(Ordering::Relaxed) {
        let now = Instant::now();
        let snap = live.snapshot(|ts| calendar.month_of(ts));
        if snap.finished && !finished {
            // The run's last checkpoints are in: read the group's figures now, not up to a
            // read interval later (its rows lagged the final ones, and nothing moves after).
            finished = true;
            last_group = None;
        }
        {
            let mut k = lock(kept);
            k.rate.push_back((now, live.events_processed()));
            while k
                .rate
                .front()
                .is_some_and(|(t, _)| now.duration_since(*t) > RATE_SPAN)
            {
                k.rate.pop_front();
            }
            if last_dead.is_none_or(|t: Instant| now.duration_since(t) >= DEAD_EVERY) {
                last_dead = Some(now);
                k.dead.push_back((now, snap.stats.dead_letters.to_vec()));
                while k
                    .dead
                    .get(1)
                    .is_some_and(|(t, _)| now.duration_since(*t) >= DEAD_SPAN)
                {
                    k.dead.pop_front();
                }
            }
        }
        if with_store && last_group.is_none_or(|t: Instant| now.duration_since(t) >= GROUP_EVERY) {
            last_group = Some(now);
            let month = snap.month.as_ref().map(|(m, _)| *m);
            let read = read_group(cfg, pipeline, &mut store, month, &mut calendar);
            let mut k = lock(kept);
            match read {
                Ok(g) => {
                    k.group = g;
                    k.group_error = None;
                }
                Err(e) => {
                    // Reconnect next time; the page says why it shows this instance only.
                    store = None;
                    tracing::debug!(error = %e, "status: reading the state store");
                    k.group_error = Some(e);
                }
            }
        }
        let every = if lock(kept).trend.len() < TREND_FIRST_POINTS {
            TREND_FIRST_EVERY
        } else {
            TREND_EVERY
        };
        if last_trend.is_none_or(|t: Instant| now.duration_since(t) >= every) {
            last_trend = Some(now);
            let mut k = lock(kept);
            let sample = match (&k.group, &snap.month) {
                (Some(g), _) if k.group_error.is_none() && !g.checkpoints.is_empty() => {
                    Some((g.month, hits_of(pipeline, &g.counts)))
                }
                (_, Some((m, c))) => Some((*m, hits_of(pipeline, c))),
                _ => None,
            };
            if let Some((month, counts)) = sample {
                let at = SystemTime::now();
                k.trend.push_back(TrendSample { at, month, counts });
                while k.trend.get(1).is_some_and(|s| {
                    at.duration_since(s.at).unwrap_or(Duration::ZERO) >= TREND_SPAN
                }) {
                    k.trend.pop_front();
                }
            }
        }
        std::thread::park_timeout(TICK);
    }
}

/// The month's rows of every partition, merged; the month is the one holding the instance's
/// combined watermark, or the store's when the instance has none yet. `Ok(None)`: nothing
/// checkpointed yet.
fn read_group(
    cfg: &Config,
    pipeline: &PipelineConfig,
    store: &mut Option<Box<dyn Store>>,
    month: Option<Month>,
    calendar: &mut Calendar,
) -> Result<Option<GroupRead>, String> {
    let diagnose = |e: &crate::store::StoreError| crate::diagnostic::chain(e);
    if store.is_none() {
        *store = Some(open_configured(cfg, &Identity::reader(cfg)).map_err(|e| diagnose(&e))?);
    }
    let Some(s) = store.as_mut() else {
        return Ok(None);
    };
    let month = match month {
        Some(m) => m,
        None => match s.combined_watermark().map_err(|e| diagnose(&e))? {
            Some(w) => calendar.month_of(Ts(w)),
            None => return Ok(None),
        },
    };
    let merged = merge_months(&mut **s, cfg, pipeline, &[month]).map_err(|e| diagnose(&e))?;
    let n = pipeline.definitions.measures.len();
    let mut counts: MeasureCounts = vec![[Counts::default(); 3]; n];
    let mut days: MeasureDays = vec![[[[0; 3]; 31]; 3]; n];
    let mut buckets: MeasureBuckets = vec![Default::default(); n];
    let mut exempted: MeasureCounts = vec![[Counts::default(); 3]; n];
    for (m, measure, block) in merged.aggregates.blocks() {
        if m != month {
            continue;
        }
        let i = measure as usize;
        // The `opr` view's figures, as `/metrics` and the alerts judge them.
        let rows = merged.aggregates.view_rows(0, m, measure, block);
        if let (Some(c), Some(d), Some(b)) =
            (counts.get_mut(i), days.get_mut(i), buckets.get_mut(i))
        {
            for (r, row) in rows.iter().enumerate() {
                c[r] = Counts::of(row);
                d[r] = row.day_counts();
                b[r].clone_from(&row.buckets);
            }
        }
        if let (Some(e), Some(t)) = (
            exempted.get_mut(i),
            merged.aggregates.exempted().regions(0, m, measure),
        ) {
            for (c, t) in e.iter_mut().zip(t) {
                c.requests = t.requests;
            }
        }
    }
    let checkpoints = merged
        .partitions
        .iter()
        .filter(|p| p.meta.is_some())
        .map(|p| {
            let at = p
                .checkpointed_at
                .as_deref()
                .and_then(|t| t.parse::<jiff::Timestamp>().ok())
                .and_then(|t| u64::try_from(t.as_millisecond()).ok())
                .map(|ms| SystemTime::UNIX_EPOCH + Duration::from_millis(ms));
            (format!("{}/{}", p.topic, p.partition), p.owner.clone(), at)
        })
        .collect();
    Ok(Some(GroupRead {
        month,
        counts,
        days,
        buckets,
        exempted,
        checkpoints,
        read_at: SystemTime::now(),
        aggregates: Arc::new(merged.aggregates),
    }))
}

/// Requests and hits (by each measure's basis) per measure and region, with `all`.
pub(super) fn hits_of(pipeline: &PipelineConfig, c: &MeasureCounts) -> Hits {
    c.iter()
        .enumerate()
        .map(|(m, rs)| {
            let basis = pipeline
                .definitions
                .measures
                .get(m)
                .map_or(Basis::Trt, |x| x.basis);
            let mut out = [(0, 0); 4];
            for (r, x) in rs.iter().enumerate() {
                let h = x.hits(basis);
                out[r] = (x.requests, h);
                out[3].0 += x.requests;
                out[3].1 += h;
            }
            out
        })
        .collect()
}
