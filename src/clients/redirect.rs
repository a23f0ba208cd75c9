//! Redirect URIs: absolute, without fragment, compared exactly.

use url::{Host, Url};

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(transparent)]
pub struct RedirectUri(String);

impl RedirectUri {
    /// An absolute URI without a fragment (RFC 6749 section 3.1.2). Kept as given: matching
    /// compares the exact string, not a normalised form.
    pub fn parse(raw: &str) -> Result<Self, String> {
        let url = Url::parse(raw).map_err(|e| format!("redirect URI `{raw}`: {e}"))?;
        if url.fragment().is_some() || raw.contains('#') {
            return Err(format!("redirect URI `{raw}` must not have a fragment"));
        }
        if url.cannot_be_a_base() && url.scheme() != "urn" {
            return Err(format!("redirect URI `{raw}` is not a usable URI"));
        }
        Ok(Self(raw.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Whether `candidate` may be used where this URI is registered: the same string, or,
    /// for a loopback IP literal over http, the same but for the port (RFC 8252 section 7.3).
    pub fn matches(&self, candidate: &str) -> bool {
        if self.0 == candidate {
            return true;
        }
        let (Ok(registered), Ok(given)) = (Url::parse(&self.0), Url::parse(candidate)) else {
            return false;
        };
        let loopback = |u: &Url| {
            u.scheme() == "http"
                && match u.host() {
                    Some(Host::Ipv4(ip)) => ip.is_loopback(),
                    Some(Host::Ipv6(ip)) => ip.is_loopback(),
                    _ => false,
                }
        };
        if !loopback(&registered) || !loopback(&given) || candidate.contains('#') {
            return false;
        }
        let mut normalised = given.clone();
        if normalised.set_port(registered.port()).is_err() {
            return false;
        }
        normalised.host() == registered.host()
            && normalised.username().is_empty()
            && given.password().is_none()
            && normalised.path() == registered.path()
            && normalised.query() == registered.query()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exact_match_only() {
        let r = RedirectUri::parse("https://app.example/cb").unwrap();
        assert!(r.matches("https://app.example/cb"));
        assert!(!r.matches("https://app.example/cb/"));
        assert!(!r.matches("https://app.example/cb?x=1"));
        assert!(!r.matches("https://app.example:444/cb"));
        assert!(!r.matches("https://APP.example/cb"));
    }

    #[test]
    fn loopback_may_differ_in_port_only() {
        let r = RedirectUri::parse("http://127.0.0.1/cb").unwrap();
        assert!(r.matches("http://127.0.0.1:51234/cb"));
        assert!(!r.matches("http://127.0.0.1:51234/other"));
        assert!(!r.matches("http://127.0.0.2:51234/cb"));
        assert!(!r.matches("https://127.0.0.1:51234/cb"));
        let v6 = RedirectUri::parse("http://[::1]:8000/cb").unwrap();
        assert!(v6.matches("http://[::1]:9000/cb"));
        let named = RedirectUri::parse("http://localhost/cb").unwrap();
        assert!(!named.matches("http://localhost:9000/cb"));
    }

    #[test]
    fn fragments_are_refused() {
        assert!(RedirectUri::parse("https://app.example/cb#x").is_err());
        assert!(RedirectUri::parse("/relative").is_err());
    }
}
