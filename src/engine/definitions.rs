//! The regulatory definitions as the core uses them: the measures, their TRTs and deadlines,
//! the acknowledgement and success codes, resolved into per-(SRV, provider) rules. Reading and
//! validating `measures.toml` is `config::measures`'s; this is what it produces.

use std::collections::{BTreeMap, BTreeSet};

use rust_decimal::Decimal;
use serde::Serialize;
use sha2::{Digest, Sha256};

use super::domain::{Basis, Provider, Timing};
use super::time::Dur;

/// One measure, validated.
#[derive(Debug, Clone, Serialize)]
pub struct Measure {
    /// Identifier used in every output (`PM4.3`).
    pub id: String,
    /// Human name.
    pub name: String,
    /// Hit = within TRT, or hit = succeeded.
    pub basis: Basis,
    /// On-demand requests, future-dated ones, or both. Left out of the canonical form (and so
    /// of the fingerprint) when it is its basis's default, so that stores written before it
    /// existed still match ([`Definitions::new`] adds it otherwise).
    #[serde(skip)]
    pub timing: Timing,
    /// Selected SRVs: the explicit list, or the members of `class`.
    pub srvs: BTreeSet<String>,
    /// The class the SRVs came from, if selected by class.
    pub class: Option<String>,
    /// Selected providers (all three when the file says none).
    pub providers: BTreeSet<Provider>,
    /// The measure's own TRT, overriding the table.
    pub trt: Option<Dur>,
    /// Until when a response counts at all.
    pub deadline: Dur,
    /// Scored per region (mechanism B) rather than pooled.
    pub regional: bool,
    /// Target Performance Level, percent.
    pub tpl: Option<Decimal>,
    /// Minimum Performance Level, percent.
    pub mpl: Option<Decimal>,
}

/// How a request counts in one measure: resolved once per (SRV, provider), not per event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MeasureRule {
    /// Index into [`Definitions::measures`].
    pub measure: u16,
    /// The TRT that applies to this SRV in this measure.
    pub trt: Dur,
    /// The measure's deadline.
    pub deadline: Dur,
    /// The measure's basis.
    pub basis: Basis,
}

/// The TRT table: by SRV, else by SRV class, else the default.
#[derive(Debug, Clone, Serialize)]
pub struct TrtTable {
    /// Per-SRV entries.
    pub by_srv: BTreeMap<String, Dur>,
    /// Per-class entries.
    pub by_class: BTreeMap<String, Dur>,
    /// The fallback.
    pub default: Dur,
}

/// A service interface whose availability is measured (SUM1), and which an exemption may be
/// scoped to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Interface {
    /// Its id (`DUIS`), as the score inputs and availability events name it.
    pub id: String,
    /// Its name for people.
    pub name: String,
}

/// The seed's five interfaces (§3.2), in its order, with the ids the score inputs use.
pub(crate) fn default_interfaces() -> Vec<Interface> {
    [
        ("DUIS", "DCC User Interface"),
        ("RDI", "Registration Data Interface"),
        ("SMKI-REPO", "SMKI Repository Interface"),
        ("SMKI-SERVICE", "SMKI Service Interfaces"),
        ("SSI", "Self-Service Interface"),
    ]
    .into_iter()
    .map(|(id, name)| Interface {
        id: id.into(),
        name: name.into(),
    })
    .collect()
}

/// Whether `v` is the default interfaces: they are then left out of the fingerprint, so stores
/// made before interfaces were configurable keep their identity.
fn are_default_interfaces(v: &[Interface]) -> bool {
    v == default_interfaces().as_slice()
}

/// All regulatory definitions, validated.
#[derive(Debug, Clone, Serialize)]
pub struct Definitions {
    /// Codes that acknowledge and never end a request (`I99`).
    pub ack_codes: Vec<String>,
    /// Codes that mean success (`I0`).
    pub success_codes: Vec<String>,
    /// SRV classes by name.
    pub classes: BTreeMap<String, BTreeSet<String>>,
    /// The TRT table.
    pub trt: TrtTable,
    /// Measures in file order (the order of every report).
    pub measures: Vec<Measure>,
    /// The time zone of months, part of the fingerprint because it moves every count.
    pub zone: String,
    /// The interfaces whose availability is measured, in report order.
    #[serde(skip_serializing_if = "are_default_interfaces")]
    pub interfaces: Vec<Interface>,
    /// The longest deadline of any measure.
    #[serde(skip)]
    pub longest_deadline: Dur,
    /// SHA-256 (hex) of these definitions in canonical form.
    #[serde(skip)]
    pub sha256: String,
    /// Class of each SRV that has a class TRT (validated to be unambiguous).
    #[serde(skip)]
    class_trt_of_srv: BTreeMap<String, Dur>,
    /// Upper bounds (ms) of the live response-time histogram: every configured TRT and
    /// deadline, among a fixed ladder from 1 s to 1 day, so each TRT is a bucket edge.
    #[serde(skip)]
    pub rt_bounds_ms: Vec<u64>,
}

/// The fixed part of the response-time buckets (ms); the configured TRTs and deadlines join it.
const RT_LADDER_MS: [u64; 12] = [
    1_000, 2_000, 5_000, 10_000, 20_000, 60_000, 120_000, 300_000, 900_000, 3_600_000, 21_600_000,
    86_400_000,
];

