//! The client's IP address, computed once per request.
//!
//! The TCP peer is the client unless it is one of `server.trusted_proxies`; then
//! `X-Forwarded-For` is read right to left, skipping trusted proxies, and the first address that
//! is not one is the client. Everything that wants an address (rate limits, the admin throttle
//! and audit log, event `ip` fields, the log span) reads the [`ClientIp`] this stores.

use std::net::IpAddr;
use std::str::FromStr;

use actix_web::dev::ServiceRequest;
use actix_web::http::header::HeaderMap;
use actix_web::{HttpMessage, HttpRequest};
use ipnet::IpNet;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// The client address of a request, as [`attach`] resolved it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientIp(pub Option<IpAddr>);

/// `server.trusted_proxies`: IP addresses and CIDR blocks.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TrustedProxies(Vec<IpNet>);

impl TrustedProxies {
    /// Parses a list of `192.0.2.7`, `10.0.0.0/8`, `::1` or `fd00::/8`.
    pub fn parse<'a>(items: impl IntoIterator<Item = &'a str>) -> Result<Self, String> {
        items
            .into_iter()
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(|s| {
                IpNet::from_str(s)
                    .or_else(|_| IpAddr::from_str(s).map(IpNet::from))
                    .map(|net| net.trunc())
                    .map_err(|_| {
                        format!("server.trusted_proxies: `{s}` is not an IP address or CIDR block")
                    })
            })
            .collect::<Result<_, _>>()
            .map(Self)
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn contains(&self, ip: &IpAddr) -> bool {
        let ip = ip.to_canonical();
        self.0.iter().any(|net| net.contains(&ip))
    }
}

impl<'de> Deserialize<'de> for TrustedProxies {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        // A TOML list, or one comma-separated string (handy in an environment variable).
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            List(Vec<String>),
            Text(String),
        }
        let parsed = match Raw::deserialize(d)? {
            Raw::List(items) => Self::parse(items.iter().map(String::as_str)),
            Raw::Text(text) => Self::parse(text.split(',')),
        };
        parsed.map_err(serde::de::Error::custom)
    }
}

impl Serialize for TrustedProxies {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(self.0.iter().map(ToString::to_string))
    }
}

/// The client address: the peer, or when the peer is a trusted proxy, the right-most address in
/// `X-Forwarded-For` that is not a trusted proxy. A malformed entry ends the walk at the last
/// trusted hop, so a client cannot smuggle an address past garbage.
pub fn resolve(
    peer: Option<IpAddr>,
    headers: &HeaderMap,
    trusted: &TrustedProxies,
) -> Option<IpAddr> {
    let mut client = peer?.to_canonical();
    if trusted.is_empty() || !trusted.contains(&client) {
        return Some(client);
    }
    // Several X-Forwarded-For headers are one list, in order.
    let mut hops: Vec<&str> = Vec::new();
    for value in headers.get_all("x-forwarded-for") {
        let Ok(text) = value.to_str() else {
            return Some(client);
        };
        hops.extend(text.split(','));
    }
    for hop in hops.iter().rev() {
        let Some(ip) = parse_hop(hop) else {
            return Some(client);
        };
        client = ip;
        if !trusted.contains(&ip) {
            break;
        }
    }
    Some(client)
}

/// One `X-Forwarded-For` entry: an address, perhaps with a port (`192.0.2.1:443`,
/// `[2001:db8::1]:443`).
fn parse_hop(hop: &str) -> Option<IpAddr> {
    let hop = hop.trim();
    if let Ok(ip) = IpAddr::from_str(hop) {
        return Some(ip.to_canonical());
    }
    std::net::SocketAddr::from_str(hop)
        .ok()
        .map(|a| a.ip().to_canonical())
}

/// Middleware body: resolves the client address and stores it in the request's extensions.
pub fn attach(req: &ServiceRequest, trusted: &TrustedProxies) {
    let ip = resolve(req.peer_addr().map(|a| a.ip()), req.headers(), trusted);
    req.extensions_mut().insert(ClientIp(ip));
}

/// The client address of a request. Without the middleware (a handler called directly), the
/// TCP peer.
pub fn client_ip(req: &HttpRequest) -> Option<IpAddr> {
    match req.extensions().get::<ClientIp>() {
        Some(ClientIp(ip)) => *ip,
        None => req.peer_addr().map(|a| a.ip().to_canonical()),
    }
}

/// The same, as the text events and the audit log record.
pub fn client_ip_text(req: &HttpRequest) -> Option<String> {
    client_ip(req).map(|ip| ip.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::http::header::{HeaderName, HeaderValue};

    fn headers(xff: &[&str]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for value in xff {
            map.append(
                HeaderName::from_static("x-forwarded-for"),
                HeaderValue::from_str(value).unwrap(),
            );
        }
        map
    }

    fn ip(s: &str) -> Option<IpAddr> {
        Some(s.parse().unwrap())
    }

    #[test]
    fn forwarded_for_is_read_only_from_trusted_proxies() {
        let trusted = TrustedProxies::parse(["10.0.0.0/8", "192.0.2.7"]).unwrap();
        let none = TrustedProxies::default();
        let h = headers(&["203.0.113.9, 198.51.100.4, 10.1.2.3"]);
        // Untrusted peer, or no proxies configured: the peer, whatever the header says.
        assert_eq!(
            resolve(ip("198.51.100.77"), &h, &trusted),
            ip("198.51.100.77")
        );
        assert_eq!(resolve(ip("10.0.0.1"), &h, &none), ip("10.0.0.1"));
        // Trusted peer: right to left, skipping trusted hops; the first untrusted one wins,
        // not the left-most (which the client wrote).
        assert_eq!(resolve(ip("192.0.2.7"), &h, &trusted), ip("198.51.100.4"));
        // Split over two headers, with ports.
        let h = headers(&["203.0.113.9", "[2001:db8::1]:443, 10.9.9.9:80"]);
        assert_eq!(resolve(ip("10.0.0.1"), &h, &trusted), ip("2001:db8::1"));
        // Garbage stops the walk at the last trusted hop.
        let h = headers(&["203.0.113.9, nonsense, 10.1.1.1"]);
        assert_eq!(resolve(ip("10.0.0.1"), &h, &trusted), ip("10.1.1.1"));
        // Only proxies: the left-most of them.
        let h = headers(&["10.3.3.3, 10.2.2.2"]);
        assert_eq!(resolve(ip("10.0.0.1"), &h, &trusted), ip("10.3.3.3"));
        // No header: the proxy itself.
        assert_eq!(
            resolve(ip("10.0.0.1"), &headers(&[]), &trusted),
            ip("10.0.0.1")
        );
        // IPv4-mapped IPv6 peers match IPv4 rules.
        assert_eq!(
            resolve(ip("::ffff:10.0.0.1"), &headers(&["203.0.113.9"]), &trusted),
            ip("203.0.113.9")
        );
    }

    #[test]
    fn bad_entries_name_the_setting() {
        let err = TrustedProxies::parse(["10.0.0.0/33"]).unwrap_err();
        assert!(err.contains("server.trusted_proxies"), "{err}");
        assert!(TrustedProxies::parse(["proxy.example"]).is_err());
    }
}
