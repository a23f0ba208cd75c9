//! `GET /login`: the provider chooser, and the start of the upstream login.
//!
//! `/login?req=ID` shows the providers the client allows (with a field for a work e-mail
//! that picks the provider serving its domain: the home-realm hint); `&provider=P` or
//! `&email=E` starts the login at that provider through its `CallbackLogin` capability (or
//! `SamlLogin`, whose RelayState takes the place of `state`).

use std::collections::HashMap;

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, get, web};

use super::authorize::{AuthRequest, server_error_page};
use super::callback::record_failure;
use super::error::{ErrorCode, error_location};
use super::session::LOGIN_COOKIE;
use super::web::{LoginPage, ProviderChoice, error_page, error_page_with_way_back, render};
use crate::grants::pending::{self, AccountLogin, Pending, Purpose};
use crate::providers::Provider;
use crate::state::AppState;
use crate::upstream::{LoginRequest, UpstreamError};

pub fn expired_page() -> HttpResponse {
    error_page(
        StatusCode::BAD_REQUEST,
        "This sign-in has expired",
        "This sign-in link is no longer valid or was opened in another browser.",
    )
}

#[get("/login")]
pub async fn login_page(
    req: HttpRequest,
    state: web::Data<AppState>,
    query: web::Query<HashMap<String, String>>,
) -> HttpResponse {
    let Some(id) = query.get("req") else {
        return error_page(
            StatusCode::BAD_REQUEST,
            "Nothing to sign in to",
            "Start from the application you want to use; it will send you here.",
        );
    };
    let pending = match pending::find(&state.store, id).await {
        Ok(Some(p)) => p,
        Ok(None) => return expired_page(),
        Err(e) => return server_error_page(e),
    };
    let cookie = req.cookie(LOGIN_COOKIE);
    if !pending.is_live() || !pending.belongs_to(cookie.as_ref().map(|c| c.value())) {
        return expired_page();
    }
    let enabled = match crate::providers::repo::enabled(&state.store).await {
        Ok(list) => list,
        Err(e) => return server_error_page(e),
    };
    let (client_name, providers): (String, Vec<Provider>) = match &pending.purpose {
        Purpose::Authorize(request) => {
            match crate::clients::repo::find(&state.store, &request.client_id).await {
                Ok(Some(client)) => (
                    client.name.clone(),
                    (enabled.into_iter())
                        .filter(|p| client.allows_provider(&p.id))
                        .collect(),
                ),
                Ok(None) => return expired_page(),
                Err(e) => return server_error_page(e),
            }
        }
        // A step-up signs in again where the session came from, nowhere else.
        Purpose::Account(AccountLogin::StepUp { provider_id, .. }) => (
            "your account".to_owned(),
            (enabled.into_iter())
                .filter(|p| p.id.as_str() == provider_id)
                .collect(),
        ),
        Purpose::Account(_) => ("your account".to_owned(), enabled),
    };
    let email = query.get("email").map(|e| e.trim().to_ascii_lowercase());
    let chosen = match (query.get("provider"), &email) {
        (Some(p), _) => match providers.iter().find(|x| x.id.as_str() == p) {
            Some(found) => Some(found),
            None => {
                return error_page(
                    StatusCode::BAD_REQUEST,
                    "Unknown sign-in method",
                    "That sign-in method is not available for this application.",
                );
            }
        },
        (None, Some(e)) => providers.iter().find(|p| p.serves_email(e)),
        // One way in: no need to ask.
        (None, None) if providers.len() == 1 => providers.first(),
        (None, None) => None,
    };
    let Some(provider) = chosen else {
        let note = email
            .as_ref()
            .map(|_| "No organisation sign-in is set up for that e-mail domain.".to_owned());
        let page = LoginPage {
            brand: super::branding::Brand::current(),
            client_name,
            request_id: pending.id.clone(),
            show_email: providers.iter().any(|p| !p.email_domains.is_empty()),
            email: email.unwrap_or_default(),
            providers: providers
                .iter()
                .map(|p| ProviderChoice {
                    id: p.id.to_string(),
                    name: p.display_name.clone(),
                    logo: super::logos::url(p.kind),
                    domains: p.email_domains.clone(),
                })
                .collect(),
            note,
        };
        return render(StatusCode::OK, &page);
    };
    start_upstream(&req, &state, &pending, provider, email.as_deref()).await
}

