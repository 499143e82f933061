//! Interned SRVs and response codes, each resolved once against the definitions: which measures
//! an (SRV, provider) counts in with which TRT, and what a code means (acknowledgement, success,
//! failure bucket). The hot path then works on small integers, never on strings.
//!
//! The tables grow with the number of *distinct* SRVs and codes seen, which is small for real
//! traffic (about 130 SRVs, a few dozen codes); they are not per-request state.

use std::sync::Arc;

use hashbrown::HashMap;

use crate::engine::definitions::{Definitions, MeasureRule};

use crate::engine::domain::Provider;
use crate::engine::time::Dur;

/// What a response code means.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum CodeKind {
    /// Acknowledgement: never ends a request.
    Ack,
    /// Success.
    Success,
    /// Failure.
    Failure,
}

/// A failure bucket, in a form that is the same in every process (so aggregates from different
/// partitions merge): `no_response`, `slow`, `other`, or a code matching `^[A-Z][0-9]{1,4}$`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Bucket(pub u32);

impl Bucket {
    /// No final response within the deadline.
    pub(crate) const NO_RESPONSE: Bucket = Bucket(0);
    /// Succeeded, but after the TRT.
    pub(crate) const SLOW: Bucket = Bucket(1);
    /// A failure code not of the form `^[A-Z][0-9]{1,4}$`.
    pub const OTHER: Bucket = Bucket(2);

    /// The bucket of a failure code.
    pub(crate) fn of_code(code: &str) -> Bucket {
        let b = code.as_bytes();
        if (2..=5).contains(&b.len())
            && b[0].is_ascii_uppercase()
            && b[1..].iter().all(u8::is_ascii_digit)
        {
            // letter (0–25) · digits count (1–4) · number (0–9999), offset past the named buckets.
            let number: u32 = b[1..].iter().fold(0, |n, d| n * 10 + (d - b'0') as u32);
            let packed = ((b[0] - b'A') as u32 * 5 + (b.len() - 1) as u32) * 10_000 + number;
            Bucket(packed + 16)
        } else {
            Bucket::OTHER
        }
    }

    /// The bucket's name as written in `failures.csv`.
    pub fn name(self) -> String {
        match self {
            Bucket::NO_RESPONSE => "no_response".into(),
            Bucket::SLOW => "slow".into(),
            Bucket::OTHER => "other".into(),
            Bucket(v) => {
                let p = v - 16;
                let number = p % 10_000;
                let rest = p / 10_000;
                let digits = (rest % 5) as usize;
                let letter = (b'A' + (rest / 5) as u8) as char;
                format!("{letter}{number:0digits$}")
            }
        }
    }
}

/// The measures one (SRV, provider) counts in, on demand and future-dated, and how long its
/// requests are kept.
#[derive(Debug)]
pub struct Rules {
    /// One rule per measure selecting an on-demand request, then one per measure selecting a
    /// future-dated one ([`Rules::of`]).
    rules: [Box<[MeasureRule]>; 2],
    /// The longest deadline among each (the global longest when there are none, so that
    /// unmeasured requests still correlate with their responses).
    deadlines: [Dur; 2],
}

impl Rules {
    /// The rules of a request, future-dated or not.
    #[inline]
    pub fn of(&self, future_dated: bool) -> &[MeasureRule] {
        &self.rules[usize::from(future_dated)]
    }

    /// How long such a request waits for its final response.
    #[inline]
    pub fn deadline(&self, future_dated: bool) -> Dur {
        self.deadlines[usize::from(future_dated)]
    }
}

/// Most distinct service users a catalog tells apart; later ones share [`OTHER_USERS`]. Real
/// traffic has hundreds; the cap keeps a feed with a fresh user on every line from growing the
/// table (and `users.csv`) without bound.
pub const MAX_USERS: usize = 65_535;

/// The name the users past [`MAX_USERS`] are counted under.
pub const OTHER_USERS: &str = "(other users)";

/// The hash a user's name is kept under in a row's counts by user: the same in every process.
pub fn user_hash(name: &str) -> u64 {
    xxhash_rust::xxh3::xxh3_64(name.as_bytes())
}

/// The name requests without a `user` are counted under in `users.csv`.
pub const NO_USER: &str = "-";

/// Interned SRVs and codes with their resolutions.
pub struct Catalog {
    defs: Arc<Definitions>,
    srv_ids: HashMap<Box<str>, u32>,
    srv_names: Vec<Box<str>>,
    srv_rules: Vec<[Arc<Rules>; 3]>,
    code_ids: HashMap<Box<str>, u32>,
    code_names: Vec<Box<str>>,
    code_kinds: Vec<CodeKind>,
    code_buckets: Vec<Bucket>,
    /// Users by name: id 0 is [`NO_USER`], id 1 [`OTHER_USERS`].
    user_ids: HashMap<Arc<str>, u32>,
    user_names: Vec<Arc<str>>,
    /// Each user's [`user_hash`], computed once.
    user_hashes: Vec<u64>,
}

impl Catalog {
    /// An empty catalog over `defs`.
    pub fn new(defs: Arc<Definitions>) -> Catalog {
        Catalog {
            defs,
            srv_ids: HashMap::new(),
            srv_names: Vec::new(),
            srv_rules: Vec::new(),
            code_ids: HashMap::new(),
            code_names: Vec::new(),
            code_kinds: Vec::new(),
            code_buckets: Vec::new(),
            user_ids: HashMap::new(),
            user_names: vec![NO_USER.into(), OTHER_USERS.into()],
            user_hashes: vec![user_hash(NO_USER), user_hash(OTHER_USERS)],
        }
    }

