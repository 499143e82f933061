//! `srv_response_time_seconds`, `srv_ack_time_seconds` and `srv_after_ack_time_seconds`:
//! histograms exposed from the aggregates' bucket counts, set at each scrape.

use std::sync::{Arc, Mutex};

use prometheus::Registry;
use prometheus::core::{Collector, Desc};
use prometheus::proto;

use crate::engine::aggregate::RtHist;
use crate::engine::definitions::Definitions;
use crate::ops::alerts::REGIONS;
use crate::ops::live::LiveSnapshot;

/// `srv_response_time_seconds`: a histogram exposed from the aggregates' bucket counts (the
/// prometheus crate's own histogram only observes; these totals are set at each scrape).
pub(super) struct ResponseTimes {
    desc: Desc,
    bounds_s: Vec<f64>,
    ids: Vec<String>,
    latest: Mutex<Vec<[RtHist; 4]>>,
}

impl Collector for ResponseTimes {
    fn desc(&self) -> Vec<&Desc> {
        vec![&self.desc]
    }

    fn collect(&self) -> Vec<proto::MetricFamily> {
        let latest = self
            .latest
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let mut metrics = Vec::with_capacity(self.ids.len() * 4);
        for (mi, id) in self.ids.iter().enumerate() {
            for (ri, region) in REGIONS.iter().enumerate() {
                let h = latest.get(mi).map(|r| &r[ri]);
                let mut buckets = Vec::with_capacity(self.bounds_s.len());
                let mut cumulative = 0u64;
                for (i, b) in self.bounds_s.iter().enumerate() {
                    cumulative += h.and_then(|h| h.counts.get(i)).copied().unwrap_or(0);
                    let mut bucket = proto::Bucket::default();
                    bucket.set_upper_bound(*b);
                    bucket.set_cumulative_count(cumulative);
                    buckets.push(bucket);
                }
                let mut ph = proto::Histogram::default();
                ph.set_bucket(buckets);
                ph.set_sample_count(h.map_or(0, RtHist::count));
                ph.set_sample_sum(h.map_or(0.0, |h| h.sum_ms as f64 / 1000.0));
                let label = |n: &str, v: &str| {
                    let mut l = proto::LabelPair::default();
                    l.set_name(n.to_string());
                    l.set_value(v.to_string());
                    l
                };
                let mut m =
                    proto::Metric::from_label(vec![label("measure", id), label("region", region)]);
                m.set_histogram(ph);
                metrics.push(m);
            }
        }
        let mut f = proto::MetricFamily::default();
        f.set_name(self.desc.fq_name.clone());
        f.set_help(self.desc.help.clone());
        f.set_field_type(proto::MetricType::HISTOGRAM);
        f.set_metric(metrics);
        vec![f]
    }
}

/// Registers a shared collector (the registry takes ownership of a box).
struct ArcCollector(Arc<ResponseTimes>);

impl Collector for ArcCollector {
    fn desc(&self) -> Vec<&Desc> {
        self.0.desc()
    }

    fn collect(&self) -> Vec<proto::MetricFamily> {
        self.0.collect()
    }
}

/// The three response-time families (request to final response, to the first acknowledgement,
/// and after it), each with a bucket edge at every configured TRT and deadline.
pub(super) fn families(
    r: &Registry,
    defs: &Definitions,
) -> prometheus::Result<[Arc<ResponseTimes>; 3]> {
    let segment = |name: &str, help: &str| -> prometheus::Result<Arc<ResponseTimes>> {
        let h = Arc::new(ResponseTimes {
            desc: Desc::new(
                name.into(),
                help.into(),
                vec!["measure".into(), "region".into()],
                Default::default(),
            )?,
            bounds_s: defs
                .rt_bounds_ms
                .iter()
                .map(|b| *b as f64 / 1000.0)
                .collect(),
            ids: defs.measures.iter().map(|m| m.id.clone()).collect(),
            latest: Mutex::new(Vec::new()),
        });
        r.register(Box::new(ArcCollector(h.clone())))?;
        Ok(h)
    };
    Ok([
        segment(
            "srv_response_time_seconds",
            "Response time of requests with a final response within the deadline, over \
             every month this process counted; a bucket edge at every configured TRT",
        )?,
        segment(
            "srv_ack_time_seconds",
            "Request to its first acknowledgement (DCC accepted it), of acknowledged \
             requests, over every month this process counted",
        )?,
        segment(
            "srv_after_ack_time_seconds",
            "First acknowledgement to final response, of requests with both (the final \
             response within the deadline), over every month this process counted",
        )?,
    ])
}

/// Each family's latest counts from a snapshot: per measure, the three regions and all of them.
pub(super) fn refresh(families: &[Arc<ResponseTimes>; 3], s: &LiveSnapshot) {
    for (segment, hists) in families.iter().zip(&s.rt) {
        let mut rt: Vec<[RtHist; 4]> = Vec::with_capacity(hists.len());
        for regions in hists {
            let mut all = RtHist::default();
            for h in regions {
                all.merge(h);
            }
            rt.push([
                regions[0].clone(),
                regions[1].clone(),
                regions[2].clone(),
                all,
            ]);
        }
        *segment
            .latest
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = rt;
    }
}
