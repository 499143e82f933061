//! Puts a [`Status`] together at a request: the live view read now, the alerts the evaluator
//! last published, and what the status thread kept (the group's figures from the store, the
//! trend, dead letters and rates). The figures follow SPEC §6's definitions exactly, as
//! `/metrics` computes them. `/evidence/` is answered here too, from the same store read: the
//! requests behind the figures the page shows.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, SystemTime};

use rust_decimal::Decimal;

use super::model::{
    AlertView, CheckpointView, DayPoint, ExemptionView, GroupView, HealthView, Instance,
    InterfaceView, LiveFigures, MeasureView, MonthView, PartitionView, RegionView, SCHEMA, Status,
    TrendPoint,
};
use super::sampler::{self, DEAD_SPAN, Hits, Kept, TREND_SPAN, hits_of};
use crate::config::Config;
use crate::engine::aggregate::{rpl_decimal, rpl_percent};
use crate::engine::calendar::{Calendar, Month};
use crate::engine::domain::Basis;
use crate::engine::event::DeadReason;
use crate::engine::pipeline::PipelineConfig;
use crate::engine::time::Ts;
use crate::ops::alerts::{AlertBoard, REGIONS, alert_regions};
use crate::ops::live::{Live, LiveSnapshot, MeasureDays};
use crate::ops::objective::{budget_left_percent, error_budget, hits_to_target, project_month_end};
use crate::sink::month::{evidence_file_name, evidence_files, rpl_lines};

/// What a status is put together from.
pub(super) struct Sources {
    pub(super) pipeline: PipelineConfig,
    pub(super) calendar: Mutex<Calendar>,
    pub(super) live: Arc<Live>,
    pub(super) board: Option<Arc<Mutex<AlertBoard>>>,
    pub(super) kept: Arc<Mutex<Kept>>,
    pub(super) instance: Instance,
    /// The projection's recent window and the fewest requests it needs (`[alerts]`).
    pub(super) recent_window: Duration,
    pub(super) min_requests: u64,
    /// The register's entries, as shown (their `active` set at each look).
    pub(super) exemptions: Vec<(ExemptionView, Ts, Ts)>,
    /// The interfaces' figures (issue 30).
    pub(super) interfaces: crate::ops::interfaces::Interfaces,
    pub(super) defs: Arc<crate::engine::definitions::Definitions>,
}

impl Sources {
    pub(super) fn new(
        cfg: &Config,
        pipeline: &PipelineConfig,
        live: Arc<Live>,
        board: Option<Arc<Mutex<AlertBoard>>>,
        kept: Arc<Mutex<Kept>>,
        interfaces: crate::ops::interfaces::Interfaces,
    ) -> Sources {
        let url = &cfg.settings.state.url;
        let store = (!url.is_empty()).then(|| {
            if url.starts_with("sqlite://") {
                "sqlite".to_string()
            } else {
                "postgres".to_string()
            }
        });
        Sources {
            pipeline: pipeline.clone(),
            calendar: Mutex::new(pipeline.calendar.clone()),
            instance: Instance {
                name: crate::store::owner_name(),
                group: cfg.settings.kafka.group_id.clone(),
                topics: cfg.settings.kafka.topics.clone(),
                definitions_sha256: cfg.definitions.sha256.clone(),
                exemptions_sha256: cfg.register.sha256.clone(),
                version: env!("CARGO_PKG_VERSION").to_string(),
                started_at: rfc3339(SystemTime::now().checked_sub(live.started.elapsed())),
                store,
                zone: cfg.settings.time.zone.clone(),
            },
            live,
            board,
            kept,
            interfaces,
            defs: pipeline.definitions.clone(),
            recent_window: cfg.settings.alerts.slow_burn_windows.0.to_std(),
            min_requests: cfg.settings.alerts.min_requests,
            exemptions: cfg
                .register
                .exemptions
                .iter()
                .map(|e| {
                    (
                        ExemptionView {
                            id: e.id.clone(),
                            reason: e.reason.as_str().to_string(),
                            from: rfc3339_ts(e.from),
                            to: rfc3339_ts(e.to),
                            active: false,
                            views: e
                                .views
                                .iter()
                                .filter_map(|v| cfg.register.views.get(*v).cloned())
                                .collect(),
                        },
                        e.from,
                        e.to,
                    )
                })
                .collect(),
        }
    }

