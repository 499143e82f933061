//! The OPR computation, SPEC §7 steps 1–5, exact (`rust_decimal`) at every step and keeping every
//! intermediate figure, so a pound can be followed from RPL to margin. No rounding here: that
//! happens once, for display, in `render`.

use std::collections::BTreeMap;

use rust_decimal::Decimal;
use serde::Serialize;

use super::inputs::{InputRow, Period};
use super::ratio::Ratio;
use super::scheme::{Combine, Mechanism, Part, Scheme, SchemeMeasure};
pub use super::what_if::Override;
use crate::engine::domain::Region;

/// The three CSP regions, in report order.
pub(crate) const REGIONS: [&str; 3] = Region::NAMES;

fn hundred() -> Decimal {
    Decimal::ONE_HUNDRED
}

fn three() -> Decimal {
    Decimal::from(3)
}

/// A component's annual figure, with how it was reached.
#[derive(Clone, Debug, Serialize)]
pub struct ComponentScore {
    /// Component id.
    pub component: String,
    /// Region, for regional components.
    pub region: Option<String>,
    /// Counts towards the measure's RPL.
    pub scored: bool,
    /// The monthly values used (empty when an annual row was given).
    pub months: BTreeMap<String, Decimal>,
    /// Months of the year without a value (a warning when some are present).
    pub missing_months: Vec<String>,
    /// Σ numerators and Σ denominators, when every row had counts.
    pub counts: Option<(Decimal, Decimal)>,
    /// How the annual figure was made: `annual row`, `mean of N months`, `pooled`, `what-if`.
    pub method: String,
    /// The annual RPL (percent), if there was any input.
    pub annual: Option<Decimal>,
}

/// One scored part of a measure: the non-regional RPL (mechanism A) or one region (B).
#[derive(Clone, Debug, Serialize)]
pub struct PartScore {
    /// `non-regional` or the region.
    pub scope: String,
    /// The RPL: mean of its scored components' annual RPLs.
    pub rpl: Decimal,
    /// Kept share (0–1) from the curve.
    pub share: Decimal,
    /// £m allocated to it.
    pub allocation: Decimal,
    /// £m kept.
    pub kept: Decimal,
    /// £m lost.
    pub lost: Decimal,
}

/// A VMM measure's score.
#[derive(Clone, Debug, Serialize)]
pub struct VmmScore {
    /// The score out of 3 (a mean when sub-question scores were given).
    pub score: Decimal,
    /// The sub-question scores used, if any.
    pub sub_questions: BTreeMap<String, Decimal>,
}

/// One measure's result.
#[derive(Clone, Debug, Serialize)]
pub struct MeasureScore {
    /// Scheme id.
    pub measure: String,
    /// Name.
    pub name: String,
    /// Weight as a fraction (`7/30`).
    pub weight: String,
    /// Weight as a decimal.
    pub weight_decimal: Decimal,
    /// Mechanism.
    pub mechanism: Mechanism,
    /// TPL, MPL.
    pub tpl: Option<Decimal>,
    /// MPL.
    pub mpl: Option<Decimal>,
    /// Whether it was assessed (false: a zero-weighted measure without inputs, `n/a`).
    pub assessed: bool,
    /// £m: margin × weight.
    pub allocation: Decimal,
    /// £m kept.
    pub kept: Decimal,
    /// £m lost.
    pub lost: Decimal,
    /// kept / allocation (0–1), when there is an allocation.
    pub retained_share: Option<Decimal>,
    /// Scored parts.
    pub parts: Vec<PartScore>,
    /// Components and how their annual figures were made.
    pub components: Vec<ComponentScore>,
    /// VMM score.
    pub vmm: Option<VmmScore>,
}

/// The year's score.
#[derive(Clone, Debug, Serialize)]
pub struct Report {
    /// `RY23/24`.
    pub year: String,
    /// £m at risk.
    pub margin_at_risk: Decimal,
    /// Measures in scheme order.
    pub measures: Vec<MeasureScore>,
    /// £m kept in all (exact sum).
    pub total_kept: Decimal,
    /// £m lost in all (exact sum).
    pub total_lost: Decimal,
    /// Warnings (missing months, what-ifs applied).
    pub warnings: Vec<String>,
}

