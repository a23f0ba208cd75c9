//! RP-initiated logout 1.0: `GET /logout` and the confirmation's `POST /logout`.
//!
//! A logout ends the SSO session (`session.ended`) and returns to a registered
//! `post_logout_redirect_uri` with `state`, or shows a signed-out page. An unregistered
//! redirect is refused with an error page, never followed.
//!
//! Any page on the web can make a browser GET `/logout` (an `<img>` will do), so a GET ends
//! the session at once only when an application proves it asks: an `id_token_hint` that
//! Portico issued to the signed-in user. Otherwise Portico asks the user (RP-Initiated Logout
//! section 2 allows, and recommends, asking), and ends the session on the confirmation form's
//! POST, whose CSRF token is derived from the session cookie: another site cannot read it,
//! and another browser's token does not fit.

use actix_web::http::{StatusCode, header};
use actix_web::{HttpRequest, HttpResponse, get, post, web};
use askama::Template;
use serde::Deserialize;

use super::authorize::server_error_page;
use super::branding::Brand;
use super::error::redirect_with;
use super::session::{self, SESSION_COOKIE};
use super::token::parse_form;
use super::web::{LoggedOutPage, error_page, render};
use crate::clients::RedirectUri;
use crate::keys::JwtType;
use crate::keys::jwt::Expect;
use crate::state::AppState;

#[derive(Deserialize)]
struct HintClaims {
    sub: String,
    aud: serde_json::Value,
}

#[derive(Template)]
#[template(path = "logout_confirm.html")]
struct ConfirmPage {
    brand: Brand,
    client_name: Option<String>,
    csrf: String,
    client_id: Option<String>,
    post_logout_redirect_uri: Option<String>,
    state: Option<String>,
}

/// The parameters of a logout request, from the query or the confirmation form.
#[derive(Debug, Default)]
struct Params {
    id_token_hint: Option<String>,
    client_id: Option<String>,
    post_logout_redirect_uri: Option<String>,
    state: Option<String>,
    csrf: Option<String>,
}

impl Params {
    fn from_pairs(pairs: impl Iterator<Item = (String, String)>) -> Self {
        let mut p = Self::default();
        for (k, v) in pairs.filter(|(_, v)| !v.is_empty()) {
            match k.as_str() {
                "id_token_hint" => p.id_token_hint = Some(v),
                "client_id" => p.client_id = Some(v),
                "post_logout_redirect_uri" => p.post_logout_redirect_uri = Some(v),
                "state" => p.state = Some(v),
                "csrf" => p.csrf = Some(v),
                _ => {}
            }
        }
        p
    }
}

/// A checked request: the client it names (by hint or `client_id`), where to go afterwards,
/// and the hinted user, if the hint was good.
struct Checked {
    client_id: Option<String>,
    client_name: Option<String>,
    target: Option<RedirectUri>,
    hinted_user: Option<String>,
}

fn bad(msg: &str) -> HttpResponse {
    error_page(StatusCode::BAD_REQUEST, "Invalid sign-out request", msg)
}

async fn check(state: &AppState, p: &Params) -> Result<Checked, HttpResponse> {
    // The hint may have expired: it still names the client and the user (RP-Initiated 2).
    let hint = match &p.id_token_hint {
        None => None,
        Some(hint) => {
            let expect = Expect {
                issuer: state.settings.server.issuer.as_str(),
                audience: None,
                typ: JwtType::Jwt,
                require_unexpired: false,
            };
            match state.keys.verify::<HintClaims>(hint, &expect).await {
                Ok(c) => Some(c),
                Err(_) => {
                    return Err(bad(
                        "The id_token_hint is not a valid ID token from Portico.",
                    ));
                }
            }
        }
    };
    let hinted_client = hint.as_ref().and_then(|c| match &c.aud {
        serde_json::Value::String(s) => Some(s.clone()),
        serde_json::Value::Array(a) => a.first().and_then(|v| v.as_str()).map(str::to_owned),
        _ => None,
    });
    let client_id = match (hinted_client, p.client_id.clone()) {
        (Some(h), Some(c)) if h != c => {
            return Err(bad("client_id does not match the id_token_hint."));
        }
        (Some(h), _) => Some(h),
        (None, c) => c,
    };
    let client = match &client_id {
        None => None,
        Some(id) => match crate::clients::repo::find(&state.store, id).await {
            Ok(found) => found,
            Err(e) => return Err(server_error_page(e)),
        },
    };
    let target = match &p.post_logout_redirect_uri {
        None => None,
        Some(uri) => {
            if client_id.is_none() {
                return Err(bad(
                    "A post_logout_redirect_uri needs an id_token_hint or client_id.",
                ));
            }
            let Some(client) = &client else {
                return Err(bad("The application is not registered."));
            };
            match client.post_logout_redirect_uri(uri) {
                Some(r) => Some(r.clone()),
                None => {
                    return Err(bad(
                        "The post_logout_redirect_uri is not registered for this application.",
                    ));
                }
            }
        }
    };
    Ok(Checked {
        client_name: client.map(|c| c.name),
        client_id,
        target,
        hinted_user: hint.map(|c| c.sub),
    })
}