    /// `/evidence/<file>`: the sampled requests behind the shown month's misses of the measure
    /// whose evidence file is `file` (`PM4.3.csv`), as `rollup` writes them, from the group's
    /// figures last read from the store; why not, when they cannot be served.
    pub(super) fn evidence(&self, file: &str) -> Result<String, String> {
        let measure = self
            .pipeline
            .definitions
            .measures
            .iter()
            .find(|m| evidence_file_name(&m.id) == file)
            .ok_or_else(|| format!("no measure has the evidence file {file}"))?;
        let kept = sampler::lock(&self.kept);
        let group = match (&kept.group, &kept.group_error) {
            (Some(g), None) => g,
            (_, Some(e)) => return Err(format!("the state store cannot be read now: {e}")),
            (None, None) => {
                return Err(
                    "no evidence here: it is served from the group's figures in the state store \
                     (state.url), and written to evidence/ at the stop"
                        .to_string(),
                );
            }
        };
        let lines = rpl_lines(&group.aggregates, Some(&[group.month]));
        let of_measure = lines.iter().filter(|l| l.measure == measure.id);
        Ok(evidence_files(of_measure, &[measure.id.as_str()])
            .into_iter()
            .next()
            .map(|(_, text)| text)
            .unwrap_or_default())
    }

    /// The status now.
    pub(super) fn status(&self) -> Status {
        let now = SystemTime::now();
        let mut calendar = self.calendar.lock().unwrap_or_else(PoisonError::into_inner);
        let snap = self.live.snapshot(|ts| calendar.month_of(ts));
        let board = self
            .board
            .as_ref()
            .map(|b| b.lock().unwrap_or_else(PoisonError::into_inner).clone())
            .unwrap_or_default();
        let kept = sampler::lock(&self.kept);
        let defs = &self.pipeline.definitions;

        // The group's figures when the store was read for the month shown; this instance's
        // otherwise.
        let month = snap
            .month
            .as_ref()
            .map(|(m, _)| *m)
            .or(kept.group.as_ref().map(|g| g.month));
        let group = group_shown(&kept, month);
        let instance_hits = snap.month.as_ref().map(|(_, c)| hits_of(&self.pipeline, c));
        // The failure buckets behind the figures shown.
        let shown_buckets: Option<&crate::ops::live::MeasureBuckets> = match group {
            Some(g) => Some(&g.buckets),
            None => snap.month.as_ref().map(|_| &snap.month_buckets),
        };
        let (primary, days, source): (Option<Hits>, Option<&MeasureDays>, &str) = match group {
            Some(g) => (
                Some(hits_of(&self.pipeline, &g.counts)),
                Some(&g.days),
                "group",
            ),
            None => (
                instance_hits.clone(),
                snap.month.as_ref().map(|_| &snap.month_days),
                "instance",
            ),
        };
        let exempted = match group {
            Some(g) => &g.exempted,
            None => &snap.month_exempted,
        };
        let watermark = snap.combined.or_else(|| {
            // No partition of our own yet: the store's view of time, as far as the month.
            group.map(|g| calendar.start_of(g.month))
        });
        let elapsed = match (month, watermark) {
            (Some(m), Some(w)) => calendar.share_gone(m, w),
            _ => None,
        };
        let today = watermark
            .zip(month)
            .filter(|(w, m)| calendar.month_of(*w) == *m)
            .map(|(w, _)| calendar.day_of(w));
        let month_view = month.zip(watermark).map(|(m, w)| MonthView {
            source: source.to_string(),
            group: self.group_view(&kept, group.is_some(), now),
            ..self.month_view(&calendar, &snap, m, w, elapsed)
        });
        drop(calendar);

        let figures = Figures {
            primary,
            instance_hits,
            source,
            projected: &board.projected,
            elapsed,
            recent: recent_hits(&kept, month, self.recent_window, now),
            exempted,
            buckets: shown_buckets,
            days,
            today,
            kept: &kept,
            now,
        };
        let measures = self.measures_view(&figures);

        let alerts = alerts_view(&board, defs);
        let interfaces = self.interfaces_view(&snap);
        let signoffs = snap.signoffs.clone();
        let health = Self::health_view(&snap, &alerts);
        Status {
            health,
            interfaces,
            signoffs: signoffs
                .as_ref()
                .map(|r| r.months.clone())
                .unwrap_or_default(),
            signoffs_error: signoffs.and_then(|r| r.error.clone()),
            schema: SCHEMA,
            generated_at: rfc3339(Some(now)),
            instance: self.instance.clone(),
            month: month_view,
            measures,
            alerts,
            exemptions: self.exemptions_now(),
            pipeline: pipeline_view(
                &snap,
                &kept,
                self.live.events_processed(),
                self.instance.store.is_some(),
                now,
            ),
        }
    }

