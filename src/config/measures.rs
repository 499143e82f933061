//! The regulatory definitions of `measures.toml`: response codes, SRV classes, the TRT table and
//! the measures, validated and compiled into per-(SRV, provider) rules.

use std::collections::{BTreeMap, BTreeSet};
use std::str::FromStr;

use rust_decimal::Decimal;
use serde::Deserialize;
use toml::{Table, Value};

use super::problems::Problems;
use crate::engine::definitions::{Definitions, Measure, TrtTable};
use crate::engine::domain::{Basis, Provider, Timing};
use crate::engine::time::Dur;

/// The built-in `measures.toml` (identical to `config/measures.toml`).
pub(crate) const DEFAULT_MEASURES: &str = include_str!("../../config/measures.toml");

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
struct RawInterface {
    id: String,
    name: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawMeasure {
    id: String,
    name: String,
    basis: String,
    timing: Option<String>,
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
    let mut c = Ctx { name, problems };
    let parts = c.parts(&top);
    let (ack_codes, success_codes) = c.codes(parts.responses);
    let classes = c.classes(parts.classes);
    let table = c.trt_table(parts.trt, &classes);
    let class_trt_of_srv = c.class_trts(&table, &classes);
    let mut measures = Vec::new();
    let mut seen = BTreeSet::new();
    for (i, raw) in parts.measures {
        if let Some(m) = raw
            && let Some(m) = c.measure(i, m, &classes, &mut seen)
        {
            measures.push(m);
        }
    }
    if measures.len() > u16::MAX as usize {
        c.push("measure", "too many measures".into());
    }
    let interfaces = c.interfaces(&top);
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
        interfaces,
    ))
}

/// The file's top-level tables, each read on its own so one bad table hides no other's problems.
struct Parts {
    responses: Option<RawResponses>,
    classes: Option<BTreeMap<String, Vec<String>>>,
    trt: Option<RawTrt>,
    /// Each `[[measure]]` with its index; `None` where it did not deserialise.
    measures: Vec<(usize, Option<RawMeasure>)>,
}

/// Reading one file: its name for messages, and every problem found.
struct Ctx<'a> {
    name: &'a str,
    problems: &'a mut Problems,
}

