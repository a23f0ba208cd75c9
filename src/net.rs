//! Network facts that several rules share, defined once, and how an outbound request's failure
//! is told.

use url::{Host, Url};

/// Whether `url` is plain http to a loopback IP literal (127.0.0.0/8 or ::1): the one case
/// where http is accepted (native apps' redirect URIs, RFC 8252 section 7.3; local upstream
/// providers in development and tests). A name such as `localhost` is not: it resolves through
/// DNS and the hosts file, which an attacker on the machine or network may control.
pub fn is_loopback_http(url: &Url) -> bool {
    url.scheme() == "http"
        && match url.host() {
            Some(Host::Ipv4(ip)) => ip.is_loopback(),
            Some(Host::Ipv6(ip)) => ip.is_loopback(),
            _ => false,
        }
}

/// An error and its causes on one line, each cause once (an HTTP client's error often repeats
/// its cause in its own text).
pub fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(cause) = source {
        let next = cause.to_string();
        if !text.contains(&next) {
            text.push_str(": ");
            text.push_str(&next);
        }
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_http_to_a_loopback_ip_literal_counts() {
        for yes in [
            "http://127.0.0.1/cb",
            "http://127.3.4.5:8080/",
            "http://[::1]:9/x",
        ] {
            assert!(is_loopback_http(&Url::parse(yes).unwrap()), "{yes}");
        }
        for no in [
            "https://127.0.0.1/cb",
            "http://localhost/cb",
            "http://128.0.0.1/",
            "http://[::2]/",
            "http://0.0.0.0/",
        ] {
            assert!(!is_loopback_http(&Url::parse(no).unwrap()), "{no}");
        }
    }
}