    /// The month shown at watermark `w`: how far it is gone, whether it is final, and its
    /// coverage so far, from its first minute to the watermark (the rest is yet to come), on
    /// this instance's partitions. Whose figures it shows is the caller's to say.
    fn month_view(
        &self,
        calendar: &Calendar,
        snap: &LiveSnapshot,
        m: Month,
        w: Ts,
        elapsed: Option<f64>,
    ) -> MonthView {
        let (start, end) = (calendar.start_of(m), calendar.end_of(m));
        let covered = snap.coverage.judge(
            m,
            start,
            if w < end { w } else { end },
            self.pipeline.coverage_max_gap.0,
        );
        MonthView {
            covered_so_far: Some(covered.complete),
            coverage_gaps: covered
                .gaps
                .iter()
                .map(|(a, b)| [rfc3339_ts(*a), rfc3339_ts(*b)])
                .collect(),
            month: m.to_string(),
            watermark: rfc3339_ts(w),
            elapsed_percent: elapsed.map_or(0.0, |e| (e * 1000.0).round() / 10.0),
            is_final: end.plus(self.pipeline.definitions.longest_deadline) < w,
            source: String::new(),
            group: None,
        }
    }

    /// Every configured measure's rows, with the figures shown.
    fn measures_view(&self, figures: &Figures<'_>) -> Vec<MeasureView> {
        self.pipeline
            .definitions
            .measures
            .iter()
            .enumerate()
            .map(|(mi, m)| {
                let judged = alert_regions(m.regional);
                MeasureView {
                    measure: m.id.clone(),
                    name: m.name.clone(),
                    basis: m.basis.to_string(),
                    regional: m.regional,
                    tpl: m.tpl.map(|d| d.normalize().to_string()),
                    mpl: m.mpl.map(|d| d.normalize().to_string()),
                    regions: (0..4)
                        .map(|ri| self.region_view(figures, m, mi, ri, judged.contains(&ri)))
                        .collect(),
                    evidence: (figures.source == "group")
                        .then(|| format!("evidence/{}", evidence_file_name(&m.id))),
                }
            })
            .collect()
    }

    /// One row of the objectives: a measure's region (3: all) with the figures shown.
    fn region_view(
        &self,
        f: &Figures<'_>,
        m: &crate::engine::definitions::Measure,
        mi: usize,
        ri: usize,
        judged: bool,
    ) -> RegionView {
        let at = |h: &Option<Hits>| h.as_ref().and_then(|h| h.get(mi)).map_or((0, 0), |x| x[ri]);
        let (requests, hits) = at(&f.primary);
        let projected = match f.source {
            "instance" => f.projected.get(&(mi, ri)).copied(),
            _ => f.elapsed.and_then(|e| {
                let recent = f
                    .recent
                    .as_ref()
                    .and_then(|h| h.get(mi))
                    .map(|x| x[ri])
                    .filter(|(q, _)| *q >= self.min_requests.max(1));
                project_month_end(requests, hits, e, recent)
            }),
        }
        .map(|p| (p * 10_000.0).round() / 10_000.0);
        let (lr, lh) = at(&f.instance_hits);
        RegionView {
            region: REGIONS[ri].to_string(),
            judged,
            requests,
            hits,
            exempted: f.exempted.get(mi).map_or(0, |x| match ri {
                3 => x.iter().map(|c| c.requests).sum(),
                r => x[r].requests,
            }),
            rpl_percent: rpl_percent(hits, requests),
            state: state(requests, hits, m.tpl, m.mpl).to_string(),
            hits_to_target: m.tpl.map(|t| hits_to_target(requests, hits, t)),
            error_budget: m.tpl.map(|t| error_budget(requests, hits, t)),
            error_budget_left_percent: m.tpl.and_then(|t| budget_left_percent(requests, hits, t)),
            burn_rate_1h: m.tpl.and_then(|t| {
                burn_rate(&trend(f.kept, mi, ri, f.now), t, Duration::from_secs(3600))
            }),
            misses: misses_of(f.buckets, mi, ri),
            projected_rpl_percent: projected,
            instance: LiveFigures {
                requests: lr,
                hits: lh,
                rpl_percent: rpl_percent(lh, lr),
            },
            trend_24h: trend(f.kept, mi, ri, f.now),
            rpl_by_day: by_day(f.days, mi, ri, m.basis, f.today),
        }
    }

