//! Per-client-address limits, checked before a thread is spent: connections at once
//! (handshaking and open) per address, and optionally new connections per second per address.
//! IPv6 addresses count by prefix (`ipv6_prefix`, default /64: one customer's network), IPv4
//! (and IPv4-mapped IPv6) by the whole address. Time is passed in.
//!
//! Memory is bounded: the connection counts have an entry only per address with a live
//! connection (at most `max_connections` entries), the rate table at most [`RATE_TRACKED`]
//! entries of at most 48 bytes plus the hash table's control byte, under 1 MiB in all (an
//! attacker cycling addresses can push old entries out, which only forgets rates, never the
//! per-address cap).

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::addr::IpKey;
use crate::config::ServerConfig;

/// Most addresses whose recent connection rate is remembered.
pub(crate) const RATE_TRACKED: usize = 16_384;

/// Why a client was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Refusal {
    /// `max_connections_per_ip` connections from its address are open.
    TooMany,
    /// More than `new_connections_per_ip` connections from its address this second.
    TooFast,
}

/// Address → (start of its current one-second window, connections in it), and when expired
/// windows were last swept out.
type Rates = (HashMap<IpKey, (Instant, u32)>, Option<Instant>);

/// See the module docs.
#[derive(Debug)]
pub(crate) struct PerIp {
    max: usize,
    per_second: u32,
    prefix: u8,
    counts: Mutex<HashMap<IpKey, usize>>,
    rates: Mutex<Rates>,
}

impl PerIp {
    pub(crate) fn new(cfg: &ServerConfig) -> Self {
        Self {
            max: cfg.max_connections_per_ip,
            per_second: cfg.new_connections_per_ip,
            prefix: cfg.ipv6_prefix,
            counts: Mutex::default(),
            rates: Mutex::default(),
        }
    }

    /// Counts a new connection from `ip` at `now`, or says why not.
    pub(crate) fn admit(&self, ip: IpAddr, now: Instant) -> Result<IpKey, Refusal> {
        let key = IpKey::new(ip, self.prefix);
        if self.per_second > 0 && !self.rate_ok(key, now) {
            return Err(Refusal::TooFast);
        }
        let mut counts = self.counts.lock().unwrap_or_else(|e| e.into_inner());
        let n = counts.entry(key).or_insert(0);
        if *n >= self.max {
            return Err(Refusal::TooMany);
        }
        *n += 1;
        Ok(key)
    }

    /// A connection counted by [`PerIp::admit`] has ended.
    pub(crate) fn release(&self, key: IpKey) {
        let mut counts = self.counts.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(n) = counts.get_mut(&key) {
            *n -= 1;
            if *n == 0 {
                counts.remove(&key);
            }
        }
    }

    fn rate_ok(&self, key: IpKey, now: Instant) -> bool {
        let second = Duration::from_secs(1);
        let mut g = self.rates.lock().unwrap_or_else(|e| e.into_inner());
        let (rates, swept) = &mut *g;
        if rates.len() >= RATE_TRACKED && !rates.contains_key(&key) {
            // Sweep expired windows at most once a second (a full table costs O(1) per
            // connection otherwise), then make room by forgetting one address.
            if swept.is_none_or(|t| now.saturating_duration_since(t) >= second) {
                rates.retain(|_, (start, _)| now.saturating_duration_since(*start) < second);
                *swept = Some(now);
            }
            if rates.len() >= RATE_TRACKED {
                let victim = rates.keys().next().copied();
                if let Some(v) = victim {
                    rates.remove(&v);
                }
            }
        }
        let e = rates.entry(key).or_insert((now, 0));
        if now.saturating_duration_since(e.0) >= Duration::from_secs(1) {
            *e = (now, 0);
        }
        e.1 += 1;
        e.1 <= self.per_second
    }

    #[cfg(test)]
    fn tracked(&self) -> (usize, usize) {
        (
            self.counts.lock().unwrap().len(),
            self.rates.lock().unwrap().0.len(),
        )
    }
}

#[cfg(test)]
mod tests {
    use std::net::Ipv4Addr;

    use super::*;

    fn v4(d: u8) -> IpAddr {
        IpAddr::V4(Ipv4Addr::new(127, 0, 0, d))
    }

    #[test]
    fn the_cap_is_per_address_and_released() {
        let p = PerIp::new(&ServerConfig::default().max_connections_per_ip(2));
        let now = Instant::now();
        let a = p.admit(v4(2), now).unwrap();
        p.admit(v4(2), now).unwrap();
        assert_eq!(p.admit(v4(2), now), Err(Refusal::TooMany));
        assert!(p.admit(v4(3), now).is_ok(), "another address is unaffected");
        p.release(a);
        assert!(p.admit(v4(2), now).is_ok(), "room again after one ended");
    }

    #[test]
    fn a_rate_entry_is_small() {
        // What the module docs promise per remembered address (hashbrown adds a control byte).
        assert!(size_of::<(IpKey, (Instant, u32))>() <= 48);
    }

    #[test]
    fn the_rate_is_per_second() {
        let cfg = ServerConfig::default().new_connections_per_ip(3);
        let p = PerIp::new(&cfg);
        let t0 = Instant::now();
        for _ in 0..3 {
            let k = p.admit(v4(2), t0).unwrap();
            p.release(k);
        }
        assert_eq!(
            p.admit(v4(2), t0 + Duration::from_millis(900)),
            Err(Refusal::TooFast)
        );
        assert!(p.admit(v4(3), t0).is_ok());
        assert!(
            p.admit(v4(2), t0 + Duration::from_secs(1)).is_ok(),
            "a new second"
        );
    }

    #[test]
    fn memory_is_bounded() {
        let cfg = ServerConfig::default().new_connections_per_ip(1);
        let p = PerIp::new(&cfg);
        let t0 = Instant::now();
        for i in 0..(RATE_TRACKED as u32 + 5000) {
            let ip = IpAddr::V4(Ipv4Addr::from(0x0a00_0000 + i));
            let k = p.admit(ip, t0).unwrap();
            p.release(k);
        }
        let (counts, rates) = p.tracked();
        assert_eq!(counts, 0, "no entry for addresses without a connection");
        assert!(rates <= RATE_TRACKED, "{rates} rate entries");
    }
}
