//! Redirect URIs: the one policy for every client, from portico.toml and from the admin API
//! alike, and exact matching.

use url::{Host, Url};

use crate::net::is_loopback_http;

/// Why a redirect URI may not be registered; each message is a sentence an admin can act on.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RedirectError {
    #[error(
        "{0} is not a full URL: write it with its scheme and host, e.g. https://app.example/callback"
    )]
    NotAUrl(String),
    #[error("{0} has a fragment (the part after #), which redirect URIs may not have: remove it")]
    Fragment(String),
    #[error(
        "{0}: http is allowed only on loopback addresses (127.0.0.1 or [::1]); use https, or an \
         app's own scheme such as com.example.app:/callback"
    )]
    Insecure(String),
    #[error(
        "{0}: http is allowed only on loopback addresses; for http://localhost, mark this as a \
         development client"
    )]
    LocalhostNeedsDevelopment(String),
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(transparent)]
pub struct RedirectUri(String);

impl RedirectUri {
    /// A redirect URI Portico may hold (RFC 6749 section 3.1.2, RFC 8252, the OAuth 2.0
    /// Security BCP): absolute, without a fragment, and
    /// - https, or
    /// - http to a loopback IP literal (a native or development app; matched on any port), or
    /// - http to the host `localhost` exactly, without user info: a development form, which only
    ///   a development client may register ([`RedirectUri::register`]) and which matches exactly,
    ///   port included, or
    /// - a private-use scheme, named after a domain the app owns (it holds a `.`, as
    ///   `com.example.app:/cb`; RFC 8252 section 7.1).
    ///
    /// Anything else (http to any other name, `*.localhost`, `javascript:`, `data:`, `file:`…) is
    /// refused. Kept as given: matching compares the exact string, not a normalised form. Stored
    /// rows and pending requests read back through here; registering goes through `register`.
    pub fn parse(raw: &str) -> Result<Self, RedirectError> {
        let url = Url::parse(raw).map_err(|_| RedirectError::NotAUrl(raw.to_owned()))?;
        if url.fragment().is_some() || raw.contains('#') {
            return Err(RedirectError::Fragment(raw.to_owned()));
        }
        let private_use = url.scheme().contains('.') && !url.cannot_be_a_base();
        if url.scheme() == "https" || is_loopback_http(&url) || private_use {
            return Ok(Self(raw.to_owned()));
        }
        if is_localhost_http(&url) {
            return Ok(Self(raw.to_owned()));
        }
        Err(RedirectError::Insecure(raw.to_owned()))
    }

    /// A redirect URI a client may register: [`RedirectUri::parse`], and an http://localhost
    /// URI only for a development client.
    pub fn register(raw: &str, development: bool) -> Result<Self, RedirectError> {
        let uri = Self::parse(raw)?;
        if uri.is_development() && !development {
            return Err(RedirectError::LocalhostNeedsDevelopment(raw.to_owned()));
        }
        Ok(uri)
    }

    /// Whether only a development client may use it: http to `localhost`.
    pub fn is_development(&self) -> bool {
        Url::parse(&self.0).is_ok_and(|u| is_localhost_http(&u))
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
        if !is_loopback_http(&registered) || !is_loopback_http(&given) || candidate.contains('#') {
            return false;
        }
        if !given.username().is_empty() || given.password().is_some() {
            return false;
        }
        // Everything but the port, compared on the parsed forms: scheme, user info (none on
        // either side), host, path and query.
        let mut normalised = given;
        normalised.set_port(registered.port()).is_ok() && normalised == registered
    }
}

impl<'de> serde::Deserialize<'de> for RedirectUri {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let raw = String::deserialize(d)?;
        RedirectUri::parse(&raw).map_err(serde::de::Error::custom)
    }
}

