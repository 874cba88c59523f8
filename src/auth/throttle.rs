//! Login throttling: attempts counted per client address and per user name, with the time
//! passed in (`now`), so windows and lockouts are tested without sleeping.
//!
//! Every attempt with credentials is counted as a failure when it begins ([`Throttle::begin`])
//! and forgiven when it succeeds ([`Throttle::succeeded`]), so clients racing in parallel
//! cannot slip more than [`AuthConfig::max_failures`] guesses past the count. At that many
//! within [`AuthConfig::failure_window`], the address (or the user) is locked out for
//! [`AuthConfig::lockout`]: its attempts are refused before any password is compared. A
//! lockout that ends starts the count afresh.
//!
//! **Memory** is a fixed-capacity table of [`AuthConfig::max_tracked`] entries: a 48-byte slot
//! (checked by a test) and an index entry (a `u64` and a `usize`, at most about 40 bytes with
//! the hash map's spare capacity): under 100 bytes each, under 1 MB at the default 10 000. The key is a keyed 64-bit hash (random per process) of
//! the address or the user name, never the name itself. A full table overwrites the entry that
//! failed least recently: a flood of more than `max_tracked` distinct addresses and names
//! within a lockout can make the server forget the oldest counts, never grow the table.
//!
//! Addresses count as the per-address limits count them (`addr.rs`): IPv4 per address, IPv6
//! per `ServerConfig::ipv6_prefix` (/64 by default), an IPv4-mapped IPv6 address as its IPv4
//! address.

use std::collections::hash_map::RandomState;
use std::collections::HashMap;
use std::hash::BuildHasher;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use super::AuthConfig;
use crate::addr::IpKey;

/// The count of one address or user name.
#[derive(Debug, Clone, Copy)]
struct Slot {
    key: u64,
    /// Attempts counted in the current window.
    failures: u32,
    /// When the current window began.
    since: Instant,
    /// The end of the lockout, when locked out.
    locked_until: Option<Instant>,
}

/// The fixed-capacity table: slots written in turn by a cursor (a ring), and an index from
/// key to slot. A slot that is rewritten moves to the cursor, so the cursor always overwrites
/// the entry that was touched least recently.
#[derive(Default)]
struct Table {
    slots: Vec<Option<Slot>>,
    index: HashMap<u64, usize>,
    cursor: usize,
}

impl Table {
    fn get(&self, key: u64) -> Option<Slot> {
        self.index.get(&key).and_then(|&i| self.slots[i])
    }

    fn remove(&mut self, key: u64) {
        if let Some(i) = self.index.remove(&key) {
            self.slots[i] = None;
        }
    }

    /// Writes `slot` into the newest position, evicting what the cursor finds there.
    fn put(&mut self, slot: Slot, cap: usize) {
        self.remove(slot.key);
        let i = if self.slots.len() < cap {
            self.slots.push(None);
            self.slots.len() - 1
        } else {
            let i = self.cursor % self.slots.len();
            self.cursor = i + 1;
            if let Some(old) = self.slots[i].take() {
                self.index.remove(&old.key);
            }
            i
        };
        self.slots[i] = Some(slot);
        self.index.insert(slot.key, i);
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.index.len()
    }
}

/// Failed-login counts for one server run.
pub(crate) struct Throttle {
    hasher: RandomState,
    table: Mutex<Table>,
    /// IPv6 addresses count by this prefix (`ServerConfig::ipv6_prefix`).
    ipv6_prefix: u8,
}

impl Default for Throttle {
    fn default() -> Self {
        Self::new(64)
    }
}

impl Throttle {
    pub(crate) fn new(ipv6_prefix: u8) -> Self {
        Self {
            hasher: RandomState::new(),
            table: Mutex::default(),
            ipv6_prefix,
        }
    }

    fn ip_key(&self, ip: IpAddr) -> u64 {
        self.hasher.hash_one((0u8, IpKey::new(ip, self.ipv6_prefix)))
    }

    fn user_key(&self, user: &str) -> u64 {
        self.hasher.hash_one((2u8, user))
    }

    /// Begins an attempt by `user` from `ip` at `now`: `Err(retry_after)` when either is locked
    /// out (nothing counted); otherwise the attempt is counted as a failure (locking out what
    /// reaches [`AuthConfig::max_failures`]) until [`Throttle::succeeded`] forgives it.
    pub(crate) fn begin(
        &self,
        ip: IpAddr,
        user: &str,
        cfg: &AuthConfig,
        now: Instant,
    ) -> Result<(), Duration> {
        if cfg.max_failures == 0 {
            return Ok(());
        }
        let keys = [self.ip_key(ip), self.user_key(user)];
        let mut t = self.table.lock().unwrap_or_else(|e| e.into_inner());
        let wait = keys.iter().filter_map(|&k| locked(&mut t, k, now)).max();
        if let Some(wait) = wait {
            return Err(wait);
        }
        for key in keys {
            let slot = count(t.get(key), key, cfg, now);
            t.put(slot, cfg.max_tracked.max(1));
        }
        Ok(())
    }

    /// Forgives the attempt begun for `user` from `ip`: both counts start again from zero.
    pub(crate) fn succeeded(&self, ip: IpAddr, user: &str) {
        let keys = [self.ip_key(ip), self.user_key(user)];
        let mut t = self.table.lock().unwrap_or_else(|e| e.into_inner());
        for key in keys {
            t.remove(key);
        }
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.table.lock().unwrap().len()
    }
}

