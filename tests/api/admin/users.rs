//! `/admin/api/v1/users` and `/admin/users`: search, a user's identities without any token,
//! ending sessions (the SSO cookie dies, refresh tokens are revoked), disabling (no login,
//! refresh or userinfo), audit entries, 401/403/404/409/422, escaping and CSRF refusal.

use reqwest::Method;
use serde_json::{Value, json};

use super::{api_token, audit_count, create_admin, csrf_in, page, revoked_api_token, signed_in};
use super::{call, error, json_of};
use crate::helpers::{TestApp, TestDb, spawn_app};
use crate::oidc::{prompt_none_url, refresh_form};
use crate::oidc_support::{
    CLIENT_ID, CLIENT_SECRET, REDIRECT, authorize, browse, events, exchange, jwt_claims, param,
    relying_party, spawn_portico, start_url, userinfo_status,
};
use crate::on_both_backends;
use crate::upstream_idp::Upstream;
use openidconnect::{OAuth2TokenResponse, TokenResponse};

on_both_backends!(
    users_are_searched_signed_out_disabled_and_enabled,
    user_errors_are_401_403_404_409_422,
    the_users_pages_search_disable_and_end_sessions,
);

const SCOPES: &[&str] = &["email", "profile", "offline_access"];

/// Whether the browser's SSO cookie still answers `prompt=none` with a code.
async fn sso_alive(app: &TestApp) -> bool {
    let arrived = browse(app, &prompt_none_url(app), REDIRECT).await.url();
    match param(&arrived, "error").as_deref() {
        None => param(&arrived, "code").is_some(),
        Some("login_required") => false,
        Some(other) => panic!("unexpected error {other}"),
    }
}

/// Logs in through Portico; returns the user id, the refresh token and the access token.
async fn log_in(app: &TestApp) -> (String, String, String) {
    let rp = relying_party(app, CLIENT_ID, Some(CLIENT_SECRET), REDIRECT).await;
    let (tokens, _) = exchange(&rp, authorize(app, &rp, REDIRECT, SCOPES).await).await;
    let user_id = jwt_claims(&tokens.id_token().unwrap().to_string())["sub"]
        .as_str()
        .unwrap()
        .to_owned();
    (
        user_id,
        tokens.refresh_token().unwrap().secret().clone(),
        tokens.access_token().secret().clone(),
    )
}

async fn insert_user(app: &TestApp, id: &str, email: &str, name: &str, created_at: i64) {
    sqlx::query(
        "INSERT INTO users (id, email, email_verified, name, groups, disabled, created_at, \
         updated_at) VALUES ($1, $2, 1, $3, '[]', 0, $4, $5)",
    )
    .bind(id)
    .bind(email)
    .bind(name)
    .bind(created_at)
    .bind(created_at)
    .execute(app.state.store.pool())
    .await
    .unwrap();
}

