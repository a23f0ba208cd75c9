//! Secrets shown once, after a redirect (Post/Redirect/Get).
//!
//! The POST that makes a secret (a client's, a webhook endpoint's, an admin API token) answers
//! 303 to the object's reveal page, `…/{id}/secret`, and hands the secret over in a cookie:
//! sealed with the master key (AES-256-GCM) to this admin session, the kind of secret and the
//! object; `HttpOnly`, `SameSite=Strict`, sent to that page only, for five minutes. The page
//! opens it, shows the secret and removes the cookie in the same answer, so a reload finds
//! nothing and says that the secret was shown once.
//!
//! Nothing is kept in a process's memory nor in the database: whichever instance behind the
//! load balancer answers the GET can open it (they share the master key), and the secret never
//! rests server-side, even sealed. A copy of the cookie opens in no other session and on no
//! other object's page; within its five minutes it could be shown again only to someone holding
//! this admin's session, who could as well rotate the secret.

use actix_web::cookie::{Cookie, SameSite, time::Duration};
use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse};
use askama::Template;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use secrecy::ExposeSecret;

use crate::admin::auth::session::AdminSession;
use crate::admin::http::error::PageError;
use crate::admin::http::pages::{Chrome, url_segment};
use crate::crypto::{SealError, SealTarget};
use crate::state::AppState;

/// How long a secret waits for its page.
const MAX_AGE_SECS: i64 = 300;

/// The kinds of secret shown once, each on its object's page `{base}/{id}/secret`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Secret {
    Client,
    Webhook,
    ApiToken,
}

impl Secret {
    fn base(self) -> &'static str {
        match self {
            Secret::Client => "/admin/clients",
            Secret::Webhook => "/admin/webhooks",
            Secret::ApiToken => "/admin/tokens",
        }
    }

    /// What the seal is bound to besides the session and the object.
    fn column(self) -> &'static str {
        match self {
            Secret::Client => "client_secret",
            Secret::Webhook => "webhook_secret",
            Secret::ApiToken => "api_token",
        }
    }

    /// The reveal page of the object `id` (a path: the cookie's `Path`).
    pub fn page(self, id: &str) -> String {
        format!("{}/{}/secret", self.base(), url_segment(id))
    }
}

/// `__Secure-` under an https issuer: only a secure page may set it. (`__Host-` would need
/// `Path=/`, and this cookie must reach one page only.)
pub fn cookie_name(https: bool) -> &'static str {
    if https {
        "__Secure-portico_reveal"
    } else {
        "portico_reveal"
    }
}

fn cookie(https: bool, path: String, value: String) -> Cookie<'static> {
    Cookie::build(cookie_name(https), value)
        .path(path)
        .http_only(true)
        .secure(https)
        .same_site(SameSite::Strict)
        .max_age(Duration::seconds(MAX_AGE_SECS))
        .finish()
}

/// The seal's binding: this session, this kind of secret, this object. The session is named by
/// the digest of its cookie (64 hex digits), so the row cannot be read two ways.
fn row(session: &AdminSession, id: &str) -> String {
    format!("{}/{id}", session.id())
}

/// The 303 to the reveal page of `id` (with `?done=`) that carries `secret` there, once.
pub(crate) fn hand_over(
    state: &AppState,
    session: &AdminSession,
    (kind, id): (Secret, &str),
    secret: &str,
    done: &str,
) -> HttpResponse {
    let row = row(session, id);
    let sealed = state
        .sealer
        .seal_str(secret, SealTarget::new("admin_reveal", kind.column(), &row));
    let page = kind.page(id);
    let https = state.settings.server.issuer.is_https();
    HttpResponse::SeeOther()
        .insert_header(("location", format!("{page}?done={done}")))
        .cookie(cookie(https, page, URL_SAFE_NO_PAD.encode(sealed)))
        .finish()
}

/// The answer's part in the one showing: the cookie that removes the secret from the browser.
pub(crate) struct Removal(Cookie<'static>);

impl Removal {
    /// The reveal page (200), the cookie removed with it.
    pub(crate) fn with(self, page: &RevealPage) -> Result<HttpResponse, PageError> {
        Ok(HttpResponse::build(StatusCode::OK)
            .content_type("text/html; charset=utf-8")
            .cookie(self.0)
            .body(page.render()?))
    }
}

/// Opens the secret waiting for this session on the reveal page of `id`, if one does: a
/// missing, expired, tampered or foreign cookie is none (logged when it was there but did not
/// open). The answer must carry the [`Removal`].
pub(crate) fn take(
    req: &HttpRequest,
    state: &AppState,
    session: &AdminSession,
    (kind, id): (Secret, &str),
) -> (Option<String>, Removal) {
    let https = state.settings.server.issuer.is_https();
    let mut removal = cookie(https, kind.page(id), String::new());
    removal.make_removal();
    let Some(presented) = req.cookie(cookie_name(https)) else {
        return (None, Removal(removal));
    };
    let row = row(session, id);
    let target = SealTarget::new("admin_reveal", kind.column(), &row);
    let opened = URL_SAFE_NO_PAD
        .decode(presented.value())
        .map_err(|_| SealError::Malformed)
        .and_then(|sealed| state.sealer.open_string(&sealed, target));
    let secret = match opened {
        Ok(secret) => Some(secret.expose_secret().to_owned()),
        Err(e) => {
            tracing::warn!(admin = %session.admin.email, error = %e, "a reveal cookie did not open");
            None
        }
    };
    (secret, Removal(removal))
}

/// A link on the reveal page.
pub(crate) struct Link {
    pub(crate) href: String,
    pub(crate) label: &'static str,
}

/// The page that shows a secret once, or says that it was shown.
#[derive(Template)]
#[template(path = "admin/reveal.html")]
pub(crate) struct RevealPage {
    pub(crate) chrome: Chrome,
    pub(crate) title: String,
    pub(crate) secret: Option<String>,
    /// The element id of the secret (the Copy button's target).
    pub(crate) code_id: &'static str,
    /// What to do with it, above it: "Copy it now: it is shown only this once…".
    pub(crate) shown: &'static str,
    /// More about it, below it.
    pub(crate) notes: Vec<String>,
    /// When it is not here any more: that it was shown once, and how to get a new one.
    pub(crate) gone: &'static str,
    pub(crate) renew: Link,
    /// A client's configuration lines (key, value: issuer, client id, redirect URI…), shown
    /// with the secret while it is shown.
    pub(crate) snippet: Option<Vec<(&'static str, String)>>,
    /// On to the object.
    pub(crate) next: Link,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cookie_reaches_one_page_briefly_and_never_a_script() {
        let page = Secret::Client.page("a/b");
        assert_eq!(page, "/admin/clients/a%2Fb/secret");
        assert_eq!(Secret::ApiToken.page("tok_1"), "/admin/tokens/tok_1/secret");
        for https in [true, false] {
            let c = cookie(https, page.clone(), "sealed".into());
            assert_eq!(c.name(), cookie_name(https));
            assert_eq!(c.path(), Some(page.as_str()));
            assert_eq!(c.secure(), Some(https));
            assert_eq!(c.http_only(), Some(true));
            assert_eq!(c.same_site(), Some(SameSite::Strict));
            assert_eq!(c.max_age(), Some(Duration::seconds(300)));
        }
        assert_eq!(cookie_name(true), "__Secure-portico_reveal");
        assert_eq!(cookie_name(false), "portico_reveal");
    }
}
