//! A GitHub stand-in answering as GitHub documents: the OAuth web flow at `/login/oauth/*`
//! (token errors with status 200, PKCE, GitHub App tokens with rotating refresh tokens) and
//! the REST API under `/api/v3` (the GitHub Enterprise Server layout): `/user`,
//! `/user/emails`, `/user/orgs`, `/user/teams`, with GitHub's error bodies and rate-limit
//! headers.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use actix_web::http::StatusCode;
use actix_web::{App, HttpRequest, HttpResponse, HttpServer, web};
use serde_json::{Value, json};

use super::{form, mint, s256, serve};

pub const CLIENT_ID: &str = "Iv1.portico-test";
pub const CLIENT_SECRET: &str = "github-client-secret";

/// What the stand-in's user looks like and how the stand-in misbehaves.
#[derive(Clone)]
pub struct Scenario {
    pub user_id: i64,
    pub login: String,
    /// `(address, primary, verified)`.
    pub emails: Vec<(String, bool, bool)>,
    pub orgs: Vec<String>,
    /// `(org, team slug)`.
    pub teams: Vec<(String, String)>,
    /// Issue GitHub App user tokens: 8-hour expiry, rotating refresh tokens, no scopes.
    pub app_tokens: bool,
    /// Scopes the user withholds (GitHub grants what was asked minus these).
    pub withheld_scopes: Vec<String>,
    /// Items per page of list endpoints, whatever `per_page` asks.
    pub page_size: usize,
    /// `/user` answers 500 this many times first.
    pub user_failures: usize,
    pub rate_limit: Option<RateLimit>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RateLimit {
    /// 403 with `x-ratelimit-remaining: 0` and `x-ratelimit-reset`.
    Primary,
    /// 429 with `Retry-After` (a secondary limit).
    Secondary,
}

impl Default for Scenario {
    fn default() -> Self {
        Self {
            user_id: 583231,
            login: "octocat".into(),
            emails: vec![
                ("octocat@github.example".into(), true, true),
                ("octo@old.example".into(), false, true),
            ],
            orgs: vec!["acme".into(), "opensource".into()],
            teams: vec![("acme".into(), "platform".into())],
            app_tokens: false,
            withheld_scopes: Vec::new(),
            page_size: 100,
            user_failures: 0,
            rate_limit: None,
        }
    }
}

struct Code {
    redirect_uri: String,
    challenge: String,
    scopes: Vec<String>,
}

struct Token {
    scopes: Vec<String>,
}

#[derive(Default)]
struct State {
    scenario: Scenario,
    codes: HashMap<String, Code>,
    tokens: HashMap<String, Token>,
    /// Live refresh tokens and the scopes of their grant; a used one is removed (rotation).
    refresh_tokens: HashMap<String, Vec<String>>,
    calls: HashMap<String, usize>,
}

pub struct GithubStandIn {
    pub base: String,
    state: Arc<Mutex<State>>,
}

impl GithubStandIn {
    pub async fn start(scenario: Scenario) -> Self {
        let state = Arc::new(Mutex::new(State {
            scenario,
            ..State::default()
        }));
        let shared = web::Data::from(state.clone());
        let server = HttpServer::new(move || {
            App::new()
                .app_data(shared.clone())
                .route("/login/oauth/authorize", web::get().to(authorize))
                .route("/login/oauth/access_token", web::post().to(access_token))
                .route("/api/v3/user", web::get().to(user))
                .route("/api/v3/user/emails", web::get().to(emails))
                .route("/api/v3/user/orgs", web::get().to(orgs))
                .route("/api/v3/user/teams", web::get().to(teams))
        })
        .workers(1)
        .bind("127.0.0.1:0")
        .unwrap();
        let port = server.addrs()[0].port();
        let base = serve(server.run(), port);
        Self { base, state }
    }

    pub fn api_base(&self) -> String {
        format!("{}/api/v3", self.base)
    }