async fn ids(app: &TestApp, token: &str, query: &str) -> Vec<String> {
    let page = json_of(
        call(
            app,
            Method::GET,
            Some(token),
            &format!("/users{query}"),
            None,
        )
        .await,
        200,
    )
    .await;
    page["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["id"].as_str().unwrap().to_owned())
        .collect()
}

async fn users_are_searched_signed_out_disabled_and_enabled(db: &TestDb) {
    let upstream = Upstream::start().await;
    let app = spawn_portico(db, &upstream, |_| {}).await;
    let token = api_token(&app, "automation").await;
    let t = Some(token.as_str());
    let (user_id, refresh, _) = log_in(&app).await;
    insert_user(&app, "usr-bob", "bob@else.example", "Bob 100%", 1_000).await;

    // Search by part of the e-mail (any case), the name, or the whole id.
    assert_eq!(
        ids(&app, &token, "?q=ALICE%40corp").await,
        [user_id.as_str()]
    );
    assert_eq!(
        ids(&app, &token, "?q=user%20alice").await,
        [user_id.as_str()]
    );
    assert_eq!(
        ids(&app, &token, &format!("?q={user_id}")).await,
        [user_id.as_str()]
    );
    assert!(ids(&app, &token, "?q=nobody").await.is_empty());
    // LIKE wildcards in the query are literal.
    assert_eq!(ids(&app, &token, "?q=100%25").await, ["usr-bob"]);
    assert!(ids(&app, &token, "?q=_").await.is_empty());
    // Newest first, paginated.
    let first = json_of(
        call(&app, Method::GET, t, "/users?limit=1", None).await,
        200,
    )
    .await;
    assert_eq!(first["items"][0]["id"], user_id.as_str());
    let cursor = first["next_cursor"].as_str().expect("a second page");
    assert_eq!(
        ids(&app, &token, &format!("?limit=1&cursor={cursor}")).await,
        ["usr-bob"]
    );

    // The user with its identity, and never a token (the vault holds some for it).
    let sealed: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM identities WHERE access_token IS NOT NULL AND user_id = $1",
    )
    .bind(&user_id)
    .fetch_one(app.state.store.pool())
    .await
    .unwrap();
    assert_eq!(sealed, 1, "the test needs stored upstream tokens");
    let shown = json_of(
        call(&app, Method::GET, t, &format!("/users/{user_id}"), None).await,
        200,
    )
    .await;
    assert_eq!(shown["email"], "alice@corp.example");
    assert_eq!(shown["disabled"], false);
    assert_eq!(shown["active_sessions"], 1);
    assert_eq!(shown["active_refresh_tokens"], 1);
    let identities = shown["identities"].as_array().unwrap();
    assert_eq!(identities.len(), 1);
    let identity = &identities[0];
    assert_eq!(identity["provider"], "corp");
    assert_eq!(identity["subject"], "alice-sub");
    assert_eq!(identity["email"], "alice@corp.example");
    assert_eq!(identity["needs_login"], false);
    assert!(identity["created_at"].is_string() && identity["updated_at"].is_string());
    for key in identity.as_object().unwrap().keys() {
        assert!(!key.contains("token"), "{key} in {identity}");
    }
    let text = shown.to_string();
    let issued = upstream.issued_tokens();
    assert!(!issued.is_empty());
    for upstream_token in issued {
        assert!(!text.contains(&upstream_token), "an upstream token leaked");
    }

    // Ending the sessions: the SSO cookie dies and the refresh token with it.
    assert!(sso_alive(&app).await);
    let ended = json_of(
        call(
            &app,
            Method::DELETE,
            t,
            &format!("/users/{user_id}/sessions"),
            None,
        )
        .await,
        200,
    )
    .await;
    assert_eq!(ended["sessions_ended"], 1);
    assert_eq!(ended["refresh_tokens_revoked"], 1);
    assert!(!sso_alive(&app).await, "the SSO cookie is dead");
    let (status, body) = refresh_form(&app, &refresh).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_grant"))
    );
    let ended_events = events(&app, "session.ended").await;
    assert_eq!(ended_events.len(), 1);
    assert_eq!(ended_events[0]["user_id"], user_id.as_str());
    assert_eq!(ended_events[0]["reason"], "ended by an admin");
    assert_eq!(audit_count(&app, "user.sessions_ended").await, 1);
    let shown = json_of(
        call(&app, Method::GET, t, &format!("/users/{user_id}"), None).await,
        200,
    )
    .await;
    assert_eq!(shown["active_sessions"], 0);
    assert_eq!(shown["active_refresh_tokens"], 0);

    // Disabling: sessions end, refresh and userinfo refuse, and no new login.
    let (_, refresh, access) = log_in(&app).await;
    assert!(sso_alive(&app).await);
    assert_eq!(userinfo_status(&app, &access).await, 200);
    let disabled = json_of(
        call(
            &app,
            Method::POST,
            t,
            &format!("/users/{user_id}/disable"),
            None,
        )
        .await,
        200,
    )
    .await;
    assert_eq!(disabled["disabled"], true);
    assert_eq!(disabled["active_sessions"], 0);
    assert_eq!(disabled["active_refresh_tokens"], 0);
    assert!(!sso_alive(&app).await);
    let (status, body) = refresh_form(&app, &refresh).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_grant"))
    );
    assert_eq!(userinfo_status(&app, &access).await, 401);
    let reasons: Vec<Value> = events(&app, "session.ended")
        .await
        .iter()
        .map(|e| e["reason"].clone())
        .collect();
    assert_eq!(reasons.len(), 2);
    assert!(reasons.contains(&json!("user disabled")), "{reasons:?}");
    let (target, details): (String, String) =
        sqlx::query_as("SELECT target, details FROM audit_log WHERE action = 'user.disabled'")
            .fetch_one(app.state.store.pool())
            .await
            .unwrap();
    assert_eq!(target, format!("user:{user_id}"));
    let details: Value = serde_json::from_str(&details).unwrap();
    assert_eq!(details["sessions_ended"], 1);
    assert_eq!(details["refresh_tokens_revoked"], 1);
    let mut app = app;
    app.client = super::client();
    let rp = relying_party(&app, CLIENT_ID, Some(CLIENT_SECRET), REDIRECT).await;
    let arrived = browse(&app, start_url(&rp, &[]).as_str(), REDIRECT)
        .await
        .url();
    assert_eq!(param(&arrived, "error").as_deref(), Some("access_denied"));
    error(
        call(
            &app,
            Method::POST,
            t,
            &format!("/users/{user_id}/disable"),
            None,
        )
        .await,
        409,
        "conflict",
    )
    .await;

    // Enabling lets the user in again.
    let enabled = json_of(
        call(
            &app,
            Method::POST,
            t,
            &format!("/users/{user_id}/enable"),
            None,
        )
        .await,
        200,
    )
    .await;
    assert_eq!(enabled["disabled"], false);
    assert_eq!(audit_count(&app, "user.enabled").await, 1);
    let doc: Value = app
        .get("/admin/api/v1/openapi.json")
        .await
        .json()
        .await
        .unwrap();
    assert!(doc["paths"]["/users/{id}/sessions"]["delete"].is_object());
    for schema in ["UserView", "UserDetail", "IdentityView", "SessionsEnded"] {
        assert!(doc["components"]["schemas"][schema].is_object(), "{schema}");
    }
    let (again, _, _) = log_in(&app).await;
    assert_eq!(again, user_id);
    app.stop();
}

