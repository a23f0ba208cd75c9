//! A real OpenID Connect provider served over HTTP inside the tests: discovery, JWKS, an
//! authorize endpoint that logs in the "current" user at once and redirects back with a code,
//! a token endpoint (code with PKCE, refresh) that signs real RS256 ID tokens, and userinfo.
//! It keeps its own sessions: it authenticates a user again only when asked (`prompt=login`,
//! `max_age`), and states when in the ID token's `auth_time`, unless told to ignore those
//! requests or to leave `auth_time` out, as some real IdPs do.
//! It can be told to misbehave, to test what Portico refuses.

#![allow(dead_code)]

use std::collections::HashMap;
use std::net::TcpListener;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicUsize, Ordering};

use actix_web::{App, HttpRequest, HttpResponse, HttpServer, web};
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use portico::keys::jwt::{self, JwtType};
use portico::keys::{GeneratedKey, SigningAlg, SigningKey};
use serde_json::{Value, json};

pub const UPSTREAM_CLIENT_ID: &str = "portico-at-upstream";
pub const UPSTREAM_CLIENT_SECRET: &str = "upstream-secret-0123456789";

#[derive(Debug, Clone)]
pub struct UpUser {
    pub sub: String,
    pub email: String,
    pub email_verified: bool,
    pub name: String,
    pub groups: Vec<String>,
    /// A second list claim (`roles`), for claim mappings that read groups from elsewhere.
    pub roles: Vec<String>,
    /// More claims of the ID token (nested ones: `{"org": {"groups": [...]}}`).
    pub extra: serde_json::Map<String, Value>,
}

impl UpUser {
    pub fn new(sub: &str, email: &str) -> Self {
        Self {
            sub: sub.into(),
            email: email.into(),
            email_verified: true,
            name: format!("User {sub}"),
            groups: vec!["staff".into()],
            roles: vec!["viewer".into()],
            extra: serde_json::Map::new(),
        }
    }
}

/// Ways the upstream's next ID token can be wrong.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Misbehave {
    Nothing,
    WrongIssuer,
    WrongAudience,
    Expired,
    UnknownKey,
    AlgNone,
    WrongNonce,
}

struct Grant {
    nonce: Option<String>,
    challenge: String,
    redirect_uri: String,
    sub: String,
    scope: String,
    /// When the stand-in last authenticated the user (its own session's sign-in time).
    auth_time: i64,
}

/// The scopes every grant of the stand-in carries.
const BASE_SCOPE: &str = "openid email profile groups";

struct Inner {
    issuer: String,
    key: SigningKey,
    rogue: SigningKey,
    jwks: Value,
    users: Mutex<HashMap<String, UpUser>>,
    current: Mutex<String>,
    misbehave: Mutex<Misbehave>,
    codes: Mutex<HashMap<String, Grant>>,
    access: Mutex<HashMap<String, String>>,
    /// Refresh token -> (subject, granted scope).
    refresh: Mutex<HashMap<String, (String, String)>>,
    /// Scopes beyond [`BASE_SCOPE`] it grants when an authorize request asks for them.
    grantable: Mutex<Vec<String>>,
    /// The `scope` of every authorize request, in order.
    authorize_scopes: Mutex<Vec<String>>,
    refresh_calls: AtomicUsize,
    /// How long a refresh takes to answer, in milliseconds.
    refresh_delay_ms: AtomicI64,
    /// `expires_in` of the access tokens it issues.
    expires_in: AtomicI64,
    /// Every access, refresh and ID token it ever issued.
    issued: Mutex<Vec<String>>,
    /// When set, the back channel (discovery, JWKS, token, userinfo) answers 503; the
    /// authorize page, which the browser sees, still works.
    failing: AtomicBool,
    /// Requests to the back channel, answered or not.
    back_channel_calls: AtomicUsize,
    /// The `prompt` of every authorize request, in order (`None`: none sent).
    prompts: Mutex<Vec<Option<String>>>,
    /// When set, token responses leave `scope` out (RFC 6749 5.1: "the same as requested").
    omit_scope: AtomicBool,
    /// The stand-in's own sessions: when it last authenticated each subject. It answers from
    /// them unless asked (`prompt=login`, a `max_age` they exceed) to authenticate again.
    signed_in_at: Mutex<HashMap<String, i64>>,
    /// When set, it ignores `prompt=login` and `max_age` (answers from its session anyway).
    ignores_prompt: AtomicBool,
    /// Whether its ID tokens state `auth_time` (on by default).
    states_auth_time: AtomicBool,
}

