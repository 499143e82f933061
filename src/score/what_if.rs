//! What-ifs (`score --what-if SDM1.FIRST-TIME-WAN.north=97.0`): a component's annual RPL, or a
//! VMM score, replaced before scoring, to see how the money moves.

use rust_decimal::Decimal;

use super::scheme::{Mechanism, Scheme};
use crate::engine::domain::Region;

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
    pub fn parse(text: &str, scheme: &Scheme) -> Result<Override, super::problems::ScoreError> {
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
                    Some(r) if Region::NAMES.contains(&r) => Some(r.to_string()),
                    _ => continue,
                },
            };
            // An RPL is a percentage; a VMM score is out of 3. Anything else would score money
            // that cannot exist ("North = 317.50 %").
            let (hi, what) = if m.mechanism == Mechanism::Vmm {
                (Decimal::from(3), "a VMM score is between 0 and 3")
            } else {
                (
                    Decimal::ONE_HUNDRED,
                    "an RPL is a percentage between 0 and 100",
                )
            };
            if value < Decimal::ZERO || value > hi {
                return Err(format!("what-if {text:?}: {what}, not {value}"));
            }
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

#[cfg(test)]
mod tests {
    use super::*;

    fn ry2324() -> Scheme {
        crate::score::scheme::parse(
            "RY23-24",
            include_str!("../../config/opr/RY23-24.toml"),
            &[],
        )
        .unwrap()
    }

    #[test]
    fn an_rpl_is_a_percentage_and_a_vmm_score_is_out_of_three() {
        let s = ry2324();
        let ok = Override::parse("SDM1.FIRST-TIME-WAN.north=97.0", &s).unwrap();
        assert_eq!(ok.value, Decimal::new(970, 1));
        for bad in [
            "SDM1.FIRST-TIME-WAN.north=970",
            "SDM1.FIRST-TIME-WAN.north=-1",
            "SDM1.FIRST-TIME-WAN.north=100.0001",
        ] {
            let e = Override::parse(bad, &s).unwrap_err().to_string();
            assert!(e.contains("between 0 and 100"), "{bad}: {e}");
        }
        let vmm = s
            .measures
            .iter()
            .find(|m| m.mechanism == Mechanism::Vmm)
            .map(|m| m.id.clone())
            .unwrap();
        assert!(Override::parse(&format!("{vmm}.score=2.5"), &s).is_ok());
        let e = Override::parse(&format!("{vmm}.score=4"), &s)
            .unwrap_err()
            .to_string();
        assert!(e.contains("between 0 and 3"), "{e}");
    }
}
