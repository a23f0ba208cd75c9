//! `GET /logout`: RP-initiated logout 1.0. Ends the SSO session (`session.ended`) and
//! returns to a registered `post_logout_redirect_uri` with `state`, or shows a signed-out
//! page. An unregistered redirect is refused with an error page, never followed.

use std::collections::HashMap;

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, get, web};
use serde::Deserialize;

use super::authorize::server_error_page;
use super::error::redirect_with;
use super::session::{self, SESSION_COOKIE};
use super::web::{LoggedOutPage, error_page, render};
use crate::keys::JwtType;
use crate::keys::jwt::Expect;
use crate::state::AppState;

#[derive(Deserialize)]
struct HintClaims {
    aud: serde_json::Value,
}

#[get("/logout")]
pub async fn logout(
    req: HttpRequest,
    state: web::Data<AppState>,
    query: web::Query<HashMap<String, String>>,
) -> HttpResponse {
    let bad = |msg: &str| error_page(StatusCode::BAD_REQUEST, "Invalid sign-out request", msg);
    let get = |k: &str| query.get(k).map(String::as_str).filter(|v| !v.is_empty());

    // The hint may have expired: it still names the client and the user (RP-Initiated 2).
    let hinted_client = match get("id_token_hint") {
        None => None,
        Some(hint) => {
            let expect = Expect {
                issuer: state.settings.server.issuer.as_str(),
                audience: None,
                typ: JwtType::Jwt,
                require_unexpired: false,
            };
            match state.keys.verify::<HintClaims>(hint, &expect).await {
                Ok(c) => match c.aud {
                    serde_json::Value::String(s) => Some(s),
                    serde_json::Value::Array(a) => {
                        a.first().and_then(|v| v.as_str()).map(str::to_owned)
                    }
                    _ => None,
                },
                Err(_) => return bad("The id_token_hint is not a valid ID token from Portico."),
            }
        }
    };
    let client_id = match (hinted_client, get("client_id")) {
        (Some(h), Some(c)) if h != c => return bad("client_id does not match the id_token_hint."),
        (Some(h), _) => Some(h),
        (None, c) => c.map(str::to_owned),
    };

    let target = match get("post_logout_redirect_uri") {
        None => None,
        Some(uri) => {
            let Some(client_id) = &client_id else {
                return bad("A post_logout_redirect_uri needs an id_token_hint or client_id.");
            };
            let client = match state.store.client(client_id).await {
                Ok(Some(c)) => c,
                Ok(None) => return bad("The application is not registered."),
                Err(e) => return server_error_page(e),
            };
            match client.post_logout_redirect_uri(uri) {
                Some(r) => Some(r.as_str().to_owned()),
                None => {
                    return bad(
                        "The post_logout_redirect_uri is not registered for this application.",
                    );
                }
            }
        }
    };

    if let Some(cookie) = req.cookie(SESSION_COOKIE)
        && let Err(e) = session::end(&state.store, cookie.value(), "logout").await
    {
        return server_error_page(e);
    }
    let mut response = match target {
        Some(uri) => {
            let mut params = Vec::new();
            if let Some(s) = get("state") {
                params.push(("state", s));
            }
            redirect_with(&uri, &params)
        }
        None => render(
            StatusCode::OK,
            &LoggedOutPage {
                brand: super::branding::Brand::current(),
            },
        ),
    };
    let _ = response.add_removal_cookie(&session::removal(&state.settings, SESSION_COOKIE));
    response
}
