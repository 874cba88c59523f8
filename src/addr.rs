//! A client address as the limits count it (`listener/per_ip.rs`, `auth/throttle.rs`): an
//! IPv4 address whole (an IPv4-mapped IPv6 address too), an IPv6 address by its network
//! prefix (one customer usually has a whole /64).

use std::net::IpAddr;

/// An address as counted: IPv4, or an IPv6 prefix. 24 bytes (two 64-bit halves, so the
/// alignment is 8, and the family).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) struct IpKey([u64; 2], bool);

impl IpKey {
    pub(crate) fn new(ip: IpAddr, v6_prefix: u8) -> Self {
        let v4 = |a: std::net::Ipv4Addr| Self([0, u64::from(u32::from(a))], false);
        match ip {
            IpAddr::V4(a) => v4(a),
            IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
                Some(a) => v4(a),
                None => {
                    let p = u32::from(v6_prefix.min(128));
                    let mask = if p == 0 { 0 } else { u128::MAX << (128 - p) };
                    let bits = u128::from(v6) & mask;
                    Self([(bits >> 64) as u64, bits as u64], true)
                }
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use std::net::{Ipv4Addr, Ipv6Addr};

    use super::*;

    #[test]
    fn ipv6_counts_by_prefix_and_mapped_v4_as_v4() {
        let k = |s: &str, p| IpKey::new(s.parse().unwrap(), p);
        let v4 = |d| IpKey::new(IpAddr::V4(Ipv4Addr::new(127, 0, 0, d)), 64);
        assert_eq!(k("2001:db8:1:2::1", 64), k("2001:db8:1:2:ffff::9", 64));
        assert_ne!(k("2001:db8:1:2::1", 64), k("2001:db8:1:3::1", 64));
        assert_ne!(k("2001:db8:1:2::1", 128), k("2001:db8:1:2::2", 128));
        assert_eq!(k("::ffff:127.0.0.2", 64), v4(2));
        assert_ne!(v4(2), v4(3));
        let unspecified = IpKey::new(IpAddr::V6(Ipv6Addr::UNSPECIFIED), 0);
        assert_ne!(unspecified, IpKey::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), 0));
    }
}