pub struct Upstream {
    pub issuer: String,
    inner: web::Data<Inner>,
    server: tokio::task::JoinHandle<std::io::Result<()>>,
}

impl Drop for Upstream {
    fn drop(&mut self) {
        self.server.abort();
    }
}

fn random() -> String {
    let mut b = [0u8; 24];
    portico::crypto::random_bytes(&mut b);
    URL_SAFE_NO_PAD.encode(b)
}

impl Upstream {
    pub async fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let issuer = format!("http://127.0.0.1:{}", listener.local_addr().unwrap().port());
        let key = GeneratedKey::generate(SigningAlg::RS256).unwrap();
        let rogue = GeneratedKey::generate(SigningAlg::RS256).unwrap();
        let inner = web::Data::new(Inner {
            issuer: issuer.clone(),
            key: key.signing_key().unwrap(),
            rogue: rogue.signing_key().unwrap(),
            jwks: json!({ "keys": [key.public_jwk] }),
            users: Mutex::new(HashMap::new()),
            current: Mutex::new(String::new()),
            misbehave: Mutex::new(Misbehave::Nothing),
            codes: Mutex::new(HashMap::new()),
            access: Mutex::new(HashMap::new()),
            refresh: Mutex::new(HashMap::new()),
            grantable: Mutex::new(Vec::new()),
            authorize_scopes: Mutex::new(Vec::new()),
            refresh_calls: AtomicUsize::new(0),
            refresh_delay_ms: AtomicI64::new(0),
            expires_in: AtomicI64::new(3600),
            issued: Mutex::new(Vec::new()),
            failing: AtomicBool::new(false),
            back_channel_calls: AtomicUsize::new(0),
            prompts: Mutex::new(Vec::new()),
            omit_scope: AtomicBool::new(false),
            signed_in_at: Mutex::new(HashMap::new()),
            ignores_prompt: AtomicBool::new(false),
            states_auth_time: AtomicBool::new(true),
        });
        let data = inner.clone();
        let server = HttpServer::new(move || {
            App::new()
                .app_data(data.clone())
                .route(
                    "/.well-known/openid-configuration",
                    web::get().to(discovery),
                )
                .route("/jwks", web::get().to(jwks))
                .route("/authorize", web::get().to(authorize))
                .route("/token", web::post().to(token))
                .route("/userinfo", web::get().to(userinfo))
        })
        .workers(1)
        .listen(listener)
        .unwrap()
        .run();
        let up = Self {
            issuer,
            inner,
            server: tokio::spawn(server),
        };
        up.login_as(UpUser::new("alice-sub", "alice@corp.example"));
        up
    }

    /// The user the next authorize request logs in (also updates a known user's claims).
    pub fn login_as(&self, user: UpUser) {
        *self.inner.current.lock().unwrap() = user.sub.clone();
        self.inner
            .users
            .lock()
            .unwrap()
            .insert(user.sub.clone(), user);
    }

    pub fn update_user(&self, user: UpUser) {
        self.inner
            .users
            .lock()
            .unwrap()
            .insert(user.sub.clone(), user);
    }

    pub fn misbehave(&self, how: Misbehave) {
        *self.inner.misbehave.lock().unwrap() = how;
    }

    /// Makes each refresh answer after `ms` milliseconds (to hold concurrent callers together).
    pub fn set_refresh_delay_ms(&self, ms: i64) {
        self.inner.refresh_delay_ms.store(ms, Ordering::SeqCst);
    }

    pub fn refresh_calls(&self) -> usize {
        self.inner.refresh_calls.load(Ordering::SeqCst)
    }

    /// The lifetime of the access tokens issued from now on.
    pub fn set_expires_in(&self, secs: i64) {
        self.inner.expires_in.store(secs, Ordering::SeqCst);
    }

    /// Every access, refresh and ID token issued so far.
    pub fn issued_tokens(&self) -> Vec<String> {
        self.inner.issued.lock().unwrap().clone()
    }

    /// Makes token responses leave `scope` out (or name it again).
    pub fn omit_scope(&self, omit: bool) {
        self.inner.omit_scope.store(omit, Ordering::SeqCst);
    }

    /// Makes the back channel answer 503 (or work again).
    pub fn set_failing(&self, failing: bool) {
        self.inner.failing.store(failing, Ordering::SeqCst);
    }

    /// Requests Portico made to the back channel so far.
    pub fn back_channel_calls(&self) -> usize {
        self.inner.back_channel_calls.load(Ordering::SeqCst)
    }

    /// Scopes beyond the base ones it grants from now on when asked for.
    pub fn grant_scopes(&self, scopes: &[&str]) {
        *self.inner.grantable.lock().unwrap() = scopes.iter().map(|s| s.to_string()).collect();
    }

    /// The `scope` of every authorize request so far.
    pub fn authorize_scopes(&self) -> Vec<String> {
        self.inner.authorize_scopes.lock().unwrap().clone()
    }

    /// The `prompt` of every authorize request so far, in order (`None`: none was sent).
    pub fn prompts(&self) -> Vec<Option<String>> {
        self.inner.prompts.lock().unwrap().clone()
    }

    /// Makes it ignore `prompt=login` and `max_age`, answering from its own session (or obey
    /// them again): an IdP that does not authenticate again when asked.
    pub fn ignore_prompt(&self, ignores: bool) {
        self.inner.ignores_prompt.store(ignores, Ordering::SeqCst);
    }

    /// Makes its ID tokens state `auth_time` (the default) or leave it out.
    pub fn state_auth_time(&self, states: bool) {
        self.inner.states_auth_time.store(states, Ordering::SeqCst);
    }

    /// Sets when its own session authenticated `sub` (to make that session old).
    pub fn signed_in_at(&self, sub: &str, at: i64) {
        (self.inner.signed_in_at.lock().unwrap()).insert(sub.to_owned(), at);
    }

    /// Makes every upstream refresh token invalid (the user's upstream grant was revoked).
    pub fn revoke_refresh_tokens(&self) {
        self.inner.refresh.lock().unwrap().clear();
    }
}

