//! Seeded synthetic SRV traffic: what demos, tests and benchmarks feed on.
//!
//! Requests arrive as a Poisson process with a daily profile, over a realistic mix of SRVs and
//! providers; each gets (maybe) an acknowledgement and (maybe) a final response whose time and
//! code follow per-region quality knobs (share slow, share failed, share never answered).
//! Events are emitted in a bounded disorder: an event never trails the newest event by more than
//! `disorder`, so with `disorder ≤ allowed_lateness` nothing is late. Traps are injected at
//! configurable rates and counted in [`SimStats`], so tests can check each comes back out:
//! duplicate requests and finals, malformed lines, unknown regions, missing fields, bad
//! timestamps, unknown types, orphan responses, responses stamped before their request,
//! conflicting requests, and (optionally) events later than the allowed lateness.
//!
//! The generator is xoshiro256** seeded by SplitMix64, written out here so a seed gives the same
//! file on every platform and every version of every dependency.

use std::collections::BinaryHeap;
use std::fmt::Write as _;
use std::io::{self, Write};

use crate::engine::domain::{Provider, Region};
use crate::engine::time::{Dur, NANOS_PER_MILLI, NANOS_PER_SEC, Ts, civil_from_days};
pub use crate::rng::Rng;

/// Quality of one region's service.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Quality {
    /// Share of requests answered successfully but after the TRT.
    pub slow: f64,
    /// Share answered with a failure code.
    pub error: f64,
    /// Share never answered.
    pub lost: f64,
}

impl Default for Quality {
    fn default() -> Quality {
        Quality {
            slow: 0.004,
            error: 0.002,
            lost: 0.0005,
        }
    }
}

/// What to simulate.
#[derive(Debug, Clone)]
pub struct SimConfig {
    /// Seed: the same seed gives the same bytes.
    pub seed: u64,
    /// First possible request time.
    pub start: Ts,
    /// Requests stop before this time.
    pub end: Ts,
    /// Mean requests per second over a day.
    pub rate: f64,
    /// Stop after this many requests, if set.
    pub max_requests: Option<u64>,
    /// Quality by region (north, central, south).
    pub quality: [Quality; 3],
    /// Share of requests acknowledged with `I99` before their final response.
    pub acks: f64,
    /// Share of requests sent twice, and (separately) of finals sent twice.
    pub duplicates: f64,
    /// Share of requests followed by a bad line of some kind.
    pub bad: f64,
    /// Share of events emitted later than the allowed lateness (0 keeps every event on time).
    pub late: f64,
    /// How far behind the newest event an event may be emitted.
    pub disorder: Dur,
    /// Share of timestamps written with a `+01:00` offset when London is on BST.
    pub local_offsets: f64,
    /// Device alerts (`"type":"alert"`, DUIS's other traffic on a shared topic) per request;
    /// 0 writes none (and draws nothing, so other options give the same bytes as before).
    pub alerts: f64,
    /// Share of requests future-dated: an `execute_at` from a minute to three days after the
    /// request (a few near a month's end execute in the next month), answered after it. 0 writes
    /// none and draws nothing.
    pub future_dated: f64,
    /// Future-dated requests execute before `end`: one whose drawn execution would not is sent
    /// on demand instead (the demo keeps its month whole; the draws are the same either way).
    pub future_before_end: bool,
    /// Service users (DUIS originators) the requests come from, in turn (at least 1).
    pub users: u32,
}

impl Default for SimConfig {
    fn default() -> SimConfig {
        SimConfig {
            seed: 1,
            start: Ts(1_709_251_200 * NANOS_PER_SEC), // 2024-03-01T00:00:00Z
            end: Ts(1_711_926_000 * NANOS_PER_SEC),   // 2024-04-01T00:00:00+01:00
            rate: 1.0,
            max_requests: None,
            quality: [Quality::default(); 3],
            acks: 0.6,
            duplicates: 0.002,
            bad: 0.0005,
            late: 0.0,
            disorder: Dur::from_secs(2),
            alerts: 0.0,
            future_dated: 0.0,
            future_before_end: false,
            users: 6,
            local_offsets: 0.2,
        }
    }
}

