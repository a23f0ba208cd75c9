//! "Try a login": from a client's page, the admin runs the real sign-in flow of that client
//! against Portico's own test callback, `{issuer}/admin/try-login/callback`, which shows the ID
//! token's claims.
//!
//! Nothing here widens what the client may do. The test callback must be one of the client's
//! registered redirect URIs like any other: when it is not, the button leads to a confirmation
//! that adds it (audited, in one transaction with the change). `POST …/{id}/try-login` (an admin
//! session and its CSRF token) makes a state, a nonce and a PKCE verifier, keeps them in a
//! cookie sealed with the master key to this admin session (as the reveal cookie is,
//! `admin::http::reveal`), and sends the browser to `/authorize` with S256 PKCE. The callback
//! needs the same admin session and the same state, or it refuses with a page and exchanges
//! nothing. The code is then redeemed in-process by the authorization_code grant
//! (`oidc::token`): it was issued to this client for this redirect URI, and the verifier, known
//! only to this server and this browser's sealed cookie, proves the flow is this one, so no
//! client secret is needed. The ID token is verified (signature, issuer, audience, expiry) and
//! its nonce compared; the page shows its claims and header, never a raw token.
//!
//! The cookie is `SameSite=Lax`: the flow comes back through the upstream provider, a
//! cross-site navigation, on which a browser withholds the `SameSite=Strict` admin session
//! cookie. The callback then answers a page that reloads itself from this origin once
//! (`resumed=1`), on which the session cookie is sent; with no session even then, it is the
//! sign-in page.

use std::collections::HashMap;

use actix_web::cookie::{Cookie, SameSite, time::Duration};
use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, ResponseError, web};
use askama::Template;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use secrecy::ExposeSecret;
use serde::{Deserialize, Serialize};
use subtle::ConstantTimeEq;

use crate::admin::auth::session::AdminSession;
use crate::admin::clients::pages::editable;
use crate::admin::clients::service::{self as clients_admin, ClientView};
use crate::admin::http::csrf::{NoFields, Protected};
use crate::admin::http::error::PageError;
use crate::admin::http::pages::{Ask, Chrome, Confirmation, Destructive, asks_first};
use crate::admin::http::pages::{render, see_other, url_segment};
use crate::crypto::{SealTarget, random_token};
use crate::keys::jwt::{Expect, JwtType};
use crate::state::AppState;

/// The path of the test callback, under the issuer.
pub const CALLBACK_PATH: &str = "/admin/try-login/callback";

/// The scopes the test login asks for, those of them the client may ask for.
const SCOPES: [&str; 3] = ["openid", "email", "profile"];

/// How long a started test login may take.
const MAX_AGE_SECS: i64 = 600;

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/clients/{id}/try-login", web::post().to(start))
        .route("/try-login/callback", web::get().to(callback));
    asks_first::<AddTestCallback>(
        cfg,
        "/clients/{id}/try-login/callback-uri",
        "/clients/{id}/try-login/callback-uri",
    );
}

/// The test callback of this server: `{issuer}/admin/try-login/callback`.
pub fn callback_uri(state: &AppState) -> String {
    state.settings.server.issuer.url(CALLBACK_PATH)
}

/// Whether a test login can run for `client`, and if not, why (in plain words).
pub enum Readiness {
    /// The test callback is registered: the button starts the flow.
    Ready,
    /// The test callback is not registered yet: the button asks to add it.
    NeedsCallback,
    /// It cannot run: why.
    Unavailable(&'static str),
}

pub fn readiness(state: &AppState, client: &ClientView) -> Readiness {
    if !client.grant_types.iter().any(|g| g == "authorization_code") {
        return Readiness::Unavailable(
            "A test login uses the authorization_code grant, which this client does not have.",
        );
    }
    if !client.scopes.iter().any(|s| s == "openid") {
        return Readiness::Unavailable(
            "A test login asks for the openid scope, which this client may not ask for.",
        );
    }
    if client.redirect_uris.contains(&callback_uri(state)) {
        return Readiness::Ready;
    }
    if client.managed_by_config {
        return Readiness::Unavailable(
            "Portico's test callback is not one of this client's redirect URIs, and the client \
             is declared in portico.toml: add the URI there to try a login.",
        );
    }
    Readiness::NeedsCallback
}

/// What the sealed cookie carries from the start to the callback.
#[derive(Serialize, Deserialize)]
struct Flow {
    client_id: String,
    state: String,
    nonce: String,
    verifier: String,
    started_at: i64,
}

fn cookie_name(https: bool) -> &'static str {
    if https {
        "__Secure-portico_try_login"
    } else {
        "portico_try_login"
    }
}