type Key = (String, String, Option<String>); // measure, component, region

/// Scores `rows` under `scheme` with `margin` £m at risk, applying `overrides`. Every input
/// problem is reported, each naming its row.
pub fn score(
    scheme: &Scheme,
    rows: &[InputRow],
    margin: Decimal,
    overrides: &[Override],
) -> Result<Report, super::problems::Problems> {
    score_problems(scheme, rows, margin, overrides).map_err(super::Problems::new)
}

/// [`score`], its problems as a list.
fn score_problems(
    scheme: &Scheme,
    rows: &[InputRow],
    margin: Decimal,
    overrides: &[Override],
) -> Result<Report, Vec<String>> {
    let mut problems = Vec::new();
    let mut warnings = Vec::new();
    let months = scheme.year.months();

    // Validate rows and group them by (measure, component, region).
    let mut groups: BTreeMap<Key, Vec<&InputRow>> = BTreeMap::new();
    let mut seen: BTreeMap<(Key, Period), &str> = BTreeMap::new();
    for r in rows {
        if let Err(e) = check_row(r, scheme, &months) {
            problems.push(e);
            continue;
        }
        let key = (r.measure.clone(), r.component.clone(), r.region.clone());
        // Both sources named: a component from events and from --inputs is the usual case.
        let at = (key.clone(), r.period.clone());
        if let Some(first) = seen.get(&at) {
            problems.push(format!(
                "{}: the same row twice ({},{},{},{}), first at {}",
                r.origin,
                r.measure,
                r.component,
                r.region.as_deref().unwrap_or(""),
                r.period,
                first
            ));
            continue;
        }
        seen.insert(at, r.origin.as_str());
        groups.entry(key).or_default().push(r);
    }
    mixed_periods(&groups, &mut problems);
    if !problems.is_empty() {
        return Err(problems);
    }

    let mut measures = Vec::new();
    for m in &scheme.measures {
        match measure_score(
            m,
            scheme,
            &groups,
            &months,
            margin,
            overrides,
            &mut warnings,
        ) {
            Ok(s) => measures.push(s),
            Err(mut e) => problems.append(&mut e),
        }
    }
    if !problems.is_empty() {
        return Err(problems);
    }
    let total_kept = measures.iter().map(|m| m.kept).sum();
    let total_lost = measures.iter().map(|m| m.lost).sum();
    Ok(Report {
        year: scheme.year.to_string(),
        margin_at_risk: margin,
        measures,
        total_kept,
        total_lost,
        warnings,
    })
}

/// A row's problem, if it has one: a measure or component the scheme lacks, a region where
/// none belongs (or none where one does), a value out of range, a period outside the year.
fn check_row(r: &InputRow, scheme: &Scheme, months: &[String]) -> Result<(), String> {
    let Some(m) = scheme.measure(&r.measure) else {
        return Err(format!(
            "{}: no measure {:?} in the {} scheme",
            r.origin, r.measure, scheme.year
        ));
    };
    let (regional, vmm) = match m.mechanism {
        Mechanism::Vmm => (false, true),
        _ => match m.component(&r.component) {
            Some(c) => (c.regional(), false),
            None => {
                let known: Vec<&str> = m.components.iter().map(|c| c.id.as_str()).collect();
                return Err(format!(
                    "{}: {} has no component {:?} (known: {})",
                    r.origin,
                    r.measure,
                    r.component,
                    known.join(", ")
                ));
            }
        },
    };
    if regional != r.region.is_some() {
        return Err(format!(
            "{}: {}.{} {}",
            r.origin,
            r.measure,
            r.component,
            if regional {
                "is regional: give north, central or south"
            } else {
                "is not regional: leave the region empty"
            }
        ));
    }
    let (lo, hi) = if vmm {
        (Decimal::ZERO, three())
    } else {
        (Decimal::ZERO, hundred())
    };
    if r.value < lo || r.value > hi {
        return Err(format!(
            "{}: value {} is outside {lo}–{hi}",
            r.origin, r.value
        ));
    }
    match &r.period {
        Period::Year(y) if *y != scheme.year => {
            return Err(format!(
                "{}: period {y} is not the scheme's year {}",
                r.origin, scheme.year
            ));
        }
        Period::Month(mo) if !months.contains(mo) => {
            return Err(format!(
                "{}: month {mo} is outside {}",
                r.origin, scheme.year
            ));
        }
        Period::Month(_) if vmm => {
            return Err(format!(
                "{}: a VMM score is annual: use period {}",
                r.origin, scheme.year
            ));
        }
        _ => {}
    }
    Ok(())
}