/// What was generated, by kind: the expectations of a test.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct SimStats {
    /// Lines written.
    pub lines: u64,
    /// Distinct requests.
    pub requests: u64,
    /// Requests with no measure (SRVs outside every selector).
    pub unmeasured_requests: u64,
    /// Acknowledgements.
    pub acks: u64,
    /// Final responses (first copies).
    pub finals: u64,
    /// Requests sent twice.
    pub duplicate_requests: u64,
    /// Finals sent twice.
    pub duplicate_finals: u64,
    /// Lines cut short.
    pub malformed: u64,
    /// Requests with region `west`.
    pub unknown_region: u64,
    /// Responses without a code.
    pub missing_field: u64,
    /// Timestamps without an offset.
    pub bad_timestamp: u64,
    /// Events of an unknown type (`notification`).
    pub unknown_type: u64,
    /// Responses to ids never requested.
    pub orphan_responses: u64,
    /// Responses stamped before their request.
    pub response_before_request: u64,
    /// Requests repeated with another region and a later `at`.
    pub conflicting_requests: u64,
    /// Events emitted beyond the allowed lateness.
    pub late_events: u64,
    /// Device alerts (`input.ignore_types = ["alert"]` leaves them alone).
    pub alerts: u64,
    /// Future-dated requests (an `execute_at` later than `at`).
    pub future_dated: u64,
}

/// DUIS device alert codes the simulator writes (a sample of the real range).
const ALERT_CODES: &[&str] = &["0x8F1C", "0x8F0A", "0x8F35", "0x8002", "0x81A0"];

/// (SRV, provider, weight, median response seconds). Weights follow the shape of real traffic:
/// reads and prepayment dominate; installs, firmware and tariffs are rarer; a few SRVs fall
/// outside every default measure.
const MIX: &[(&str, Provider, u32, f64)] = &[
    ("CSP-HAN-TEST", Provider::Csp, 80, 4.0),
    ("4.1.1", Provider::Dsp, 170, 3.0),
    ("2.2", Provider::Dsp, 90, 3.5),
    ("4.8.1", Provider::Dsp, 50, 3.0),
    ("4.17", Provider::Dsp, 35, 3.0),
    ("1.1.1", Provider::Dsp, 30, 5.0),
    ("1.2.1", Provider::Dsp, 10, 5.0),
    ("8.11", Provider::Dsp, 45, 6.0),
    ("8.1.1", Provider::Dsp, 20, 6.0),
    ("8.7.1", Provider::Dsp, 10, 5.0),
    ("6.15.1", Provider::Dsp, 8, 5.0),
    ("6.21", Provider::Dsp, 8, 4.0),
    ("6.23", Provider::Dsp, 25, 5.0),
    ("4.3", Provider::Dsp, 15, 3.0),
    ("4.18", Provider::Dsp, 15, 3.0),
    ("2.3", Provider::Dsp, 8, 4.0),
    ("1.5", Provider::Dsp, 6, 4.0),
    ("7.1", Provider::Dsp, 6, 4.0),
    ("11.2", Provider::Dsp, 5, 8.0),
    ("11.3", Provider::Dsp, 3, 8.0),
    ("8.14.1", Provider::Dsp, 20, 1.5),
    ("11.1", Provider::Dsp, 6, 1.5),
    ("12.1", Provider::Dsp, 6, 1.0),
    ("8.2", Provider::Dsp, 6, 1.0),
    ("4.1.1", Provider::S1sp, 90, 4.0),
    ("2.2", Provider::S1sp, 45, 4.5),
    ("4.8.1", Provider::S1sp, 20, 4.0),
    ("1.1.1", Provider::S1sp, 12, 6.0),
    ("8.11", Provider::S1sp, 10, 7.0),
    ("6.23", Provider::S1sp, 10, 6.0),
    ("4.4.1", Provider::Dsp, 4, 3.0),
    ("13.1", Provider::S1sp, 2, 3.0),
];