/// How long `key` stays locked out after `now`, if it is; a lockout that has ended is dropped.
fn locked(t: &mut Table, key: u64, now: Instant) -> Option<Duration> {
    let until = t.get(key)?.locked_until?;
    if until > now {
        return Some(until - now);
    }
    t.remove(key);
    None
}

/// `slot` (or a new one for `key`) with one more attempt at `now`, locked out at the limit.
fn count(slot: Option<Slot>, key: u64, cfg: &AuthConfig, now: Instant) -> Slot {
    let mut s = match slot {
        Some(s) if now < s.since + cfg.failure_window => s,
        _ => Slot {
            key,
            failures: 0,
            since: now,
            locked_until: None,
        },
    };
    s.failures = s.failures.saturating_add(1);
    if s.failures >= cfg.max_failures {
        s.locked_until = Some(now + cfg.lockout);
    }
    s
}

/// The `Retry-After` value for a wait: whole seconds, rounded up, at least 1.
pub(crate) fn retry_after_secs(wait: Duration) -> u64 {
    (wait.as_secs() + u64::from(wait.subsec_nanos() > 0)).max(1)
}

#[cfg(test)]
mod tests {
    use std::net::Ipv6Addr;

    use super::*;

    const A: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(127, 0, 0, 1));
    const B: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(127, 0, 0, 2));

    fn cfg() -> AuthConfig {
        AuthConfig::new()
            .max_failures(3)
            .failure_window(Duration::from_secs(60))
            .lockout(Duration::from_secs(30))
    }

    #[test]
    fn locks_after_max_failures_until_the_lockout_ends() {
        let (c, t, t0) = (cfg(), Throttle::default(), Instant::now());
        for _ in 0..3 {
            assert_eq!(t.begin(A, "ann", &c, t0), Ok(()));
        }
        let later = t0 + Duration::from_secs(10);
        assert_eq!(
            t.begin(A, "joe", &c, later),
            Err(Duration::from_secs(20)),
            "address locked"
        );
        assert_eq!(
            t.begin(B, "ann", &c, later),
            Err(Duration::from_secs(20)),
            "user locked"
        );
        assert_eq!(t.begin(B, "joe", &c, later), Ok(()), "others unaffected");
        let end = t0 + Duration::from_secs(30);
        assert_eq!(
            t.begin(A, "ann", &c, end),
            Ok(()),
            "lockout over: counting afresh"
        );
        assert_eq!(t.begin(A, "ann", &c, end), Ok(()));
        assert!(t.begin(A, "ann", &c, end).is_ok());
        assert!(t.begin(A, "ann", &c, end).is_err(), "three more lock it again");
    }

    #[test]
    fn success_forgives_and_the_window_slides() {
        let (c, t, t0) = (cfg(), Throttle::default(), Instant::now());
        for _ in 0..2 {
            t.begin(A, "ann", &c, t0).unwrap();
        }
        t.succeeded(A, "ann");
        for _ in 0..2 {
            t.begin(A, "ann", &c, t0).unwrap();
        }
        // Failures older than the window do not count.
        let next = t0 + Duration::from_secs(60);
        for _ in 0..2 {
            t.begin(A, "ann", &c, next).unwrap();
        }
        assert!(t.begin(A, "ann", &c, next).is_ok());
        assert!(t.begin(A, "ann", &c, next).is_err());
    }

    #[test]
    fn bounded_by_max_tracked() {
        let c = cfg().max_tracked(100);
        let (t, t0) = (Throttle::default(), Instant::now());
        t.begin(A, "victim", &c, t0).unwrap();
        t.begin(A, "victim", &c, t0).unwrap();
        t.begin(A, "victim", &c, t0).unwrap();
        assert!(t.begin(B, "victim", &c, t0).is_err());
        for i in 0..10_000u32 {
            let ip = IpAddr::V4(i.to_be_bytes().into());
            let _ = t.begin(ip, &format!("u{i}"), &c, t0);
            assert!(t.len() <= 100);
        }
        assert!(t.table.lock().unwrap().slots.len() <= 100);
        assert_eq!(
            t.begin(B, "victim", &c, t0),
            Ok(()),
            "the oldest entry was evicted"
        );
        assert!(size_of::<Option<Slot>>() <= 48, "{}", size_of::<Option<Slot>>());
    }

    #[test]
    fn ipv6_counted_per_64_and_mapped_v4_as_v4() {
        let c = cfg();
        let (t, t0) = (Throttle::default(), Instant::now());
        for i in 0..3u16 {
            let ip = IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 0, 1, 0, 0, 0, i));
            t.begin(ip, &format!("u{i}"), &c, t0).unwrap();
        }
        let same64 = IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 0, 1, 9, 9, 9, 9));
        assert!(t.begin(same64, "x", &c, t0).is_err());
        let other64 = IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 0, 2, 0, 0, 0, 1));
        assert!(t.begin(other64, "x", &c, t0).is_ok());
        assert_eq!(t.ip_key(A), t.ip_key("::ffff:127.0.0.1".parse().unwrap()));
    }

    #[test]
    fn disabled_with_zero_and_retry_after_rounds_up() {
        let c = cfg().max_failures(0);
        let (t, t0) = (Throttle::default(), Instant::now());
        for _ in 0..100 {
            assert!(t.begin(A, "ann", &c, t0).is_ok());
        }
        assert_eq!(t.len(), 0);
        assert_eq!(retry_after_secs(Duration::from_millis(1)), 1);
        assert_eq!(retry_after_secs(Duration::from_millis(1500)), 2);
        assert_eq!(retry_after_secs(Duration::from_secs(60)), 60);
    }
}
