//! The SAML endpoints of a provider of kind saml: `GET /saml/{provider}/metadata` (our SP
//! metadata, for the IdP admin), `POST /saml/{provider}/acs` (the IdP's HTTP-POST) and
//! `GET /saml/{provider}/complete` (the browser's next step).
//!
//! The ACS POST comes cross-site from the IdP, so the SameSite=Lax login cookie is not sent
//! with it, and anyone can make a browser send it: an attacker's page can auto-post the
//! attacker's own Response and RelayState from the victim's browser (login CSRF). So the ACS
//! only verifies: it finds the pending authorization by RelayState (an unguessable single-use
//! handle, claimed here), the connector accepts only the Response to the AuthnRequest that this
//! pending authorization sent (InResponseTo, consumed once), and the verified identity is kept
//! sealed in the pending row. The browser is then sent (303) to the completion step, a
//! same-site top-level GET that carries the login cookie; only the browser that started the
//! login gets a session and a code (`complete::finish_login`, as after an OIDC callback).
//!
//! IdP-initiated logins (off unless configured) have no pending authorization and nothing to
//! bind them to a browser: they are login CSRF by design, and docs/SECURITY.md says so.

use actix_web::http::{StatusCode, header};
use actix_web::{HttpRequest, HttpResponse, get, web};
use futures_util::StreamExt;
use serde::Deserialize;

use super::authorize::{AuthRequest, server_error_page};
use super::callback::record_failure;
use super::complete::finish_login;
use super::login::{expired_page, upstream_failure};
use super::scope::Scope;
use super::session::LOGIN_COOKIE;
use super::web::error_page;
use crate::clients::GrantType;
use crate::grants::pending;
use crate::providers::Provider;
use crate::state::AppState;
use crate::upstream::saml::MAX_RESPONSE_BYTES;
use crate::upstream::{Connector, IdpInitiatedTarget, SamlLogin, UpstreamError};

/// The whole form may be a little larger than the SAMLResponse value it carries: percent
/// escapes of `+`, `/` and `=`, and the RelayState.
pub const MAX_ACS_FORM_BYTES: usize = MAX_RESPONSE_BYTES + MAX_RESPONSE_BYTES / 8 + 4096;

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(metadata)
        .service(complete)
        .route("/saml/{provider}/acs", web::post().to(acs));
}

fn unknown_provider() -> HttpResponse {
    error_page(
        StatusCode::NOT_FOUND,
        "Unknown sign-in method",
        "This sign-in method is not available.",
    )
}

/// The saml provider `id` and its connector; `Err` is the page to show.
async fn saml_provider(
    state: &AppState,
    id: &str,
    must_be_enabled: bool,
) -> Result<(Provider, std::sync::Arc<dyn Connector>), HttpResponse> {
    let provider = match crate::providers::repo::find(&state.store, id).await {
        Ok(Some(p)) if p.enabled || !must_be_enabled => p,
        Ok(_) => return Err(unknown_provider()),
        Err(e) => return Err(server_error_page(e)),
    };
    let connector = state
        .connectors
        .connector(&provider)
        .map_err(server_error_page)?;
    if connector.saml_login().is_none() {
        return Err(unknown_provider());
    }
    Ok((provider, connector))
}

#[get("/saml/{provider}/metadata")]
pub async fn metadata(state: web::Data<AppState>, path: web::Path<String>) -> HttpResponse {
    // Served for disabled providers too: the IdP is usually set up before the provider is on.
    let (_, connector) = match saml_provider(&state, &path, false).await {
        Ok(found) => found,
        Err(page) => return page,
    };
    let saml = connector.saml_login().expect("checked by saml_provider");
    match saml.sp_metadata() {
        Ok(xml) => HttpResponse::Ok()
            .content_type("application/samlmetadata+xml")
            .insert_header((header::CACHE_CONTROL, "public, max-age=300"))
            .body(xml),
        Err(e) => server_error_page(e),
    }
}

/// The refusal page of a SAML login. The reason is ours (`SamlError::reason()`), never text
/// from the message.
fn refused_page(err: &UpstreamError, request: Option<&AuthRequest>, issuer: &str) -> HttpResponse {
    match err {
        UpstreamError::SamlResponse(reason) => error_page(
            StatusCode::BAD_REQUEST,
            "Sign-in failed",
            &format!(
                "Your organisation's sign-in response could not be accepted ({reason}). Please \
                 start again from the application; if this keeps happening, tell your \
                 administrator."
            ),
        ),
        other => upstream_failure(other, request, issuer),
    }
}

