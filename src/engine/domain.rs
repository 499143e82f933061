//! The domain's own vocabulary: the three CSP regions, the providers that carry requests, and
//! what a measure counts as a hit. Every layer speaks these; they depend on nothing.

use std::fmt;

use serde::Serialize;

/// CSP region of the target device.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Region {
    /// Arqiva.
    North = 0,
    /// Telefónica / VMO2.
    Central = 1,
    /// Telefónica / VMO2.
    South = 2,
}

/// The pooled row of a measure's three regions, as every output names it.
pub const POOLED: &str = "all";

impl Region {
    /// The three regions, in report order.
    pub const ALL: [Region; 3] = [Region::North, Region::Central, Region::South];

    /// Their wire names, in report order.
    pub(crate) const NAMES: [&'static str; 3] = [
        Region::North.as_str(),
        Region::Central.as_str(),
        Region::South.as_str(),
    ];

    /// The labels of a measure's rows (`rpl.csv`, metrics, alerts): the three regions, then
    /// the pooled [`POOLED`].
    pub(crate) const LABELS: [&'static str; 4] = [
        Region::North.as_str(),
        Region::Central.as_str(),
        Region::South.as_str(),
        POOLED,
    ];

    /// The wire name (`north`).
    pub const fn as_str(self) -> &'static str {
        match self {
            Region::North => "north",
            Region::Central => "central",
            Region::South => "south",
        }
    }

    /// From the wire name; exact and lower case.
    pub fn parse(s: &str) -> Option<Region> {
        match s {
            "north" => Some(Region::North),
            "central" => Some(Region::Central),
            "south" => Some(Region::South),
            _ => None,
        }
    }

    /// From the index `self as usize`.
    pub fn from_index(i: usize) -> Region {
        Region::ALL[i.min(2)]
    }
}

/// Who carried the request.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Provider {
    /// SMETS2 via the DSP.
    Dsp = 0,
    /// SMETS1 via an S1 service provider.
    S1sp = 1,
    /// CSP test traffic.
    Csp = 2,
}

impl Provider {
    /// All providers.
    pub const ALL: [Provider; 3] = [Provider::Dsp, Provider::S1sp, Provider::Csp];

    /// The wire name (`dsp`).
    pub fn as_str(self) -> &'static str {
        match self {
            Provider::Dsp => "dsp",
            Provider::S1sp => "s1sp",
            Provider::Csp => "csp",
        }
    }

    /// From the wire name; exact and lower case.
    pub fn parse(s: &str) -> Option<Provider> {
        match s {
            "dsp" => Some(Provider::Dsp),
            "s1sp" => Some(Provider::S1sp),
            "csp" => Some(Provider::Csp),
            _ => None,
        }
    }

    /// From the index `self as usize`.
    pub fn from_index(i: usize) -> Provider {
        Provider::ALL[i.min(2)]
    }
}

/// What a measure counts as a hit.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Basis {
    /// Successfully answered within the Target Response Time.
    Trt,
    /// Successfully answered within the deadline (MP242).
    Success,
}

/// Which requests a measure takes by when they run (SEC Code Performance Measures: on-demand
/// requests apart from future-dated ones).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Timing {
    /// Requests to be executed on receipt (no `execute_at` later than `at`).
    OnDemand,
    /// Requests with an `execute_at` later than their `at`.
    FutureDated,
    /// Both.
    Any,
}

impl Timing {
    /// Every timing, in the order `measures.toml` lists them.
    pub const ALL: [Timing; 3] = [Timing::OnDemand, Timing::FutureDated, Timing::Any];

    /// The timing of a measure that does not say: on demand for a TRT measure (a future-dated
    /// request's TRT is another measure's business), any for a success measure (MP242 counts
    /// every request).
    pub(crate) fn default_for(basis: Basis) -> Timing {
        match basis {
            Basis::Trt => Timing::OnDemand,
            Basis::Success => Timing::Any,
        }
    }

    /// Whether a request, future-dated or not, counts.
    pub fn takes(self, future_dated: bool) -> bool {
        match self {
            Timing::OnDemand => !future_dated,
            Timing::FutureDated => future_dated,
            Timing::Any => true,
        }
    }

    /// As `measures.toml` writes it.
    pub fn as_str(self) -> &'static str {
        match self {
            Timing::OnDemand => "on_demand",
            Timing::FutureDated => "future_dated",
            Timing::Any => "any",
        }
    }

    /// From `measures.toml`'s text.
    pub fn parse(s: &str) -> Option<Timing> {
        Timing::ALL.into_iter().find(|t| t.as_str() == s)
    }
}

impl fmt::Display for Basis {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Basis::Trt => "trt",
            Basis::Success => "success",
        })
    }
}