    /// Each interface's availability now, on this instance's partitions.
    fn interfaces_view(&self, snap: &crate::ops::live::LiveSnapshot) -> Vec<InterfaceView> {
        self.interfaces
            .now(&self.defs, &self.pipeline.calendar, snap)
            .into_iter()
            .map(|i| InterfaceView {
                name: self
                    .defs
                    .interfaces
                    .iter()
                    .find(|x| x.id == i.id)
                    .map_or_else(String::new, |x| x.name.clone()),
                state: if i.up { "up" } else { "down" }.to_string(),
                down_since: i.down_since.map(rfc3339_ts),
                month: i.month.to_string(),
                minutes: i.figures.minutes,
                down_minutes: i.figures.down_minutes,
                exempted_minutes: i.figures.exempted_minutes,
                availability_percent: i.figures.percent().map(|p| format!("{:.4}", p.round_dp(4))),
                target_percent: i.target,
                downtime_left_minutes: i.left,
                interface: i.id,
            })
            .collect()
    }

    /// The register's entries, each active while the wall clock is inside its window.
    fn exemptions_now(&self) -> Vec<ExemptionView> {
        let wall = crate::engine::time::now();
        self.exemptions
            .iter()
            .map(|(v, from, to)| ExemptionView {
                active: wall >= *from && wall < *to,
                ..v.clone()
            })
            .collect()
    }

    /// The overall state: the worst alert firing sets it; the connections' problems now are listed
    /// whether or not their alert has fired yet.
    pub(super) fn health_view(snap: &LiveSnapshot, alerts: &[AlertView]) -> HealthView {
        let mut problems = Vec::new();
        if snap.finished {
            // Served on after the run ended (`demo --keep-serving`): not an outage, not "OK".
            problems.push(
                "The run has ended: nothing more is read, and the figures are as at its end."
                    .to_string(),
            );
        } else if let Some((t, why)) = snap.link.kafka_down() {
            let since = snap
                .link
                .down_since
                .map_or_else(String::new, |t| format!(" since {}", rfc3339(Some(t))));
            // `/readyz`'s words, as a sentence.
            let mut what = t.what().chars();
            let what: String = what
                .next()
                .map(|c| c.to_ascii_uppercase())
                .into_iter()
                .chain(what)
                .collect();
            problems.push(format!("{what}{since}: {why}."));
        } else if snap.link.brokers_up.is_some_and(|n| n > 0) && snap.assigned == 0 {
            problems.push("The brokers answer and this instance holds no partition.".to_string());
        }
        if let Some((at, why)) = &snap.link.store_down {
            problems.push(format!(
                "The state store does not answer since {}: {why}.",
                rfc3339(Some(*at))
            ));
        }
        let worst = alerts
            .iter()
            .find(|a| a.severity == "critical")
            .or_else(|| alerts.first());
        let (state, headline) = match worst {
            None => match problems.first() {
                // Not yet an alert (it fires after alerts.health_for): not "OK" either.
                Some(p) => ("warning", format!("WARNING: {p}")),
                None => ("ok", "OK: no alert firing".to_string()),
            },
            Some(a) => {
                let word = if a.severity == "critical" {
                    "CRITICAL"
                } else {
                    "WARNING"
                };
                let more = match alerts.len() {
                    1 => String::new(),
                    n => format!(" (and {} more alerts)", n - 1),
                };
                (
                    a.severity.as_str(),
                    format!("{word}: {}: {}{more}", a.alert, a.summary),
                )
            }
        };
        HealthView {
            state: state.to_string(),
            headline,
            problems,
        }
    }

    /// The group's partitions and their checkpoints' ages; `None` without a store.
    fn group_view(&self, kept: &Kept, shown: bool, now: SystemTime) -> Option<GroupView> {
        self.instance.store.as_ref()?;
        let age = |t: &Option<SystemTime>| {
            t.map(|t| {
                now.duration_since(t)
                    .unwrap_or(Duration::ZERO)
                    .as_secs_f64()
            })
        };
        let (checkpoints, read_at) = match &kept.group {
            Some(g) => (
                g.checkpoints
                    .iter()
                    .map(|(p, o, t)| CheckpointView {
                        partition: p.clone(),
                        owner: o.clone(),
                        age_seconds: age(t).map(round1),
                    })
                    .collect::<Vec<_>>(),
                Some(g.read_at),
            ),
            None => (Vec::new(), None),
        };
        let oldest = checkpoints
            .iter()
            .filter_map(|c| c.age_seconds)
            .fold(None, |m: Option<f64>, a| Some(m.map_or(a, |m| m.max(a))));
        let error = kept.group_error.clone().or_else(|| {
            (!shown).then(|| {
                if kept.group.as_ref().is_none_or(|g| g.checkpoints.is_empty()) {
                    "nothing checkpointed yet".to_string()
                } else {
                    "the store's figures are of another month".to_string()
                }
            })
        });
        Some(GroupView {
            partitions: checkpoints.len(),
            oldest_checkpoint_age_seconds: oldest,
            checkpoints,
            read_at: rfc3339(read_at),
            error,
        })
    }
}