/// Reads the form body up to `MAX_ACS_FORM_BYTES`; `None` when it is larger.
async fn read_form(mut payload: web::Payload) -> Result<Option<Vec<u8>>, actix_web::Error> {
    let mut body = Vec::new();
    while let Some(chunk) = payload.next().await {
        let chunk = chunk?;
        if body.len() + chunk.len() > MAX_ACS_FORM_BYTES {
            return Ok(None);
        }
        body.extend_from_slice(&chunk);
    }
    Ok(Some(body))
}

/// One value of the form; a repeated field is refused (it would make the message ambiguous).
fn field(form: &[(String, String)], name: &str) -> Result<Option<String>, ()> {
    let mut values = form.iter().filter(|(k, _)| k == name);
    let first = values.next().map(|(_, v)| v.clone());
    match values.next() {
        Some(_) => Err(()),
        None => Ok(first.filter(|v| !v.is_empty())),
    }
}

pub async fn acs(
    req: HttpRequest,
    state: web::Data<AppState>,
    path: web::Path<String>,
    payload: web::Payload,
) -> HttpResponse {
    let provider_id = path.into_inner();
    let issuer = state.settings.server.issuer.as_str();
    let fail = async |client_id: Option<&str>, reason: &dyn std::fmt::Display| {
        record_failure(&state, &req, Some(&provider_id), client_id, reason).await;
    };
    let failed = |status, message| error_page(status, "Sign-in failed", message);
    let body = match read_form(payload).await {
        Ok(Some(body)) => body,
        Ok(None) => {
            fail(None, &"response too large").await;
            let message = "The sign-in response is too large to be accepted.";
            return failed(StatusCode::PAYLOAD_TOO_LARGE, message);
        }
        Err(e) => return server_error_page(e),
    };
    let form: Vec<(String, String)> = url::form_urlencoded::parse(&body).into_owned().collect();
    let (Ok(saml_response), Ok(relay_state)) =
        (field(&form, "SAMLResponse"), field(&form, "RelayState"))
    else {
        fail(None, &"repeated form field").await;
        let refusal = UpstreamError::SamlResponse("repeated form field".into());
        return refused_page(&refusal, None, issuer);
    };
    let Some(saml_response) = saml_response else {
        fail(None, &"no SAMLResponse").await;
        let message = "The sign-in response is missing. Please start again from the application.";
        return failed(StatusCode::BAD_REQUEST, message);
    };

    // The login this answers, if the RelayState names one (single use: claimed here).
    let pending = match relay_state {
        Some(relay) => match pending::claim_by_state(&state.store, &state.sealer, &relay).await {
            Ok(found) => found,
            Err(e) => return server_error_page(e),
        },
        None => None,
    };
    let client_id = pending
        .as_ref()
        .and_then(|(p, _)| p.purpose.client_id().map(str::to_owned));
    // A refused answer to a pending login ends that login.
    let drop_pending = async || match &pending {
        Some((p, _)) => pending::delete(&state.store, &p.id).await,
        None => Ok(()),
    };
    if let Some((p, _)) = &pending {
        let problem = if p.provider_id.as_deref() != Some(provider_id.as_str()) {
            Some("the response came to another provider's endpoint")
        } else if !p.is_live() {
            Some("the login took too long and expired")
        } else {
            None
        };
        if let Some(reason) = problem {
            fail(client_id.as_deref(), &reason).await;
            return match drop_pending().await {
                Ok(()) => expired_page(),
                Err(e) => server_error_page(e),
            };
        }
    }

    let (provider, connector) = match saml_provider(&state, &provider_id, true).await {
        Ok(found) => found,
        Err(page) => return page,
    };
    let saml = connector.saml_login().expect("checked by saml_provider");
    let secret = pending.as_ref().map(|(_, secret)| secret);
    let identity = match saml.finish(&saml_response, secret).await {
        Ok(identity) => identity,
        Err(err) => {
            fail(client_id.as_deref(), &err.reason()).await;
            if let Err(e) = drop_pending().await {
                return server_error_page(e);
            }
            let request = pending.as_ref().and_then(|(p, _)| p.purpose.auth_request());
            return refused_page(&err, request, issuer);
        }
    };

    match &pending {
        // The browser that started the login must come for it (see the module doc).
        Some((p, _)) => {
            let verified =
                serde_json::to_string(&identity).expect("a verified identity serialises");
            if let Err(e) = pending::complete(&state.store, &state.sealer, &p.id, &verified).await {
                return server_error_page(e);
            }
            let next = state.settings.server.issuer.url(&format!(
                "/saml/{}/complete?req={}",
                provider.id,
                url::form_urlencoded::byte_serialize(p.id.as_bytes()).collect::<String>()
            ));
            HttpResponse::SeeOther()
                .insert_header((header::LOCATION, next))
                .insert_header((header::CACHE_CONTROL, "no-store"))
                .finish()
        }
        // The connector lets an unsolicited Response through only where IdP-initiated logins
        // are on; it lands where the admin said.
        None => match idp_initiated_request(&state, &provider, saml).await {
            Ok(request) => finish_login(&req, &state, &provider, &request, None, &identity).await,
            Err(reason) => {
                fail(None, &reason).await;
                let message = "Signing in from your organisation's portal is not set up \
                               correctly for this application. Tell your administrator.";
                failed(StatusCode::BAD_REQUEST, message)
            }
        },
    }
}