fn cookie(https: bool, value: String) -> Cookie<'static> {
    Cookie::build(cookie_name(https), value)
        .path(CALLBACK_PATH)
        .http_only(true)
        .secure(https)
        .same_site(SameSite::Lax)
        .max_age(Duration::seconds(MAX_AGE_SECS))
        .finish()
}

fn seal_target(row: &str) -> SealTarget<'_> {
    SealTarget::new("admin_try_login", "flow", row)
}

/// `POST /admin/clients/{id}/try-login`: starts the flow, or asks to add the test callback.
async fn start(
    state: web::Data<AppState>,
    id: web::Path<String>,
    form: Protected<NoFields>,
) -> Result<HttpResponse, PageError> {
    let session = form.session;
    let client = clients_admin::get(&state, &id).await?;
    match readiness(&state, &client) {
        Readiness::Ready => {}
        Readiness::NeedsCallback => {
            let page = format!("/admin/clients/{}/try-login/callback-uri", url_segment(&id));
            return Ok(see_other(&page));
        }
        Readiness::Unavailable(why) => return Err(PageError::BadRequest(why.into())),
    }
    let flow = Flow {
        client_id: client.client_id.clone(),
        state: random_token("").expose_secret().to_owned(),
        nonce: random_token("").expose_secret().to_owned(),
        verifier: random_token("").expose_secret().to_owned(),
        started_at: crate::store::now(),
    };
    let challenge = URL_SAFE_NO_PAD.encode(ring::digest::digest(
        &ring::digest::SHA256,
        flow.verifier.as_bytes(),
    ));
    let scope: Vec<&str> = SCOPES
        .into_iter()
        .filter(|s| client.scopes.iter().any(|c| c == s))
        .collect();
    let redirect = callback_uri(&state);
    let query = url::form_urlencoded::Serializer::new(String::new())
        .append_pair("client_id", &client.client_id)
        .append_pair("redirect_uri", &redirect)
        .append_pair("response_type", "code")
        .append_pair("scope", &scope.join(" "))
        .append_pair("state", &flow.state)
        .append_pair("nonce", &flow.nonce)
        .append_pair("code_challenge", &challenge)
        .append_pair("code_challenge_method", "S256")
        .finish();
    let sealed = state.sealer.seal_str(
        &serde_json::to_string(&flow).map_err(|e| PageError::Internal(e.into()))?,
        seal_target(&session.id()),
    );
    let https = state.settings.server.issuer.is_https();
    let authorize = state.settings.server.issuer.url("/authorize");
    Ok(HttpResponse::SeeOther()
        .insert_header(("location", format!("{authorize}?{query}")))
        .cookie(cookie(https, URL_SAFE_NO_PAD.encode(sealed)))
        .finish())
}

/// The flow this session started, if the cookie holds one that opens and is recent.
fn opened(req: &HttpRequest, state: &AppState, session: &AdminSession) -> Option<Flow> {
    let https = state.settings.server.issuer.is_https();
    let presented = req.cookie(cookie_name(https))?;
    let sealed = URL_SAFE_NO_PAD.decode(presented.value()).ok()?;
    let row = session.id();
    let text = match state.sealer.open_string(&sealed, seal_target(&row)) {
        Ok(text) => text,
        Err(e) => {
            tracing::warn!(admin = %session.admin.email, error = %e, "a try-login cookie did not open");
            return None;
        }
    };
    let flow: Flow = serde_json::from_str(text.expose_secret()).ok()?;
    (crate::store::now() - flow.started_at <= MAX_AGE_SECS).then_some(flow)
}

#[derive(Deserialize)]
struct CallbackQuery {
    code: Option<String>,
    state: Option<String>,
    error: Option<String>,
    error_description: Option<String>,
    resumed: Option<String>,
}

/// One claim of the ID token, as the page shows it.
pub struct Claim {
    pub name: String,
    pub value: String,
}

/// The outcome of a test login.
#[derive(Template)]
#[template(path = "admin/try_login.html")]
struct ResultPage {
    chrome: Chrome,
    /// The client's page, when the flow named one.
    client: Option<String>,
    title: String,
    /// Why it failed, in plain words; `None` on success.
    problem: Option<String>,
    /// What the server said, when it said something.
    detail: Option<String>,
    claims: Vec<Claim>,
    alg: String,
    kid: String,
}

