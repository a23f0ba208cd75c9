//! The upstream OpenID Connect provider that Portico federates to during the user workloads,
//! served by the driver itself on a fixed address (Portico's config names it as a provider).
//!
//! Discovery, JWKS, an authorize endpoint that approves at once (logging in the subjects
//! `bench-1` … `bench-N` in turn) and redirects back with a code, a token endpoint that checks
//! the client, PKCE and the redirect URI and returns a real signed ID token carrying the nonce,
//! and userinfo. It issues no upstream refresh token, so a refresh at Portico serves the claims
//! of the last login without a round trip here.

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use actix_web::{App, HttpRequest, HttpResponse, HttpServer, web};
use anyhow::Context;
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use portico::keys::jwt::{self, JwtType};
use portico::keys::{GeneratedKey, SigningAlg, SigningKey};
use secrecy::ExposeSecret;
use serde_json::{Value, json};

use crate::Args;
use crate::setup::{UPSTREAM_CLIENT_ID, UPSTREAM_CLIENT_SECRET};

struct Grant {
    nonce: Option<String>,
    challenge: Option<String>,
    redirect_uri: String,
    subject: u64,
}

struct Inner {
    issuer: String,
    alg: SigningAlg,
    key: SigningKey,
    jwks: Value,
    users: u64,
    next_user: AtomicU64,
    codes: Mutex<HashMap<String, Grant>>,
    /// Access token -> subject, until Portico reads userinfo with it.
    access: Mutex<HashMap<String, u64>>,
}

fn random() -> String {
    let mut b = [0u8; 24];
    portico::crypto::random_bytes(&mut b);
    URL_SAFE_NO_PAD.encode(b)
}

/// Starts the stand-in; it serves until the driver exits.
pub async fn serve(args: &Args) -> anyhow::Result<()> {
    let alg = SigningAlg::parse(&args.upstream_alg)
        .filter(|a| *a != SigningAlg::EdDSA)
        .context("--upstream-alg must be RS256 or ES256")?;
    let path = args.upstream_key_file.clone().unwrap_or_else(|| {
        std::env::temp_dir().join(format!("portico-bench-upstream-{}.json", alg.as_str()))
    });
    let generated = tokio::task::spawn_blocking(move || stable_key(&path, alg)).await??;
    let issuer = format!("http://{}", args.upstream_listen);
    let inner = web::Data::new(Inner {
        issuer,
        alg,
        key: generated.signing_key()?,
        jwks: json!({ "keys": [generated.public_jwk] }),
        users: args.upstream_users.max(1),
        next_user: AtomicU64::new(0),
        codes: Mutex::new(HashMap::new()),
        access: Mutex::new(HashMap::new()),
    });
    let server = HttpServer::new(move || {
        App::new()
            .app_data(inner.clone())
            .route(
                "/.well-known/openid-configuration",
                web::get().to(discovery),
            )
            .route("/jwks", web::get().to(jwks))
            .route("/authorize", web::get().to(authorize))
            .route("/token", web::post().to(token))
            .route("/userinfo", web::get().to(userinfo))
    })
    .workers(2)
    .bind(args.upstream_listen)
    .with_context(|| {
        format!(
            "the upstream stand-in cannot listen on {}",
            args.upstream_listen
        )
    })?
    .run();
    tokio::spawn(server);
    Ok(())
}

/// The stand-in's key, kept in a file between runs: Portico caches the upstream's JWKS and
/// re-reads it on an unknown key at most every few seconds, so a new key on every run would
/// fail the logins of the next seconds.
fn stable_key(path: &std::path::Path, alg: SigningAlg) -> anyhow::Result<GeneratedKey> {
    #[derive(serde::Serialize, serde::Deserialize)]
    struct Stored {
        kid: String,
        alg: String,
        pkcs8: String,
        public_jwk: Value,
    }
    if let Ok(text) = std::fs::read_to_string(path) {
        let stored: Stored = serde_json::from_str(&text)
            .with_context(|| format!("reading the stand-in key {}", path.display()))?;
        if stored.alg == alg.as_str() {
            return Ok(GeneratedKey {
                kid: stored.kid,
                alg,
                pkcs8: URL_SAFE_NO_PAD.decode(stored.pkcs8)?.into(),
                public_jwk: stored.public_jwk,
            });
        }
    }
    let key = GeneratedKey::generate(alg)?;
    let stored = Stored {
        kid: key.kid.clone(),
        alg: alg.as_str().to_owned(),
        pkcs8: URL_SAFE_NO_PAD.encode(key.pkcs8.expose_secret()),
        public_jwk: key.public_jwk.clone(),
    };
    let mut file = std::fs::OpenOptions::new();
    file.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut file, 0o600);
    std::io::Write::write_all(
        &mut file.open(path)?,
        serde_json::to_string(&stored)?.as_bytes(),
    )
    .with_context(|| format!("writing the stand-in key {}", path.display()))?;
    Ok(key)
}

async fn discovery(s: web::Data<Inner>) -> HttpResponse {
    let i = &s.issuer;
    HttpResponse::Ok().json(json!({
        "issuer": i,
        "authorization_endpoint": format!("{i}/authorize"),
        "token_endpoint": format!("{i}/token"),
        "userinfo_endpoint": format!("{i}/userinfo"),
        "jwks_uri": format!("{i}/jwks"),
        "response_types_supported": ["code"],
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": [s.alg.as_str()],
        "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
        "code_challenge_methods_supported": ["S256"],
        "scopes_supported": ["openid", "email", "profile"],
    }))
}

