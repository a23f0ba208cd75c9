//! Who is making an admin change, as the audit log records it.

/// The signed-in admin or API token behind a request, and the address it came from.
#[derive(Debug, Clone)]
pub struct Caller {
    /// `admin:<email>`, `api_token:<name> (<id>)`, `cli` or `bootstrap`.
    pub actor: String,
    pub ip: Option<String>,
}

impl Caller {
    pub fn cli() -> Self {
        Self {
            actor: "cli".into(),
            ip: None,
        }
    }

    pub fn ip(&self) -> Option<&str> {
        self.ip.as_deref()
    }
}

/// The client address of a request, as `ops::client_ip` resolved it. Forwarded headers count
/// only from `server.trusted_proxies`: a client could forge them to escape the per-IP sign-in
/// lockout.
pub fn peer_ip(req: &actix_web::HttpRequest) -> Option<String> {
    crate::ops::client_ip::client_ip_text(req)
}
