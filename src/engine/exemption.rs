//! The exemption register as the core uses it: agreed windows of exceptional events and
//! planned maintenance, each with its scope (measures, regions, providers, SRVs, interfaces)
//! and the reporting views it applies to, and the one rule that decides which of them, if any,
//! exempts a request from a view (SPEC, issue 29). Plain data: `config::exemptions` reads and
//! validates the file; the aggregates apply the rule.

use std::collections::BTreeSet;

use crate::engine::domain::{Provider, Region};
use crate::engine::time::Ts;

/// The view every register has: the OPR's own figures (`rpl.csv`).
pub const OPR: &str = "opr";

/// Why a window is exempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Reason {
    /// An exceptional event agreed with the regulator.
    ExceptionalEvent,
    /// Agreed planned maintenance.
    PlannedMaintenance,
    /// A duplicate of an incident already exempted.
    DuplicateIncident,
    /// Anything else, explained in the note.
    Other,
}

impl Reason {
    /// Every reason, in the order reports list them.
    pub const ALL: [Reason; 4] = [
        Reason::ExceptionalEvent,
        Reason::PlannedMaintenance,
        Reason::DuplicateIncident,
        Reason::Other,
    ];

    /// The register's and the outputs' name (`exceptional_event`).
    pub fn as_str(self) -> &'static str {
        match self {
            Reason::ExceptionalEvent => "exceptional_event",
            Reason::PlannedMaintenance => "planned_maintenance",
            Reason::DuplicateIncident => "duplicate_incident",
            Reason::Other => "other",
        }
    }

    /// From its name.
    pub fn parse(s: &str) -> Option<Reason> {
        Reason::ALL.into_iter().find(|r| r.as_str() == s)
    }
}

/// One entry of the register.
#[derive(Debug, Clone, PartialEq)]
pub struct Exemption {
    /// The incident or change reference (`INC000001065262`), unique in the register.
    pub id: String,
    /// Why.
    pub reason: Reason,
    /// The window `[from, to)`, whole minutes.
    pub from: Ts,
    /// Its end, excluded.
    pub to: Ts,
    /// Measures (indices of the definitions) it applies to; `None`: all.
    pub measures: Option<BTreeSet<u16>>,
    /// Regions; `None`: all.
    pub regions: Option<BTreeSet<Region>>,
    /// Providers; `None`: all.
    pub providers: Option<BTreeSet<Provider>>,
    /// SRVs; `None`: all.
    pub srvs: Option<BTreeSet<String>>,
    /// Interfaces (availability); `None`: all.
    pub interfaces: Option<BTreeSet<String>>,
    /// Views (indices of [`Register::views`]) it applies to.
    pub views: BTreeSet<usize>,
    /// Who approved it (audit trail).
    pub approved_by: Option<String>,
    /// When (audit trail, as written).
    pub approved_at: Option<String>,
    /// Anything else for the audit trail.
    pub note: Option<String>,
}

impl Exemption {
    /// Whether it covers a request at `at` of `measure`, in `region`, from `provider`, of
    /// `srv` (its views aside).
    pub fn covers(
        &self,
        at: Ts,
        measure: u16,
        region: Region,
        provider: Provider,
        srv: &str,
    ) -> bool {
        at >= self.from
            && at < self.to
            && self.measures.as_ref().is_none_or(|m| m.contains(&measure))
            && self.regions.as_ref().is_none_or(|r| r.contains(&region))
            && self
                .providers
                .as_ref()
                .is_none_or(|p| p.contains(&provider))
            && self.srvs.as_ref().is_none_or(|s| s.contains(srv))
    }
}

/// The register: its entries in file order and the views they name.
#[derive(Debug, Clone, PartialEq)]
pub struct Register {
    /// Entries in file order: a request inside several windows is counted under the first.
    pub exemptions: Vec<Exemption>,
    /// The views: `opr` first, then the others the register names, in order of first mention.
    pub views: Vec<String>,
    /// SHA-256 (hex) of the register's file, `None` for no register.
    pub sha256: Option<String>,
    /// The file's text (empty for none): a store keeps it with each final month it is
    /// applied to, so a later register can be compared with it.
    pub text: String,
    /// The earliest `from` and latest `to` of all windows: most requests are outside both.
    span: (Ts, Ts),
}

impl Default for Register {
    fn default() -> Register {
        Register::new(Vec::new(), vec![OPR.to_string()], None)
    }
}