/// The EUI-64 of service user `n` (from 1): the originator part of its Request IDs.
fn originator(n: u64) -> String {
    format!("90-B3-D5-1F-{:02X}-{:02X}-00-00", 0x30 + n / 256, n % 256)
}

/// Relative traffic by hour of day (UTC), mean 1.
const HOURLY: [f64; 24] = [
    0.35, 0.3, 0.3, 0.3, 0.35, 0.5, 0.8, 1.1, 1.35, 1.45, 1.45, 1.4, 1.35, 1.4, 1.45, 1.45, 1.4,
    1.3, 1.2, 1.1, 0.95, 0.75, 0.55, 0.4,
];

/// SRVs with no default measure, for the unmeasured count.
fn is_unmeasured(srv: &str) -> bool {
    matches!(srv, "4.4.1" | "13.1")
}

/// A line waiting to be emitted at `key` (event time + jitter).
#[derive(PartialEq, Eq)]
struct Pending {
    key: i64,
    seq: u64,
    line: String,
}

impl Ord for Pending {
    fn cmp(&self, o: &Self) -> std::cmp::Ordering {
        // BinaryHeap is a max-heap: reverse for earliest first.
        (o.key, o.seq).cmp(&(self.key, self.seq))
    }
}
impl PartialOrd for Pending {
    fn partial_cmp(&self, o: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(o))
    }
}

/// Is London on BST at `ts`? (Last Sunday of March 01:00 UTC to last Sunday of October 01:00.)
fn london_bst(ts: Ts) -> bool {
    let secs = ts.as_second();
    let (y, _, _) = civil_from_days(secs.div_euclid(86_400));
    let last_sunday = |m: u32| {
        let d31 = crate::engine::time::days_from_civil(y, m, 31);
        let weekday = (d31 + 4).rem_euclid(7); // 0 = Sunday (1970-01-01 was a Thursday)
        d31 - weekday
    };
    let start = last_sunday(3) * 86_400 + 3600;
    let end = last_sunday(10) * 86_400 + 3600;
    secs >= start && secs < end
}

fn write_ts(s: &mut String, ts: Ts, local: bool) {
    if local && london_bst(ts) {
        let shifted = Ts(ts.0 + 3600 * NANOS_PER_SEC);
        crate::engine::time::write_rfc3339_millis(s, shifted);
        s.pop();
        s.push_str("+01:00");
    } else {
        crate::engine::time::write_rfc3339_millis(s, ts);
    }
}

/// The simulator: call [`Simulator::run`] with a writer.
pub struct Simulator {
    cfg: SimConfig,
    rng: Rng,
    heap: BinaryHeap<Pending>,
    seq: u64,
    counter: u64,
    stats: SimStats,
    mix_total: u32,
    newest: i64,
}

impl Simulator {
    /// A simulator for `cfg`.
    pub fn new(cfg: SimConfig) -> Simulator {
        Simulator {
            rng: Rng::new(cfg.seed),
            cfg,
            heap: BinaryHeap::new(),
            seq: 0,
            counter: 0,
            stats: SimStats::default(),
            mix_total: MIX.iter().map(|m| m.2).sum(),
            newest: i64::MIN,
        }
    }

    fn schedule(&mut self, at: Ts, line: String) {
        let jitter = if self.cfg.disorder.0 > 0 {
            self.rng.below(self.cfg.disorder.0 as u64 + 1) as i64
        } else {
            0
        };
        let mut key = at.0 + jitter;
        if self.rng.chance(self.cfg.late) {
            // Held back well beyond any sane lateness: 20–60 minutes.
            key += (20 + self.rng.below(40) as i64) * 60 * NANOS_PER_SEC;
            self.stats.late_events += 1;
        }
        self.seq += 1;
        self.heap.push(Pending {
            key,
            seq: self.seq,
            line,
        });
    }

    fn flush_until<W: Write>(&mut self, t: i64, w: &mut W) -> io::Result<()> {
        while self.heap.peek().is_some_and(|p| p.key <= t) {
            if let Some(p) = self.heap.pop() {
                self.newest = self.newest.max(p.key);
                w.write_all(p.line.as_bytes())?;
                self.stats.lines += 1;
            }
        }
        Ok(())
    }