impl ResultPage {
    fn failed(session: &AdminSession, client: Option<&str>, title: &str, problem: String) -> Self {
        Self {
            chrome: Chrome::new(session, "clients"),
            client: client.map(url_segment),
            title: title.to_owned(),
            problem: Some(problem),
            detail: None,
            claims: Vec::new(),
            alg: String::new(),
            kid: String::new(),
        }
    }
}

/// The page that loads the callback again from this origin, so that the admin session cookie
/// (`SameSite=Strict`) is sent with it.
#[derive(Template)]
#[template(path = "admin/try_login_resume.html")]
struct ResumePage {
    again: String,
}

/// `GET /admin/try-login/callback`.
async fn callback(
    req: HttpRequest,
    session: Result<AdminSession, PageError>,
    state: web::Data<AppState>,
    query: web::Query<CallbackQuery>,
) -> Result<HttpResponse, PageError> {
    let https = state.settings.server.issuer.is_https();
    let session = match session {
        Ok(session) => session,
        Err(PageError::SignInRequired)
            if query.resumed.is_none() && req.cookie(cookie_name(https)).is_some() =>
        {
            let again = format!("{CALLBACK_PATH}?{}&resumed=1", req.query_string());
            return render(StatusCode::OK, &ResumePage { again });
        }
        Err(e) => return Err(e),
    };
    let refused = |title: &str, problem: &str, client: Option<&str>| {
        let page = ResultPage::failed(&session, client, title, problem.to_owned());
        render(StatusCode::BAD_REQUEST, &page)
    };
    let Some(flow) = opened(&req, &state, &session) else {
        return refused(
            "No test login to finish",
            "This browser has no test login in progress for your session (it may have taken more \
             than ten minutes, or been started elsewhere). Nothing was exchanged: start again \
             with “Try a login” on the client's page.",
            None,
        );
    };
    let client_id = flow.client_id.as_str();
    let given = query.state.as_deref().unwrap_or("");
    if !bool::from(given.as_bytes().ct_eq(flow.state.as_bytes())) {
        tracing::warn!(admin = %session.admin.email, client_id, "a try-login callback had the wrong state");
        return refused(
            "This answer is not for your test login",
            "The answer's state does not match the test login started in this browser, so it \
             may have been sent by someone else. Nothing was exchanged.",
            Some(client_id),
        );
    }
    // The state matched: this attempt ends here, whatever its outcome.
    let mut removal = cookie(https, String::new());
    removal.make_removal();
    // A failure (the client deleted meanwhile, the database) still removes the spent cookie.
    let mut answer = match finish(&state, &session, &flow, &query).await {
        Ok(page) if page.problem.is_some() => render(StatusCode::BAD_REQUEST, &page)?,
        Ok(page) => render(StatusCode::OK, &page)?,
        Err(e) => e.error_response(),
    };
    answer
        .add_cookie(&removal)
        .map_err(|e| PageError::Internal(e.into()))?;
    Ok(answer)
}