impl Register {
    /// A register of `exemptions` over `views` (`opr` first), from a file hashing to `sha256`.
    pub fn new(exemptions: Vec<Exemption>, views: Vec<String>, sha256: Option<String>) -> Register {
        let span = exemptions.iter().fold((Ts::MAX, Ts::MIN), |(lo, hi), e| {
            (lo.min(e.from), hi.max(e.to))
        });
        Register {
            exemptions,
            views,
            sha256,
            text: String::new(),
            span,
        }
    }

    /// Whether it exempts nothing (no register, or one without entries).
    pub fn is_empty(&self) -> bool {
        self.exemptions.is_empty()
    }

    /// Whether `at` may lie in some window: the cheap test every decided request takes.
    #[inline]
    pub(crate) fn may_cover(&self, at: Ts) -> bool {
        at >= self.span.0 && at < self.span.1
    }

    /// The exemption (its index) that exempts a request from `view`: the first in file order
    /// that applies to the view and covers the request; `None` if none does.
    pub fn exempting(
        &self,
        view: usize,
        at: Ts,
        measure: u16,
        region: Region,
        provider: Provider,
        srv: &str,
    ) -> Option<usize> {
        if !self.may_cover(at) {
            return None;
        }
        self.exemptions
            .iter()
            .position(|e| e.views.contains(&view) && e.covers(at, measure, region, provider, srv))
    }

    /// The index of a view by name.
    pub fn view(&self, name: &str) -> Option<usize> {
        self.views.iter().position(|v| v == name)
    }

    /// The ids of its entries.
    pub fn ids(&self) -> BTreeSet<&str> {
        self.exemptions.iter().map(|e| e.id.as_str()).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> Ts {
        crate::engine::time::parse_rfc3339(s.as_bytes()).unwrap()
    }

    fn entry(id: &str, from: &str, to: &str, views: &[usize]) -> Exemption {
        Exemption {
            id: id.into(),
            reason: Reason::ExceptionalEvent,
            from: at(from),
            to: at(to),
            measures: None,
            regions: None,
            providers: None,
            srvs: None,
            interfaces: None,
            views: views.iter().copied().collect(),
            approved_by: None,
            approved_at: None,
            note: None,
        }
    }

    #[test]
    fn the_first_window_in_file_order_that_applies_to_the_view_exempts() {
        let mut a = entry("A", "2024-03-01T10:00:00Z", "2024-03-01T11:00:00Z", &[1]);
        a.regions = Some([Region::North].into());
        let b = entry("B", "2024-03-01T10:30:00Z", "2024-03-01T12:00:00Z", &[0, 1]);
        let mut c = entry("C", "2024-03-01T10:00:00Z", "2024-03-01T13:00:00Z", &[0, 1]);
        c.srvs = Some(["8.11".to_string()].into());
        c.providers = Some([Provider::Dsp].into());
        let r = Register::new(vec![a, b, c], vec!["opr".into(), "pmr".into()], None);
        let ex = |view, t: &str, region, provider, srv| {
            r.exempting(view, at(t), 0, region, provider, srv)
        };
        use Provider::*;
        use Region::*;
        // Inside A only for pmr and the north; B from 10:30 for both views; C's scope.
        assert_eq!(ex(1, "2024-03-01T10:15:00Z", North, Dsp, "1.1.1"), Some(0));
        assert_eq!(ex(0, "2024-03-01T10:15:00Z", North, Dsp, "1.1.1"), None);
        assert_eq!(ex(0, "2024-03-01T10:15:00Z", North, Dsp, "8.11"), Some(2));
        assert_eq!(ex(0, "2024-03-01T10:15:00Z", North, S1sp, "8.11"), None);
        assert_eq!(ex(1, "2024-03-01T10:45:00Z", North, Dsp, "8.11"), Some(0));
        assert_eq!(ex(1, "2024-03-01T10:45:00Z", South, Dsp, "8.11"), Some(1));
        // [from, to): the end is outside.
        assert_eq!(ex(0, "2024-03-01T12:00:00Z", South, Csp, "x"), None);
        assert_eq!(ex(0, "2024-03-01T11:59:59.999Z", South, Csp, "x"), Some(1));
        assert!(!r.may_cover(at("2024-03-01T09:59:59Z")));
        assert!(Register::default().is_empty());
        assert_eq!(
            Register::default().exempting(0, at("2024-03-01T10:15:00Z"), 0, North, Dsp, "x"),
            None
        );
    }
}
