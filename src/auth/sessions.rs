//! Session tokens: issued over plain HTTP, redeemed by the upgrade, bounded in number (all
//! together and per user) and lifetime. Time is passed in (`now`), so expiry is tested without
//! sleeping.
//!
//! A full table refuses new tokens; it never evicts a live one (another user's least of all).

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use super::AuthConfig;

struct Session {
    user: String,
    expires: Instant,
}

/// Why no token was issued.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Refused {
    /// The user holds [`AuthConfig::max_sessions_per_user`] live tokens; one expires (or is
    /// used) within this long at the latest.
    UserFull(Duration),
    /// [`AuthConfig::max_sessions`] tokens are alive; the oldest expires in this long.
    Full(Duration),
}

/// The live tokens: a map from token to session, the tokens in the order they were issued
/// (which is also their order of expiry, the lifetime being one), and each user's count.
/// Tokens redeemed leave the map at once and the queue when it is compacted, so the queue
/// never holds more than twice the map (and a few).
#[derive(Default)]
struct Inner {
    map: HashMap<String, Session>,
    order: VecDeque<String>,
    per_user: HashMap<String, usize>,
}

impl Inner {
    /// Removes `token` from the map and its user's count (the queue is compacted lazily).
    fn forget(&mut self, token: &str) -> Option<Session> {
        let s = self.map.remove(token)?;
        if let Some(n) = self.per_user.get_mut(&s.user) {
            *n -= 1;
            if *n == 0 {
                self.per_user.remove(&s.user);
            }
        }
        if self.order.len() > 2 * self.map.len() + 16 {
            let map = &self.map;
            self.order.retain(|t| map.contains_key(t));
        }
        Some(s)
    }

    /// Drops expired tokens, and used ones, from the front of the queue.
    fn purge(&mut self, now: Instant) {
        while let Some(t) = self.order.front() {
            match self.map.get(t) {
                Some(s) if s.expires > now => break,
                _ => {
                    let t = self.order.pop_front().unwrap_or_default();
                    self.forget(&t);
                }
            }
        }
    }

    /// Whether `user` may have one more token at `now` (after [`Inner::purge`]).
    fn room(&self, user: &str, cfg: &AuthConfig, now: Instant) -> Result<(), Refused> {
        if self.per_user.get(user).copied().unwrap_or(0) >= cfg.max_sessions_per_user.max(1) {
            return Err(Refused::UserFull(cfg.session_ttl));
        }
        if self.map.len() >= cfg.max_sessions.max(1) {
            let oldest = self.order.front().and_then(|t| self.map.get(t));
            let wait = oldest.map_or(cfg.session_ttl, |s| s.expires.saturating_duration_since(now));
            return Err(Refused::Full(wait));
        }
        Ok(())
    }
}

/// Live session tokens for one server run.
#[derive(Default)]
pub(crate) struct Sessions {
    inner: Mutex<Inner>,
}

impl Sessions {
    /// A new token for `user`, valid until `now + cfg.session_ttl`, or why not: the user
    /// holds [`AuthConfig::max_sessions_per_user`] live tokens, or [`AuthConfig::max_sessions`]
    /// are alive in all. Expired tokens are dropped first.
    pub(crate) fn issue(&self, user: &str, cfg: &AuthConfig, now: Instant) -> Result<String, Refused> {
        let mut g = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        g.purge(now);
        g.room(user, cfg, now)?;
        let token = uuid::Uuid::new_v4().simple().to_string();
        let expires = now + cfg.session_ttl;
        let session = Session {
            user: user.to_string(),
            expires,
        };
        g.map.insert(token.clone(), session);
        g.order.push_back(token.clone());
        *g.per_user.entry(user.to_string()).or_insert(0) += 1;
        Ok(token)
    }

