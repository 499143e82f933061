//! Basic authentication against the web configuration's bcrypt hashes. A bcrypt check costs
//! tens of milliseconds of CPU by design, so the work is bounded: pairs already judged are
//! answered from a cache (successes, and recent failures: a misconfigured scraper repeats its
//! wrong password every few seconds), and the checks themselves run one at a time, as the
//! Prometheus exporter-toolkit runs them, with a short queue. A flood of wrong passwords once
//! ran a bcrypt per request on tokio's blocking pool: 76 threads and both cores, which the
//! pipeline needs.

use std::collections::{BTreeMap, HashSet};
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use sha2::{Digest, Sha256};

/// Verified credentials kept at most: enough for every scraper and person, small enough that a
/// stream of guesses cannot grow it (only successes enter).
const CACHE_MAX: usize = 256;

/// Failed pairs kept at most (then forgotten all at once): guesses that vary every time never
/// repeat, so this only spares the repeats.
const FAILURES_MAX: usize = 4096;

/// Checks that may wait for the one running; past it a request is answered 429 at once, with
/// no check at all.
const QUEUE_MAX: usize = 32;

/// A hash checked for an unknown user, so that a guess at a user name takes as long as a guess
/// at a password (cost 10, what `htpasswd -B` makes); made once, of a password nobody knows.
fn dummy() -> &'static str {
    static DUMMY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    DUMMY.get_or_init(|| {
        let mut seed = [0u8; 16];
        let _ = openssl::rand::rand_bytes(&mut seed);
        bcrypt::hash(seed, 10).unwrap_or_default()
    })
}

/// What a request's credentials come to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// A user and password of the configuration.
    Granted,
    /// Not: 401.
    Denied,
    /// Too many checks waiting already: 429, try again shortly.
    Busy,
}

/// The cache and the gate every check goes through. Keys are SHA-256 of (user, password, the
/// hash they were checked against), so a changed password in the file is checked afresh.
pub struct Verified {
    granted: Mutex<HashSet<[u8; 32]>>,
    denied: Mutex<HashSet<[u8; 32]>>,
    /// One bcrypt at a time.
    gate: tokio::sync::Semaphore,
    /// Checks waiting for the gate or running.
    queued: AtomicUsize,
}

impl Default for Verified {
    fn default() -> Verified {
        Verified {
            granted: Mutex::default(),
            denied: Mutex::default(),
            gate: tokio::sync::Semaphore::new(1),
            queued: AtomicUsize::new(0),
        }
    }
}

fn key(user: &str, password: &str, hash: &str) -> [u8; 32] {
    let mut h = Sha256::new();
    for part in [user, password, hash] {
        h.update((part.len() as u64).to_le_bytes());
        h.update(part.as_bytes());
    }
    h.finalize().into()
}

/// The user and password of an `Authorization: Basic …` value, if it is one.
pub fn credentials(header: &str) -> Option<(String, String)> {
    let (scheme, token) = header.trim().split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let raw = openssl::base64::decode_block(token.trim()).ok()?;
    let text = String::from_utf8(raw).ok()?;
    let (u, p) = text.split_once(':')?;
    Some((u.to_string(), p.to_string()))
}

fn locked(m: &Mutex<HashSet<[u8; 32]>>) -> std::sync::MutexGuard<'_, HashSet<[u8; 32]>> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Inserts `k`, forgetting everything first at `max` (bounded, and simple).
fn remember(m: &Mutex<HashSet<[u8; 32]>>, k: [u8; 32], max: usize) {
    let mut c = locked(m);
    if c.len() >= max {
        c.clear();
    }
    c.insert(k);
}

impl Verified {
    /// The pair's key, against the user's hash or, for an unknown user, the dummy.
    fn key_of(users: &BTreeMap<String, String>, user: &str, password: &str) -> [u8; 32] {
        key(
            user,
            password,
            users.get(user).map_or(dummy(), String::as_str),
        )
    }

    /// The verdict on a pair judged before, without a bcrypt.
    pub fn cached(
        &self,
        users: &BTreeMap<String, String>,
        user: &str,
        password: &str,
    ) -> Option<bool> {
        let k = Verified::key_of(users, user, password);
        if locked(&self.granted).contains(&k) {
            Some(true)
        } else if locked(&self.denied).contains(&k) {
            Some(false)
        } else {
            None
        }
    }

