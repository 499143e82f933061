//! What-ifs (`score --what-if SDM1.FIRST-TIME-WAN.north=97.0`): a component's annual RPL, or a
//! VMM score, replaced before scoring, to see how the money moves.

use rust_decimal::Decimal;

use super::model::REGIONS;
use super::scheme::{Mechanism, Scheme};

/// A what-if: replace a component's annual RPL (or a VMM score).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Override {
    /// Scheme measure id.
    pub measure: String,
    /// Component id (`score` for VMM).
    pub component: String,
    /// Region for regional components.
    pub region: Option<String>,
    /// The annual value to use.
    pub value: Decimal,
}

impl Override {
    /// Parses `SDM1.FIRST-TIME-WAN.north=97.0` against the scheme (component ids may contain dots).
    pub fn parse(text: &str, scheme: &Scheme) -> Result<Override, super::ScoreError> {
        Override::parse_text(text, scheme).map_err(super::ScoreError::WhatIf)
    }

    /// [`Override::parse`], its problem as text.
    fn parse_text(text: &str, scheme: &Scheme) -> Result<Override, String> {
        let (lhs, value) = text.split_once('=').ok_or_else(|| {
            format!("what-if {text:?}: expected MEASURE.COMPONENT[.REGION]=VALUE")
        })?;
        let value: Decimal = value
            .trim()
            .parse()
            .map_err(|_| format!("what-if {text:?}: {value:?} is not a number"))?;
        let (mid, rest) = lhs.split_once('.').ok_or_else(|| {
            format!("what-if {text:?}: expected MEASURE.COMPONENT[.REGION]=VALUE")
        })?;
        let m = scheme
            .measure(mid)
            .ok_or_else(|| format!("what-if {text:?}: no measure {mid:?} in {}", scheme.year))?;
        let candidates: Vec<String> = if m.mechanism == Mechanism::Vmm {
            vec!["score".into()]
        } else {
            m.components.iter().map(|c| c.id.clone()).collect()
        };
        for cid in candidates {
            let Some(after) = rest.strip_prefix(cid.as_str()) else {
                continue;
            };
            let region = match after {
                "" => None,
                r => match r.strip_prefix('.') {
                    Some(r) if REGIONS.contains(&r) => Some(r.to_string()),
                    _ => continue,
                },
            };
            let regional = m.component(&cid).is_some_and(|c| c.regional());
            if regional != region.is_some() {
                return Err(format!(
                    "what-if {text:?}: {mid}.{cid} {}",
                    if regional {
                        "is regional: add .north, .central or .south"
                    } else {
                        "is not regional: no region"
                    }
                ));
            }
            return Ok(Override {
                measure: mid.into(),
                component: cid,
                region,
                value,
            });
        }
        Err(format!(
            "what-if {text:?}: {mid} has no component matching {rest:?}"
        ))
    }
}