/// Components given both annual and monthly rows.
fn mixed_periods(groups: &BTreeMap<Key, Vec<&InputRow>>, problems: &mut Vec<String>) {
    for (key, rs) in groups {
        let annual = rs.iter().any(|r| matches!(r.period, Period::Year(_)));
        let monthly = rs.iter().any(|r| matches!(r.period, Period::Month(_)));
        if annual && monthly {
            problems.push(format!(
                "{}: {} {} has both annual and monthly rows (first at {})",
                rs.last().map_or("", |r| r.origin.as_str()),
                key.0,
                key.1,
                rs[0].origin
            ));
        }
    }
}

fn mean(values: impl IntoIterator<Item = Decimal>) -> Option<Decimal> {
    let v: Vec<Decimal> = values.into_iter().collect();
    (!v.is_empty()).then(|| v.iter().sum::<Decimal>() / Decimal::from(v.len()))
}

/// Step 1: a component's annual RPL.
#[allow(clippy::too_many_arguments)]
fn component_score(
    m: &SchemeMeasure,
    cid: &str,
    scored: bool,
    region: Option<&str>,
    groups: &BTreeMap<Key, Vec<&InputRow>>,
    months: &[String],
    overrides: &[Override],
    warnings: &mut Vec<String>,
) -> Result<ComponentScore, String> {
    let key = (m.id.clone(), cid.to_string(), region.map(str::to_string));
    let rows = groups.get(&key).map(Vec::as_slice).unwrap_or(&[]);
    let mut cs = ComponentScore {
        component: cid.to_string(),
        region: region.map(str::to_string),
        scored,
        months: BTreeMap::new(),
        missing_months: Vec::new(),
        counts: None,
        method: String::new(),
        annual: None,
    };
    let all_counts = !rows.is_empty() && rows.iter().all(|r| r.counts.is_some());
    if all_counts {
        let (n, d) = rows
            .iter()
            .filter_map(|r| r.counts)
            .fold((Decimal::ZERO, Decimal::ZERO), |a, c| {
                (a.0 + c.0, a.1 + c.1)
            });
        cs.counts = Some((n, d));
    }
    if let [r] = rows
        && matches!(r.period, Period::Year(_))
    {
        cs.annual = Some(r.value);
        cs.method = "annual row".into();
    } else if !rows.is_empty() {
        for r in rows {
            if let Period::Month(mo) = &r.period {
                cs.months.insert(mo.clone(), r.value);
            }
        }
        cs.missing_months = months
            .iter()
            .filter(|mo| !cs.months.contains_key(*mo))
            .cloned()
            .collect();
        if !cs.missing_months.is_empty() {
            warnings.push(format!(
                "{} {}{}: scored from {} month(s); missing {}",
                m.id,
                cid,
                region.map(|r| format!(" {r}")).unwrap_or_default(),
                cs.months.len(),
                cs.missing_months.join(", ")
            ));
        }
        match m.combine {
            Combine::Mean => {
                cs.annual = mean(cs.months.values().copied());
                cs.method = format!("mean of {} month(s)", cs.months.len());
            }
            Combine::Pooled => match cs.counts {
                Some((n, d)) => {
                    cs.annual = Some(hundred() * n / d);
                    cs.method = "pooled: 100 × Σ numerators / Σ denominators".into();
                }
                None => {
                    return Err(format!(
                        "{} combines by pooling: every row of {}{} needs numerator and denominator",
                        m.id,
                        cid,
                        region.map(|r| format!(" {r}")).unwrap_or_default()
                    ));
                }
            },
        }
    }
    if let Some(o) = overrides
        .iter()
        .find(|o| o.measure == m.id && o.component == cid && o.region.as_deref() == region)
    {
        warnings.push(format!(
            "what-if: {} {}{} set to {} (was {})",
            m.id,
            cid,
            region.map(|r| format!(" {r}")).unwrap_or_default(),
            o.value,
            cs.annual.map_or("none".into(), |a| a.to_string())
        ));
        cs.annual = Some(o.value);
        cs.method = "what-if".into();
    }
    Ok(cs)
}

