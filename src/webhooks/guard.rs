//! The SSRF guard: webhook URLs must be https and may reach only public addresses.
//!
//! The address check runs where the connection is made: the HTTP client resolves names through
//! `GuardedResolver`, which hands it only vetted addresses, so a name that resolves to a public
//! address when checked and to a private one when used (DNS rebinding) cannot slip through.
//! IP-literal hosts never reach a resolver, so `check_url` vets them before each send.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::LazyLock;

use ipnet::IpNet;
use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use url::{Host, Url};

#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum TargetError {
    #[error("`{0}` is not an absolute http(s) URL")]
    NotAUrl(String),
    #[error(
        "webhook URLs must use https (to test with a receiver on this machine or network, \
         set `webhooks.allow_private_targets = true`, which also allows http)"
    )]
    NotHttps,
    #[error("webhook URLs must not carry credentials")]
    Credentials,
    #[error(
        "refused: {host} is a non-public address ({ip}); to test with a receiver on this \
         machine or network, set `webhooks.allow_private_targets = true`"
    )]
    Forbidden { host: String, ip: IpAddr },
}

/// Parses a webhook URL and applies the static rules (scheme, literal addresses).
pub fn check_url(raw: &str, allow_private: bool) -> Result<Url, TargetError> {
    let url = Url::parse(raw).map_err(|_| TargetError::NotAUrl(raw.to_owned()))?;
    if !matches!(url.scheme(), "http" | "https") || url.host().is_none() {
        return Err(TargetError::NotAUrl(raw.to_owned()));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(TargetError::Credentials);
    }
    if allow_private {
        return Ok(url);
    }
    if url.scheme() != "https" {
        return Err(TargetError::NotHttps);
    }
    let literal = match url.host() {
        Some(Host::Ipv4(ip)) => Some(IpAddr::V4(ip)),
        Some(Host::Ipv6(ip)) => Some(IpAddr::V6(ip)),
        _ => None,
    };
    if let Some(ip) = literal.filter(|ip| is_forbidden(*ip)) {
        return Err(TargetError::Forbidden {
            host: url.host_str().unwrap_or_default().to_owned(),
            ip,
        });
    }
    Ok(url)
}

/// Whether `error` (a send's, with its causes) is the resolver refusing every address a name
/// resolved to: the SSRF guard's doing, not a network failure.
pub fn refused(error: &(dyn std::error::Error + 'static)) -> bool {
    std::iter::successors(Some(error), |e| e.source()).any(|e| {
        matches!(
            e.downcast_ref::<TargetError>(),
            Some(TargetError::Forbidden { .. })
        )
    })
}

/// Resolves with the system resolver and drops every non-public address; fails when none is left.
#[derive(Debug, Default)]
pub struct GuardedResolver;

impl Resolve for GuardedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let host = name.as_str().to_owned();
        Box::pin(async move {
            let resolved: Vec<SocketAddr> =
                tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            let (allowed, refused): (Vec<SocketAddr>, Vec<SocketAddr>) =
                resolved.into_iter().partition(|a| !is_forbidden(a.ip()));
            if allowed.is_empty() {
                let err: Box<dyn std::error::Error + Send + Sync> = match refused.first() {
                    Some(addr) => Box::new(TargetError::Forbidden {
                        host,
                        ip: addr.ip(),
                    }),
                    None => format!("{host} has no address").into(),
                };
                return Err(err);
            }
            let addrs: Addrs = Box::new(allowed.into_iter());
            Ok(addrs)
        })
    }
}

/// Whether `ip` is anything but a public unicast address.
pub fn is_forbidden(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => v4_forbidden(v4),
        IpAddr::V6(v6) => v6_forbidden(v6),
    }
}

/// Whether `ip` lies in one of `nets`.
fn within(ip: IpAddr, nets: &[IpNet]) -> bool {
    nets.iter().any(|net| net.contains(&ip))
}

/// CIDR blocks, parsed once. A block that does not parse is a bug here, never a block that
/// silently lets its addresses through: it panics at the first use (`every_block_parses`).
fn parsed(blocks: &[&str]) -> Vec<IpNet> {
    (blocks.iter())
        .map(|b| b.parse().unwrap_or_else(|e| panic!("CIDR block {b}: {e}")))
        .collect()
}

