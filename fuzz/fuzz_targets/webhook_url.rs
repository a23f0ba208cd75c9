//! The webhook SSRF guard: `check_url` on arbitrary text (both settings of
//! `allow_private`), and address classification on the bytes as IPv4 and IPv6 addresses.
#![no_main]

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use libfuzzer_sys::fuzz_target;
use portico::webhooks::guard::{TargetError, check_url, is_forbidden};
use url::Host;

fuzz_target!(|data: &[u8]| {
    if data.len() >= 16 {
        let v6 = Ipv6Addr::from(<[u8; 16]>::try_from(&data[..16]).unwrap());
        let v4 = Ipv4Addr::new(data[0], data[1], data[2], data[3]);
        let v4_verdict = is_forbidden(IpAddr::V4(v4));
        let _ = is_forbidden(IpAddr::V6(v6));
        // An IPv6 address that carries an IPv4 one is judged as that address.
        assert_eq!(is_forbidden(IpAddr::V6(v4.to_ipv6_mapped())), v4_verdict);
        let [a, b, c, d] = v4.octets();
        let nat64 = Ipv6Addr::new(
            0x64,
            0xff9b,
            0,
            0,
            0,
            0,
            u16::from_be_bytes([a, b]),
            u16::from_be_bytes([c, d]),
        );
        assert_eq!(is_forbidden(IpAddr::V6(nat64)), v4_verdict, "{nat64}");
        let six_to_four = Ipv6Addr::new(
            0x2002,
            u16::from_be_bytes([a, b]),
            u16::from_be_bytes([c, d]),
            0,
            0,
            0,
            0,
            1,
        );
        assert_eq!(
            is_forbidden(IpAddr::V6(six_to_four)),
            v4_verdict,
            "{six_to_four}"
        );
    }
    let Ok(raw) = std::str::from_utf8(data) else {
        return;
    };
    let strict = check_url(raw, false);
    let relaxed = check_url(raw, true);
    if let Err(TargetError::NotAUrl(_) | TargetError::Credentials) = relaxed {
        assert_eq!(strict, relaxed);
    }
    if let Ok(url) = strict {
        assert_eq!(url.scheme(), "https");
        assert!(url.username().is_empty() && url.password().is_none());
        match url.host() {
            Some(Host::Ipv4(ip)) => assert!(!is_forbidden(IpAddr::V4(ip))),
            Some(Host::Ipv6(ip)) => assert!(!is_forbidden(IpAddr::V6(ip))),
            // The HTTP client connects straight to a host that parses as an address, without
            // the guarded resolver: such a name must have been caught as a literal.
            Some(Host::Domain(name)) => {
                let bare = name.trim_start_matches('[').trim_end_matches(']');
                assert!(bare.parse::<IpAddr>().is_err(), "{name} passed as a name");
            }
            None => panic!("an accepted URL without a host"),
        }
        // Serialising and parsing again (as the stored URL is read back) gives the same verdict.
        assert!(check_url(url.as_str(), false).is_ok(), "{url}");
    }
});