/// The budget's burn rate over the trend's last `span`: the miss ratio over (100 − TPL) %.
fn burn_rate(points: &[TrendPoint], tpl: Decimal, span: Duration) -> Option<f64> {
    use rust_decimal::prelude::ToPrimitive;
    let budget = (Decimal::ONE_HUNDRED - tpl).to_f64()? / 100.0;
    if budget <= 0.0 {
        return None;
    }
    let minutes = (span.as_secs() / 60) as usize;
    let recent = &points[points.len().saturating_sub(minutes)..];
    let (req, hits) = recent.iter().fold((0.0, 0.0), |(r, h), p| {
        let n = p.requests as f64;
        (r + n, h + n * p.hit_ratio_percent / 100.0)
    });
    (req > 0.0).then(|| (((req - hits) / req / budget) * 10.0).round() / 10.0)
}

/// How many of a row's largest failure buckets the page shows (`failures.csv` has them all).
const TOP_BUCKETS: usize = 3;

/// The group's figures as read from the store, when they are the month shown and were read well;
/// a store holding no checkpoint yet has no figures of the group (its zeros beside this
/// instance's live counts told two stories in a run's first seconds).
fn group_shown(kept: &Kept, month: Option<Month>) -> Option<&sampler::GroupRead> {
    kept.group.as_ref().filter(|g| {
        Some(g.month) == month && kept.group_error.is_none() && !g.checkpoints.is_empty()
    })
}

/// The month's largest failure buckets of measure `mi`, region `ri` (3: all), most first (then
/// by name, as `failures.csv` orders them).
fn misses_of(
    buckets: Option<&crate::ops::live::MeasureBuckets>,
    mi: usize,
    ri: usize,
) -> Vec<super::model::MissView> {
    let Some(rs) = buckets.and_then(|b| b.get(mi)) else {
        return Vec::new();
    };
    let mut sum: std::collections::BTreeMap<crate::engine::catalog::Bucket, u64> =
        std::collections::BTreeMap::new();
    for (i, x) in rs.iter().enumerate() {
        if ri == 3 || ri == i {
            for (b, n) in x {
                *sum.entry(*b).or_insert(0) += n;
            }
        }
    }
    let mut out: Vec<super::model::MissView> = sum
        .into_iter()
        .filter(|(_, n)| *n > 0)
        .map(|(b, n)| super::model::MissView {
            bucket: b.name(),
            count: n,
        })
        .collect();
    out.sort_by(|a, b| b.count.cmp(&a.count).then_with(|| a.bucket.cmp(&b.bucket)));
    out.truncate(TOP_BUCKETS);
    out
}

/// `ok`, `below_target`, `below_minimum`, `no_target` or `no_requests`, comparing the RPL as
/// `rpl.csv` prints it (four places) with the levels, exactly.
fn state(requests: u64, hits: u64, tpl: Option<Decimal>, mpl: Option<Decimal>) -> &'static str {
    let Some(rpl) = rpl_decimal(hits, requests) else {
        return "no_requests";
    };
    match (tpl, mpl) {
        (_, Some(m)) if rpl < m => "below_minimum",
        (Some(t), _) if rpl < t => "below_target",
        (None, None) => "no_target",
        _ => "ok",
    }
}

