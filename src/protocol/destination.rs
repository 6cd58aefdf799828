//! Where a probe may connect. DNS answers, redirects, SRV records and settings come from
//! outside: they must not turn the exporter into a way to reach its own host or network (link-local
//! cloud metadata services, `0.0.0.0`, multicast). Loopback and private addresses are allowed by
//! default (labs and internal Exchange servers use them) and refused on request.

use crate::model::facts::AddressRefusal;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// What kind of destination an address is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AddressKind {
    /// A public unicast address.
    Public,
    /// 127.0.0.0/8, ::1.
    Loopback,
    /// 10/8, 172.16/12, 192.168/16, 100.64/10 (shared address space), fc00::/7 (unique local).
    Private,
    /// 169.254/16, fe80::/10.
    LinkLocal,
    /// 0.0.0.0/8, ::.
    Unspecified,
    /// 224/4, 255.255.255.255, ff00::/8.
    Multicast,
}

/// Which addresses a probe refuses.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct AddressPolicy {
    /// Refuse loopback and private addresses too (`refuse_private_addresses: true`).
    pub refuse_private: bool,
}

impl AddressPolicy {
    /// Why the probe does not connect to `ip`, if it does not.
    pub fn refusal(self, ip: IpAddr) -> Option<AddressRefusal> {
        match kind(ip) {
            AddressKind::Public => None,
            AddressKind::LinkLocal => Some(AddressRefusal::LinkLocal),
            AddressKind::Unspecified => Some(AddressRefusal::Unspecified),
            AddressKind::Multicast => Some(AddressRefusal::Multicast),
            AddressKind::Loopback if self.refuse_private => Some(AddressRefusal::Loopback),
            AddressKind::Private if self.refuse_private => Some(AddressRefusal::Private),
            AddressKind::Loopback | AddressKind::Private => None,
        }
    }
}

/// The kind of `ip`; an IPv4-mapped IPv6 address (`::ffff:a.b.c.d`) is its IPv4 address.
pub fn kind(ip: IpAddr) -> AddressKind {
    match ip {
        IpAddr::V4(v4) => kind_v4(v4),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => kind_v4(v4),
            None => kind_v6(v6),
        },
    }
}

fn kind_v4(ip: Ipv4Addr) -> AddressKind {
    let [a, b, ..] = ip.octets();
    if a == 0 {
        // "This network": Linux connects 0.0.0.0 (and 0/8) to the local host.
        AddressKind::Unspecified
    } else if ip.is_loopback() {
        AddressKind::Loopback
    } else if ip.is_link_local() {
        AddressKind::LinkLocal
    } else if ip.is_multicast() || ip.is_broadcast() {
        AddressKind::Multicast
    } else if ip.is_private() || (a == 100 && (64..128).contains(&b)) {
        AddressKind::Private
    } else {
        AddressKind::Public
    }
}

fn kind_v6(ip: Ipv6Addr) -> AddressKind {
    let first = ip.segments()[0];
    if ip.is_unspecified() {
        AddressKind::Unspecified
    } else if ip.is_loopback() {
        AddressKind::Loopback
    } else if first & 0xffc0 == 0xfe80 {
        AddressKind::LinkLocal
    } else if ip.is_multicast() {
        AddressKind::Multicast
    } else if first & 0xfe00 == 0xfc00 {
        AddressKind::Private
    } else {
        AddressKind::Public
    }
}

/// The address is loopback or private (an internal host reached from outside: worth a note).
pub fn is_internal(ip: IpAddr) -> bool {
    matches!(kind(ip), AddressKind::Loopback | AddressKind::Private)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    #[test]
    fn kinds_of_addresses() {
        let cases = [
            ("203.0.113.10", AddressKind::Public),
            ("2001:db8::1", AddressKind::Public),
            ("127.0.0.1", AddressKind::Loopback),
            ("127.8.9.10", AddressKind::Loopback),
            ("::1", AddressKind::Loopback),
            ("10.1.2.3", AddressKind::Private),
            ("172.16.0.1", AddressKind::Private),
            ("192.168.1.1", AddressKind::Private),
            ("100.64.0.1", AddressKind::Private),
            ("fd00::1", AddressKind::Private),
            ("fc12::1", AddressKind::Private),
            ("169.254.169.254", AddressKind::LinkLocal),
            ("fe80::1", AddressKind::LinkLocal),
            ("febf::1", AddressKind::LinkLocal),
            ("0.0.0.0", AddressKind::Unspecified),
            ("0.1.2.3", AddressKind::Unspecified),
            ("::", AddressKind::Unspecified),
            ("224.0.0.1", AddressKind::Multicast),
            ("239.255.255.250", AddressKind::Multicast),
            ("255.255.255.255", AddressKind::Multicast),
            ("ff02::1", AddressKind::Multicast),
            ("::ffff:169.254.169.254", AddressKind::LinkLocal),
            ("::ffff:127.0.0.1", AddressKind::Loopback),
            ("::ffff:0.0.0.0", AddressKind::Unspecified),
        ];
        for (text, expected) in cases {
            assert_eq!(kind(ip(text)), expected, "{text}");
        }
    }

    #[test]
    fn link_local_unspecified_and_multicast_are_always_refused() {
        let default = AddressPolicy::default();
        let strict = AddressPolicy {
            refuse_private: true,
        };
        for text in [
            "169.254.169.254",
            "fe80::1",
            "0.0.0.0",
            "::",
            "224.0.0.1",
            "ff02::1",
        ] {
            assert!(default.refusal(ip(text)).is_some(), "{text}");
            assert!(strict.refusal(ip(text)).is_some(), "{text}");
        }
        for text in ["127.0.0.1", "10.0.0.1", "fd00::1", "::1"] {
            assert_eq!(default.refusal(ip(text)), None, "{text}");
            assert!(strict.refusal(ip(text)).is_some(), "{text}");
            assert!(is_internal(ip(text)), "{text}");
        }
        assert_eq!(strict.refusal(ip("203.0.113.10")), None);
        assert!(!is_internal(ip("203.0.113.10")));
    }
}