async fn user_errors_are_401_403_404_409_422(db: &TestDb) {
    let app = spawn_app(db).await;
    insert_user(&app, "usr-1", "one@example.com", "One", 1_000).await;
    let token = api_token(&app, "automation").await;
    let t = Some(token.as_str());

    error(
        call(&app, Method::GET, None, "/users", None).await,
        401,
        "unauthorized",
    )
    .await;
    error(
        call(&app, Method::GET, Some("pat_wrong"), "/users/usr-1", None).await,
        401,
        "unauthorized",
    )
    .await;
    let revoked = revoked_api_token(&app).await;
    error(
        call(
            &app,
            Method::POST,
            Some(&revoked),
            "/users/usr-1/disable",
            None,
        )
        .await,
        403,
        "token_revoked",
    )
    .await;
    let disabled: i64 = sqlx::query_scalar("SELECT disabled FROM users WHERE id = 'usr-1'")
        .fetch_one(app.state.store.pool())
        .await
        .unwrap();
    assert_eq!(disabled, 0, "a revoked token changes nothing");

    for (method, path) in [
        (Method::GET, "/users/nope"),
        (Method::POST, "/users/nope/disable"),
        (Method::POST, "/users/nope/enable"),
        (Method::DELETE, "/users/nope/sessions"),
    ] {
        error(call(&app, method, t, path, None).await, 404, "not_found").await;
    }
    error(
        call(&app, Method::POST, t, "/users/usr-1/enable", None).await,
        409,
        "conflict",
    )
    .await;
    let res = call(&app, Method::PUT, t, "/users/usr-1", Some(json!({}))).await;
    assert_eq!(res.status(), 405);

    let long = "q".repeat(201);
    let body = error(
        call(
            &app,
            Method::GET,
            t,
            &format!("/users?q={long}&limit=0&cursor=%21%21"),
            None,
        )
        .await,
        422,
        "validation_failed",
    )
    .await;
    for field in ["q", "limit", "cursor"] {
        assert!(body["fields"][field].is_string(), "{field}: {body}");
    }
    assert_eq!(audit_count(&app, "user.disabled").await, 0);
    assert_eq!(audit_count(&app, "user.enabled").await, 0);
}

/// The user `usr-eve` (a script for a name), with a GitHub identity holding (fake) sealed
/// tokens and a live SSO session.
pub(super) async fn eve_with_a_session(app: &TestApp) {
    insert_user(
        app,
        "usr-eve",
        "eve@example.com",
        "<script>alert(1)</script>",
        2_000,
    )
    .await;
    // An identity with (fake) sealed tokens, and a live SSO session.
    sqlx::query(
        "INSERT INTO identities (id, user_id, provider_id, subject, email, created_at, \
         updated_at, access_token, refresh_token) VALUES ('idn-1', 'usr-eve', 'github', \
         'eve-42', 'eve@example.com', 2000, 2000, $1, $2)",
    )
    .bind(b"SEALED-ACCESS-BYTES".to_vec())
    .bind(b"SEALED-REFRESH-BYTES".to_vec())
    .execute(app.state.store.pool())
    .await
    .unwrap();
    sqlx::query(
        "INSERT INTO sso_sessions (id, token_digest, user_id, identity_id, provider_id, \
         auth_time, last_seen_at, expires_at) VALUES ('ses-1', $1, 'usr-eve', 'idn-1', \
         'github', $2, $3, $4)",
    )
    .bind(vec![7u8; 32])
    .bind(portico::store::now())
    .bind(portico::store::now())
    .bind(portico::store::now() + 3600)
    .execute(app.state.store.pool())
    .await
    .unwrap();
}

