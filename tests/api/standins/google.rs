//! A Google stand-in: an OpenID Connect provider with discovery, a JWKS, an authorization
//! endpoint that honours `access_type=offline` + `prompt=consent` as Google does (a refresh
//! token only then), a token endpoint issuing RS256-signed ID tokens carrying the account's
//! `hd`, and userinfo.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use actix_web::{App, HttpRequest, HttpResponse, HttpServer, web};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use portico::keys::jwt::{self, JwtType};
use portico::keys::{GeneratedKey, SigningAlg, SigningKey};
use serde_json::{Value, json};

use super::{form, mint, s256, serve};

pub const CLIENT_ID: &str = "1234-portico.apps.googleusercontent.com";
pub const CLIENT_SECRET: &str = "GOCSPX-test-secret";

/// The Google account that logs in.
#[derive(Clone)]
pub struct Account {
    pub sub: String,
    pub email: String,
    pub email_verified: bool,
    /// The Workspace domain; `None` for a consumer (gmail.com) account.
    pub hd: Option<String>,
}

impl Default for Account {
    fn default() -> Self {
        Self {
            sub: "110169484474386276334".into(),
            email: "alice@example.com".into(),
            email_verified: true,
            hd: Some("example.com".into()),
        }
    }
}

struct Code {
    redirect_uri: String,
    nonce: String,
    challenge: String,
    offline: bool,
}

struct State {
    issuer: String,
    account: Account,
    key: SigningKey,
    jwks: Value,
    codes: HashMap<String, Code>,
    access_tokens: Vec<String>,
    refresh_tokens: Vec<String>,
    /// The query of the last authorization request.
    last_authorize: HashMap<String, String>,
}

pub struct GoogleStandIn {
    pub issuer: String,
    state: Arc<Mutex<State>>,
}

impl GoogleStandIn {
    pub async fn start(account: Account) -> Self {
        let generated = tokio::task::spawn_blocking(|| GeneratedKey::generate(SigningAlg::RS256))
            .await
            .unwrap()
            .unwrap();
        let key = generated.signing_key().unwrap();
        let jwks = json!({ "keys": [generated.public_jwk] });
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let issuer = format!("http://127.0.0.1:{port}");
        let state = Arc::new(Mutex::new(State {
            issuer: issuer.clone(),
            account,
            key,
            jwks,
            codes: HashMap::new(),
            access_tokens: Vec::new(),
            refresh_tokens: Vec::new(),
            last_authorize: HashMap::new(),
        }));
        let shared = web::Data::from(state.clone());
        let server = HttpServer::new(move || {
            App::new()
                .app_data(shared.clone())
                .route(
                    "/.well-known/openid-configuration",
                    web::get().to(discovery),
                )
                .route("/oauth2/v3/certs", web::get().to(certs))
                .route("/o/oauth2/v2/auth", web::get().to(authorize))
                .route("/token", web::post().to(token))
                .route("/v1/userinfo", web::get().to(userinfo))
        })
        .workers(1)
        .listen(listener)
        .unwrap();
        serve(server.run(), port);
        Self { issuer, state }
    }

    /// The query of the last authorization request the browser brought.
    pub fn last_authorize(&self) -> HashMap<String, String> {
        self.state.lock().unwrap().last_authorize.clone()
    }
}

type Shared = web::Data<Mutex<State>>;

async fn discovery(state: Shared) -> HttpResponse {
    let issuer = state.lock().unwrap().issuer.clone();
    HttpResponse::Ok().json(json!({
        "issuer": issuer,
        "authorization_endpoint": format!("{issuer}/o/oauth2/v2/auth"),
        "token_endpoint": format!("{issuer}/token"),
        "userinfo_endpoint": format!("{issuer}/v1/userinfo"),
        "jwks_uri": format!("{issuer}/oauth2/v3/certs"),
        "response_types_supported": ["code", "token", "id_token", "code token", "code id_token", "none"],
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": ["RS256"],
        "scopes_supported": ["openid", "email", "profile"],
        "token_endpoint_auth_methods_supported": ["client_secret_post", "client_secret_basic"],
        "claims_supported": ["aud", "email", "email_verified", "exp", "family_name", "given_name", "iat", "iss", "name", "picture", "sub"],
        "code_challenge_methods_supported": ["plain", "S256"],
        "grant_types_supported": ["authorization_code", "refresh_token"],
    }))
}

async fn certs(state: Shared) -> HttpResponse {
    HttpResponse::Ok().json(state.lock().unwrap().jwks.clone())
}