async fn start_upstream(
    req: &HttpRequest,
    state: &AppState,
    pending: &Pending,
    provider: &Provider,
    email: Option<&str>,
) -> HttpResponse {
    let connector = match state.connectors.connector(provider) {
        Ok(c) => c,
        Err(e) => return server_error_page(e),
    };
    // A provider that keeps failing is not where to send the user: say so at once (its login
    // may need no request from here, its discovery document being cached).
    let refused = state.connectors.http().open_refusal(&provider.id);
    let redirect_uri = state.settings.server.issuer.callback(&provider.id);
    let request = match &pending.purpose {
        Purpose::Authorize(r) => LoginRequest {
            redirect_uri: &redirect_uri,
            login_hint: r.login_hint.as_deref().or(email),
            force_login: r.prompt_login,
            max_age: r.max_age,
            extra_scopes: &[],
        },
        Purpose::Account(a) => LoginRequest {
            redirect_uri: &redirect_uri,
            login_hint: email,
            force_login: a.force_login(),
            max_age: a.max_age(),
            extra_scopes: &[],
        },
    };
    // A SAML provider starts with an AuthnRequest; its RelayState is the `state` below.
    let begun = if let Some(why) = refused {
        Err(UpstreamError::Unavailable(why.to_string()))
    } else if let Some(saml) = connector.saml_login() {
        saml.begin(request).await
    } else if let Some(login) = connector.callback_login() {
        login.begin(request).await
    } else {
        return error_page(
            StatusCode::BAD_REQUEST,
            "Unsupported sign-in method",
            "This provider does not sign in by redirect.",
        );
    };
    match begun {
        Ok(start) => {
            if let Err(e) = pending::started(
                &state.store,
                &state.sealer,
                &pending.id,
                provider.id.as_str(),
                &start.state,
                &start.secret,
            )
            .await
            {
                return server_error_page(e);
            }
            super::error::found(start.url.to_string())
        }
        Err(err) => {
            record_failure(
                state,
                req,
                Some(provider.id.as_str()),
                pending.purpose.client_id(),
                &err,
            )
            .await;
            upstream_failure(
                &err,
                pending.purpose.auth_request(),
                state.settings.server.issuer.as_str(),
            )
        }
    }
}

/// The page of an upstream sign-in that failed: the provider unreachable, its answer
/// refused, or a policy refusing the identity. It says which, and offers a way back to the
/// application (when the request is known) carrying the matching OAuth error, so that the
/// application learns the outcome too. A user who declined at the provider goes straight
/// back to the application: there is nothing to explain.
pub fn upstream_failure(
    err: &UpstreamError,
    request: Option<&AuthRequest>,
    issuer: &str,
) -> HttpResponse {
    let (status, title, message, code) = match err {
        UpstreamError::Denied { error, .. } if error == "access_denied" => {
            if let Some(request) = request {
                let text = "the user declined at the sign-in provider";
                return super::authorize::access_denied(request, text, issuer);
            }
            (
                StatusCode::FORBIDDEN,
                "Sign-in cancelled",
                "The sign-in was declined at the provider.",
                ErrorCode::AccessDenied,
            )
        }
        UpstreamError::Refused(_) => (
            StatusCode::FORBIDDEN,
            "Sign-in not allowed",
            "Your account at this sign-in provider is not allowed to use this application. \
             If you think it should be, tell your administrator.",
            ErrorCode::AccessDenied,
        ),
        UpstreamError::Unavailable(_) => (
            StatusCode::BAD_GATEWAY,
            "Sign-in provider unavailable",
            "The sign-in provider could not be reached or had an error. Please try again in a \
             moment.",
            ErrorCode::TemporarilyUnavailable,
        ),
        _ => (
            StatusCode::BAD_GATEWAY,
            "Sign-in failed",
            "The sign-in provider's answer could not be accepted. If this keeps happening, \
             tell your administrator.",
            ErrorCode::AccessDenied,
        ),
    };
    match request {
        Some(request) => {
            let back = error_location(
                &request.redirect_uri,
                code,
                "the upstream sign-in failed",
                request.state.as_deref(),
                issuer,
            );
            error_page_with_way_back(status, title, message, &back)
        }
        None => error_page(status, title, message),
    }
}