async fn the_users_pages_search_disable_and_end_sessions(db: &TestDb) {
    let app = spawn_app(db).await;
    eve_with_a_session(&app).await;
    insert_user(&app, "usr-old", "old@example.com", "Old", 1_000).await;
    create_admin(&app).await;
    let browser = signed_in(&app).await;

    // The list and the search, names escaped.
    let html = page(&app, &browser, "/admin/users").await;
    assert!(html.contains("href=\"/admin/users\" aria-current=\"page\""));
    assert!(html.contains("eve@example.com") && html.contains("old@example.com"));
    assert!(!html.contains("<script>alert(1)</script>"));
    assert!(html.contains("&#60;script&#62;") || html.contains("&lt;script&gt;"));
    let html = page(&app, &browser, "/admin/users?q=EVE").await;
    assert!(html.contains("eve@example.com") && !html.contains("old@example.com"));
    assert!(html.contains("value=\"EVE\""));
    let html = page(&app, &browser, "/admin/users?q=zzz").await;
    assert!(html.contains("id=\"no-users\""));
    let res = browser
        .get(app.url(&format!("/admin/users?q={}", "q".repeat(201))))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 422);

    // The user's page: identities, never a token.
    let html = page(&app, &browser, "/admin/users/usr-eve").await;
    assert!(html.contains("eve-42") && html.contains("github"));
    assert!(!html.contains("SEALED"));
    assert!(!html.contains("<script>alert(1)</script>"));
    assert!(html.contains("id=\"disable-user\""));
    let csrf = csrf_in(&html);
    let disabled = || async {
        sqlx::query_scalar::<_, i64>("SELECT disabled FROM users WHERE id = 'usr-eve'")
            .fetch_one(app.state.store.pool())
            .await
            .unwrap()
    };

    // Without the CSRF token (or with a forged one) nothing happens.
    for form in [vec![], vec![("csrf", "forged")]] {
        let res = browser
            .post(app.url("/admin/users/usr-eve/disable"))
            .form(&form)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 403);
    }
    let res = browser
        .post(app.url("/admin/users/usr-eve/sessions/end"))
        .form(&[("csrf", "forged")])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 403);
    assert_eq!(disabled().await, 0);
    assert!(events(&app, "session.ended").await.is_empty());

    // Disable, confirmed: the session ends with it.
    let res = browser
        .post(app.url("/admin/users/usr-eve/disable"))
        .form(&[("csrf", csrf.as_str()), ("confirm", "yes")])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 303);
    assert_eq!(
        res.headers()["location"],
        "/admin/users/usr-eve?done=disabled"
    );
    assert_eq!(disabled().await, 1);
    assert_eq!(events(&app, "session.ended").await.len(), 1);
    assert_eq!(audit_count(&app, "user.disabled").await, 1);
    let html = page(&app, &browser, "/admin/users/usr-eve?done=disabled").await;
    assert!(html.contains("id=\"enable-user\""));
    assert!(html.contains("The user was disabled"));

    // Enable (one step: it ends nothing), then end sessions, confirmed.
    let res = browser
        .post(app.url("/admin/users/usr-eve/enable"))
        .form(&[("csrf", csrf.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 303);
    assert_eq!(disabled().await, 0);
    assert_eq!(audit_count(&app, "user.enabled").await, 1);
    let res = browser
        .post(app.url("/admin/users/usr-eve/sessions/end"))
        .form(&[("csrf", csrf.as_str()), ("confirm", "yes")])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 303);
    assert_eq!(
        res.headers()["location"],
        "/admin/users/usr-eve?done=sessions_ended"
    );
    assert_eq!(audit_count(&app, "user.sessions_ended").await, 1);

    let res = browser
        .get(app.url("/admin/users/nope"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 404);
}