#[allow(clippy::too_many_arguments)]
fn measure_score(
    m: &SchemeMeasure,
    scheme: &Scheme,
    groups: &BTreeMap<Key, Vec<&InputRow>>,
    months: &[String],
    margin: Decimal,
    overrides: &[Override],
    warnings: &mut Vec<String>,
) -> Result<MeasureScore, Vec<String>> {
    let allocation = m.weight.of(margin);
    let mut out = MeasureScore {
        measure: m.id.clone(),
        name: m.name.clone(),
        weight: m.weight.to_string(),
        weight_decimal: m.weight.to_decimal(),
        mechanism: m.mechanism,
        tpl: m.tpl,
        mpl: m.mpl,
        assessed: true,
        allocation,
        kept: Decimal::ZERO,
        lost: Decimal::ZERO,
        retained_share: None,
        parts: Vec::new(),
        components: Vec::new(),
        vmm: None,
    };
    let weighted = !m.weight.is_zero();

    if m.mechanism == Mechanism::Vmm {
        return vmm_score(m, groups, overrides, warnings, out);
    }
    let (tpl, mpl) = match (m.tpl, m.mpl) {
        (Some(t), Some(mi)) => (t, mi),
        _ => return Err(vec![format!("{}: no TPL/MPL", m.id)]),
    };
    out.components = component_scores(m, groups, months, overrides, warnings)?;
    // Step 2: the RPL of each part, the mean of its scored components.
    let rpl_of = |part: Part, region: Option<&str>| {
        mean(
            out.components
                .iter()
                .filter(|cs| cs.scored && cs.region.as_deref() == region)
                .filter(|cs| m.component(&cs.component).is_some_and(|c| c.part == part))
                .filter_map(|cs| cs.annual),
        )
    };
    let n_a = m
        .components
        .iter()
        .filter(|c| c.scored && c.part == Part::A)
        .count();
    let n_b = m
        .components
        .iter()
        .filter(|c| c.scored && c.part == Part::B)
        .count();
    // Step 4: the allocation of each part (A+B shares it by component counts).
    let (alloc_a, alloc_b) = match m.mechanism {
        Mechanism::A => (allocation, Decimal::ZERO),
        Mechanism::B => (Decimal::ZERO, allocation),
        _ => {
            let share_a = Ratio::new(n_a as i128, (n_a + n_b) as i128).unwrap_or(Ratio::ZERO);
            let a = share_a.of(allocation);
            (a, allocation - a)
        }
    };
    let mut scopes: Vec<(String, Option<Decimal>, Decimal)> = Vec::new();
    if matches!(m.mechanism, Mechanism::A | Mechanism::AB) {
        scopes.push(("non-regional".into(), rpl_of(Part::A, None), alloc_a));
    }
    if matches!(m.mechanism, Mechanism::B | Mechanism::AB) {
        // Thirds, the last taking what the first two leave: the parts add back up to the
        // allocation exactly, so a full score keeps all of it and a nil one none (not ±1e-28).
        let third = alloc_b / three();
        for (i, r) in REGIONS.iter().enumerate() {
            let alloc = if i + 1 == REGIONS.len() {
                alloc_b - third - third
            } else {
                third
            };
            scopes.push(((*r).into(), rpl_of(Part::B, Some(r)), alloc));
        }
    }
    // Zero-weighted measures without every input are reported as not assessed.
    if !weighted && scopes.iter().any(|(_, rpl, _)| rpl.is_none()) {
        out.assessed = false;
        return Ok(out);
    }
    for (scope, rpl, alloc) in scopes {
        let Some(rpl) = rpl else {
            return Err(vec![format!("{}: no scored input for {scope}", m.id)]);
        };
        // Step 3: the kept share; step 4: kept money; step 5: lost.
        let share = scheme.curve.share(rpl, tpl, mpl);
        let kept = alloc * share;
        out.parts.push(PartScore {
            scope,
            rpl,
            share,
            allocation: alloc,
            kept,
            lost: alloc - kept,
        });
    }
    // The parts' allocations add up to the allocation exactly, so these two do too.
    out.kept = out.parts.iter().map(|p| p.kept).sum();
    out.lost = out.parts.iter().map(|p| p.lost).sum();
    out.retained_share = weighted.then(|| out.kept / allocation);
    Ok(out)
}