/// http to the name `localhost` exactly, without user info. Not `*.localhost`: browsers resolve
/// those to loopback, but other resolvers may ask DNS, so such a name could reach another host.
fn is_localhost_http(url: &Url) -> bool {
    url.scheme() == "http"
        && url.host() == Some(Host::Domain("localhost"))
        && url.username().is_empty()
        && url.password().is_none()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_policy_for_every_client() {
        for good in [
            "https://app.example/cb",
            "https://app.example:8443/cb?tenant=1",
            "http://127.0.0.1/cb",
            "http://[::1]:8000/cb",
            "com.example.app:/oauth2redirect",
            "com.example.app://callback",
        ] {
            assert!(RedirectUri::parse(good).is_ok(), "{good}");
        }
        for bad in [
            "http://app.example/cb",
            "http://app.localhost/cb",
            "http://localhost./cb",
            "http://u@localhost/cb",
            "https://app.example/cb#x",
            "/cb",
            "javascript:alert(1)",
            "data:text/html,hi",
            "file:///etc/passwd",
            "urn:ietf:wg:oauth:2.0:oob",
            "myapp:/cb",
        ] {
            assert!(RedirectUri::parse(bad).is_err(), "{bad}");
        }
        // portico.toml is held to the same rule as the admin API.
        let config: super::super::ClientConfig = toml::from_str(
            "client_id = \"wiki\"\ntype = \"public\"\nredirect_uris = [\"http://wiki.example/cb\"]\n",
        )
        .unwrap();
        let err = super::super::validate_config(&[config]).unwrap_err();
        assert!(
            err.contains("http is allowed only on loopback addresses"),
            "{err}"
        );
    }

    #[test]
    fn localhost_is_for_development_clients_only() {
        for dev in [
            "http://localhost/cb",
            "http://localhost:3000/auth/callback",
            "http://LOCALHOST:3000/cb",
        ] {
            assert!(RedirectUri::register(dev, true).is_ok(), "{dev}");
            let refused = RedirectUri::register(dev, false).unwrap_err();
            assert_eq!(
                refused,
                RedirectError::LocalhostNeedsDevelopment(dev.to_owned())
            );
            assert!(
                refused
                    .to_string()
                    .contains("mark this as a development client"),
                "{refused}"
            );
            assert!(RedirectUri::parse(dev).unwrap().is_development());
        }
        for other in [
            "https://localhost/cb",
            "http://127.0.0.1/cb",
            "https://app.example/cb",
        ] {
            let uri = RedirectUri::register(other, false).unwrap();
            assert!(!uri.is_development(), "{other}");
        }
        // A development client gets nothing more than http://localhost.
        for bad in ["http://app.localhost/cb", "http://app.example/cb"] {
            assert!(RedirectUri::register(bad, true).is_err(), "{bad}");
        }
    }

    #[test]
    fn localhost_matches_exactly_port_included() {
        let r = RedirectUri::parse("http://localhost:3000/cb").unwrap();
        assert!(r.matches("http://localhost:3000/cb"));
        assert!(!r.matches("http://localhost:3001/cb"));
        assert!(!r.matches("http://localhost/cb"));
        assert!(!r.matches("http://localhost:3000/other"));
        assert!(!r.matches("http://127.0.0.1:3000/cb"));
        let portless = RedirectUri::parse("http://localhost/cb").unwrap();
        assert!(!portless.matches("http://localhost:3000/cb"));
    }

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
    }

    #[test]
    fn loopback_user_info_is_compared_too() {
        // Found by the property test below: the registered URI's user info was not compared.
        let r = RedirectUri::parse("http://u@127.0.0.1/cb").unwrap();
        assert!(!r.matches("http://:@127.0.0.1/cb"));
        assert!(!r.matches("http://127.0.0.1:5000/cb"));
        assert!(!r.matches("http://u@127.0.0.1:5000/cb"));
        let plain = RedirectUri::parse("http://127.0.0.1/cb").unwrap();
        assert!(!plain.matches("http://u@127.0.0.1:5000/cb"));
        assert!(!plain.matches("http://u:p@127.0.0.1:5000/cb"));
    }

    #[test]
    fn fragments_are_refused() {
        assert!(RedirectUri::parse("https://app.example/cb#x").is_err());
        assert!(RedirectUri::parse("/relative").is_err());
    }

    mod properties {
        use proptest::prelude::*;
        use url::{Host, Url};

        use super::*;

        type Parts = [&'static str; 7];

        /// URI parts that are alike enough to collide: loopback and other hosts, ports, user
        /// info, dot segments and escapes in the path, queries and fragments.
        fn parts() -> impl Strategy<Value = Parts> {
            let scheme =
                prop::sample::select(vec!["http://", "https://", "HTTP://", "com.example.app://"]);
            let userinfo = prop::sample::select(vec!["", "", "u@", "u:p@", ":@"]);
            let host = prop::sample::select(vec![
                "127.0.0.1",
                "127.0.0.2",
                "127.1",
                "2130706433",
                "[::1]",
                "[0:0::1]",
                "[::ffff:127.0.0.1]",
                "localhost",
                "app.example",
                "APP.example",
                "10.0.0.1",
            ]);
            let port = prop::sample::select(vec!["", "", ":80", ":443", ":8000", ":51234", ":"]);
            let path = prop::sample::select(vec![
                "/cb", "/cb", "/cb/", "/CB", "/a/../cb", "/./cb", "", "/cb%2F", "/%63b", "//cb",
            ]);
            let query = prop::sample::select(vec!["", "", "?", "?x=1", "?x=1&y=2", "?x=%31"]);
            let fragment = prop::sample::select(vec!["", "", "", "#", "#f"]);
            (scheme, userinfo, host, port, path, query, fragment)
                .prop_map(|(a, b, c, d, e, f, g)| [a, b, c, d, e, f, g])
        }

        fn uri() -> impl Strategy<Value = String> {
            parts().prop_map(|p| p.concat())
        }

        /// A registered URI and a candidate that shares most of its parts with it.
        fn pair() -> impl Strategy<Value = (String, String)> {
            (
                parts(),
                parts(),
                prop::collection::vec(prop::bool::weighted(0.8), 7),
            )
                .prop_map(|(registered, other, keep)| {
                    let candidate: Vec<&str> = (0..7)
                        .map(|i| if keep[i] { registered[i] } else { other[i] })
                        .collect();
                    (registered.concat(), candidate.concat())
                })
        }

        /// The rule `matches` implements, stated on its own: the same string, or for an http
        /// URI whose host is a loopback IP literal, a candidate (no fragment) that parses to
        /// exactly the registered URI once its port is replaced by the registered one.
        fn allowed(registered: &str, candidate: &str) -> bool {
            if registered == candidate {
                return true;
            }
            let (Ok(r), Ok(mut c)) = (Url::parse(registered), Url::parse(candidate)) else {
                return false;
            };
            let loopback_ip = |u: &Url| {
                u.scheme() == "http"
                    && u.host_str().is_some_and(|h| {
                        h.trim_start_matches('[')
                            .trim_end_matches(']')
                            .parse::<std::net::IpAddr>()
                            .is_ok_and(|ip| ip.is_loopback())
                    })
            };
            if !loopback_ip(&r) || !loopback_ip(&c) || candidate.contains('#') {
                return false;
            }
            c.set_port(r.port()).is_ok() && c.as_str() == r.as_str()
        }

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(512))]

            #[test]
            fn no_uri_matches_unless_the_rule_allows_it((registered, candidate) in pair()) {
                let Ok(parsed) = RedirectUri::parse(&registered) else {
                    return Ok(());
                };
                let matched = parsed.matches(&candidate);
                prop_assert!(
                    !matched || allowed(&registered, &candidate),
                    "{registered} accepted {candidate}"
                );
                prop_assert!(parsed.matches(&registered));
            }

            #[test]
            fn a_registered_uri_with_only_its_port_changed(
                registered in uri(),
                port in prop::option::of(1u16..),
            ) {
                let Ok(parsed) = RedirectUri::parse(&registered) else {
                    return Ok(());
                };
                let mut candidate = Url::parse(&registered).unwrap();
                if candidate.set_port(port).is_err() {
                    return Ok(());
                }
                // Loopback http IP literals without user info ignore the port; everything else
                // compares exactly.
                let loopback = candidate.scheme() == "http"
                    && candidate.username().is_empty()
                    && candidate.password().is_none()
                    && match candidate.host() {
                        Some(Host::Ipv4(ip)) => ip.is_loopback(),
                        Some(Host::Ipv6(ip)) => ip.is_loopback(),
                        _ => false,
                    };
                let expected = loopback || candidate.as_str() == registered;
                prop_assert_eq!(parsed.matches(candidate.as_str()), expected, "{}", candidate);
            }
        }
    }
}