impl Ctx<'_> {
    fn push(&mut self, key: &str, problem: String) {
        self.problems.push(self.name, key, problem);
    }

    /// A duration longer than zero.
    fn dur(&mut self, key: &str, text: &str) -> Option<Dur> {
        match Dur::parse(text) {
            Ok(d) if d.0 > 0 => Some(d),
            Ok(_) => {
                self.push(key, "must be longer than zero".into());
                None
            }
            Err(e) => {
                self.push(key, e.to_string());
                None
            }
        }
    }

    /// One table of the file, deserialised (or a problem saying why not).
    fn part<T: serde::de::DeserializeOwned>(&mut self, top: &Table, key: &str) -> Option<T> {
        match top.get(key) {
            None => {
                self.push(key, "missing".into());
                None
            }
            Some(v) => match v.clone().try_into::<T>() {
                Ok(t) => Some(t),
                Err(e) => {
                    self.push(key, e.message().to_string());
                    None
                }
            },
        }
    }

    fn parts(&mut self, top: &Table) -> Parts {
        for key in top.keys() {
            if !["responses", "classes", "trt", "measure", "interface"].contains(&key.as_str()) {
                self.push(
                    key,
                    "unknown key (known: responses, classes, trt, measure, interface)".into(),
                );
            }
        }
        let responses = self.part(top, "responses");
        let classes = self.part(top, "classes");
        let trt = self.part(top, "trt");
        let measures = match top.get("measure") {
            Some(Value::Array(items)) => items
                .iter()
                .enumerate()
                .map(|(i, v)| match v.clone().try_into::<RawMeasure>() {
                    Ok(m) => (i, Some(m)),
                    Err(e) => {
                        let id = v.get("id").and_then(Value::as_str).unwrap_or("?");
                        self.push(
                            &format!("measure[{i}] (id {id:?})"),
                            e.message().to_string(),
                        );
                        (i, None)
                    }
                })
                .collect(),
            Some(_) => {
                self.push("measure", "must be an array of tables ([[measure]])".into());
                Vec::new()
            }
            None => {
                self.push("measure", "missing: define at least one [[measure]]".into());
                Vec::new()
            }
        };
        Parts {
            responses,
            classes,
            trt,
            measures,
        }
    }

    /// The `[[interface]]` entries (the seed's five when there are none).
    fn interfaces(&mut self, top: &Table) -> Vec<crate::engine::definitions::Interface> {
        let items = match top.get("interface") {
            None => return crate::engine::definitions::default_interfaces(),
            Some(Value::Array(items)) => items,
            Some(_) => {
                self.push(
                    "interface",
                    "must be an array of tables ([[interface]])".into(),
                );
                return Vec::new();
            }
        };
        let mut out: Vec<crate::engine::definitions::Interface> = Vec::new();
        for (i, v) in items.iter().enumerate() {
            let key = format!(
                "interface[{i}] (id {:?})",
                v.get("id").and_then(Value::as_str).unwrap_or("?")
            );
            match v.clone().try_into::<RawInterface>() {
                Err(e) => self.push(&key, e.message().to_string()),
                Ok(r) if !valid_id(&r.id) => self.push(
                    &key,
                    "id must be 1-64 letters, digits, '.', '-' or '_'".into(),
                ),
                Ok(r) if out.iter().any(|x| x.id == r.id) => {
                    self.push(&key, "the same id twice".into())
                }
                Ok(r) => out.push(crate::engine::definitions::Interface {
                    id: r.id,
                    name: r.name,
                }),
            }
        }
        out
    }

    /// The acknowledgement and success codes.
    fn codes(&mut self, responses: Option<RawResponses>) -> (Vec<String>, Vec<String>) {
        let Some(r) = responses else {
            return (Vec::new(), Vec::new());
        };
        for c in r.ack_codes.iter().filter(|c| r.success_codes.contains(c)) {
            self.push(
                "responses",
                format!("code {c:?} cannot be both an acknowledgement and a success"),
            );
        }
        if r.success_codes.is_empty() {
            self.push(
                "responses.success_codes",
                "must name at least one code".into(),
            );
        }
        (r.ack_codes, r.success_codes)
    }

    /// The SRV classes, each a set.
    fn classes(
        &mut self,
        classes: Option<BTreeMap<String, Vec<String>>>,
    ) -> BTreeMap<String, BTreeSet<String>> {
        classes
            .unwrap_or_default()
            .into_iter()
            .map(|(k, v)| {
                let set: BTreeSet<String> = v.iter().cloned().collect();
                if set.len() != v.len() {
                    self.push(&format!("classes.{k}"), "lists an SRV twice".into());
                }
                (k, set)
            })
            .collect()
    }

    /// The TRT table: by SRV, by class (of the classes defined), and the default.
    fn trt_table(
        &mut self,
        trt: Option<RawTrt>,
        classes: &BTreeMap<String, BTreeSet<String>>,
    ) -> TrtTable {
        let mut table = TrtTable {
            by_srv: BTreeMap::new(),
            by_class: BTreeMap::new(),
            default: Dur::ZERO,
        };
        let Some(t) = trt else {
            return table;
        };
        if let Some(d) = self.dur("trt.default", &t.default) {
            table.default = d;
        }
        for (srv, text) in &t.srv {
            if let Some(d) = self.dur(&format!("trt.srv.{srv:?}"), text) {
                table.by_srv.insert(srv.clone(), d);
            }
        }
        for (class, text) in &t.class {
            if !classes.contains_key(class) {
                self.push(
                    &format!("trt.class.{class}"),
                    "no such class under [classes]".into(),
                );
            } else if let Some(d) = self.dur(&format!("trt.class.{class}"), text) {
                table.by_class.insert(class.clone(), d);
            }
        }
        table
    }

    /// The class TRT of each SRV without an SRV entry of its own. An SRV in two classes with
    /// different TRTs would make the table ambiguous: a problem.
    fn class_trts(
        &mut self,
        table: &TrtTable,
        classes: &BTreeMap<String, BTreeSet<String>>,
    ) -> BTreeMap<String, Dur> {
        let mut class_trt_of_srv: BTreeMap<String, (String, Dur)> = BTreeMap::new();
        for (class, d) in &table.by_class {
            for srv in &classes[class] {
                match class_trt_of_srv.get(srv) {
                    Some((other, od)) if od != d => self.push(
                        &format!("trt.class.{class}"),
                        format!(
                            "SRV {srv} is also in class {other} whose TRT differs ({od} vs {d}); \
                             give it a trt.srv entry"
                        ),
                    ),
                    _ => {
                        class_trt_of_srv.insert(srv.clone(), (class.clone(), *d));
                    }
                }
            }
        }
        class_trt_of_srv
            .into_iter()
            .filter(|(srv, _)| !table.by_srv.contains_key(srv))
            .map(|(s, (_, d))| (s, d))
            .collect()
    }

    /// One `[[measure]]`, validated; `None` when it has a problem (each reported).
    fn measure(
        &mut self,
        i: usize,
        m: RawMeasure,
        classes: &BTreeMap<String, BTreeSet<String>>,
        seen: &mut BTreeSet<String>,
    ) -> Option<Measure> {
        let key = format!("measure[{i}] (id {:?})", m.id);
        let before = self.problems.len();
        if !valid_id(&m.id) {
            self.push(
                &key,
                "id must be 1–64 characters of A–Z, a–z, 0–9, '.', '-', '_'".into(),
            );
        }
        if !seen.insert(m.id.clone()) {
            self.push(&key, "duplicate id".into());
        }
        let basis = match m.basis.as_str() {
            "trt" => Some(Basis::Trt),
            "success" => Some(Basis::Success),
            other => {
                self.push(
                    &format!("{key}.basis"),
                    format!("must be \"trt\" or \"success\", found {other:?}"),
                );
                None
            }
        };
        let timing = match (m.timing.as_deref(), basis) {
            (None, Some(b)) => Some(Timing::default_for(b)),
            (None, None) => None,
            (Some(t), _) => Timing::parse(t).or_else(|| {
                self.push(
                    &format!("{key}.timing"),
                    format!("must be \"on_demand\", \"future_dated\" or \"any\", found {t:?}"),
                );
                None
            }),
        };
        let srvs = self.selected_srvs(&key, &m, classes);
        let providers = self.providers(&key, &m);
        let trt = m
            .trt
            .as_ref()
            .and_then(|t| self.dur(&format!("{key}.trt"), t));
        let deadline = self.dur(&format!("{key}.deadline"), &m.deadline);
        let mut level_of = |v: &Option<Value>, which: &str| {
            v.as_ref().and_then(|v| {
                level(v)
                    .map_err(|e| self.push(&format!("{key}.{which}"), e))
                    .ok()
            })
        };
        let tpl = level_of(&m.tpl, "tpl");
        let mpl = level_of(&m.mpl, "mpl");
        if let (Some(t), Some(mi)) = (tpl, mpl)
            && t <= mi
        {
            self.push(&key, format!("tpl ({t}) must be above mpl ({mi})"));
        }
        if let (Some(t), Some(d)) = (trt, deadline)
            && t > d
        {
            self.push(&key, format!("trt ({t}) is longer than the deadline ({d})"));
        }
        if self.problems.len() > before {
            return None;
        }
        Some(Measure {
            id: m.id,
            name: m.name,
            basis: basis?,
            timing: timing?,
            srvs,
            class: m.class,
            providers,
            trt,
            deadline: deadline?,
            regional: m.regional,
            tpl,
            mpl,
        })
    }

    /// A measure's SRVs: its list, or its class's members.
    fn selected_srvs(
        &mut self,
        key: &str,
        m: &RawMeasure,
        classes: &BTreeMap<String, BTreeSet<String>>,
    ) -> BTreeSet<String> {
        match (&m.srvs, &m.class) {
            (Some(list), None) if !list.is_empty() => list.iter().cloned().collect(),
            (None, Some(c)) => match classes.get(c) {
                Some(set) => set.clone(),
                None => {
                    self.push(
                        &format!("{key}.class"),
                        format!("no such class {c:?} under [classes]"),
                    );
                    BTreeSet::new()
                }
            },
            _ => {
                self.push(
                    key,
                    "select SRVs with exactly one of `srvs` (non-empty) or `class`".into(),
                );
                BTreeSet::new()
            }
        }
    }

    /// A measure's providers (all three when it names none). An empty list is refused, as an
    /// empty `srvs` is: absent means every one, and a list present selects what it names, so
    /// `[]` would select nothing.
    fn providers(&mut self, key: &str, m: &RawMeasure) -> BTreeSet<Provider> {
        let mut providers = BTreeSet::new();
        if m.providers.as_ref().is_some_and(Vec::is_empty) {
            self.push(
                &format!("{key}.providers"),
                "is empty, which would select no provider: leave it out to select every \
                 provider, or name them (dsp, s1sp, csp)"
                    .into(),
            );
        }
        for p in m.providers.clone().unwrap_or_default() {
            match Provider::parse(&p) {
                Some(p) => {
                    providers.insert(p);
                }
                None => self.push(
                    &format!("{key}.providers"),
                    format!("unknown provider {p:?} (dsp, s1sp, csp)"),
                ),
            }
        }
        if m.providers.is_none() {
            providers.extend(Provider::ALL);
        }
        providers
    }
}

#[cfg(test)]
mod tests {
    use super::super::load::Config;
    use super::DEFAULT_MEASURES;
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
            d.rules_for(srv, p, false)
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
        let r = d.rules_for("CSP-HAN-TEST", Provider::Csp, false);
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