    fn request_line(
        &mut self,
        id: &str,
        srv: &str,
        region: Region,
        provider: Provider,
        at: Ts,
        execute_at: Option<Ts>,
    ) -> String {
        let local = self.rng.chance(self.cfg.local_offsets);
        let mut s = String::with_capacity(160);
        let _ = write!(
            s,
            r#"{{"type":"request","id":"{id}","srv":"{srv}","region":"{}","provider":"{}","#,
            region.as_str(),
            provider.as_str()
        );
        // A DUIS Request ID is originator:target:counter: the service user and the device.
        let mut parts = id.split(':');
        if let (Some(user), Some(device), Some(_)) = (parts.next(), parts.next(), parts.next()) {
            let _ = write!(s, r#""user":"{user}","device":"{device}","#);
        }
        s.push_str(r#""at":""#);
        write_ts(&mut s, at, local);
        if let Some(due) = execute_at {
            s.push_str(r#"","execute_at":""#);
            write_ts(&mut s, due, local);
        }
        s.push_str("\"}\n");
        s
    }

    fn response_line(&mut self, id: &str, code: &str, at: Ts) -> String {
        let local = self.rng.chance(self.cfg.local_offsets);
        let mut s = String::with_capacity(128);
        let _ = write!(
            s,
            r#"{{"type":"response","id":"{id}","code":"{code}","at":""#
        );
        write_ts(&mut s, at, local);
        s.push_str("\"}\n");
        s
    }

    /// Generates everything into `w`; returns what was generated.
    pub fn run<W: Write>(mut self, w: &mut W) -> io::Result<SimStats> {
        let mut t = self.cfg.start.0 as f64;
        let end = self.cfg.end.0 as f64;
        loop {
            let hour = ((t as i64).div_euclid(3600 * NANOS_PER_SEC)).rem_euclid(24) as usize;
            let rate = (self.cfg.rate * HOURLY[hour]).max(1e-9);
            t += self.rng.exp(1.0 / rate) * NANOS_PER_SEC as f64;
            if t >= end
                || self
                    .cfg
                    .max_requests
                    .is_some_and(|m| self.stats.requests >= m)
            {
                break;
            }
            let at = Ts((t as i64) / NANOS_PER_MILLI * NANOS_PER_MILLI);
            self.flush_until(at.0, w)?;
            self.one_request(at);
        }
        self.flush_until(i64::MAX, w)?;
        w.flush()?;
        Ok(self.stats)
    }

    fn one_request(&mut self, at: Ts) {
        let mut pick = self.rng.below(self.mix_total as u64) as u32;
        let mut chosen = MIX[0];
        for m in MIX {
            if pick < m.2 {
                chosen = *m;
                break;
            }
            pick -= m.2;
        }
        let (srv, provider, _, median) = chosen;
        let region = Region::from_index(self.rng.below(3) as usize);
        self.counter += 1;
        let id = format!(
            "{}:00-DB-12-{:02X}-{:02X}-{:02X}-{:02X}-A0:{}",
            originator(self.counter % u64::from(self.cfg.users.max(1)) + 1),
            self.rng.below(256),
            self.rng.below(256),
            self.rng.below(256),
            self.rng.below(256),
            self.counter
        );
        self.stats.requests += 1;
        if is_unmeasured(srv) {
            self.stats.unmeasured_requests += 1;
        }
        // A future-dated request runs later: from a minute to three days on, to the minute.
        let execute_at = (self.cfg.future_dated > 0.0 && self.rng.chance(self.cfg.future_dated))
            .then(|| {
                let minutes = 1 + self.rng.below(3 * 24 * 60) as i64;
                Ts((at.0 / (60 * NANOS_PER_SEC) + minutes) * 60 * NANOS_PER_SEC)
            })
            .filter(|t| !self.cfg.future_before_end || *t < self.cfg.end);
        if execute_at.is_some() {
            self.stats.future_dated += 1;
        }
        // Its answer comes after it has run.
        let due = execute_at.unwrap_or(at);
        let line = self.request_line(&id, srv, region, provider, at, execute_at);
        if self.rng.chance(self.cfg.duplicates) {
            self.stats.duplicate_requests += 1;
            self.schedule(at, line.clone());
        }
        self.schedule(at, line);

        let q = self.cfg.quality[region as usize];
        let trt = if srv == "CSP-HAN-TEST" { 25.0 } else { 30.0 };
        let roll = self.rng.f64();
        let ack_at = at.plus(Dur::from_millis(100 + self.rng.below(900) as i64));
        if self.rng.chance(self.cfg.acks) {
            self.stats.acks += 1;
            let l = self.response_line(&id, "I99", ack_at);
            self.schedule(ack_at, l);
        }
        if roll < q.lost {
            // Never answered.
        } else {
            let (secs, code) = if roll < q.lost + q.error {
                let c = self.rng.f64();
                let code = if c < 0.6 {
                    "E20"
                } else if c < 0.9 {
                    "E21"
                } else if c < 0.98 {
                    "E105"
                } else {
                    "E-BUSY"
                };
                (self.rng.lognormal(median, 0.6), code)
            } else if roll < q.lost + q.error + q.slow {
                (trt + 1.0 + self.rng.exp(90.0), "I0")
            } else {
                (self.rng.lognormal(median, 0.45).min(trt - 0.5), "I0")
            };
            let fin_at =
                due.plus(Dur::from_millis((secs * 1000.0) as i64).max(Dur::from_millis(1)));
            self.stats.finals += 1;
            let l = self.response_line(&id, code, fin_at);
            if self.rng.chance(self.cfg.duplicates) {
                self.stats.duplicate_finals += 1;
                // A retry of the same answer a little later: a duplicate, not a new final.
                let again = fin_at.plus(Dur::from_millis(200 + self.rng.below(2000) as i64));
                let l2 = self.response_line(&id, code, again);
                self.schedule(again, l2);
            }
            self.schedule(fin_at, l);
        }
        if self.rng.chance(self.cfg.bad) {
            self.bad_line(&id, srv, region, provider, at);
        }
        // Device alerts ride the same interface: a few seconds after some requests, the device
        // reports something of its own (several per request when the share is above 1).
        if self.cfg.alerts > 0.0 {
            let mut share = self.cfg.alerts;
            while share > 0.0 && self.rng.chance(share.min(1.0)) {
                share -= 1.0;
                self.stats.alerts += 1;
                let when = at.plus(Dur::from_millis(200 + self.rng.below(5000) as i64));
                let device = id.split(':').nth(1).unwrap_or("00-DB-12");
                let code = ALERT_CODES[self.rng.below(ALERT_CODES.len() as u64) as usize];
                let mut stamp = String::new();
                crate::engine::time::write_rfc3339_millis(&mut stamp, when);
                let l = format!(
                    r#"{{"type":"alert","code":"{code}","device":"{device}","at":"{stamp}"}}"#
                ) + "\n";
                self.schedule(when, l);
            }
        }
    }

    fn bad_line(&mut self, id: &str, srv: &str, region: Region, provider: Provider, at: Ts) {
        let kind = self.rng.below(8);
        let later = at.plus(Dur::from_millis(self.rng.below(1000) as i64));
        let line = match kind {
            0 => {
                self.stats.malformed += 1;
                let full = self.request_line(&format!("{id}-x"), srv, region, provider, at, None);
                format!("{}\n", &full[..full.len() / 2])
            }
            1 => {
                self.stats.unknown_region += 1;
                self.request_line(&format!("{id}-w"), srv, region, provider, at, None)
                    .replacen(region.as_str(), "west", 1)
            }
            2 => {
                self.stats.missing_field += 1;
                self.response_line(id, "I0", later)
                    .replacen(r#""code":"I0","#, "", 1)
            }
            3 => {
                self.stats.bad_timestamp += 1;
                let mut s = String::new();
                crate::engine::time::write_rfc3339_millis(&mut s, later);
                s.pop();
                format!(r#"{{"type":"response","id":"{id}","code":"I0","at":"{s}"}}"#) + "\n"
            }
            4 => {
                self.stats.unknown_type += 1;
                // Not "alert": device alerts are real DUIS traffic, which a configuration
                // may list in `input.ignore_types`; this type is nobody's.
                self.response_line(id, "I0", later)
                    .replacen("response", "notification", 1)
            }
            5 => {
                self.stats.orphan_responses += 1;
                self.response_line(&format!("{id}-orphan"), "I0", later)
            }
            6 => {
                self.stats.response_before_request += 1;
                let before = at.minus(Dur::from_millis(1 + self.rng.below(5000) as i64));
                let l = self.response_line(id, "I0", before);
                self.schedule(before, l);
                return;
            }
            _ => {
                self.stats.conflicting_requests += 1;
                let other = Region::from_index((region as usize + 1) % 3);
                let at2 = at.plus(Dur::from_millis(1));
                let l = self.request_line(id, srv, other, provider, at2, None);
                self.schedule(at2, l);
                return;
            }
        };
        self.schedule(later, line);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_seed_same_bytes_other_seed_other_bytes() {
        let cfg = SimConfig {
            max_requests: Some(2000),
            bad: 0.05,
            ..SimConfig::default()
        };
        let generate = |seed| {
            let mut v = Vec::new();
            Simulator::new(SimConfig {
                seed,
                ..cfg.clone()
            })
            .run(&mut v)
            .unwrap();
            v
        };
        assert_eq!(generate(7), generate(7));
        assert_ne!(generate(7), generate(8));
    }

    #[test]
    fn device_alerts_are_written_when_asked_and_draw_nothing_otherwise() {
        let run = |alerts: f64| {
            let mut v = Vec::new();
            let stats = Simulator::new(SimConfig {
                max_requests: Some(2000),
                alerts,
                ..SimConfig::default()
            })
            .run(&mut v)
            .unwrap();
            (String::from_utf8(v).unwrap(), stats)
        };
        let (none, s0) = run(0.0);
        assert_eq!(s0.alerts, 0);
        assert!(!none.contains(r#""type":"alert","code""#));
        let (some, s1) = run(2.5);
        let lines: Vec<&str> = some
            .lines()
            .filter(|l| l.starts_with(r#"{"type":"alert","code""#))
            .collect();
        assert_eq!(lines.len() as u64, s1.alerts);
        // About 2.5 a request, each a line the pipeline reads as another type.
        assert!((4000..6000).contains(&s1.alerts), "{}", s1.alerts);
        for l in lines {
            assert_eq!(
                crate::engine::event::decode(l.as_bytes(), 65_536).err(),
                Some(crate::engine::event::DeadReason::UnknownType)
            );
            assert_eq!(
                crate::engine::event::type_of(l.as_bytes()).as_deref(),
                Some("alert")
            );
        }
        // The requests themselves are the same.
        assert_eq!(s1.requests, s0.requests);
    }

    #[test]
    fn disorder_is_bounded() {
        let cfg = SimConfig {
            max_requests: Some(20_000),
            disorder: Dur::from_secs(3),
            ..SimConfig::default()
        };
        let mut v = Vec::new();
        Simulator::new(cfg).run(&mut v).unwrap();
        let mut newest = i64::MIN;
        for line in v.split(|&b| b == b'\n').filter(|l| !l.is_empty()) {
            if let Ok(e) = crate::engine::event::decode(line, 65_536) {
                let at = e.at().0;
                assert!(
                    at >= newest.saturating_sub(3 * NANOS_PER_SEC),
                    "an event trails the newest by more than 3 s"
                );
                newest = newest.max(at);
            }
        }
    }

    #[test]
    fn bst_rule_matches_the_calendar() {
        let p = |s: &str| crate::engine::time::parse_rfc3339(s.as_bytes()).unwrap();
        assert!(!london_bst(p("2024-03-31T00:59:59Z")));
        assert!(london_bst(p("2024-03-31T01:00:00Z")));
        assert!(london_bst(p("2024-10-27T00:59:59Z")));
        assert!(!london_bst(p("2024-10-27T01:00:00Z")));
    }
}