static V4_NETS: LazyLock<Vec<IpNet>> = LazyLock::new(|| {
    parsed(&[
        "0.0.0.0/8",       // "this network"
        "10.0.0.0/8",      // private
        "100.64.0.0/10",   // CGNAT (also Alibaba's metadata 100.100.100.200)
        "127.0.0.0/8",     // loopback
        "169.254.0.0/16",  // link-local, cloud metadata 169.254.169.254
        "172.16.0.0/12",   // private
        "192.0.0.0/24",    // IETF protocol assignments
        "192.0.2.0/24",    // documentation
        "192.88.99.0/24",  // 6to4 relay anycast
        "192.168.0.0/16",  // private
        "198.18.0.0/15",   // benchmarking
        "198.51.100.0/24", // documentation
        "203.0.113.0/24",  // documentation
        "224.0.0.0/4",     // multicast
        "240.0.0.0/4",     // reserved, broadcast
    ])
});

static NAT64: LazyLock<Vec<IpNet>> = LazyLock::new(|| parsed(&["64:ff9b::/96"]));
static SIX_TO_FOUR: LazyLock<Vec<IpNet>> = LazyLock::new(|| parsed(&["2002::/16"]));

static V6_NETS: LazyLock<Vec<IpNet>> = LazyLock::new(|| {
    parsed(&[
        "::/96",          // unspecified, loopback, IPv4-compatible
        "64:ff9b:1::/48", // local-use NAT64
        "100::/64",       // discard
        "2001::/32",      // Teredo
        "2001:db8::/32",  // documentation
        "fc00::/7",       // unique-local (AWS metadata fd00:ec2::254)
        "fe80::/10",      // link-local
        "fec0::/10",      // site-local (deprecated)
        "ff00::/8",       // multicast
    ])
});

fn v4_forbidden(ip: Ipv4Addr) -> bool {
    within(IpAddr::V4(ip), &V4_NETS)
}

fn v6_forbidden(ip: Ipv6Addr) -> bool {
    // Addresses that carry an IPv4 address are judged by it.
    if let Some(v4) = ip.to_ipv4_mapped() {
        return v4_forbidden(v4);
    }
    let o = ip.octets();
    if within(IpAddr::V6(ip), &NAT64) {
        return v4_forbidden(Ipv4Addr::new(o[12], o[13], o[14], o[15])); // NAT64
    }
    if within(IpAddr::V6(ip), &SIX_TO_FOUR) {
        return v4_forbidden(Ipv4Addr::new(o[2], o[3], o[4], o[5])); // 6to4
    }
    within(IpAddr::V6(ip), &V6_NETS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_block_parses() {
        assert_eq!(V4_NETS.len(), 15);
        assert_eq!(V6_NETS.len(), 9);
        assert_eq!(NAT64.len() + SIX_TO_FOUR.len(), 2);
    }

    #[test]
    fn non_public_addresses_are_forbidden() {
        for ip in [
            "127.0.0.1",
            "10.1.2.3",
            "172.20.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "100.100.100.200",
            "0.0.0.0",
            "255.255.255.255",
            "224.0.0.1",
            "::1",
            "::",
            "fe80::1",
            "fd00:ec2::254",
            "fc00::1",
            "::ffff:127.0.0.1",
            "::ffff:169.254.169.254",
            "64:ff9b::a00:1",
            "2002:7f00:1::",
            "ff02::1",
        ] {
            assert!(is_forbidden(ip.parse().unwrap()), "{ip} must be forbidden");
        }
    }

    #[test]
    fn public_addresses_are_allowed() {
        for ip in [
            "1.1.1.1",
            "8.8.8.8",
            "93.184.216.34",
            "100.128.0.1",
            "172.32.0.1",
            "2606:4700:4700::1111",
            "::ffff:8.8.8.8",
            "64:ff9b::808:808",
        ] {
            assert!(!is_forbidden(ip.parse().unwrap()), "{ip} must be allowed");
        }
    }

    #[test]
    fn urls_need_https_and_a_public_literal() {
        assert_eq!(
            check_url("http://example.com/hook", false).unwrap_err(),
            TargetError::NotHttps
        );
        assert!(matches!(
            check_url("https://10.0.0.1/hook", false).unwrap_err(),
            TargetError::Forbidden { .. }
        ));
        assert!(matches!(
            check_url("https://[::1]:8443/hook", false).unwrap_err(),
            TargetError::Forbidden { .. }
        ));
        assert_eq!(
            check_url("https://user:pw@example.com/", false).unwrap_err(),
            TargetError::Credentials
        );
        assert!(check_url("ftp://example.com/", true).is_err());
        assert!(check_url("https://example.com/hook", false).is_ok());
        assert!(check_url("http://127.0.0.1:9/hook", true).is_ok());
    }

    #[tokio::test]
    async fn the_resolver_drops_loopback_answers() {
        let err = GuardedResolver
            .resolve("localhost".parse().unwrap())
            .await
            .err()
            .expect("localhost is refused");
        assert!(err.to_string().contains("non-public"), "{err}");
    }
}