    /// Whether `user` and `password` match `users` (user → bcrypt hash). Blocks for a bcrypt
    /// check unless the pair was judged before: call it off the event loop, through
    /// [`Verified::verdict`].
    pub fn check(&self, users: &BTreeMap<String, String>, user: &str, password: &str) -> bool {
        if let Some(v) = self.cached(users, user, password) {
            return v;
        }
        let k = Verified::key_of(users, user, password);
        let ok = match users.get(user) {
            Some(hash) => bcrypt::verify(password, hash).unwrap_or(false),
            None => {
                let _ = bcrypt::verify(password, dummy());
                false
            }
        };
        if ok {
            remember(&self.granted, k, CACHE_MAX);
        } else {
            remember(&self.denied, k, FAILURES_MAX);
        }
        ok
    }

    /// The verdict on a request's credentials: from the cache, or after a check that waits
    /// its turn (one at a time, on tokio's blocking pool), or `Busy` when too many wait.
    pub async fn verdict(
        self: &std::sync::Arc<Self>,
        users: &BTreeMap<String, String>,
        user: String,
        password: String,
    ) -> Verdict {
        let judged = |ok: bool| {
            if ok {
                Verdict::Granted
            } else {
                Verdict::Denied
            }
        };
        if let Some(v) = self.cached(users, &user, &password) {
            return judged(v);
        }
        if self.queued.fetch_add(1, Ordering::AcqRel) >= QUEUE_MAX {
            self.queued.fetch_sub(1, Ordering::AcqRel);
            return Verdict::Busy;
        }
        let ok = match self.gate.acquire().await {
            Ok(_permit) => {
                // The users are a few lines of the web configuration: copied for the thread.
                let (me, users) = (self.clone(), users.clone());
                tokio::task::spawn_blocking(move || me.check(&users, &user, &password))
                    .await
                    .unwrap_or(false)
            }
            Err(_) => false,
        };
        self.queued.fetch_sub(1, Ordering::AcqRel);
        judged(ok)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_are_checked_against_bcrypt_and_remembered() {
        let users = BTreeMap::from([("prom".to_string(), bcrypt::hash("scrape-pw", 4).unwrap())]);
        let v = Verified::default();
        assert_eq!(v.cached(&users, "prom", "scrape-pw"), None);
        assert!(v.check(&users, "prom", "scrape-pw"));
        assert_eq!(
            v.cached(&users, "prom", "scrape-pw"),
            Some(true),
            "from the cache"
        );
        assert!(!v.check(&users, "prom", "wrong"));
        assert_eq!(
            v.cached(&users, "prom", "wrong"),
            Some(false),
            "a repeat costs nothing"
        );
        assert!(!v.check(&users, "nobody", "scrape-pw"));
        assert_eq!(locked(&v.granted).len(), 1);
        // The same password against a new hash (the file changed) is checked again.
        let other = BTreeMap::from([("prom".to_string(), bcrypt::hash("other-pw", 4).unwrap())]);
        assert_eq!(v.cached(&other, "prom", "scrape-pw"), None);
        assert!(!v.check(&other, "prom", "scrape-pw"));
        assert!(
            bcrypt::verify("x", dummy()).is_ok(),
            "the dummy hash is well formed"
        );

        assert_eq!(
            credentials("Basic cHJvbTpzY3JhcGU6cHc="),
            Some(("prom".into(), "scrape:pw".into()))
        );
        assert_eq!(credentials("Bearer abc"), None);
        assert_eq!(credentials("Basic !!!"), None);
    }

    #[test]
    fn checks_run_one_at_a_time_and_a_long_queue_is_answered_busy() {
        let users = std::sync::Arc::new(BTreeMap::from([(
            "prom".to_string(),
            bcrypt::hash("pw", 8).unwrap(),
        )]));
        let v = std::sync::Arc::new(Verified::default());
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let verdicts: Vec<Verdict> = rt.block_on(async {
            let guesses = (0..QUEUE_MAX + 20).map(|i| {
                let (v, users) = (v.clone(), users.clone());
                tokio::spawn(
                    async move { v.verdict(&users, "prom".into(), format!("guess-{i}")).await },
                )
            });
            let mut out = Vec::new();
            for g in guesses.collect::<Vec<_>>() {
                out.push(g.await.unwrap());
            }
            out
        });
        let busy = verdicts.iter().filter(|v| **v == Verdict::Busy).count();
        let denied = verdicts.iter().filter(|v| **v == Verdict::Denied).count();
        assert!(busy > 0, "the queue was never full: {verdicts:?}");
        assert!(denied <= QUEUE_MAX && denied > 0, "{verdicts:?}");
        assert_eq!(busy + denied, verdicts.len());
        // The right password, checked once, then from the cache whatever the queue.
        assert_eq!(
            rt.block_on(v.verdict(&users, "prom".into(), "pw".into())),
            Verdict::Granted
        );
        assert_eq!(v.cached(&users, "prom", "pw"), Some(true));
    }
}