#[derive(Deserialize)]
struct CompleteQuery {
    req: String,
}

/// The completion step: the login whose Response the ACS verified, finished only in the
/// browser that started it (its login cookie holds the binding).
#[get("/saml/{provider}/complete")]
pub async fn complete(
    req: HttpRequest,
    state: web::Data<AppState>,
    path: web::Path<String>,
    query: web::Query<CompleteQuery>,
) -> HttpResponse {
    let provider_id = path.into_inner();
    // Checked before it is taken: a stranger who learnt the id cannot spend the login.
    let pending = match pending::find(&state.store, &query.req).await {
        Ok(Some(p)) => p,
        Ok(None) => return expired_page(),
        Err(e) => return server_error_page(e),
    };
    let client_id = pending.purpose.client_id().map(str::to_owned);
    let cookie = req.cookie(LOGIN_COOKIE);
    let problem = if pending.provider_id.as_deref() != Some(provider_id.as_str()) {
        Some("the completion came to another provider's endpoint")
    } else if !pending.belongs_to(cookie.as_ref().map(|c| c.value())) {
        Some("the SAML response reached a browser that did not start the login")
    } else if !pending.is_live() {
        Some("the login took too long and expired")
    } else {
        None
    };
    if let Some(reason) = problem {
        let client_id = client_id.as_deref();
        record_failure(&state, &req, Some(&provider_id), client_id, &reason).await;
        return expired_page();
    }
    let (pending, verified) =
        match pending::take_completed(&state.store, &state.sealer, &pending.id).await {
            Ok(Some(found)) => found,
            Ok(None) => return expired_page(),
            Err(e) => return server_error_page(e),
        };
    let (provider, _) = match saml_provider(&state, &provider_id, true).await {
        Ok(found) => found,
        Err(page) => return page,
    };
    let identity = match serde_json::from_str(secrecy::ExposeSecret::expose_secret(&verified)) {
        Ok(identity) => identity,
        Err(e) => return server_error_page(e),
    };
    super::complete::finish_pending(&req, &state, &provider, &pending, &identity).await
}

/// The authorization request an IdP-initiated login stands for: the configured client and
/// redirect URI, checked against the client as registered now.
async fn idp_initiated_request(
    state: &AppState,
    provider: &Provider,
    saml: &dyn SamlLogin,
) -> Result<AuthRequest, String> {
    let Some(IdpInitiatedTarget {
        client_id,
        redirect_uri,
        scope,
    }) = saml.idp_initiated()
    else {
        return Err("IdP-initiated login not allowed".into());
    };
    let misconfigured = |what: &str| format!("IdP-initiated login misconfigured: {what}");
    let client = crate::clients::repo::find(&state.store, client_id)
        .await
        .map_err(|e| {
            tracing::error!(error = %e, "loading the IdP-initiated client failed");
            misconfigured("client lookup failed")
        })?
        .ok_or_else(|| misconfigured("unknown client"))?;
    let redirect = client
        .redirect_uri(redirect_uri)
        .ok_or_else(|| misconfigured("redirect URI not registered for the client"))?;
    if !client.allows_provider(&provider.id) || !client.allows_grant(GrantType::AuthorizationCode) {
        return Err(misconfigured("the client may not use this provider"));
    }
    let scope = Scope::parse(scope)
        .ok()
        .filter(|s| s.within(&client.scopes))
        .ok_or_else(|| misconfigured("scope not allowed for the client"))?;
    Ok(AuthRequest {
        client_id: client.client_id.as_str().to_owned(),
        redirect_uri: redirect,
        scope: scope.to_string(),
        state: None,
        nonce: None,
        code_challenge: None,
        resource: None,
        max_age: None,
        prompt_login: false,
        login_hint: None,
    })
}