/// A VMM measure: a score out of 3 (given, or the mean of its sub-question scores), kept in
/// proportion.
fn vmm_score(
    m: &SchemeMeasure,
    groups: &BTreeMap<Key, Vec<&InputRow>>,
    overrides: &[Override],
    warnings: &mut Vec<String>,
    mut out: MeasureScore,
) -> Result<MeasureScore, Vec<String>> {
    let (allocation, weighted) = (out.allocation, !m.weight.is_zero());
    let rows: Vec<&InputRow> = groups
        .iter()
        .filter(|(k, _)| k.0 == m.id)
        .flat_map(|(_, v)| v.iter().copied())
        .collect();
    let direct = rows.iter().find(|r| r.component == "score");
    let subs: BTreeMap<String, Decimal> = rows
        .iter()
        .filter(|r| r.component != "score")
        .map(|r| (r.component.clone(), r.value))
        .collect();
    let mut score = match (direct, subs.is_empty()) {
        (Some(r), true) => Some(r.value),
        (None, false) => mean(subs.values().copied()),
        (Some(r), false) => {
            return Err(vec![format!(
                "{}: {} is given both as `score` and as sub-question scores",
                r.origin, m.id
            )]);
        }
        (None, true) => None,
    };
    if let Some(o) = overrides.iter().find(|o| o.measure == m.id) {
        warnings.push(format!(
            "what-if: {} score set to {} (was {})",
            m.id,
            o.value,
            score.map_or("none".into(), |s| s.to_string())
        ));
        score = Some(o.value);
    }
    match score {
        Some(s) => {
            // A full score (3) keeps exactly all, a nil one exactly nothing (not ±1e-28 from
            // a third that is not exact in 28 digits).
            out.kept = if s >= three() {
                allocation
            } else if s <= Decimal::ZERO {
                Decimal::ZERO
            } else {
                allocation * s / three()
            };
            out.vmm = Some(VmmScore {
                score: s,
                sub_questions: subs,
            });
        }
        None if weighted => {
            return Err(vec![format!(
                "no input for {} ({}): give `score` or sub-question scores",
                m.id, m.name
            )]);
        }
        None => out.assessed = false,
    }
    out.lost = allocation - out.kept;
    out.retained_share = weighted.then(|| out.kept / allocation);
    Ok(out)
}

