//! The aggregates' algebra, as property tests: merging partial aggregates in any order or
//! grouping gives the whole, samples included, also through the one partition merge (live and
//! stored); a revision equals applying the new decision in the first place.

use std::sync::Arc;

use proptest::prelude::*;
use srv_opr::config::Config;
use srv_opr::engine::aggregate::*;
use srv_opr::engine::calendar::Calendar;
use srv_opr::engine::catalog::Catalog;
use srv_opr::engine::correlate::Decision;
use srv_opr::engine::domain::{Provider, Region};
use srv_opr::engine::merge::PartitionMerge;
use srv_opr::engine::pipeline::{PipelineStats, SavedBlock};
use srv_opr::engine::time::NANOS_PER_MILLI;
use srv_opr::engine::time::Ts;
use srv_opr::sink::month::rpl_lines;

const SRVS: [&str; 6] = ["CSP-HAN-TEST", "8.11", "4.1.1", "11.1", "2.2", "99.9"];
const CODES: [&str; 5] = ["I0", "E20", "E21", "I0", "X-1"];

/// (ms offset from 2024-03-30, srv, region, provider, final: (delay ms, code))
type Spec = (i64, usize, usize, usize, Option<(i64, usize)>);

fn decisions(specs: &[Spec], cat: &mut Catalog) -> Vec<Decision> {
    let base = 1_711_756_800_000i64; // 2024-03-30T00:00:00Z, in ms
    specs
        .iter()
        .enumerate()
        .map(|(i, &(off, s, r, p, fin))| {
            let at = Ts((base + off) * NANOS_PER_MILLI);
            Decision {
                at,
                due: at,
                ack_ms: None,
                user: 0,
                srv: cat.srv(SRVS[s]),
                region: Region::from_index(r),
                provider: Provider::from_index(p),
                fin: fin.map(|(d, c)| (Ts(at.0 + d * NANOS_PER_MILLI), cat.code(CODES[c]))),
                key: srv_opr::engine::correlate::key_of(&format!("r{i}")) as u64,
            }
        })
        .collect()
}

