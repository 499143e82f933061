//! A regulatory year's OPR scheme (`config/opr/RYxx-yy.toml`): measures, exact weights, TPL and
//! MPL, components, penalty mechanisms, the kept-share curve and the margin at risk, validated.

use std::collections::BTreeSet;
use std::fmt;

use rust_decimal::Decimal;
use serde::Deserialize;

use super::ratio::Ratio;

/// A regulatory year (1 April to 31 March), e.g. RY23/24.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct RegYear {
    /// Calendar year of its April.
    pub start: i32,
}

impl RegYear {
    /// Parses `RY23/24` (the two years must follow each other).
    pub fn parse(s: &str) -> Option<RegYear> {
        let rest = s.strip_prefix("RY")?;
        let (a, b) = rest.split_once('/')?;
        if a.len() != 2 || b.len() != 2 {
            return None;
        }
        let a: i32 = a.parse().ok()?;
        let b: i32 = b.parse().ok()?;
        ((a + 1) % 100 == b).then_some(RegYear { start: 2000 + a })
    }

    /// Its twelve months, April to March, as `YYYY-MM`.
    pub fn months(self) -> Vec<String> {
        (0..12)
            .map(|i| {
                let m = 4 + i;
                let (y, m) = if m > 12 {
                    (self.start + 1, m - 12)
                } else {
                    (self.start, m)
                };
                format!("{y:04}-{m:02}")
            })
            .collect()
    }

    /// The regulatory year a `YYYY-MM` month belongs to.
    pub(crate) fn of_month(month: &str) -> Option<RegYear> {
        let (y, m) = month.split_once('-')?;
        if y.len() != 4 || m.len() != 2 {
            return None;
        }
        let y: i32 = y.parse().ok()?;
        let m: u32 = m.parse().ok()?;
        if !(1..=12).contains(&m) {
            return None;
        }
        Some(RegYear {
            start: if m >= 4 { y } else { y - 1 },
        })
    }
}

impl fmt::Display for RegYear {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "RY{:02}/{:02}", self.start % 100, (self.start + 1) % 100)
    }
}

/// How a measure turns RPLs into money.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
pub enum Mechanism {
    /// One non-regional RPL scored against TPL/MPL.
    A,
    /// The allocation split equally over North, Central and South, each scored.
    B,
    /// Both: the allocation shared between an A part and a B part by component counts.
    #[serde(rename = "A+B")]
    AB,
    /// A score out of 3: allocation × score / 3.
    #[serde(rename = "VMM")]
    Vmm,
}

/// Which part of an A+B measure a component belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
pub enum Part {
    /// Non-regional.
    A,
    /// Per region.
    B,
}

/// How a component's monthly values make its annual RPL.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Combine {
    /// Mean of the monthly RPLs.
    Mean,
    /// Σ numerators / Σ denominators (needs counts on every row).
    Pooled,
}

/// One component of a measure.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Component {
    /// Id used in input rows.
    pub id: String,
    /// A or B (the measure's own mechanism unless it is A+B).
    pub part: Part,
    /// Zero-weighted components are reported, never scored, and may be absent.
    pub scored: bool,
    /// The streaming measure (`measures.toml`) it is computed from, if any.
    pub from: Option<String>,
}

impl Component {
    /// Per-region inputs?
    pub fn regional(&self) -> bool {
        self.part == Part::B
    }
}

/// One OPR measure.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct SchemeMeasure {
    /// Scheme id (`SUM1`).
    pub id: String,
    /// Human name.
    pub name: String,
    /// Share of the margin at risk.
    #[serde(serialize_with = "ratio_text")]
    pub weight: Ratio,
    /// Penalty mechanism.
    pub mechanism: Mechanism,
    /// Target Performance Level (percent).
    pub tpl: Option<Decimal>,
    /// Minimum Performance Level (percent).
    pub mpl: Option<Decimal>,
    /// How monthly values combine.
    pub combine: Combine,
    /// Components in report order (empty for VMM: any sub-question id is accepted).
    pub components: Vec<Component>,
}

fn ratio_text<S: serde::Serializer>(r: &Ratio, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&r.to_string())
}

impl SchemeMeasure {
    /// The component called `id`.
    pub fn component(&self, id: &str) -> Option<&Component> {
        self.components.iter().find(|c| c.id == id)
    }
}

/// The kept share as a function of `x = (RPL − MPL) / (TPL − MPL)`: 0 at or below MPL, 1 at or
/// above TPL, piecewise linear through `points` in between.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Curve {
    /// `(x, share)`, from `(0, 0)` to `(1, 1)`, increasing in x, non-decreasing in share.
    pub points: Vec<(Decimal, Decimal)>,
}