/// Requests and hits of the recent window, from the trend's points (`None` when the trend does
/// not reach back that far in this month).
fn recent_hits(
    kept: &Kept,
    month: Option<Month>,
    window: Duration,
    now: SystemTime,
) -> Option<Hits> {
    let month = month?;
    let last = kept.trend.back().filter(|s| s.month == month)?;
    let first = kept.trend.iter().find(|s| {
        s.month == month && now.duration_since(s.at).unwrap_or(Duration::ZERO) <= window
    })?;
    if std::ptr::eq(first, last) {
        return None;
    }
    Some(
        last.counts
            .iter()
            .zip(first.counts.iter().chain(std::iter::repeat(&[(0, 0); 4])))
            .map(|(l, f)| {
                let mut out = [(0, 0); 4];
                for r in 0..4 {
                    out[r] = (l[r].0.saturating_sub(f[r].0), l[r].1.saturating_sub(f[r].1));
                }
                out
            })
            .collect(),
    )
}

/// The hit ratio between consecutive points of the trend over the last 24 hours (a month's
/// first point counts from the month's start).
fn trend(kept: &Kept, mi: usize, ri: usize, now: SystemTime) -> Vec<TrendPoint> {
    let mut out = Vec::new();
    let mut prev: Option<(Month, (u64, u64))> = None;
    for s in &kept.trend {
        let cur = s.counts.get(mi).map_or((0, 0), |x| x[ri]);
        let base = match prev {
            Some((m, p)) if m == s.month => p,
            Some(_) => (0, 0),
            None => {
                prev = Some((s.month, cur));
                continue;
            }
        };
        prev = Some((s.month, cur));
        let (q, h) = (cur.0.saturating_sub(base.0), cur.1.saturating_sub(base.1));
        let recent = now.duration_since(s.at).unwrap_or(Duration::ZERO) <= TREND_SPAN;
        if q > 0 && recent {
            out.push(TrendPoint {
                at: rfc3339(Some(s.at)),
                requests: q,
                hit_ratio_percent: ((h as f64 * 100.0 / q as f64) * 100.0).round() / 100.0,
            });
        }
    }
    out
}

/// The month's RPL at the end of each day up to `today`, cumulative.
fn by_day(
    days: Option<&MeasureDays>,
    mi: usize,
    ri: usize,
    basis: Basis,
    today: Option<u8>,
) -> Vec<DayPoint> {
    let Some(d) = days.and_then(|d| d.get(mi)) else {
        return Vec::new();
    };
    let last = today.unwrap_or(31);
    let (mut requests, mut hits) = (0u64, 0u64);
    let mut out = Vec::new();
    for day in 1..=last {
        let i = usize::from(day) - 1;
        let regions: Vec<usize> = if ri == 3 { vec![0, 1, 2] } else { vec![ri] };
        for r in regions {
            let [q, wt, ok] = d[r][i];
            requests += q;
            hits += match basis {
                Basis::Trt => wt,
                Basis::Success => ok,
            };
        }
        if let Some(rpl) = rpl_percent(hits, requests) {
            out.push(DayPoint {
                day,
                requests,
                rpl_percent: rpl,
            });
        }
    }
    out
}

fn pipeline_view(
    snap: &LiveSnapshot,
    kept: &Kept,
    events: u64,
    with_store: bool,
    now: SystemTime,
) -> super::model::PipelineView {
    let rate = match (kept.rate.front(), kept.rate.back()) {
        (Some((t0, n0)), Some((t1, n1))) if t1 > t0 => {
            (n1.saturating_sub(*n0)) as f64 / t1.duration_since(*t0).as_secs_f64()
        }
        _ => 0.0,
    };
    let mut last_hour = BTreeMap::new();
    if let Some((_, first)) = kept
        .dead
        .iter()
        .find(|(t, _)| t.elapsed() <= DEAD_SPAN + Duration::from_secs(60))
    {
        for (i, reason) in DeadReason::ALL.iter().enumerate() {
            let n = snap.stats.dead_letters[i].saturating_sub(first.get(i).copied().unwrap_or(0));
            if n > 0 {
                last_hour.insert(reason.as_str().to_string(), n);
            }
        }
    }
    let wall = now
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64());
    super::model::PipelineView {
        partitions_held: snap.assigned,
        lag_messages: snap.lag.iter().map(|(_, _, l)| *l).sum(),
        events_per_second: rate.round(),
        events_total: events.max(snap.stats.events),
        checkpoint_age_seconds: with_store.then(|| round1(snap.checkpoint_age)),
        pending_requests: snap.pending,
        waiting_responses: snap.waiting,
        dead_letters_total: snap.stats.dead_letters.iter().sum(),
        dead_letters_last_hour: last_hour,
        kafka_errors: snap.kafka_errors,
        partitions: snap
            .partitions
            .iter()
            .map(|p| PartitionView {
                topic: p.topic.clone(),
                partition: p.partition,
                next_offset: p.next_offset,
                lag: p.lag,
                watermark: p.watermark.map(rfc3339_ts),
                watermark_behind_seconds: p.watermark.map(|w| round1(wall - w.0 as f64 / 1e9)),
                idle_seconds: round1(p.last_event.as_secs_f64()),
            })
            .collect(),
    }
}