/// Step 1 for every component (and region) of a measure; a weighted measure's scored
/// components must all have inputs.
fn component_scores(
    m: &SchemeMeasure,
    groups: &BTreeMap<Key, Vec<&InputRow>>,
    months: &[String],
    overrides: &[Override],
    warnings: &mut Vec<String>,
) -> Result<Vec<ComponentScore>, Vec<String>> {
    let weighted = !m.weight.is_zero();
    let mut problems = Vec::new();
    let mut out = Vec::new();
    // Step 1 for every component (and region).
    for c in &m.components {
        let regions: Vec<Option<&str>> = if c.regional() {
            REGIONS.iter().map(|r| Some(*r)).collect()
        } else {
            vec![None]
        };
        for region in regions {
            match component_score(
                m, &c.id, c.scored, region, groups, months, overrides, warnings,
            ) {
                Ok(cs) => {
                    if cs.annual.is_none() && c.scored && weighted {
                        problems.push(format!(
                            "no input for {} {}{} ({})",
                            m.id,
                            c.id,
                            region.map(|r| format!(" {r}")).unwrap_or_default(),
                            m.name
                        ));
                    }
                    out.push(cs);
                }
                Err(e) => problems.push(e),
            }
        }
    }
    if problems.is_empty() {
        Ok(out)
    } else {
        Err(problems)
    }
}

#[cfg(test)]
mod properties {
    use super::*;
    use crate::score::scheme;
    use proptest::prelude::*;

    fn ry2324() -> Scheme {
        scheme::parse(
            "RY23-24",
            include_str!("../../config/opr/RY23-24.toml"),
            &[],
        )
        .unwrap()
    }

    /// Annual rows for every scored component of RY23/24, values from `v` (percent in hundredths,
    /// 90.00–100.00) and VMM scores from `s` (0–3 in hundredths).
    fn rows(scheme: &Scheme, v: &[u32], s: &[u32]) -> Vec<InputRow> {
        let mut out = Vec::new();
        let mut i = 0;
        let mut row = |m: &str, c: &str, region: Option<&str>, value: Decimal| {
            out.push(InputRow {
                origin: format!("p:{}", out.len()),
                measure: m.into(),
                component: c.into(),
                region: region.map(str::to_string),
                period: Period::Year(scheme.year),
                value,
                counts: None,
            });
        };
        for m in &scheme.measures {
            if m.mechanism == Mechanism::Vmm {
                let k = if m.id == "VMM1" { 0 } else { 1 };
                row(&m.id, "score", None, Decimal::new(s[k] as i64, 2));
                continue;
            }
            for c in m.components.iter().filter(|c| c.scored) {
                let regions: Vec<Option<&str>> = if c.regional() {
                    REGIONS.iter().map(|r| Some(*r)).collect()
                } else {
                    vec![None]
                };
                for r in regions {
                    row(
                        &m.id,
                        &c.id,
                        r,
                        Decimal::new(9000 + v[i % v.len()] as i64, 2),
                    );
                    i += 1;
                }
            }
        }
        out
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(300))]

        #[test]
        fn retained_money_is_bounded_and_monotone(
            v in proptest::collection::vec(0u32..=1000, 20),
            s in proptest::collection::vec(0u32..=300, 2),
            bump_at in 0usize..20,
            bump in 1u32..300,
            margin_pennies in 1i64..2_000_000,
        ) {
            let scheme = ry2324();
            let margin = Decimal::new(margin_pennies, 3);
            let base = score(&scheme, &rows(&scheme, &v, &s), margin, &[]).unwrap();
            for m in &base.measures {
                prop_assert!(m.kept >= Decimal::ZERO, "{} kept {}", m.measure, m.kept);
                prop_assert!(m.kept <= m.allocation, "{} kept {} of {}", m.measure, m.kept, m.allocation);
                prop_assert!(m.lost >= Decimal::ZERO);
                for p in &m.parts {
                    prop_assert!(p.kept >= Decimal::ZERO && p.kept <= p.allocation);
                }
            }
            prop_assert!(base.total_kept <= margin && base.total_kept >= Decimal::ZERO);
            // Raise one RPL (capped at 100): no measure keeps less.
            let mut v2 = v.clone();
            v2[bump_at] = (v2[bump_at] + bump).min(1000);
            let raised = score(&scheme, &rows(&scheme, &v2, &s), margin, &[]).unwrap();
            for (a, b) in base.measures.iter().zip(&raised.measures) {
                prop_assert!(b.kept >= a.kept, "{}: {} → {}", a.measure, a.kept, b.kept);
            }
            prop_assert!(raised.total_kept >= base.total_kept);
        }
    }
}