async fn authorize(req: HttpRequest, state: Shared) -> HttpResponse {
    let q: HashMap<String, String> = form(req.query_string().as_bytes());
    let mut state = state.lock().unwrap();
    state.last_authorize = q.clone();
    let get = |k: &str| q.get(k).map(String::as_str).unwrap_or_default();
    if get("client_id") != CLIENT_ID || get("response_type") != "code" {
        return HttpResponse::BadRequest().body("Error 400: invalid_request");
    }
    let prompts: Vec<&str> = get("prompt").split(' ').collect();
    if prompts.contains(&"login") {
        return HttpResponse::BadRequest().body("Error 400: invalid_request Invalid prompt: login");
    }
    if get("code_challenge_method") != "S256" || get("code_challenge").is_empty() {
        return HttpResponse::BadRequest().body("this test expects S256 PKCE");
    }
    let code = mint("4/0A");
    state.codes.insert(
        code.clone(),
        Code {
            redirect_uri: get("redirect_uri").to_owned(),
            nonce: get("nonce").to_owned(),
            challenge: get("code_challenge").to_owned(),
            // Google issues a refresh token for offline access, and again only on consent.
            offline: get("access_type") == "offline" && prompts.contains(&"consent"),
        },
    );
    let mut back = url::Url::parse(get("redirect_uri")).unwrap();
    back.query_pairs_mut()
        .append_pair("state", get("state"))
        .append_pair("code", &code)
        .append_pair("scope", get("scope"));
    HttpResponse::Found()
        .insert_header(("location", back.to_string()))
        .finish()
}

fn oauth_error(error: &str) -> HttpResponse {
    HttpResponse::BadRequest().json(json!({"error": error, "error_description": error}))
}

/// Client authentication by `client_secret_basic` or `client_secret_post`.
fn client_authenticated(req: &HttpRequest, f: &HashMap<String, String>) -> bool {
    let basic = req
        .headers()
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Basic "))
        .and_then(|b| STANDARD.decode(b).ok())
        .and_then(|b| String::from_utf8(b).ok());
    let (id, secret) = match basic {
        Some(pair) => {
            let (id, secret) = pair.split_once(':').unwrap_or_default();
            let decode = |s: &str| {
                url::form_urlencoded::parse(format!("x={s}").as_bytes())
                    .next()
                    .map(|(_, v)| v.into_owned())
                    .unwrap_or_default()
            };
            (decode(id), decode(secret))
        }
        None => (
            f.get("client_id").cloned().unwrap_or_default(),
            f.get("client_secret").cloned().unwrap_or_default(),
        ),
    };
    id == CLIENT_ID && secret == CLIENT_SECRET
}

async fn token(req: HttpRequest, body: web::Bytes, state: Shared) -> HttpResponse {
    let f = form(&body);
    if !client_authenticated(&req, &f) {
        return HttpResponse::Unauthorized().json(json!({"error": "invalid_client"}));
    }
    let mut state = state.lock().unwrap();
    let (nonce, offline) = match f.get("grant_type").map(String::as_str) {
        Some("authorization_code") => {
            let Some(code) = f.get("code").and_then(|c| state.codes.remove(c)) else {
                return oauth_error("invalid_grant");
            };
            if f.get("redirect_uri") != Some(&code.redirect_uri)
                || s256(
                    f.get("code_verifier")
                        .map(String::as_str)
                        .unwrap_or_default(),
                ) != code.challenge
            {
                return oauth_error("invalid_grant");
            }
            (Some(code.nonce), code.offline)
        }
        Some("refresh_token") => {
            let presented = f.get("refresh_token").cloned().unwrap_or_default();
            if !state.refresh_tokens.contains(&presented) {
                return oauth_error("invalid_grant");
            }
            // Google keeps the refresh token and answers without a new one.
            (None, false)
        }
        _ => return oauth_error("unsupported_grant_type"),
    };
    let now = portico::store::now();
    let account = state.account.clone();
    let mut claims = json!({
        "iss": state.issuer,
        "azp": CLIENT_ID,
        "aud": CLIENT_ID,
        "sub": account.sub,
        "email": account.email,
        "email_verified": account.email_verified,
        "name": "Alice Example",
        "picture": "https://lh3.googleusercontent.com/a/alice",
        "iat": now,
        "exp": now + 3600,
    });
    if let Some(hd) = &account.hd {
        claims["hd"] = json!(hd);
    }
    if let Some(nonce) = nonce {
        claims["nonce"] = json!(nonce);
    }
    let id_token = jwt::encode(&state.key, JwtType::Jwt, &claims);
    let access = mint("ya29.");
    state.access_tokens.push(access.clone());
    let mut response = json!({
        "access_token": access,
        "expires_in": 3599,
        "scope": "openid https://www.googleapis.com/auth/userinfo.email https://www.googleapis.com/auth/userinfo.profile",
        "token_type": "Bearer",
        "id_token": id_token,
    });
    if offline {
        let refresh = mint("1//0g");
        state.refresh_tokens.push(refresh.clone());
        response["refresh_token"] = json!(refresh);
    }
    HttpResponse::Ok().json(response)
}

async fn userinfo(req: HttpRequest, state: Shared) -> HttpResponse {
    let state = state.lock().unwrap();
    let token = req
        .headers()
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or_default();
    if !state.access_tokens.iter().any(|t| t == token) {
        return HttpResponse::Unauthorized().json(json!({"error": "invalid_token"}));
    }
    let a = &state.account;
    let mut info = json!({
        "sub": a.sub,
        "email": a.email,
        "email_verified": a.email_verified,
        "name": "Alice Example",
        "picture": "https://lh3.googleusercontent.com/a/alice",
    });
    if let Some(hd) = &a.hd {
        info["hd"] = json!(hd);
    }
    HttpResponse::Ok().json(info)
}