async fn jwks(s: web::Data<Inner>) -> HttpResponse {
    HttpResponse::Ok().json(&s.jwks)
}

fn bad(text: &str) -> HttpResponse {
    HttpResponse::BadRequest().body(text.to_owned())
}

async fn authorize(s: web::Data<Inner>, q: web::Query<HashMap<String, String>>) -> HttpResponse {
    if q.get("client_id").map(String::as_str) != Some(UPSTREAM_CLIENT_ID) {
        return bad("unknown client_id");
    }
    if q.get("response_type").map(String::as_str) != Some("code") {
        return bad("response_type must be code");
    }
    let Some(redirect_uri) = q.get("redirect_uri") else {
        return bad("redirect_uri is required");
    };
    let Ok(mut location) = url::Url::parse(redirect_uri) else {
        return bad("redirect_uri is not a URL");
    };
    let challenge = match q.get("code_challenge_method").map(String::as_str) {
        Some("S256") => q.get("code_challenge").cloned(),
        None => None,
        Some(_) => return bad("only S256 PKCE is supported"),
    };
    let subject = s.next_user.fetch_add(1, Ordering::Relaxed) % s.users + 1;
    let code = random();
    s.codes.lock().expect("codes lock").insert(
        code.clone(),
        Grant {
            nonce: q.get("nonce").cloned(),
            challenge,
            redirect_uri: redirect_uri.clone(),
            subject,
        },
    );
    location.query_pairs_mut().append_pair("code", &code);
    if let Some(state) = q.get("state") {
        location.query_pairs_mut().append_pair("state", state);
    }
    HttpResponse::Found()
        .insert_header(("location", location.to_string()))
        .finish()
}

fn token_error(status: actix_web::http::StatusCode, error: &str) -> HttpResponse {
    HttpResponse::build(status).json(json!({ "error": error }))
}

/// client_secret_basic or client_secret_post.
fn client_ok(req: &HttpRequest, form: &HashMap<String, String>) -> bool {
    let basic = format!(
        "Basic {}",
        STANDARD.encode(format!("{UPSTREAM_CLIENT_ID}:{UPSTREAM_CLIENT_SECRET}"))
    );
    let header = req
        .headers()
        .get("authorization")
        .and_then(|v| v.to_str().ok());
    header == Some(basic.as_str())
        || (header.is_none()
            && form.get("client_id").map(String::as_str) == Some(UPSTREAM_CLIENT_ID)
            && form.get("client_secret").map(String::as_str) == Some(UPSTREAM_CLIENT_SECRET))
}

fn claims_of(subject: u64) -> Value {
    json!({
        "sub": format!("bench-{subject}"),
        "email": format!("bench-{subject}@bench.example"),
        "email_verified": true,
        "name": format!("Bench User {subject}"),
    })
}

async fn token(s: web::Data<Inner>, req: HttpRequest, body: web::Bytes) -> HttpResponse {
    use actix_web::http::StatusCode;
    let form: HashMap<String, String> = url::form_urlencoded::parse(&body).into_owned().collect();
    if !client_ok(&req, &form) {
        return token_error(StatusCode::UNAUTHORIZED, "invalid_client");
    }
    if form.get("grant_type").map(String::as_str) != Some("authorization_code") {
        return token_error(StatusCode::BAD_REQUEST, "unsupported_grant_type");
    }
    let Some(grant) = form
        .get("code")
        .and_then(|c| s.codes.lock().expect("codes lock").remove(c))
    else {
        return token_error(StatusCode::BAD_REQUEST, "invalid_grant");
    };
    if let Some(challenge) = &grant.challenge {
        let verifier = form.get("code_verifier").map_or("", String::as_str);
        let computed = URL_SAFE_NO_PAD
            .encode(ring::digest::digest(&ring::digest::SHA256, verifier.as_bytes()).as_ref());
        if &computed != challenge {
            return token_error(StatusCode::BAD_REQUEST, "invalid_grant");
        }
    }
    if form.get("redirect_uri") != Some(&grant.redirect_uri) {
        return token_error(StatusCode::BAD_REQUEST, "invalid_grant");
    }
    let now = portico::store::now();
    let mut claims = claims_of(grant.subject);
    claims["iss"] = json!(s.issuer);
    claims["aud"] = json!(UPSTREAM_CLIENT_ID);
    claims["iat"] = json!(now);
    claims["exp"] = json!(now + 300);
    if let Some(nonce) = &grant.nonce {
        claims["nonce"] = json!(nonce);
    }
    let id_token = jwt::encode(&s.key, JwtType::Jwt, &claims);
    let access = random();
    s.access
        .lock()
        .expect("access lock")
        .insert(access.clone(), grant.subject);
    HttpResponse::Ok().json(json!({
        "access_token": access,
        "token_type": "Bearer",
        "expires_in": 3600,
        "id_token": id_token,
        "scope": "openid email profile",
    }))
}

async fn userinfo(s: web::Data<Inner>, req: HttpRequest) -> HttpResponse {
    let token = req
        .headers()
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or_default();
    // Portico reads userinfo once per login; forgetting the token keeps the map small.
    match s.access.lock().expect("access lock").remove(token) {
        Some(subject) => HttpResponse::Ok().json(claims_of(subject)),
        None => HttpResponse::Unauthorized().finish(),
    }
}