    /// A catalog whose ids are those of a checkpointed one: its SRVs, codes and users interned
    /// again in the same order (`users` as [`Catalog::user_names`] gave them).
    pub fn restore(
        defs: Arc<Definitions>,
        srvs: &[String],
        codes: &[String],
        users: &[String],
    ) -> Catalog {
        let mut c = Catalog::new(defs);
        for s in srvs {
            c.srv(s);
        }
        for code in codes {
            c.code(code);
        }
        for u in users {
            c.user(Some(u));
        }
        c
    }

    /// The interned users in id order, past the two every catalog has (a checkpoint stores
    /// them beside the ids).
    pub fn user_names(&self) -> Vec<String> {
        self.user_names[2..].iter().map(|s| s.to_string()).collect()
    }

    /// The id of a request's user ([`NO_USER`]'s, 0, for none), interning it on first sight.
    #[inline]
    pub fn user(&mut self, user: Option<&str>) -> u32 {
        let Some(u) = user else { return 0 };
        if let Some(&id) = self.user_ids.get(u) {
            return id;
        }
        self.add_user(u)
    }

    #[cold]
    fn add_user(&mut self, user: &str) -> u32 {
        if self.user_names.len() >= MAX_USERS + 2 {
            return 1;
        }
        let id = self.user_names.len() as u32;
        let name: Arc<str> = user.into();
        self.user_ids.insert(name.clone(), id);
        self.user_hashes.push(user_hash(&name));
        self.user_names.push(name);
        id
    }

    /// The hash a row keeps an interned user's counts under.
    #[inline]
    pub fn user_hash(&self, user: u32) -> u64 {
        self.user_hashes[(user as usize).min(self.user_hashes.len() - 1)]
    }

    /// The name of an interned user (`-` for none).
    pub(crate) fn user_name(&self, user: u32) -> &Arc<str> {
        &self.user_names[(user as usize).min(self.user_names.len() - 1)]
    }

    /// The interned SRVs in id order (a checkpoint stores them beside the ids).
    pub(crate) fn srv_names(&self) -> Vec<String> {
        self.srv_names.iter().map(|s| s.to_string()).collect()
    }

    /// The interned codes in id order.
    pub(crate) fn code_names(&self) -> Vec<String> {
        self.code_names.iter().map(|s| s.to_string()).collect()
    }

    /// The definitions.
    pub fn definitions(&self) -> &Arc<Definitions> {
        &self.defs
    }

    /// The id of an SRV, resolving it on first sight.
    #[inline]
    pub fn srv(&mut self, srv: &str) -> u32 {
        if let Some(&id) = self.srv_ids.get(srv) {
            return id;
        }
        self.add_srv(srv)
    }

    #[cold]
    fn add_srv(&mut self, srv: &str) -> u32 {
        let id = self.srv_names.len() as u32;
        let longest = self.defs.longest_deadline;
        let resolve = |p: Provider| {
            let [on_demand, future] =
                [false, true].map(|f| self.defs.rules_for(srv, p, f).into_boxed_slice());
            let deadline =
                |rules: &[MeasureRule]| rules.iter().map(|r| r.deadline).max().unwrap_or(longest);
            Arc::new(Rules {
                deadlines: [deadline(&on_demand), deadline(&future)],
                rules: [on_demand, future],
            })
        };
        let entry = [
            resolve(Provider::Dsp),
            resolve(Provider::S1sp),
            resolve(Provider::Csp),
        ];
        self.srv_ids.insert(srv.into(), id);
        self.srv_names.push(srv.into());
        self.srv_rules.push(entry);
        id
    }

    /// The id of a code, resolving it on first sight.
    #[inline]
    pub fn code(&mut self, code: &str) -> u32 {
        if let Some(&id) = self.code_ids.get(code) {
            return id;
        }
        self.add_code(code)
    }

    #[cold]
    fn add_code(&mut self, code: &str) -> u32 {
        let id = self.code_names.len() as u32;
        let kind = if self.defs.is_ack(code) {
            CodeKind::Ack
        } else if self.defs.is_success(code) {
            CodeKind::Success
        } else {
            CodeKind::Failure
        };
        self.code_ids.insert(code.into(), id);
        self.code_names.push(code.into());
        self.code_kinds.push(kind);
        self.code_buckets.push(Bucket::of_code(code));
        id
    }

    /// Rules of an interned SRV for a provider.
    #[inline]
    pub fn rules(&self, srv: u32, provider: Provider) -> &Rules {
        &self.srv_rules[srv as usize][provider as usize]
    }

    /// Name of an interned SRV.
    pub fn srv_name(&self, srv: u32) -> &str {
        &self.srv_names[srv as usize]
    }

    /// Name of an interned code.
    pub(crate) fn code_name(&self, code: u32) -> &str {
        &self.code_names[code as usize]
    }

    /// Meaning of an interned code.
    #[inline]
    pub(crate) fn code_kind(&self, code: u32) -> CodeKind {
        self.code_kinds[code as usize]
    }

    /// Failure bucket of an interned code (meaningful for failures).
    #[inline]
    pub(crate) fn code_bucket(&self, code: u32) -> Bucket {
        self.code_buckets[code as usize]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_round_trip_and_fall_back_to_other() {
        for code in ["E20", "E21", "E1", "Z9999", "A0", "E0001", "E020"] {
            let b = Bucket::of_code(code);
            assert!(b.0 >= 16, "{code}");
            assert_eq!(b.name(), code);
        }
        assert_ne!(Bucket::of_code("E020"), Bucket::of_code("E20"));
        for code in ["e20", "E", "E12345", "EE1", "I0x", "20", "É1"] {
            assert_eq!(Bucket::of_code(code), Bucket::OTHER, "{code}");
        }
        assert_eq!(Bucket::NO_RESPONSE.name(), "no_response");
        assert_eq!(Bucket::SLOW.name(), "slow");
    }
}