/// Counts a back-channel request, and answers it 503 when the upstream is failing.
fn outage(s: &Inner) -> Option<HttpResponse> {
    s.back_channel_calls.fetch_add(1, Ordering::SeqCst);
    s.failing
        .load(Ordering::SeqCst)
        .then(|| HttpResponse::ServiceUnavailable().body("<html>down for maintenance</html>"))
}

async fn discovery(s: web::Data<Inner>) -> HttpResponse {
    if let Some(down) = outage(&s) {
        return down;
    }
    let i = &s.issuer;
    HttpResponse::Ok().json(json!({
        "issuer": i,
        "authorization_endpoint": format!("{i}/authorize"),
        "token_endpoint": format!("{i}/token"),
        "userinfo_endpoint": format!("{i}/userinfo"),
        "jwks_uri": format!("{i}/jwks"),
        "response_types_supported": ["code"],
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": ["RS256"],
        "token_endpoint_auth_methods_supported": ["client_secret_basic"],
        "code_challenge_methods_supported": ["S256"],
        "scopes_supported": ["openid", "email", "profile", "groups", "offline_access"],
    }))
}

async fn jwks(s: web::Data<Inner>) -> HttpResponse {
    if let Some(down) = outage(&s) {
        return down;
    }
    HttpResponse::Ok().json(&s.jwks)
}