    /// The user of a live `token` (consumed when `single_use`); `None` when unknown, used or
    /// expired at `now`.
    pub(crate) fn redeem(&self, token: &str, single_use: bool, now: Instant) -> Option<String> {
        let mut g = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        let s = g.map.get(token)?;
        let (expires, user) = (s.expires, s.user.clone());
        if expires <= now {
            g.forget(token);
            return None;
        }
        if single_use {
            g.forget(token);
        }
        Some(user)
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.inner.lock().unwrap().map.len()
    }

    #[cfg(test)]
    fn queued(&self) -> usize {
        self.inner.lock().unwrap().order.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_table_refuses_and_never_evicts() {
        let cfg = AuthConfig::new()
            .max_sessions(3)
            .session_ttl(Duration::from_secs(60));
        let s = Sessions::default();
        let now = Instant::now();
        let toks: Vec<String> = (0..3)
            .map(|i| s.issue(&format!("u{i}"), &cfg, now).unwrap())
            .collect();
        let later = now + Duration::from_secs(20);
        assert_eq!(
            s.issue("u9", &cfg, later),
            Err(Refused::Full(Duration::from_secs(40)))
        );
        assert_eq!(s.len(), 3);
        assert_eq!(
            s.redeem(&toks[0], true, later).as_deref(),
            Some("u0"),
            "not evicted"
        );
        assert_eq!(s.redeem(&toks[0], true, later), None, "single use");
        assert!(s.issue("u9", &cfg, later).is_ok(), "a used token makes room");
    }

    #[test]
    fn per_user_cap_leaves_other_users_alone() {
        let cfg = AuthConfig::new().max_sessions_per_user(2);
        let s = Sessions::default();
        let now = Instant::now();
        let victim = s.issue("victim", &cfg, now).unwrap();
        s.issue("mallory", &cfg, now).unwrap();
        let m = s.issue("mallory", &cfg, now).unwrap();
        assert_eq!(
            s.issue("mallory", &cfg, now),
            Err(Refused::UserFull(cfg.session_ttl))
        );
        assert!(s.issue("victim", &cfg, now).is_ok());
        assert_eq!(s.redeem(&victim, true, now).as_deref(), Some("victim"));
        s.redeem(&m, true, now);
        assert!(
            s.issue("mallory", &cfg, now).is_ok(),
            "a used token frees its place"
        );
    }

    #[test]
    fn redeemed_tokens_do_not_grow_the_queue() {
        let cfg = AuthConfig::new().max_sessions(10).max_sessions_per_user(100);
        let s = Sessions::default();
        let now = Instant::now();
        // An older token sits at the front of the queue, alive, the whole time.
        let first = s.issue("old", &cfg, now).unwrap();
        for _ in 0..10_000 {
            let t = s.issue("u", &cfg, now).unwrap();
            assert_eq!(s.redeem(&t, true, now).as_deref(), Some("u"));
            assert!(s.queued() <= 2 * 10 + 16 + 1, "queue {}", s.queued());
        }
        assert_eq!(s.len(), 1);
        assert_eq!(s.redeem(&first, true, now).as_deref(), Some("old"));
    }

    #[test]
    fn expiry_is_exact_in_injected_time() {
        let cfg = AuthConfig::new().session_ttl(Duration::from_secs(60));
        let s = Sessions::default();
        let t0 = Instant::now();
        let a = s.issue("ann", &cfg, t0).unwrap();
        let b = s.issue("bob", &cfg, t0).unwrap();
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
        let a = s.issue("ann", &cfg, t0).unwrap();
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
            .max_sessions_per_user(1)
            .session_ttl(Duration::from_secs(1));
        let s = Sessions::default();
        let t0 = Instant::now();
        s.issue("a", &cfg, t0).unwrap();
        s.issue("b", &cfg, t0).unwrap();
        let later = t0 + Duration::from_secs(5);
        let c = s.issue("c", &cfg, later).unwrap();
        assert_eq!(s.len(), 1, "both expired tokens went, not just the oldest");
        assert!(
            s.issue("a", &cfg, later).is_ok(),
            "an expired token frees its user's place"
        );
        assert_eq!(s.redeem(&c, true, later).as_deref(), Some("c"));
    }
}