fn spec() -> impl Strategy<Value = Spec> {
    (
        0i64..5 * 86_400_000,
        0usize..6,
        0usize..3,
        0usize..3,
        proptest::option::of((0i64..90_000_000, 0usize..5)),
    )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// Split the same decisions into any number of groups, aggregate each, merge the
    /// partial aggregates in any order and any tree shape: the result equals aggregating
    /// everything at once (counts, buckets, histograms, maxima).
    #[test]
    fn merging_in_any_order_and_grouping_is_the_same(
        specs in proptest::collection::vec(spec(), 1..300),
        groups in 1usize..6,
        assign_seed in any::<u64>(),
        order_seed in any::<u64>(),
    ) {
        let cfg = Config::builtin().unwrap();
        let defs = Arc::new(cfg.definitions.clone());
        let mut cat = Catalog::new(defs.clone());
        let ds = decisions(&specs, &mut cat);
        let cal = Calendar::new("Europe/London").unwrap();
        // Evidence too: the samples (smallest keys) come out the same in any order.
        let text = |d: &Decision| format!("id{}\u{1f}u\u{1f}d", d.key);
        let mut whole = Aggregates::new(defs.clone(), cal.clone());
        for d in ds.iter().rev() {
            whole.apply_with(d, &cat, Some(&text(d)));
        }
        let mut rng = srv_opr::rng::Rng::new(assign_seed);
        let mut parts: Vec<Aggregates> = (0..groups).map(|_| Aggregates::new(defs.clone(), cal.clone())).collect();
        for d in &ds {
            let g = rng.below(groups as u64) as usize;
            parts[g].apply_with(d, &cat, Some(&text(d)));
        }
        let groups_as_partitions = parts.clone();
        // Merge pairwise in a random order until one remains (any tree shape).
        let mut rng = srv_opr::rng::Rng::new(order_seed);
        while parts.len() > 1 {
            let i = rng.below(parts.len() as u64) as usize;
            let a = parts.swap_remove(i);
            let j = rng.below(parts.len() as u64) as usize;
            parts[j].merge(&a);
        }
        let merged = parts.pop().unwrap();
        let lines = rpl_lines(&whole, None);
        prop_assert!(lines.iter().all(|l| l.row.samples.values().all(|v| v.len() <= SAMPLE_SIZE
            && v.windows(2).all(|w| w[0].0 < w[1].0))));
        prop_assert!(lines.iter().all(|l| l.row.buckets.iter().all(|(b, n)|
            l.row.samples.get(b).map_or(0, |v| v.len()) == (*n as usize).min(SAMPLE_SIZE))),
            "every miss is offered, so each bucket's sample is full up to its count");
        prop_assert_eq!(&rpl_lines(&merged, None), &lines);
        prop_assert_eq!(merged.stats(), whole.stats());
        // The groups as partitions through the one partition merge, live (as `run` merges
        // them at its end) and as their checkpoints store them (as `rollup` and `report` do).
        let none = std::sync::Arc::new(srv_opr::engine::exemption::Register::default());
        let mut live = PartitionMerge::new(defs.clone(), cal.clone(), none.clone());
        let mut stored = PartitionMerge::new(defs.clone(), cal.clone(), none);
        for part in groups_as_partitions.iter().rev() {
            live.add(part, &PipelineStats::default());
            stored.add_counters(&PipelineStats::default(), part.stats());
            let blocks = part.blocks().into_iter().map(|(month, measure, b)| {
                let [n, c, s] = &b.regions;
                SavedBlock { month, measure, regions: [n.save().unwrap(), c.save().unwrap(), s.save().unwrap()] }
            });
            stored.add_blocks(blocks.collect::<Vec<_>>()).unwrap();
        }
        for (m, how) in [(live, "live"), (stored, "stored")] {
            let (agg, _) = m.finish(whole.watermark());
            prop_assert_eq!(&rpl_lines(&agg, None), &lines, "{} partitions", how);
            prop_assert_eq!(agg.stats(), whole.stats(), "{} partitions", how);
        }
    }

    /// Revising a decision (out, then in with its new final) leaves the same counts as if
    /// the new decision had been applied in the first place.
    #[test]
    fn revision_equals_applying_the_new_decision(
        specs in proptest::collection::vec(spec(), 1..100),
        new_fin in proptest::option::of((0i64..90_000_000, 0usize..5)),
        which in any::<prop::sample::Index>(),
    ) {
        let cfg = Config::builtin().unwrap();
        let defs = Arc::new(cfg.definitions.clone());
        let mut cat = Catalog::new(defs.clone());
        let ds = decisions(&specs, &mut cat);
        let i = which.index(ds.len());
        let mut changed = specs.clone();
        changed[i].4 = new_fin;
        let ds2 = decisions(&changed, &mut cat);
        let cal = Calendar::new("Europe/London").unwrap();
        let mut revised = Aggregates::new(defs.clone(), cal.clone());
        for d in &ds {
            revised.apply(d, &cat);
        }
        revised.revise(&ds[i], &ds2[i], &cat);
        let mut direct = Aggregates::new(defs.clone(), cal);
        for d in &ds2 {
            direct.apply(d, &cat);
        }
        let strip = |mut v: Vec<srv_opr::sink::month::RplLine>| {
            // Histogram maxima may lose exactness on removal (documented); compare the rest.
            for l in &mut v { l.row.revision = 0; }
            v.into_iter().map(|l| (l.month, l.measure, l.region, l.row.requests, l.row.within_target,
                l.row.succeeded, l.row.no_response, l.row.buckets.clone(), l.row.histogram_counts())).collect::<Vec<_>>()
        };
        prop_assert_eq!(strip(rpl_lines(&revised, None)), strip(rpl_lines(&direct, None)));
    }
}

/// A request decided after its month became final (it arrived late, within the horizon)
/// changes a final row: its revision rises, by one per such request in the row and in `all`,
/// as a late response's does (SPEC §3: counts in final months change only through a revision).
/// Before the month is final, a decision is no revision.
#[test]
fn a_request_decided_after_its_month_is_final_is_a_revision() {
    let cfg = Config::builtin().unwrap();
    let defs = Arc::new(cfg.definitions.clone());
    let mut cat = Catalog::new(defs.clone());
    // Two on 2024-03-30, one of them in central, all with a response within a second.
    let specs: Vec<Spec> = vec![
        (0, 2, 0, 0, Some((1_000, 0))),
        (1_000, 2, 1, 0, Some((1_000, 0))),
        (2_000, 2, 0, 0, Some((1_000, 0))),
    ];
    let ds = decisions(&specs, &mut cat);
    let cal = Calendar::new("Europe/London").unwrap();
    let mut agg = Aggregates::new(defs.clone(), cal);
    agg.apply(&ds[0], &cat);
    let revisions = |agg: &Aggregates| -> Vec<(&'static str, u32)> {
        rpl_lines(agg, None)
            .iter()
            .map(|l| (l.region, l.row.revision))
            .take(3)
            .collect()
    };
    assert!(revisions(&agg).iter().all(|(_, r)| *r == 0));
    // The watermark passes March's end plus the longest deadline: March is final.
    agg.set_watermark(Ts(1_712_534_400_000_000_000)); // 2024-04-08T00:00:00Z
    assert!(agg.is_final(srv_opr::engine::calendar::Month::new(2024, 3)));
    agg.apply(&ds[1], &cat);
    agg.apply(&ds[2], &cat);
    let got = revisions(&agg);
    assert_eq!(got, vec![("north", 1), ("central", 1), ("all", 2)]);
}