async fn authorize(s: web::Data<Inner>, q: web::Query<HashMap<String, String>>) -> HttpResponse {
    if q.get("client_id").map(String::as_str) != Some(UPSTREAM_CLIENT_ID)
        || q.get("code_challenge_method").map(String::as_str) != Some("S256")
        || q.get("response_type").map(String::as_str) != Some("code")
    {
        return HttpResponse::BadRequest().body("bad authorize request");
    }
    s.prompts.lock().unwrap().push(q.get("prompt").cloned());
    let sub = s.current.lock().unwrap().clone();
    let now = portico::store::now();
    let auth_time = {
        let mut sessions = s.signed_in_at.lock().unwrap();
        let last = sessions.get(&sub).copied();
        let forced = q
            .get("prompt")
            .is_some_and(|p| p.split(' ').any(|p| p == "login"));
        let too_old = q
            .get("max_age")
            .and_then(|m| m.parse::<i64>().ok())
            .is_some_and(|max| last.is_none_or(|at| now - at > max));
        let obeys = !s.ignores_prompt.load(Ordering::SeqCst);
        match last {
            Some(at) if !(obeys && (forced || too_old)) => at,
            _ => {
                sessions.insert(sub.clone(), now);
                now
            }
        }
    };
    let code = random();
    let redirect_uri = q.get("redirect_uri").cloned().unwrap_or_default();
    let asked = q.get("scope").cloned().unwrap_or_default();
    s.authorize_scopes.lock().unwrap().push(asked.clone());
    let grantable = s.grantable.lock().unwrap().clone();
    let mut scope = BASE_SCOPE.to_owned();
    for extra in asked
        .split(' ')
        .filter(|a| grantable.iter().any(|g| g == a))
    {
        scope.push(' ');
        scope.push_str(extra);
    }
    s.codes.lock().unwrap().insert(
        code.clone(),
        Grant {
            nonce: q.get("nonce").cloned(),
            challenge: q.get("code_challenge").cloned().unwrap_or_default(),
            redirect_uri: redirect_uri.clone(),
            sub,
            scope,
            auth_time,
        },
    );
    let mut url = url::Url::parse(&redirect_uri).unwrap();
    url.query_pairs_mut()
        .append_pair("code", &code)
        .append_pair("state", q.get("state").map(String::as_str).unwrap_or(""));
    HttpResponse::Found()
        .insert_header(("location", url.to_string()))
        .finish()
}

fn token_error(error: &str) -> HttpResponse {
    HttpResponse::BadRequest().json(json!({ "error": error }))
}