impl Curve {
    /// The share kept at `rpl`.
    pub fn share(&self, rpl: Decimal, tpl: Decimal, mpl: Decimal) -> Decimal {
        if rpl >= tpl {
            return Decimal::ONE;
        }
        if rpl <= mpl {
            return Decimal::ZERO;
        }
        let x = (rpl - mpl) / (tpl - mpl);
        for w in self.points.windows(2) {
            let ((x0, y0), (x1, y1)) = (w[0], w[1]);
            if x <= x1 {
                return y0 + (y1 - y0) * (x - x0) / (x1 - x0);
            }
        }
        Decimal::ONE
    }
}

/// A validated scheme.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Scheme {
    /// The regulatory year.
    #[serde(serialize_with = "year_text")]
    pub year: RegYear,
    /// Title for reports.
    pub title: String,
    /// Where the figures come from.
    pub source: String,
    /// Margin at risk in £m, when known.
    pub margin_at_risk: Option<Decimal>,
    /// The kept-share curve.
    pub curve: Curve,
    /// Measures in report order.
    pub measures: Vec<SchemeMeasure>,
}

fn year_text<S: serde::Serializer>(y: &RegYear, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&y.to_string())
}

impl Scheme {
    /// The measure called `id`.
    pub fn measure(&self, id: &str) -> Option<&SchemeMeasure> {
        self.measures.iter().find(|m| m.id == id)
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawScheme {
    year: String,
    title: String,
    #[serde(default)]
    source: String,
    margin_at_risk: Option<String>,
    #[serde(default)]
    curve: Option<RawCurve>,
    measure: Vec<RawMeasure>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCurve {
    points: Vec<(String, String)>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawMeasure {
    id: String,
    name: String,
    weight: String,
    mechanism: String,
    tpl: Option<String>,
    mpl: Option<String>,
    #[serde(default)]
    combine: Option<String>,
    #[serde(default)]
    component: Vec<RawComponent>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawComponent {
    id: String,
    part: Option<String>,
    #[serde(default = "yes")]
    scored: bool,
    from: Option<String>,
}

fn yes() -> bool {
    true
}

fn dec(s: &str) -> Result<Decimal, String> {
    s.trim()
        .parse::<Decimal>()
        .map_err(|_| format!("{s:?} is not a decimal number"))
}

/// Parses and validates a scheme; `name` is for messages, `streaming` the ids of the streaming
/// measures a component may come `from` (none checked when empty). Every problem is reported.
pub fn parse(
    name: &str,
    text: &str,
    streaming: &[String],
) -> Result<Scheme, super::problems::Problems> {
    parse_scheme(name, text, streaming).map_err(super::Problems::new)
}

/// [`parse`], its problems as a list.
fn parse_scheme(name: &str, text: &str, streaming: &[String]) -> Result<Scheme, Vec<String>> {
    let raw: RawScheme =
        toml::from_str(text).map_err(|e| vec![format!("{name}: {}", e.to_string().trim())])?;
    let mut p = Found {
        name,
        problems: Vec::new(),
    };
    let year = RegYear::parse(&raw.year);
    if year.is_none() {
        p.push(
            "year",
            format!("{:?} is not a regulatory year like \"RY23/24\"", raw.year),
        );
    }
    let margin = p.margin(raw.margin_at_risk.as_deref());
    let curve = p.curve(raw.curve);
    let mut measures = Vec::new();
    let mut total = Some(Ratio::ZERO);
    let mut ids = BTreeSet::new();
    for (i, m) in raw.measure.into_iter().enumerate() {
        let m = p.measure(i, m, streaming, &mut ids);
        total = total.and_then(|t| t.checked_add(m.weight));
        measures.push(m);
    }
    match total {
        Some(t) if t == Ratio::ONE => {}
        Some(t) => p.push("measure", format!("weights add up to {t}, not 100 %")),
        None => p.push("measure", "weights overflow".into()),
    }
    match (p.problems.is_empty(), year) {
        (true, Some(year)) => Ok(Scheme {
            year,
            title: raw.title,
            source: raw.source,
            margin_at_risk: margin,
            curve,
            measures,
        }),
        _ => Err(p.problems),
    }
}

/// The problems found in one scheme file, each as `file: key: problem`.
struct Found<'a> {
    name: &'a str,
    problems: Vec<String>,
}

impl Found<'_> {
    fn push(&mut self, key: &str, msg: String) {
        self.problems.push(format!("{}: {key}: {msg}", self.name));
    }

    /// The margin at risk, if given: positive £m.
    fn margin(&mut self, m: Option<&str>) -> Option<Decimal> {
        match dec(m?) {
            Ok(d) if d > Decimal::ZERO => Some(d),
            Ok(d) => {
                self.push("margin_at_risk", format!("must be positive, found {d}"));
                None
            }
            Err(e) => {
                self.push("margin_at_risk", e);
                None
            }
        }
    }

    /// The kept-share curve: linear between MPL and TPL unless the file gives its points.
    fn curve(&mut self, raw: Option<RawCurve>) -> Curve {
        let Some(c) = raw else {
            return Curve {
                points: vec![(Decimal::ZERO, Decimal::ZERO), (Decimal::ONE, Decimal::ONE)],
            };
        };
        let mut points = Vec::new();
        for (x, y) in &c.points {
            match (dec(x), dec(y)) {
                (Ok(x), Ok(y)) => points.push((x, y)),
                (Err(e), _) | (_, Err(e)) => self.push("curve.points", e),
            }
        }
        let ends_ok = points.first() == Some(&(Decimal::ZERO, Decimal::ZERO))
            && points.last() == Some(&(Decimal::ONE, Decimal::ONE));
        let monotone = points
            .windows(2)
            .all(|w| w[1].0 > w[0].0 && w[1].1 >= w[0].1);
        if !ends_ok || !monotone {
            self.push(
                "curve.points",
                "must run from [\"0\", \"0\"] (at MPL) to [\"1\", \"1\"] (at TPL), increasing \
                 in x and never decreasing in share"
                    .into(),
            );
        }
        Curve { points }
    }

    /// One `[[measure]]` (a problem is reported, and a stand-in value kept, for each bad key).
    fn measure(
        &mut self,
        i: usize,
        m: RawMeasure,
        streaming: &[String],
        ids: &mut BTreeSet<String>,
    ) -> SchemeMeasure {
        let key = format!("measure[{i}] ({})", m.id);
        if !ids.insert(m.id.clone()) {
            self.push(&key, "duplicate id".into());
        }
        let weight = match Ratio::parse(&m.weight) {
            Ok(w) => w,
            Err(e) => {
                self.push(&format!("{key}.weight"), e);
                Ratio::ZERO
            }
        };
        let mechanism = match m.mechanism.as_str() {
            "A" => Mechanism::A,
            "B" => Mechanism::B,
            "A+B" => Mechanism::AB,
            "VMM" => Mechanism::Vmm,
            other => {
                self.push(
                    &format!("{key}.mechanism"),
                    format!("{other:?} is not A, B, A+B or VMM"),
                );
                Mechanism::A
            }
        };
        let (tpl, mpl) = self.levels(&key, &m, mechanism);
        let combine = match m.combine.as_deref() {
            None | Some("mean") => Combine::Mean,
            Some("pooled") => Combine::Pooled,
            Some(other) => {
                self.push(
                    &format!("{key}.combine"),
                    format!("{other:?} is not \"mean\" or \"pooled\""),
                );
                Combine::Mean
            }
        };
        let mut components = Vec::new();
        let mut cids = BTreeSet::new();
        for (j, c) in m.component.into_iter().enumerate() {
            components.push(self.component(&key, j, c, mechanism, streaming, &mut cids));
        }
        if mechanism != Mechanism::Vmm && !components.iter().any(|c| c.scored) && !weight.is_zero()
        {
            self.push(
                &key,
                "a weighted measure needs at least one scored component".into(),
            );
        }
        if mechanism == Mechanism::AB {
            for part in [Part::A, Part::B] {
                if !components.iter().any(|c| c.scored && c.part == part) {
                    self.push(
                        &key,
                        format!("an A+B measure needs a scored component in part {part:?}"),
                    );
                }
            }
        }
        SchemeMeasure {
            id: m.id,
            name: m.name,
            weight,
            mechanism,
            tpl,
            mpl,
            combine,
            components,
        }
    }

    /// A measure's TPL and MPL: both, TPL above MPL (none for a VMM measure).
    fn levels(
        &mut self,
        key: &str,
        m: &RawMeasure,
        mechanism: Mechanism,
    ) -> (Option<Decimal>, Option<Decimal>) {
        let tpl = m.tpl.as_deref().map(dec).transpose().unwrap_or_else(|e| {
            self.push(&format!("{key}.tpl"), e);
            None
        });
        let mpl = m.mpl.as_deref().map(dec).transpose().unwrap_or_else(|e| {
            self.push(&format!("{key}.mpl"), e);
            None
        });
        match (mechanism, tpl, mpl) {
            (Mechanism::Vmm, None, None) => {}
            (Mechanism::Vmm, _, _) => self.push(
                key,
                "a VMM measure is a score out of 3: no tpl or mpl".into(),
            ),
            (_, Some(t), Some(mi)) if t <= mi => {
                self.push(key, format!("TPL ({t}) must be above MPL ({mi})"))
            }
            (_, Some(_), Some(_)) => {}
            _ => self.push(key, "needs both tpl and mpl".into()),
        }
        (tpl, mpl)
    }

    /// One component of a measure: its part must fit the mechanism, and its `from` name a
    /// streaming measure.
    fn component(
        &mut self,
        key: &str,
        j: usize,
        c: RawComponent,
        mechanism: Mechanism,
        streaming: &[String],
        cids: &mut BTreeSet<String>,
    ) -> Component {
        let ckey = format!("{key}.component[{j}] ({})", c.id);
        if !cids.insert(c.id.clone()) {
            self.push(&ckey, "duplicate component".into());
        }
        let part = match (mechanism, c.part.as_deref()) {
            (Mechanism::A, None | Some("A")) => Part::A,
            (Mechanism::B, None | Some("B")) => Part::B,
            (Mechanism::AB, Some("A")) => Part::A,
            (Mechanism::AB, Some("B")) => Part::B,
            (Mechanism::AB, _) => {
                self.push(
                    &ckey,
                    "a component of an A+B measure needs part = \"A\" or \"B\"".into(),
                );
                Part::A
            }
            (Mechanism::Vmm, _) => {
                self.push(
                    &ckey,
                    "a VMM measure lists no components (its inputs are `score` or sub-question \
                     scores)"
                        .into(),
                );
                Part::A
            }
            (_, Some(other)) => {
                self.push(
                    &ckey,
                    format!("part {other:?} does not match the measure's mechanism"),
                );
                Part::A
            }
        };
        if let Some(f) = &c.from
            && !streaming.is_empty()
            && !streaming.contains(f)
        {
            self.push(
                &ckey,
                format!("comes from unknown streaming measure {f:?} (not in measures.toml)"),
            );
        }
        Component {
            id: c.id,
            part,
            scored: c.scored,
            from: c.from,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn regulatory_years() {
        let y = RegYear::parse("RY23/24").unwrap();
        assert_eq!(y.start, 2023);
        assert_eq!(y.to_string(), "RY23/24");
        let m = y.months();
        assert_eq!((m[0].as_str(), m[11].as_str()), ("2023-04", "2024-03"));
        assert_eq!(RegYear::of_month("2024-03"), Some(y));
        assert_eq!(RegYear::of_month("2024-04").unwrap().to_string(), "RY24/25");
        assert!(RegYear::parse("RY23/25").is_none());
        assert!(RegYear::parse("2023").is_none());
    }

    #[test]
    fn linear_curve_between_mpl_and_tpl() {
        let c = Curve {
            points: vec![(Decimal::ZERO, Decimal::ZERO), (Decimal::ONE, Decimal::ONE)],
        };
        let d = |s: &str| s.parse::<Decimal>().unwrap();
        // DOMAIN.md: SUM1 at 99.00 with TPL 99.50 and MPL 98.00 keeps 2/3.
        let share = c.share(d("99.00"), d("99.50"), d("98.00"));
        assert_eq!(share.round_dp(10), d("0.6666666667"));
        assert_eq!(c.share(d("99.5"), d("99.5"), d("98")), Decimal::ONE);
        assert_eq!(c.share(d("98"), d("99.5"), d("98")), Decimal::ZERO);
        assert_eq!(c.share(d("50"), d("99.5"), d("98")), Decimal::ZERO);
    }

    #[test]
    fn bad_schemes_are_refused_with_every_reason() {
        let text = r#"
year = "RY23/24"
title = "t"
margin_at_risk = "-1"
[curve]
points = [["0", "0"], ["0.5", "0.9"], ["0.4", "1"], ["1", "1"]]
[[measure]]
id = "X"
name = "x"
weight = "1/2"
mechanism = "A"
tpl = "96"
mpl = "99"
  [[measure.component]]
  id = "c"
  from = "NOPE"
[[measure]]
id = "Y"
name = "y"
weight = "1/3"
mechanism = "A+B"
tpl = "99"
mpl = "96"
  [[measure.component]]
  id = "a"
  part = "A"
"#;
        let errs = parse("s.toml", text, &["PM4.3".to_string()])
            .unwrap_err()
            .join("\n");
        for needle in [
            "margin_at_risk: must be positive",
            "curve.points",
            "TPL (96) must be above MPL (99)",
            "unknown streaming measure \"NOPE\"",
            "needs a scored component in part B",
            "weights add up to 5/6, not 100 %",
        ] {
            assert!(errs.contains(needle), "missing {needle:?} in:\n{errs}");
        }
    }
}