fn round1(x: f64) -> f64 {
    (x * 10.0).round() / 10.0
}

/// A wall-clock time as RFC 3339 UTC (seconds); empty when unknown.
pub(super) fn rfc3339(t: Option<SystemTime>) -> String {
    // As the alerts' summaries write it: one moment reads the same in an alert and in the line
    // beside it (rounded here and cut there, they were a second apart).
    t.map(crate::engine::time::wall_rfc3339).unwrap_or_default()
}

/// An event time as RFC 3339 UTC (milliseconds).
fn rfc3339_ts(t: Ts) -> String {
    jiff::Timestamp::from_nanosecond(i128::from(t.0))
        .map(|t| {
            t.round(jiff::Unit::Millisecond)
                .map_or_else(|_| t.to_string(), |r| r.to_string())
        })
        .unwrap_or_default()
}

/// The figures a status shows, and what its rows are judged with.
struct Figures<'a> {
    /// Requests and hits by measure and region: the group's, or this instance's.
    primary: Option<Hits>,
    /// This instance's own.
    instance_hits: Option<Hits>,
    /// `group` or `instance`.
    source: &'a str,
    /// The evaluator's projections (this instance's figures).
    projected: &'a BTreeMap<(usize, usize), f64>,
    /// The share of the month gone.
    elapsed: Option<f64>,
    /// Requests and hits of the recent window, for the group's projection.
    recent: Option<Hits>,
    /// Requests the exemptions took out.
    exempted: &'a crate::ops::live::MeasureCounts,
    /// The month's failure buckets.
    buckets: Option<&'a crate::ops::live::MeasureBuckets>,
    /// Counts by day.
    days: Option<&'a MeasureDays>,
    /// The watermark's day of the month.
    today: Option<u8>,
    /// The trend's samples.
    kept: &'a Kept,
    now: SystemTime,
}