fn id_token(s: &Inner, user: &UpUser, nonce: Option<&str>, auth_time: Option<i64>) -> String {
    let how = *s.misbehave.lock().unwrap();
    let now = portico::store::now();
    let mut claims = json!({
        "iss": if how == Misbehave::WrongIssuer { "http://evil.example".to_owned() } else { s.issuer.clone() },
        "sub": user.sub,
        "aud": if how == Misbehave::WrongAudience { "someone-else" } else { UPSTREAM_CLIENT_ID },
        "iat": now,
        "exp": if how == Misbehave::Expired { now - 600 } else { now + 300 },
        "email": user.email,
        "email_verified": user.email_verified,
        "name": user.name,
        "groups": user.groups,
        "roles": user.roles,
    });
    for (k, v) in &user.extra {
        claims[k] = v.clone();
    }
    if let Some(at) = auth_time.filter(|_| s.states_auth_time.load(Ordering::SeqCst)) {
        claims["auth_time"] = json!(at);
    }
    match (how, nonce) {
        (Misbehave::WrongNonce, _) => claims["nonce"] = json!("not-the-nonce"),
        (_, Some(n)) => claims["nonce"] = json!(n),
        _ => {}
    }
    match how {
        Misbehave::UnknownKey => jwt::encode(&s.rogue, JwtType::Jwt, &claims),
        Misbehave::AlgNone => format!(
            "{}.{}.",
            URL_SAFE_NO_PAD.encode(br#"{"alg":"none","typ":"JWT"}"#),
            URL_SAFE_NO_PAD.encode(claims.to_string())
        ),
        _ => jwt::encode(&s.key, JwtType::Jwt, &claims),
    }
}

async fn token(s: web::Data<Inner>, req: HttpRequest, body: web::Bytes) -> HttpResponse {
    if let Some(down) = outage(&s) {
        return down;
    }
    let expected = format!(
        "Basic {}",
        STANDARD.encode(format!("{UPSTREAM_CLIENT_ID}:{UPSTREAM_CLIENT_SECRET}"))
    );
    if req
        .headers()
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        != Some(expected.as_str())
    {
        return HttpResponse::Unauthorized().json(json!({ "error": "invalid_client" }));
    }
    let form: HashMap<String, String> = url::form_urlencoded::parse(&body).into_owned().collect();
    let (sub, nonce, scope, auth_time) = match form.get("grant_type").map(String::as_str) {
        Some("authorization_code") => {
            let Some(grant) = form
                .get("code")
                .and_then(|c| s.codes.lock().unwrap().remove(c))
            else {
                return token_error("invalid_grant");
            };
            let verifier = form.get("code_verifier").cloned().unwrap_or_default();
            let computed = URL_SAFE_NO_PAD
                .encode(ring::digest::digest(&ring::digest::SHA256, verifier.as_bytes()).as_ref());
            if computed != grant.challenge || form.get("redirect_uri") != Some(&grant.redirect_uri)
            {
                return token_error("invalid_grant");
            }
            (grant.sub, grant.nonce, grant.scope, Some(grant.auth_time))
        }
        Some("refresh_token") => {
            s.refresh_calls.fetch_add(1, Ordering::SeqCst);
            let delay = s.refresh_delay_ms.load(Ordering::SeqCst);
            if delay > 0 {
                tokio::time::sleep(std::time::Duration::from_millis(delay as u64)).await;
            }
            let Some((sub, scope)) = form
                .get("refresh_token")
                .and_then(|t| s.refresh.lock().unwrap().remove(t))
            else {
                return token_error("invalid_grant");
            };
            (sub, None, scope, None)
        }
        _ => return token_error("unsupported_grant_type"),
    };
    let Some(user) = s.users.lock().unwrap().get(&sub).cloned() else {
        return token_error("invalid_grant");
    };
    let access = random();
    let refresh = random();
    s.access.lock().unwrap().insert(access.clone(), sub.clone());
    (s.refresh.lock().unwrap()).insert(refresh.clone(), (sub, scope.clone()));
    let id_token = id_token(&s, &user, nonce.as_deref(), auth_time);
    s.issued
        .lock()
        .unwrap()
        .extend([access.clone(), refresh.clone(), id_token.clone()]);
    let mut answer = json!({
        "access_token": access,
        "token_type": "Bearer",
        "expires_in": s.expires_in.load(Ordering::SeqCst),
        "refresh_token": refresh,
        "id_token": id_token,
        "scope": scope,
    });
    if s.omit_scope.load(Ordering::SeqCst) {
        answer.as_object_mut().unwrap().remove("scope");
    }
    HttpResponse::Ok().json(answer)
}

async fn userinfo(s: web::Data<Inner>, req: HttpRequest) -> HttpResponse {
    if let Some(down) = outage(&s) {
        return down;
    }
    let token = req
        .headers()
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or_default()
        .to_owned();
    let Some(sub) = s.access.lock().unwrap().get(&token).cloned() else {
        return HttpResponse::Unauthorized().finish();
    };
    let user = s.users.lock().unwrap().get(&sub).cloned().unwrap();
    HttpResponse::Ok().json(json!({
        "sub": user.sub,
        "email": user.email,
        "email_verified": user.email_verified,
        "name": user.name,
        "picture": format!("https://pics.example/{}.png", user.sub),
        "groups": user.groups,
        "roles": user.roles,
    }))
}