/// The purpose the confirmation form's CSRF token is bound to (with the session cookie).
const CSRF_PURPOSE: &str = "logout confirmation";

/// Where the browser goes once the session is over.
fn done(state: &AppState, checked: &Checked, rp_state: Option<&str>, status: u16) -> HttpResponse {
    let mut response = match &checked.target {
        Some(uri) => {
            let params: Vec<(&str, &str)> = rp_state.map(|s| ("state", s)).into_iter().collect();
            let mut r = redirect_with(uri, &params);
            if status == 303 {
                *r.status_mut() = StatusCode::SEE_OTHER;
            }
            r
        }
        None => render(
            StatusCode::OK,
            &LoggedOutPage {
                brand: Brand::current(),
            },
        ),
    };
    let _ = response.add_removal_cookie(&session::removal(&state.settings, SESSION_COOKIE));
    response
}

#[get("/logout")]
pub async fn logout(req: HttpRequest, state: web::Data<AppState>) -> HttpResponse {
    let params = Params::from_pairs(
        url::form_urlencoded::parse(req.query_string().as_bytes())
            .map(|(k, v)| (k.into(), v.into())),
    );
    let checked = match check(&state, &params).await {
        Ok(c) => c,
        Err(page) => return page,
    };
    let session = match session::current(&state.store, &req, &state.settings).await {
        Ok(s) => s,
        Err(e) => return server_error_page(e),
    };
    let Some(session) = session else {
        // Nothing to end.
        return done(&state, &checked, params.state.as_deref(), 302);
    };
    let cookie = req
        .cookie(SESSION_COOKIE)
        .expect("a session has its cookie");
    if checked.hinted_user.as_deref() == Some(session.user_id.as_str()) {
        // The application that holds this user's ID token asks: no question.
        if let Err(e) = crate::grants::sessions::end(&state.store, cookie.value(), "logout").await {
            return server_error_page(e);
        }
        return done(&state, &checked, params.state.as_deref(), 302);
    }
    let page = ConfirmPage {
        brand: Brand::current(),
        client_name: checked.client_name.clone(),
        csrf: session::form_token(CSRF_PURPOSE, cookie.value()),
        client_id: checked.client_id.clone(),
        post_logout_redirect_uri: checked.target.as_ref().map(|t| t.as_str().to_owned()),
        state: params.state.clone(),
    };
    let mut response = render(StatusCode::OK, &page);
    // The question must not be framed or cached (clickjacking a sign-out is harmless, but
    // the page carries a token).
    response.headers_mut().insert(
        header::CACHE_CONTROL,
        header::HeaderValue::from_static("no-store"),
    );
    response
}

#[post("/logout")]
pub async fn confirm(
    req: HttpRequest,
    state: web::Data<AppState>,
    body: web::Bytes,
) -> HttpResponse {
    let Ok(form) = parse_form(&body) else {
        return bad("The sign-out form was malformed.");
    };
    let params = Params::from_pairs(form.into_iter());
    let checked = match check(&state, &params).await {
        Ok(c) => c,
        Err(page) => return page,
    };
    let Some(cookie) = req.cookie(SESSION_COOKIE) else {
        // No session in this browser (or a cross-site POST, which carries no cookie).
        return done(&state, &checked, params.state.as_deref(), 303);
    };
    let presented = params.csrf.as_deref().unwrap_or_default();
    if !session::form_token_matches(CSRF_PURPOSE, cookie.value(), presented) {
        return bad("The sign-out form has expired or came from elsewhere. Nothing was changed.");
    }
    if let Err(e) = crate::grants::sessions::end(&state.store, cookie.value(), "logout").await {
        return server_error_page(e);
    }
    done(&state, &checked, params.state.as_deref(), 303)
}