impl Definitions {
    /// Definitions from their validated parts (`config::measures` validates them): derives the
    /// longest deadline, the response-time histogram's bounds and the fingerprint.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn new(
        ack_codes: Vec<String>,
        success_codes: Vec<String>,
        classes: BTreeMap<String, BTreeSet<String>>,
        table: TrtTable,
        measures: Vec<Measure>,
        zone: &str,
        class_trt_of_srv: BTreeMap<String, Dur>,
        interfaces: Vec<Interface>,
    ) -> Definitions {
        let longest_deadline = measures
            .iter()
            .map(|m| m.deadline)
            .max()
            .unwrap_or(Dur::ZERO);
        let mut defs = Definitions {
            ack_codes,
            success_codes,
            classes,
            trt: table,
            measures,
            zone: zone.to_string(),
            interfaces,
            longest_deadline,
            sha256: String::new(),
            class_trt_of_srv,
            rt_bounds_ms: Vec::new(),
        };
        let mut bounds: BTreeSet<u64> = RT_LADDER_MS.into_iter().collect();
        let ms = |d: Dur| d.as_millis_floor().max(1) as u64;
        bounds.insert(ms(defs.trt.default));
        bounds.extend(defs.trt.by_srv.values().map(|d| ms(*d)));
        bounds.extend(defs.trt.by_class.values().map(|d| ms(*d)));
        for m in &defs.measures {
            bounds.extend(m.trt.map(ms));
            bounds.insert(ms(m.deadline));
        }
        defs.rt_bounds_ms = bounds.into_iter().collect();
        // The fingerprint is over the canonical JSON of what was understood, not the file's bytes,
        // so comments and formatting do not count as a change of definitions.
        let mut canonical = serde_json::to_vec(&defs).unwrap_or_default();
        for m in defs
            .measures
            .iter()
            .filter(|m| m.timing != Timing::default_for(m.basis))
        {
            canonical.extend(format!("\nmeasure {:?} timing {}", m.id, m.timing.as_str()).bytes());
        }
        defs.sha256 = Sha256::digest(&canonical)
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        defs
    }

    /// TRT of `srv` from the table alone.
    pub(crate) fn table_trt(&self, srv: &str) -> Dur {
        if let Some(d) = self.trt.by_srv.get(srv) {
            return *d;
        }
        if let Some(d) = self.class_trt_of_srv.get(srv) {
            return *d;
        }
        self.trt.default
    }

    /// The measures a request of `srv` via `provider`, future-dated or not, counts in, with
    /// their TRTs.
    pub fn rules_for(&self, srv: &str, provider: Provider, future_dated: bool) -> Vec<MeasureRule> {
        self.measures
            .iter()
            .enumerate()
            .filter(|(_, m)| {
                m.providers.contains(&provider)
                    && m.srvs.contains(srv)
                    && m.timing.takes(future_dated)
            })
            .map(|(i, m)| MeasureRule {
                measure: i as u16,
                trt: m.trt.unwrap_or_else(|| self.table_trt(srv)),
                deadline: m.deadline,
                basis: m.basis,
            })
            .collect()
    }

    /// Index of an interface by id.
    pub(crate) fn interface_index(&self, id: &str) -> Option<usize> {
        self.interfaces.iter().position(|i| i.id == id)
    }

    /// Index of a measure by id.
    pub(crate) fn measure_index(&self, id: &str) -> Option<usize> {
        self.measures.iter().position(|m| m.id == id)
    }

    /// The measures' ids, in definition order.
    pub(crate) fn measure_ids(&self) -> Vec<&str> {
        self.measures.iter().map(|m| m.id.as_str()).collect()
    }

    /// Is `code` an acknowledgement?
    pub(crate) fn is_ack(&self, code: &str) -> bool {
        self.ack_codes.iter().any(|c| c == code)
    }

    /// Is `code` a success?
    pub(crate) fn is_success(&self, code: &str) -> bool {
        self.success_codes.iter().any(|c| c == code)
    }
}

#[cfg(test)]
impl Definitions {
    /// SRV 8.11 counted by one TRT measure (TRT 30 s, deadline 24 h, per region), acknowledged
    /// with `I99` and succeeded with `I0`: enough for the core's own tests, which need no
    /// configuration file.
    pub(crate) fn for_tests() -> Definitions {
        let measure = Measure {
            id: "SRV8.11".into(),
            name: "Update HAN Device Log (SRV 8.11)".into(),
            basis: Basis::Trt,
            timing: Timing::OnDemand,
            srvs: BTreeSet::from(["8.11".to_string()]),
            class: None,
            providers: Provider::ALL.into_iter().collect(),
            trt: Some(Dur::from_secs(30)),
            deadline: Dur::from_secs(86_400),
            regional: true,
            tpl: Some(Decimal::from(99)),
            mpl: Some(Decimal::from(96)),
        };
        let table = TrtTable {
            by_srv: BTreeMap::new(),
            by_class: BTreeMap::new(),
            default: Dur::from_secs(30),
        };
        Definitions::new(
            vec!["I99".into()],
            vec!["I0".into()],
            BTreeMap::new(),
            table,
            vec![measure],
            "Europe/London",
            BTreeMap::new(),
            default_interfaces(),
        )
    }
}