    /// How many requests `path` received.
    pub fn calls(&self, path: &str) -> usize {
        let state = self.state.lock().unwrap();
        state.calls.get(path).copied().unwrap_or(0)
    }

    pub fn change(&self, f: impl FnOnce(&mut Scenario)) {
        f(&mut self.state.lock().unwrap().scenario);
    }
}

type Shared = web::Data<Mutex<State>>;

fn count(state: &mut State, req: &HttpRequest) {
    *state.calls.entry(req.path().to_owned()).or_default() += 1;
}

/// The browser arrives; the user is signed in and approves at once.
async fn authorize(req: HttpRequest, state: Shared) -> HttpResponse {
    let q: HashMap<String, String> = form(req.query_string().as_bytes());
    let mut state = state.lock().unwrap();
    count(&mut state, &req);
    if q.get("client_id").map(String::as_str) != Some(CLIENT_ID) {
        return HttpResponse::NotFound().body("unknown OAuth application");
    }
    let redirect_uri = q.get("redirect_uri").cloned().unwrap_or_default();
    let (Some(challenge), Some("S256")) = (
        q.get("code_challenge"),
        q.get("code_challenge_method").map(String::as_str),
    ) else {
        return HttpResponse::BadRequest().body("this test expects S256 PKCE");
    };
    let scopes: Vec<String> = q
        .get("scope")
        .map(|s| {
            s.split([' ', ','])
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default();
    let scopes = scopes
        .into_iter()
        .filter(|s| !state.scenario.withheld_scopes.contains(s))
        .collect();
    let code = mint("");
    state.codes.insert(
        code.clone(),
        Code {
            redirect_uri: redirect_uri.clone(),
            challenge: challenge.clone(),
            scopes,
        },
    );
    let mut back = url::Url::parse(&redirect_uri).unwrap();
    back.query_pairs_mut()
        .append_pair("code", &code)
        .append_pair("state", q.get("state").map(String::as_str).unwrap_or(""));
    HttpResponse::Found()
        .insert_header(("location", back.to_string()))
        .finish()
}

/// GitHub answers token errors with 200 and an `error` member.
fn token_error(error: &str, description: &str) -> HttpResponse {
    HttpResponse::Ok().json(json!({
        "error": error,
        "error_description": description,
        "error_uri": format!("https://docs.github.com/apps/troubleshooting#{error}"),
    }))
}

async fn access_token(req: HttpRequest, body: web::Bytes, state: Shared) -> HttpResponse {
    let f = form(&body);
    let mut state = state.lock().unwrap();
    count(&mut state, &req);
    let accept = req
        .headers()
        .get("accept")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    if !accept.contains("application/json") {
        // GitHub's default is a form-encoded body: a client must ask for JSON.
        return HttpResponse::Ok()
            .content_type("application/x-www-form-urlencoded")
            .body("error=json_not_requested");
    }
    if f.get("client_id").map(String::as_str) != Some(CLIENT_ID)
        || f.get("client_secret").map(String::as_str) != Some(CLIENT_SECRET)
    {
        return token_error(
            "incorrect_client_credentials",
            "The client_id and/or client_secret passed are incorrect.",
        );
    }
    let scopes = if f.get("grant_type").map(String::as_str) == Some("refresh_token") {
        let presented = f.get("refresh_token").cloned().unwrap_or_default();
        // Each refresh token works once: using it spends it.
        match state.refresh_tokens.remove(&presented) {
            Some(scopes) => scopes,
            None => {
                return token_error(
                    "bad_refresh_token",
                    "The refresh token passed is incorrect or expired.",
                );
            }
        }
    } else {
        let code = f.get("code").cloned().unwrap_or_default();
        // A code works once.
        let Some(grant) = state.codes.remove(&code) else {
            return token_error(
                "bad_verification_code",
                "The code passed is incorrect or expired.",
            );
        };
        if f.get("redirect_uri") != Some(&grant.redirect_uri) {
            return token_error(
                "redirect_uri_mismatch",
                "The redirect_uri MUST match the registered callback URL for this application.",
            );
        }
        let verifier = f.get("code_verifier").cloned().unwrap_or_default();
        if s256(&verifier) != grant.challenge {
            return token_error(
                "bad_verification_code",
                "The code_verifier does not match the code_challenge.",
            );
        }
        grant.scopes
    };
    let access = mint(if state.scenario.app_tokens {
        "ghu_"
    } else {
        "gho_"
    });
    if state.scenario.app_tokens {
        let refresh = mint("ghr_");
        state.refresh_tokens.insert(refresh.clone(), scopes.clone());
        state
            .tokens
            .insert(access.clone(), Token { scopes: Vec::new() });
        HttpResponse::Ok().json(json!({
            "access_token": access,
            "expires_in": 28800,
            "refresh_token": refresh,
            "refresh_token_expires_in": 15811200,
            "scope": "",
            "token_type": "bearer",
        }))
    } else {
        let scope = scopes.join(",");
        state.tokens.insert(access.clone(), Token { scopes });
        HttpResponse::Ok().json(json!({
            "access_token": access,
            "scope": scope,
            "token_type": "bearer",
        }))
    }
}

fn api_error(status: StatusCode, message: &str) -> HttpResponse {
    HttpResponse::build(status).json(json!({
        "message": message,
        "documentation_url": "https://docs.github.com/rest",
        "status": status.as_u16().to_string(),
    }))
}

/// The caller's token: `Ok(scopes, is_app_token)`, or GitHub's 401 / rate-limit answer.
fn authenticate(
    state: &State,
    req: &HttpRequest,
) -> Result<(Vec<String>, bool), Box<HttpResponse>> {
    let header = req
        .headers()
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    let token = header
        .strip_prefix("Bearer ")
        .or_else(|| header.strip_prefix("token "))
        .unwrap_or_default();
    let Some(t) = state.tokens.get(token) else {
        return Err(Box::new(api_error(
            StatusCode::UNAUTHORIZED,
            "Bad credentials",
        )));
    };
    match state.scenario.rate_limit {
        Some(RateLimit::Primary) => {
            let reset = portico::store::now() + 1800;
            return Err(Box::new(HttpResponse::Forbidden()
                .insert_header(("x-ratelimit-limit", "5000"))
                .insert_header(("x-ratelimit-remaining", "0"))
                .insert_header(("x-ratelimit-used", "5000"))
                .insert_header(("x-ratelimit-reset", reset.to_string()))
                .insert_header(("x-ratelimit-resource", "core"))
                .json(json!({
                    "message": "API rate limit exceeded for user ID 583231.",
                    "documentation_url": "https://docs.github.com/rest/overview/rate-limits-for-the-rest-api",
                }))));
        }
        Some(RateLimit::Secondary) => {
            return Err(Box::new(HttpResponse::TooManyRequests()
                .insert_header(("retry-after", "60"))
                .json(json!({
                    "message": "You have exceeded a secondary rate limit. Please wait a few minutes before you try again.",
                    "documentation_url": "https://docs.github.com/rest/overview/rate-limits-for-the-rest-api#about-secondary-rate-limits",
                }))));
        }
        None => {}
    }
    let is_app = token.starts_with("ghu_");
    Ok((t.scopes.clone(), is_app))
}

fn has(scopes: &[String], wanted: &[&str]) -> bool {
    scopes.iter().any(|s| wanted.contains(&s.as_str()))
}

async fn user(req: HttpRequest, state: Shared) -> HttpResponse {
    let mut state = state.lock().unwrap();
    count(&mut state, &req);
    if state.scenario.user_failures > 0 {
        state.scenario.user_failures -= 1;
        return api_error(StatusCode::INTERNAL_SERVER_ERROR, "Server Error");
    }
    if let Err(res) = authenticate(&state, &req) {
        return *res;
    }
    let s = &state.scenario;
    HttpResponse::Ok().json(json!({
        "login": s.login,
        "id": s.user_id,
        "node_id": "MDQ6VXNlcjE=",
        "avatar_url": format!("https://avatars.githubusercontent.com/u/{}?v=4", s.user_id),
        "type": "User",
        "site_admin": false,
        "name": "The Octocat",
        "company": "@acme",
        // The public profile address, which need not be the primary one.
        "email": null,
        "created_at": "2011-01-25T18:44:36Z",
    }))
}

async fn emails(req: HttpRequest, state: Shared) -> HttpResponse {
    let mut state = state.lock().unwrap();
    count(&mut state, &req);
    let (scopes, is_app) = match authenticate(&state, &req) {
        Ok(ok) => ok,
        Err(res) => return *res,
    };
    if !is_app && !has(&scopes, &["user:email", "user"]) {
        return api_error(StatusCode::NOT_FOUND, "Not Found");
    }
    let list: Vec<Value> = state
        .scenario
        .emails
        .iter()
        .map(|(email, primary, verified)| {
            json!({"email": email, "primary": primary, "verified": verified, "visibility": if *primary { Some("private") } else { None }})
        })
        .collect();
    HttpResponse::Ok().json(list)
}

/// One page of `items`, with GitHub's `Link` header.
fn page(req: &HttpRequest, page_size: usize, items: Vec<Value>) -> HttpResponse {
    let q: HashMap<String, String> = form(req.query_string().as_bytes());
    let per_page: usize = q
        .get("per_page")
        .and_then(|p| p.parse().ok())
        .unwrap_or(30)
        .min(page_size);
    let page: usize = q.get("page").and_then(|p| p.parse().ok()).unwrap_or(1);
    let chunk: Vec<Value> = items
        .iter()
        .skip((page - 1) * per_page)
        .take(per_page)
        .cloned()
        .collect();
    let mut res = HttpResponse::Ok();
    if page * per_page < items.len() {
        let host = req.connection_info().host().to_owned();
        res.insert_header((
            "link",
            format!(
                "<http://{host}{}?per_page={per_page}&page={}>; rel=\"next\"",
                req.path(),
                page + 1
            ),
        ));
    }
    res.json(chunk)
}

async fn orgs(req: HttpRequest, state: Shared) -> HttpResponse {
    let mut state = state.lock().unwrap();
    count(&mut state, &req);
    let (scopes, is_app) = match authenticate(&state, &req) {
        Ok(ok) => ok,
        Err(res) => return *res,
    };
    // Without read:org only public memberships show; this user's are all private.
    let list: Vec<Value> = if is_app || has(&scopes, &["read:org", "write:org", "admin:org"]) {
        state
            .scenario
            .orgs
            .iter()
            .map(|o| json!({"login": o, "id": 1, "description": null}))
            .collect()
    } else {
        Vec::new()
    };
    page(&req, state.scenario.page_size, list)
}

async fn teams(req: HttpRequest, state: Shared) -> HttpResponse {
    let mut state = state.lock().unwrap();
    count(&mut state, &req);
    let (scopes, is_app) = match authenticate(&state, &req) {
        Ok(ok) => ok,
        Err(res) => return *res,
    };
    if !is_app && !has(&scopes, &["read:org", "write:org", "admin:org"]) {
        return api_error(
            StatusCode::FORBIDDEN,
            "Resource not accessible by integration",
        );
    }
    let list: Vec<Value> = state
        .scenario
        .teams
        .iter()
        .map(|(org, slug)| {
            json!({"id": 1, "name": slug.to_uppercase(), "slug": slug, "privacy": "closed",
                   "organization": {"login": org, "id": 1}})
        })
        .collect();
    page(&req, state.scenario.page_size, list)
}