/// The alerts firing, critical first, then the oldest.
fn alerts_view(
    board: &AlertBoard,
    defs: &crate::engine::definitions::Definitions,
) -> Vec<AlertView> {
    let mut alerts: Vec<AlertView> = board
        .fired
        .iter()
        .map(|a| {
            let (kind, _, r) = a.key;
            AlertView {
                alert: kind.name().to_string(),
                severity: kind.severity().to_string(),
                measure: Some(crate::ops::alerts::measure_label(defs, &a.key))
                    .filter(|x| !x.is_empty()),
                region: r.and_then(|i| REGIONS.get(i)).map(|x| x.to_string()),
                since: rfc3339(Some(a.since)),
                fired_at: a.fired.map(|t| rfc3339(Some(t))),
                summary: a.summary.clone(),
            }
        })
        .collect();
    alerts.sort_by(|a, b| {
        (b.severity == "critical")
            .cmp(&(a.severity == "critical"))
            .then_with(|| a.since.cmp(&b.since))
    });
    alerts
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_group_is_shown_once_the_store_holds_a_checkpoint_of_the_month_shown() {
        let cfg = Config::builtin().unwrap();
        let march = Month::new(2024, 3);
        let read = |checkpoints: Vec<(String, String, Option<SystemTime>)>| sampler::GroupRead {
            month: march,
            counts: Vec::new(),
            days: Vec::new(),
            buckets: Vec::new(),
            exempted: Vec::new(),
            checkpoints,
            read_at: SystemTime::now(),
            aggregates: Arc::new(crate::engine::aggregate::Aggregates::new(
                Arc::new(cfg.definitions.clone()),
                Calendar::new("Europe/London").unwrap(),
            )),
        };
        let mut kept = Kept {
            group: Some(read(Vec::new())),
            ..Kept::default()
        };
        assert!(
            group_shown(&kept, Some(march)).is_none(),
            "nothing checkpointed"
        );
        kept.group = Some(read(vec![("t/0".into(), "a".into(), None)]));
        assert!(group_shown(&kept, Some(march)).is_some());
        assert!(group_shown(&kept, Some(Month::new(2024, 4))).is_none());
        kept.group_error = Some("connection refused".into());
        assert!(group_shown(&kept, Some(march)).is_none());
    }

    #[test]
    fn a_moment_reads_as_the_alerts_read_it_cut_to_the_second() {
        let t = SystemTime::UNIX_EPOCH + Duration::from_millis(1_700_000_011_900);
        assert_eq!(rfc3339(Some(t)), "2023-11-14T22:13:31Z");
    }

    #[test]
    fn a_run_ended_on_purpose_is_neither_ok_nor_a_group_member_without_a_partition() {
        let link = crate::ops::health::KafkaLink::default();
        link.brokers(1, SystemTime::now());
        let mut snap = LiveSnapshot {
            link: link.state(),
            ..LiveSnapshot::default()
        };
        let h = Sources::health_view(&snap, &[]);
        assert_eq!(h.state, "warning");
        assert!(h.problems[0].contains("holds no partition"), "{h:?}");
        snap.finished = true;
        let h = Sources::health_view(&snap, &[]);
        assert_eq!(h.state, "warning", "{h:?}");
        assert_eq!(h.problems.len(), 1, "{h:?}");
        assert!(h.headline.contains("The run has ended"), "{h:?}");
    }

    #[test]
    fn a_state_compares_the_printed_rpl_with_the_levels_exactly() {
        let d = |v: i64| Some(Decimal::new(v, 0));
        assert_eq!(state(0, 0, d(99), d(96)), "no_requests");
        assert_eq!(state(100, 99, d(99), d(96)), "ok", "99.0000 is at TPL");
        assert_eq!(state(100, 98, d(99), d(96)), "below_target");
        assert_eq!(
            state(100, 96, d(99), d(96)),
            "below_target",
            "96.0000 is at MPL"
        );
        assert_eq!(state(100, 95, d(99), d(96)), "below_minimum");
        assert_eq!(state(100, 50, None, None), "no_target");
        // 99 999 of 100 000 prints 99.9990: on target; 98 999 of 100 000 (98.9990) is not.
        assert_eq!(state(100_000, 98_999, d(99), None), "below_target");
    }

    #[test]
    fn the_rpl_by_day_is_cumulative_up_to_the_watermarks_day() {
        let mut days: MeasureDays = vec![[[[0; 3]; 31]; 3]; 1];
        days[0][1][0] = [10, 10, 10]; // central, day 1
        days[0][1][2] = [10, 5, 9]; // central, day 3
        days[0][0][2] = [4, 4, 4]; // north, day 3
        days[0][1][4] = [7, 7, 7]; // day 5, after the watermark's day
        let central = by_day(Some(&days), 0, 1, Basis::Trt, Some(3));
        let got: Vec<(u8, u64, &str)> = central
            .iter()
            .map(|p| (p.day, p.requests, p.rpl_percent.as_str()))
            .collect();
        assert_eq!(
            got,
            vec![(1, 10, "100.0000"), (2, 10, "100.0000"), (3, 20, "75.0000")]
        );
        let success = by_day(Some(&days), 0, 1, Basis::Success, Some(3));
        assert_eq!(success[2].rpl_percent, "95.0000");
        let all = by_day(Some(&days), 0, 3, Basis::Trt, Some(3));
        assert_eq!(
            (all[2].requests, all[2].rpl_percent.as_str()),
            (24, "79.1667")
        );
        assert!(by_day(None, 0, 1, Basis::Trt, Some(3)).is_empty());
    }

    #[test]
    fn the_trend_is_the_hit_ratio_between_points_and_starts_afresh_each_month() {
        let t0 = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        let (march, april) = (Month::new(2024, 3), Month::new(2024, 4));
        let point = |min: u64, month, req, hit| sampler::TrendSample {
            at: t0 + Duration::from_secs(min * 60),
            month,
            counts: vec![[(0, 0), (req, hit), (0, 0), (req, hit)]],
        };
        let kept = Kept {
            trend: [
                point(0, march, 100, 99),
                point(1, march, 150, 144),
                point(2, march, 150, 144),
                point(3, april, 10, 10),
            ]
            .into(),
            ..Kept::default()
        };
        let now = t0 + Duration::from_secs(300);
        let got: Vec<(u64, f64)> = trend(&kept, 0, 1, now)
            .iter()
            .map(|p| (p.requests, p.hit_ratio_percent))
            .collect();
        // 50 requests with 45 hits, then none (no point), then April's first 10.
        assert_eq!(got, vec![(50, 90.0), (10, 100.0)]);
        // Older than a day: gone.
        assert!(trend(&kept, 0, 1, now + TREND_SPAN).is_empty());
    }
}
