//! The regulatory definitions of `measures.toml`: response codes, SRV classes, the TRT table and
//! the measures, validated and compiled into per-(SRV, provider) rules.

use std::collections::{BTreeMap, BTreeSet};
use std::str::FromStr;

use rust_decimal::Decimal;
use serde::Deserialize;
use toml::{Table, Value};

use super::Problems;
use crate::engine::definitions::{Definitions, Measure, TrtTable};
use crate::engine::domain::{Basis, Provider};
use crate::engine::time::Dur;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawResponses {
    ack_codes: Vec<String>,
    success_codes: Vec<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTrt {
    default: String,
    #[serde(default)]
    class: BTreeMap<String, String>,
    #[serde(default)]
    srv: BTreeMap<String, String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawMeasure {
    id: String,
    name: String,
    basis: String,
    srvs: Option<Vec<String>>,
    class: Option<String>,
    providers: Option<Vec<String>>,
    trt: Option<String>,
    deadline: String,
    regional: bool,
    tpl: Option<Value>,
    mpl: Option<Value>,
}

fn level(v: &Value) -> Result<Decimal, String> {
    let d = match v {
        Value::Integer(i) => Decimal::from(*i),
        // Shortest round-trip text of the float, so `99.5` is exactly 99.5.
        Value::Float(f) => Decimal::from_str(&f.to_string()).map_err(|e| e.to_string())?,
        other => return Err(format!("must be a number, found {other}")),
    };
    if d < Decimal::ZERO || d > Decimal::ONE_HUNDRED {
        return Err(format!("must be a percentage between 0 and 100, found {d}"));
    }
    Ok(d)
}

fn valid_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 64
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_'))
}

/// Parses and validates `measures.toml` (`name` is for messages).
pub(super) fn load(
    name: &str,
    text: &str,
    zone: &str,
    problems: &mut Problems,
) -> Option<Definitions> {
    let before = problems.len();
    let top: Table = match text.parse() {
        Ok(t) => t,
        Err(e) => {
            problems.push(name, "", format!("not valid TOML: {e}"));
            return None;
        }
    };
    for key in top.keys() {
        if !["responses", "classes", "trt", "measure"].contains(&key.as_str()) {
            problems.push(
                name,
                key,
                "unknown key (known: responses, classes, trt, measure)".into(),
            );
        }
    }
    fn part<T: serde::de::DeserializeOwned>(
        top: &Table,
        key: &str,
        name: &str,
        problems: &mut Problems,
    ) -> Option<T> {
        match top.get(key) {
            None => {
                problems.push(name, key, "missing".into());
                None
            }
            Some(v) => match v.clone().try_into::<T>() {
                Ok(t) => Some(t),
                Err(e) => {
                    problems.push(name, key, e.message().to_string());
                    None
                }
            },
        }
    }
    let responses: Option<RawResponses> = part(&top, "responses", name, problems);
    let classes: Option<BTreeMap<String, Vec<String>>> = part(&top, "classes", name, problems);
    let trt: Option<RawTrt> = part(&top, "trt", name, problems);
    let raw_measures: Vec<(usize, Option<RawMeasure>)> = match top.get("measure") {
        Some(Value::Array(items)) => items
            .iter()
            .enumerate()
            .map(|(i, v)| match v.clone().try_into::<RawMeasure>() {
                Ok(m) => (i, Some(m)),
                Err(e) => {
                    let id = v.get("id").and_then(Value::as_str).unwrap_or("?");
                    problems.push(
                        name,
                        &format!("measure[{i}] (id {id:?})"),
                        e.message().to_string(),
                    );
                    (i, None)
                }
            })
            .collect(),
        Some(_) => {
            problems.push(
                name,
                "measure",
                "must be an array of tables ([[measure]])".into(),
            );
            Vec::new()
        }
        None => {
            problems.push(
                name,
                "measure",
                "missing: define at least one [[measure]]".into(),
            );
            Vec::new()
        }
    };

    let dur = |key: &str, text: &str, problems: &mut Problems| match Dur::parse(text) {
        Ok(d) if d.0 > 0 => Some(d),
        Ok(_) => {
            problems.push(name, key, "must be longer than zero".into());
            None
        }
        Err(e) => {
            problems.push(name, key, e.to_string());
            None
        }
    };

    // Codes.
    let (ack_codes, success_codes) = match responses {
        Some(r) => {
            for c in r.ack_codes.iter().filter(|c| r.success_codes.contains(c)) {
                problems.push(
                    name,
                    "responses",
                    format!("code {c:?} cannot be both an acknowledgement and a success"),
                );
            }
            if r.success_codes.is_empty() {
                problems.push(
                    name,
                    "responses.success_codes",
                    "must name at least one code".into(),
                );
            }
            (r.ack_codes, r.success_codes)
        }
        None => (Vec::new(), Vec::new()),
    };

    // Classes.
    let classes: BTreeMap<String, BTreeSet<String>> = classes
        .unwrap_or_default()
        .into_iter()
        .map(|(k, v)| {
            let set: BTreeSet<String> = v.iter().cloned().collect();
            if set.len() != v.len() {
                problems.push(name, &format!("classes.{k}"), "lists an SRV twice".into());
            }
            (k, set)
        })
        .collect();

    // TRT table.
    let mut table = TrtTable {
        by_srv: BTreeMap::new(),
        by_class: BTreeMap::new(),
        default: Dur::ZERO,
    };
    if let Some(t) = trt {
        if let Some(d) = dur("trt.default", &t.default, problems) {
            table.default = d;
        }
        for (srv, text) in &t.srv {
            if let Some(d) = dur(&format!("trt.srv.{srv:?}"), text, problems) {
                table.by_srv.insert(srv.clone(), d);
            }
        }
        for (class, text) in &t.class {
            if !classes.contains_key(class) {
                problems.push(
                    name,
                    &format!("trt.class.{class}"),
                    "no such class under [classes]".into(),
                );
            } else if let Some(d) = dur(&format!("trt.class.{class}"), text, problems) {
                table.by_class.insert(class.clone(), d);
            }
        }
    }
    // An SRV in two classes with different TRTs would make the table ambiguous.
    let mut class_trt_of_srv: BTreeMap<String, (String, Dur)> = BTreeMap::new();
    for (class, d) in &table.by_class {
        for srv in &classes[class] {
            match class_trt_of_srv.get(srv) {
                Some((other, od)) if od != d => problems.push(
                    name,
                    &format!("trt.class.{class}"),
                    format!("SRV {srv} is also in class {other} whose TRT differs ({od} vs {d}); give it a trt.srv entry"),
                ),
                _ => {
                    class_trt_of_srv.insert(srv.clone(), (class.clone(), *d));
                }
            }
        }
    }
    let class_trt_of_srv: BTreeMap<String, Dur> = class_trt_of_srv
        .into_iter()
        .filter(|(srv, _)| !table.by_srv.contains_key(srv))
        .map(|(s, (_, d))| (s, d))
        .collect();

    // Measures.
    let mut measures = Vec::new();
    let mut seen = BTreeSet::new();
    for (i, raw) in raw_measures {
        let Some(m) = raw else { continue };
        let key = format!("measure[{i}] (id {:?})", m.id);
        let before_m = problems.len();
        if !valid_id(&m.id) {
            problems.push(
                name,
                &key,
                "id must be 1–64 characters of A–Z, a–z, 0–9, '.', '-', '_'".into(),
            );
        }
        if !seen.insert(m.id.clone()) {
            problems.push(name, &key, "duplicate id".into());
        }
        let basis = match m.basis.as_str() {
            "trt" => Some(Basis::Trt),
            "success" => Some(Basis::Success),
            other => {
                problems.push(
                    name,
                    &format!("{key}.basis"),
                    format!("must be \"trt\" or \"success\", found {other:?}"),
                );
                None
            }
        };
        let srvs: BTreeSet<String> = match (&m.srvs, &m.class) {
            (Some(list), None) if !list.is_empty() => list.iter().cloned().collect(),
            (None, Some(c)) => match classes.get(c) {
                Some(set) => set.clone(),
                None => {
                    problems.push(
                        name,
                        &format!("{key}.class"),
                        format!("no such class {c:?} under [classes]"),
                    );
                    BTreeSet::new()
                }
            },
            _ => {
                problems.push(
                    name,
                    &key,
                    "select SRVs with exactly one of `srvs` (non-empty) or `class`".into(),
                );
                BTreeSet::new()
            }
        };
        let mut providers = BTreeSet::new();
        for p in m.providers.clone().unwrap_or_default() {
            match Provider::parse(&p) {
                Some(p) => {
                    providers.insert(p);
                }
                None => problems.push(
                    name,
                    &format!("{key}.providers"),
                    format!("unknown provider {p:?} (dsp, s1sp, csp)"),
                ),
            }
        }
        if m.providers.as_ref().is_none_or(Vec::is_empty) {
            providers.extend(Provider::ALL);
        }
        let trt = m
            .trt
            .as_ref()
            .and_then(|t| dur(&format!("{key}.trt"), t, problems));
        let deadline = dur(&format!("{key}.deadline"), &m.deadline, problems);
        let tpl = m.tpl.as_ref().and_then(|v| {
            level(v)
                .map_err(|e| problems.push(name, &format!("{key}.tpl"), e))
                .ok()
        });
        let mpl = m.mpl.as_ref().and_then(|v| {
            level(v)
                .map_err(|e| problems.push(name, &format!("{key}.mpl"), e))
                .ok()
        });
        if let (Some(t), Some(mi)) = (tpl, mpl)
            && t <= mi
        {
            problems.push(name, &key, format!("tpl ({t}) must be above mpl ({mi})"));
        }
        if let (Some(t), Some(d)) = (trt, deadline)
            && t > d
        {
            problems.push(
                name,
                &key,
                format!("trt ({t}) is longer than the deadline ({d})"),
            );
        }
        if problems.len() > before_m {
            continue;
        }
        if let (Some(basis), Some(deadline)) = (basis, deadline) {
            measures.push(Measure {
                id: m.id,
                name: m.name,
                basis,
                srvs,
                class: m.class,
                providers,
                trt,
                deadline,
                regional: m.regional,
                tpl,
                mpl,
            });
        }
    }
    if measures.len() > u16::MAX as usize {
        problems.push(name, "measure", "too many measures".into());
    }
    if problems.len() > before {
        return None;
    }
    Some(Definitions::new(
        ack_codes,
        success_codes,
        classes,
        table,
        measures,
        zone,
        class_trt_of_srv,
    ))
}

#[cfg(test)]
mod tests {
    use super::super::{Config, DEFAULT_MEASURES};
    use super::*;

    fn defs() -> Definitions {
        Config::builtin().unwrap().definitions
    }

    #[test]
    fn default_measures_are_the_spec_ones() {
        let d = defs();
        let ids: Vec<&str> = d.measures.iter().map(|m| m.id.as_str()).collect();
        for id in [
            "PM4.3",
            "SRV8.11",
            "PM1.1-DSP",
            "PM1.4-DSP",
            "PM1.1-S1SP",
            "MP242-IC",
            "MP242-PREPAY",
            "MP242-BILLING",
            "MP242-TARIFF",
            "MP242-COS",
            "MP242-FIRMWARE",
            "MP242-SUPPLY",
        ] {
            assert!(ids.contains(&id), "{id} missing");
        }
        let pm43 = &d.measures[d.measure_index("PM4.3").unwrap()];
        assert_eq!(pm43.trt, Some(Dur::from_secs(25)));
        assert_eq!(pm43.deadline, Dur::from_secs(86_400));
        assert_eq!(pm43.tpl, Some(Decimal::from(99)));
        assert_eq!(d.longest_deadline, Dur::from_secs(86_400));
    }

    #[test]
    fn rules_follow_selectors_and_the_trt_table() {
        let d = defs();
        let names = |srv: &str, p: Provider| -> Vec<String> {
            d.rules_for(srv, p)
                .iter()
                .map(|r| d.measures[r.measure as usize].id.clone())
                .collect()
        };
        assert_eq!(names("CSP-HAN-TEST", Provider::Csp), vec!["PM4.3"]);
        assert!(names("CSP-HAN-TEST", Provider::Dsp).is_empty());
        let n = names("8.11", Provider::Dsp);
        assert!(
            n.contains(&"SRV8.11".into())
                && n.contains(&"PM1.1-DSP".into())
                && n.contains(&"MP242-IC".into()),
            "{n:?}"
        );
        let n = names("8.11", Provider::S1sp);
        assert!(
            n.contains(&"PM1.1-S1SP".into()) && !n.contains(&"PM1.1-DSP".into()),
            "{n:?}"
        );
        assert_eq!(
            names("11.1", Provider::Dsp),
            vec!["PM1.4-DSP", "MP242-FIRMWARE"]
        );
        assert!(names("99.99", Provider::Dsp).is_empty());
        assert_eq!(d.table_trt("8.11"), Dur::from_secs(30));
        assert_eq!(d.table_trt("CSP-HAN-TEST"), Dur::from_secs(25));
        assert_eq!(d.table_trt("nonesuch"), d.trt.default);
        // The measure's own TRT wins over the table.
        let r = d.rules_for("CSP-HAN-TEST", Provider::Csp);
        assert_eq!(r[0].trt, Dur::from_secs(25));
    }

    #[test]
    fn ranges_in_classes_are_written_out() {
        let d = defs();
        let od = &d.classes["on_demand"];
        for srv in [
            "6.2.1", "6.2.10", "6.28", "6.32", "7.1", "7.16", "14.1", "8.11",
        ] {
            assert!(od.contains(srv), "{srv}");
        }
        assert!(d.classes["non_device"].contains("8.14.1"));
    }

    #[test]
    fn fingerprint_ignores_comments_but_not_meaning() {
        let mut p = Problems::default();
        let a = load("a", DEFAULT_MEASURES, "Europe/London", &mut p).unwrap();
        let b = load(
            "b",
            &format!("# a comment\n{DEFAULT_MEASURES}"),
            "Europe/London",
            &mut p,
        )
        .unwrap();
        let c = load(
            "c",
            &DEFAULT_MEASURES.replacen("trt = \"25s\"", "trt = \"26s\"", 1),
            "Europe/London",
            &mut p,
        )
        .unwrap();
        let z = load("z", DEFAULT_MEASURES, "UTC", &mut p).unwrap();
        assert!(p.is_empty(), "{p}");
        assert_eq!(a.sha256, b.sha256);
        assert_ne!(a.sha256, c.sha256);
        assert_ne!(a.sha256, z.sha256);
        assert_eq!(a.sha256.len(), 64);
    }

    #[test]
    fn bad_measures_are_all_reported() {
        let text = r#"
[responses]
ack_codes = ["I99"]
success_codes = ["I99"]
[classes]
a = ["1.1", "1.1"]
b = ["1.1"]
[trt]
default = "30s"
class = { a = "10s", b = "20s", c = "5s" }
[[measure]]
id = "X"
name = "x"
basis = "trt"
srvs = ["1.1"]
deadline = "24h"
regional = true
tpl = 90
mpl = 95
[[measure]]
id = "X"
name = "x"
basis = "fast"
class = "nope"
providers = ["bus"]
deadline = "1 day"
regional = true
[[measure]]
id = "Y"
name = "y"
basis = "trt"
srvs = ["1.1"]
deadline = "24h"
regional = "yes"
"#;
        let mut p = Problems::default();
        assert!(load("m.toml", text, "UTC", &mut p).is_none());
        let s = p.to_string();
        for needle in [
            "both an acknowledgement and a success",
            "classes.a: lists an SRV twice",
            "trt.class.c: no such class",
            "whose TRT differs",
            "tpl (90) must be above mpl (95)",
            "duplicate id",
            "must be \"trt\" or \"success\"",
            "no such class \"nope\"",
            "unknown provider \"bus\"",
            "deadline",
            "measure[2] (id \"Y\")",
        ] {
            assert!(s.contains(needle), "missing {needle:?} in:\n{s}");
        }
    }
}
