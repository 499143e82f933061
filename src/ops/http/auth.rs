//! Basic authentication against the web configuration's bcrypt hashes, with a cache of the
//! credentials already verified (a bcrypt check costs tens of milliseconds by design, and a
//! scraper sends the same pair every few seconds).

use std::collections::HashSet;
use std::sync::Mutex;

use sha2::{Digest, Sha256};

/// Verified credentials kept at most: enough for every scraper and person, small enough that a
/// stream of guesses cannot grow it (only successes enter).
const CACHE_MAX: usize = 256;

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

/// The cache: SHA-256 of (user, password, the hash they were checked against) for each pair
/// that passed. Keyed with the hash, so a changed password in the file is checked afresh.
#[derive(Default)]
pub struct Verified(Mutex<HashSet<[u8; 32]>>);

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

impl Verified {
    fn cache(&self) -> std::sync::MutexGuard<'_, HashSet<[u8; 32]>> {
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Whether `user` and `password` match `users` (user → bcrypt hash). Blocks for a bcrypt
    /// check unless the pair passed before: call it off the event loop.
    pub fn check(
        &self,
        users: &std::collections::BTreeMap<String, String>,
        user: &str,
        password: &str,
    ) -> bool {
        let Some(hash) = users.get(user) else {
            let _ = bcrypt::verify(password, dummy());
            return false;
        };
        let k = key(user, password, hash);
        if self.cache().contains(&k) {
            return true;
        }
        let ok = bcrypt::verify(password, hash).unwrap_or(false);
        if ok {
            let mut c = self.cache();
            if c.len() >= CACHE_MAX {
                c.clear();
            }
            c.insert(k);
        }
        ok
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_are_checked_against_bcrypt_and_cached_only_when_right() {
        let users = std::collections::BTreeMap::from([(
            "prom".to_string(),
            bcrypt::hash("scrape-pw", 4).unwrap(),
        )]);
        let v = Verified::default();
        assert!(v.check(&users, "prom", "scrape-pw"));
        assert!(v.check(&users, "prom", "scrape-pw"), "from the cache");
        assert!(!v.check(&users, "prom", "wrong"));
        assert!(!v.check(&users, "nobody", "scrape-pw"));
        assert_eq!(v.0.lock().unwrap().len(), 1);
        // The same password against a new hash (the file changed) is checked again.
        let other = std::collections::BTreeMap::from([(
            "prom".to_string(),
            bcrypt::hash("other-pw", 4).unwrap(),
        )]);
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
}