/// Redeems the code of a flow whose state matched, and reads the ID token.
async fn finish(
    state: &AppState,
    session: &AdminSession,
    flow: &Flow,
    query: &CallbackQuery,
) -> Result<ResultPage, PageError> {
    let client_id = flow.client_id.as_str();
    let failed =
        |title: &str, problem: String| ResultPage::failed(session, Some(client_id), title, problem);
    if let Some(error) = &query.error {
        let mut page = failed("The test login did not complete", oauth_error_words(error));
        page.detail = Some(match &query.error_description {
            Some(d) => format!("{error}: {d}"),
            None => error.clone(),
        });
        return Ok(page);
    }
    let Some(code) = query.code.as_deref().filter(|c| !c.is_empty()) else {
        return Ok(failed(
            "The test login did not complete",
            "The answer carried neither a code nor an error.".into(),
        ));
    };
    let client = crate::clients::repo::find(&state.store, client_id)
        .await?
        .ok_or(PageError::NotFound)?;
    let form = HashMap::from([
        ("code".to_owned(), code.to_owned()),
        ("redirect_uri".to_owned(), callback_uri(state)),
        ("code_verifier".to_owned(), flow.verifier.clone()),
    ]);
    let tokens = match crate::oidc::token::authorization_code(state, &client, &form).await {
        Ok(tokens) => tokens,
        Err(e) => {
            let mut page = failed(
                "The code could not be exchanged",
                "Portico refused to exchange the code for tokens.".into(),
            );
            page.detail = Some(e.to_string());
            return Ok(page);
        }
    };
    let Some(id_token) = tokens.id_token else {
        return Ok(failed(
            "No ID token",
            "The tokens came without an ID token (the openid scope was not granted).".into(),
        ));
    };
    let issuer = state.settings.server.issuer.as_str();
    let expect = Expect {
        issuer,
        audience: Some(client_id),
        typ: JwtType::Jwt,
        require_unexpired: true,
    };
    let claims: serde_json::Map<String, serde_json::Value> =
        match state.keys.verify(&id_token, &expect).await {
            Ok(claims) => claims,
            Err(e) => {
                let mut page = failed(
                    "The ID token did not verify",
                    "The ID token's signature or claims did not verify.".into(),
                );
                page.detail = Some(e.to_string());
                return Ok(page);
            }
        };
    if claims.get("nonce").and_then(|n| n.as_str()) != Some(flow.nonce.as_str()) {
        return Ok(failed(
            "The ID token is not for this login",
            "The ID token's nonce differs from the one this test login sent.".into(),
        ));
    }
    let (kid, alg, _) =
        crate::keys::jwt::key_id(&id_token).map_err(|e| PageError::Internal(e.into()))?;
    Ok(ResultPage {
        chrome: Chrome::new(session, "clients"),
        client: Some(url_segment(client_id)),
        title: format!("Test login to “{}” succeeded", client.name),
        problem: None,
        detail: None,
        claims: claims
            .iter()
            .map(|(name, value)| Claim {
                name: name.clone(),
                value: match value {
                    serde_json::Value::String(s) => s.clone(),
                    other => other.to_string(),
                },
            })
            .collect(),
        alg: alg.as_str().to_owned(),
        kid,
    })
}

/// An OAuth error code (RFC 6749 section 4.1.2.1, OIDC Core 3.1.2.6) in plain words.
fn oauth_error_words(code: &str) -> String {
    match code {
        "access_denied" => "The sign-in was refused or cancelled: the user, the provider or a \
                            policy (allowed providers, e-mail domains) said no."
            .into(),
        "invalid_scope" => "The client may not ask for the scopes the test login asks for \
                            (openid email profile)."
            .into(),
        "unauthorized_client" => "This client may not use the authorization code flow.".into(),
        "login_required" | "interaction_required" => "The user must sign in first.".into(),
        "temporarily_unavailable" | "server_error" => {
            "Portico or the provider could not complete the sign-in just now; try again.".into()
        }
        other => format!("The sign-in ended with the error “{other}”."),
    }
}

/// Adding Portico's test callback as a redirect URI of a client, asked first.
struct AddTestCallback;

impl Destructive for AddTestCallback {
    async fn ask(state: &AppState, id: &str) -> Result<Ask, PageError> {
        let c = editable(state, id).await?;
        let uri = callback_uri(state);
        if c.redirect_uris.contains(&uri) {
            let page = format!("/admin/clients/{}", url_segment(id));
            return Ok(Ask::Done(see_other(&page)));
        }
        Ok(Ask::Confirm(Confirmation {
            title: format!(
                "Add Portico's test callback {uri} as a redirect URI of “{}”?",
                c.name
            ),
            consequences: vec![
                format!(
                    "{uri} becomes one of the client's redirect URIs, so that “Try a login” can \
                     run its real sign-in flow and show the ID token's claims."
                ),
                "Codes sent there are only ever redeemed by Portico itself, for the admin who \
                 started the test login in the same browser session."
                    .into(),
                "You can remove it later from the client's redirect URIs.".into(),
            ],
            facts: vec![
                ("Client ID", c.client_id.clone()),
                ("Redirect URI to add", uri),
            ],
            ..Confirmation::about(
                "clients",
                id,
                "try-login/callback-uri",
                "Add and try a login",
            )
        }))
    }

    async fn act(
        state: &AppState,
        session: &AdminSession,
        id: &str,
    ) -> Result<HttpResponse, PageError> {
        let uri = callback_uri(state);
        clients_admin::add_redirect_uri(state, &session.caller(), id, &uri).await?;
        let page = format!("/admin/clients/{}?done=callback-added", url_segment(id));
        Ok(see_other(&page))
    }
}
