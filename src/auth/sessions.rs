//! Session tokens: issued over plain HTTP, redeemed by the upgrade, bounded in number and
//! lifetime. Time is passed in (`now`), so expiry is tested without sleeping.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use std::time::Instant;

use super::AuthConfig;

struct Session {
    user: String,
    expires: Instant,
}

/// Live session tokens, bounded in number: a map from token to user, and the tokens in the
/// order they were issued (which is also their order of expiry, the lifetime being one).
#[derive(Default)]
pub(crate) struct Sessions {
    inner: Mutex<(HashMap<String, Session>, VecDeque<String>)>,
}

impl Sessions {
    /// A new token for `user`, valid until `now + cfg.session_ttl`. Expired tokens are
    /// dropped first; at [`AuthConfig::max_sessions`] the oldest live one is evicted.
    pub(crate) fn issue(&self, user: &str, cfg: &AuthConfig, now: Instant) -> String {
        let token = uuid::Uuid::new_v4().simple().to_string();
        let mut g = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        let (map, order) = &mut *g;
        while let Some(t) = order.front() {
            let expired = map.get(t).is_none_or(|s| s.expires <= now);
            if expired || map.len() >= cfg.max_sessions.max(1) {
                let t = order.pop_front().unwrap_or_default();
                map.remove(&t);
            } else {
                break;
            }
        }
        let expires = now + cfg.session_ttl;
        map.insert(
            token.clone(),
            Session {
                user: user.to_string(),
                expires,
            },
        );
        order.push_back(token.clone());
        token
    }

    /// The user of a live `token` (consumed when `single_use`); `None` when unknown, used or
    /// expired at `now`.
    pub(crate) fn redeem(&self, token: &str, single_use: bool, now: Instant) -> Option<String> {
        let mut g = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        let (map, _) = &mut *g;
        let s = map.get(token)?;
        if s.expires <= now {
            map.remove(token);
            return None;
        }
        let user = s.user.clone();
        if single_use {
            map.remove(token);
        }
        Some(user)
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.inner.lock().unwrap().0.len()
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn bounded_and_single_use() {
        let cfg = AuthConfig::new().max_sessions(3);
        let s = Sessions::default();
        let now = Instant::now();
        let toks: Vec<String> = (0..5).map(|i| s.issue(&format!("u{i}"), &cfg, now)).collect();
        assert_eq!(s.len(), 3);
        assert_eq!(s.redeem(&toks[0], true, now), None, "oldest evicted");
        assert_eq!(s.redeem(&toks[4], true, now).as_deref(), Some("u4"));
        assert_eq!(s.redeem(&toks[4], true, now), None, "single use");
    }

    #[test]
    fn expiry_is_exact_in_injected_time() {
        let cfg = AuthConfig::new().session_ttl(Duration::from_secs(60));
        let s = Sessions::default();
        let t0 = Instant::now();
        let a = s.issue("ann", &cfg, t0);
        let b = s.issue("bob", &cfg, t0);
        let later = t0 + Duration::from_secs(59);
        assert_eq!(
            s.redeem(&a, true, later).as_deref(),
            Some("ann"),
            "alive 1 s before expiry"
        );
        assert_eq!(
            s.redeem(&b, true, t0 + Duration::from_secs(60)),
            None,
            "dead at expiry"
        );
        assert_eq!(s.len(), 0, "the expired token was dropped when seen");
    }

    #[test]
    fn reusable_tokens_live_until_expiry() {
        let cfg = AuthConfig::new().session_ttl(Duration::from_secs(10));
        let s = Sessions::default();
        let t0 = Instant::now();
        let a = s.issue("ann", &cfg, t0);
        for k in 0..10 {
            let at = t0 + Duration::from_secs(k);
            assert_eq!(s.redeem(&a, false, at).as_deref(), Some("ann"), "use at {k} s");
        }
        assert_eq!(s.redeem(&a, false, t0 + Duration::from_secs(10)), None);
    }

    #[test]
    fn issuing_drops_expired_tokens_first() {
        let cfg = AuthConfig::new()
            .max_sessions(2)
            .session_ttl(Duration::from_secs(1));
        let s = Sessions::default();
        let t0 = Instant::now();
        s.issue("a", &cfg, t0);
        s.issue("b", &cfg, t0);
        let later = t0 + Duration::from_secs(5);
        let c = s.issue("c", &cfg, later);
        assert_eq!(s.len(), 1, "both expired tokens went, not just the oldest");
        assert_eq!(s.redeem(&c, true, later).as_deref(), Some("c"));
    }
}
