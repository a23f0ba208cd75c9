use std::time::Duration;

use portico::crypto::MasterKey;

use super::{
    EMAIL, PASSWORD, audit_count, client, create_admin, csrf_in, page, set_cookie, sign_in,
    signed_in,
};
use crate::helpers::{Backend, TestApp, TestDb, spawn_app, spawn_app_with};
use crate::on_both_backends;

on_both_backends!(sign_in_opens_a_server_side_session_and_sign_out_ends_it);

async fn sign_in_opens_a_server_side_session_and_sign_out_ends_it(db: &TestDb) {
    let app = spawn_app(db).await;
    create_admin(&app).await;
    let anonymous = client();
    let res = anonymous.get(app.url("/admin")).send().await.unwrap();
    assert_eq!(res.status(), 303);
    assert_eq!(res.headers()["location"], "/admin/sign-in");

    let browser = client();
    let res = sign_in(&app, &browser, EMAIL, PASSWORD).await;
    assert_eq!(res.status(), 303);
    let cookie = set_cookie(&res, "portico_admin").unwrap();
    for attribute in ["HttpOnly", "SameSite=Strict", "Path=/"] {
        assert!(cookie.contains(attribute), "{cookie}");
    }
    assert!(!cookie.contains("Secure"), "plain http issuer: {cookie}");
    let value = cookie
        .split(';')
        .next()
        .unwrap()
        .split_once('=')
        .unwrap()
        .1
        .to_owned();

    // The database holds a digest of the session token, never the token.
    let stored: Vec<Vec<u8>> = sqlx::query_scalar("SELECT token_digest FROM admin_sessions")
        .fetch_all(app.state.store.pool())
        .await
        .unwrap();
    assert_eq!(stored.len(), 1);
    assert_eq!(stored[0].len(), 32);
    assert_ne!(stored[0], value.as_bytes());

    let res = browser.get(app.url("/admin")).send().await.unwrap();
    assert_eq!(res.headers()["cache-control"], "no-store");
    let dashboard = res.text().await.unwrap();
    assert!(dashboard.contains(EMAIL));
    assert!(
        dashboard.contains("admin.signed_in"),
        "recent audit entries"
    );
    assert_eq!(audit_count(&app, "admin.signed_in").await, 1);

    let res = browser
        .post(app.url("/admin/sign-out"))
        .form(&[("csrf", csrf_in(&dashboard))])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 303);
    assert_eq!(res.headers()["location"], "/admin/sign-in");
    let count: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM admin_sessions")
        .fetch_one(app.state.store.pool())
        .await
        .unwrap();
    assert_eq!(count, 0, "the session row is gone");
    // Even the old cookie value no longer works.
    let replay = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
        .get(app.url("/admin"))
        .header("cookie", format!("portico_admin={value}"))
        .send()
        .await
        .unwrap();
    assert_eq!(replay.status(), 303);
    app.stop();
}

async fn sqlite_app(customize: impl FnOnce(&mut portico::config::Settings)) -> (TestDb, TestApp) {
    let db = TestDb::new(Backend::Sqlite).await.unwrap();
    let app = spawn_app_with(&db, MasterKey::generate(), customize).await;
    create_admin(&app).await;
    (db, app)
}

async fn key_count(app: &TestApp) -> i64 {
    sqlx::query_scalar("SELECT COUNT(*) FROM signing_keys")
        .fetch_one(app.state.store.pool())
        .await
        .unwrap()
}

#[tokio::test]
async fn forms_without_their_csrf_token_are_refused() {
    let (db, app) = sqlite_app(|_| {}).await;
    let browser = signed_in(&app).await;
    let keys_page = page(&app, &browser, "/admin/keys").await;
    let good = csrf_in(&keys_page);

    for form in [
        vec![],
        vec![("csrf", "")],
        vec![("csrf", "forged-token-value")],
    ] {
        let res = browser
            .post(app.url("/admin/keys/rotate"))
            .form(&form)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 403, "{form:?}");
        assert!(res.text().await.unwrap().contains("Form refused"));
    }
    assert_eq!(key_count(&app).await, 3, "nothing rotated");
    let res = browser
        .post(app.url("/admin/tokens"))
        .form(&[("name", "sneaky")])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 403);

    // Another session's token does not fit this session.
    let other = signed_in(&app).await;
    let other_csrf = csrf_in(&page(&app, &other, "/admin/keys").await);
    assert_ne!(other_csrf, good);
    let res = browser
        .post(app.url("/admin/keys/rotate"))
        .form(&[("csrf", other_csrf.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 403);

    // The sign-in form has its own token, tied to a cookie.
    let res = client()
        .post(app.url("/admin/sign-in"))
        .form(&[("email", EMAIL), ("password", PASSWORD)])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 403);

    // With the right token the same form works.
    let res = browser
        .post(app.url("/admin/keys/rotate"))
        .form(&[("csrf", good.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 303);
    assert_eq!(key_count(&app).await, 6);
    app.stop();
    db.cleanup().await;
}

#[tokio::test]
async fn failed_sign_ins_wait_longer_then_lock_the_account() {
    // Waits long enough that a slow request on a loaded machine still lands inside them; each
    // next step waits from when the last answer arrived, which is after the server counted it.
    const BASE: Duration = Duration::from_millis(1500);
    const MARGIN: Duration = Duration::from_millis(150);
    let (db, app) = sqlite_app(|s| {
        s.admin.delay_base_ms = BASE.as_millis() as u64;
        s.admin.account_lockout_failures = 3;
    })
    .await;
    let browser = client();
    let res = sign_in(&app, &browser, EMAIL, "wrong password 1").await;
    let first = tokio::time::Instant::now();
    assert_eq!(res.status(), 401);
    assert!(res.text().await.unwrap().contains("wrong"));

    // Too soon after a failure, even the right password is not tried.
    let res = sign_in(&app, &browser, EMAIL, PASSWORD).await;
    assert_eq!(res.status(), 429);
    assert!(res.text().await.unwrap().contains("try again in"));

    tokio::time::sleep_until(first + BASE + MARGIN).await;
    assert_eq!(
        sign_in(&app, &browser, EMAIL, "wrong password 2")
            .await
            .status(),
        401
    );
    let second = tokio::time::Instant::now();
    // The second wait is twice the first: once the first wait has passed again, still refused.
    tokio::time::sleep_until(second + BASE + MARGIN).await;
    assert_eq!(sign_in(&app, &browser, EMAIL, PASSWORD).await.status(), 429);
    tokio::time::sleep_until(second + 2 * BASE + MARGIN).await;

    let res = sign_in(&app, &browser, EMAIL, "wrong password 3").await;
    assert_eq!(res.status(), 429);
    assert!(res.text().await.unwrap().contains("locked"));
    let res = sign_in(&app, &browser, EMAIL, PASSWORD).await;
    assert_eq!(res.status(), 429, "locked out with the right password too");
    assert!(res.text().await.unwrap().contains("locked"));

    // Every failure is audited, with the address it came from.
    assert_eq!(audit_count(&app, "admin.sign_in_failed").await, 3);
    assert_eq!(audit_count(&app, "admin.sign_in_refused").await, 3);
    assert_eq!(audit_count(&app, "admin.signed_in").await, 0);
    let ip: Option<String> = sqlx::query_scalar(
        "SELECT ip FROM audit_log WHERE action = 'admin.sign_in_failed' LIMIT 1",
    )
    .fetch_one(app.state.store.pool())
    .await
    .unwrap();
    assert_eq!(ip.as_deref(), Some("127.0.0.1"));
    app.stop();
    db.cleanup().await;
}

#[tokio::test]
async fn one_address_failing_on_many_accounts_is_locked_out() {
    let (db, app) = sqlite_app(|s| {
        s.admin.delay_base_ms = 1;
        s.admin.ip_lockout_failures = 3;
    })
    .await;
    let browser = client();
    for who in ["a@example.com", "b@example.com", "c@example.com"] {
        tokio::time::sleep(Duration::from_millis(20)).await;
        sign_in(&app, &browser, who, "guess guess guess").await;
    }
    let res = sign_in(&app, &browser, EMAIL, PASSWORD).await;
    assert_eq!(res.status(), 429);
    assert!(res.text().await.unwrap().contains("locked"));
    app.stop();
    db.cleanup().await;
}

#[tokio::test]
async fn a_successful_sign_in_clears_the_account_count() {
    let (db, app) = sqlite_app(|s| {
        s.admin.delay_base_ms = 1;
        s.admin.account_lockout_failures = 2;
    })
    .await;
    let browser = client();
    assert_eq!(
        sign_in(&app, &browser, EMAIL, "nope nope nope")
            .await
            .status(),
        401
    );
    tokio::time::sleep(Duration::from_millis(20)).await;
    assert_eq!(sign_in(&app, &browser, EMAIL, PASSWORD).await.status(), 303);
    assert_eq!(
        sign_in(&app, &client(), EMAIL, "nope nope nope")
            .await
            .status(),
        401,
        "not locked"
    );
    app.stop();
    db.cleanup().await;
}

#[tokio::test]
async fn idle_sessions_end() {
    let (db, app) = sqlite_app(|s| s.admin.session_idle_secs = 1).await;
    let browser = signed_in(&app).await;
    page(&app, &browser, "/admin").await;
    tokio::time::sleep(Duration::from_millis(2100)).await;
    let res = browser.get(app.url("/admin")).send().await.unwrap();
    assert_eq!(res.status(), 303, "the idle session is over");
    app.stop();
    db.cleanup().await;
}

#[tokio::test]
async fn under_https_the_cookie_is_secure_and_host_bound() {
    let (db, app) = sqlite_app(|s| {
        s.server.issuer = portico::config::Issuer::parse("https://id.example.com").unwrap();
    })
    .await;
    // A cookie store keeps Secure cookies off plain http, so carry the form's cookie by hand.
    let plain = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let form = plain.get(app.url("/admin/sign-in")).send().await.unwrap();
    let form_cookie = set_cookie(&form, "portico_admin_sign_in").unwrap();
    assert!(form_cookie.contains("Secure"), "{form_cookie}");
    let pair = form_cookie.split(';').next().unwrap().to_owned();
    let html = form.text().await.unwrap();
    let res = plain
        .post(app.url("/admin/sign-in"))
        .header("cookie", pair)
        .form(&[
            ("csrf", csrf_in(&html).as_str()),
            ("email", EMAIL),
            ("password", PASSWORD),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 303);
    let cookie = set_cookie(&res, "__Host-portico_admin").unwrap();
    for attribute in ["Secure", "HttpOnly", "SameSite=Strict", "Path=/"] {
        assert!(cookie.contains(attribute), "{cookie}");
    }
    app.stop();
    db.cleanup().await;
}

#[tokio::test]
async fn the_bootstrap_admin_is_created_once() {
    let db = TestDb::new(Backend::Sqlite).await.unwrap();
    let key = MasterKey::generate();
    let app = spawn_app_with(&db, key.clone(), |s| {
        s.bootstrap.admin_email = Some(EMAIL.into());
        s.bootstrap.admin_password = Some(PASSWORD.into());
    })
    .await;
    assert_eq!(
        sign_in(&app, &client(), EMAIL, PASSWORD).await.status(),
        303
    );
    app.shut_down().await;
    // A later start with other bootstrap values changes nothing: an admin exists.
    let again = spawn_app_with(&db, key, |s| {
        s.bootstrap.admin_email = Some("eve@example.com".into());
        s.bootstrap.admin_password = Some("another long password".into());
    })
    .await;
    let admins: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM admins")
        .fetch_one(again.state.store.pool())
        .await
        .unwrap();
    assert_eq!(admins, 1);
    assert_eq!(audit_count(&again, "admin.created").await, 1);
    again.stop();
    db.cleanup().await;
}

#[tokio::test]
async fn tokens_page_shows_a_new_token_once_and_escapes_names() {
    let (db, app) = sqlite_app(|_| {}).await;
    let browser = signed_in(&app).await;
    let tokens = page(&app, &browser, "/admin/tokens").await;
    let res = browser
        .post(app.url("/admin/tokens"))
        .form(&[
            ("csrf", csrf_in(&tokens).as_str()),
            ("name", "<script>alert(1)</script>"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 303);
    let location = res.headers()["location"].to_str().unwrap().to_owned();
    assert!(location.starts_with("/admin/tokens/tok_"), "{location}");
    let res = browser.get(app.url(&location)).send().await.unwrap();
    assert_eq!(res.headers()["cache-control"], "no-store");
    let body = res.text().await.unwrap();
    assert!(!body.contains("<script>alert(1)</script>"), "escaped");
    assert!(body.contains("&#60;script&#62;alert(1)&#60;/script&#62;"));
    let start = body.find("pat_").unwrap();
    let token: String = body[start..].chars().take_while(|c| *c != '<').collect();
    assert_eq!(token.len(), 4 + 43);

    let again = page(&app, &browser, "/admin/tokens").await;
    assert!(!again.contains(&token), "shown once");
    let api = app
        .client
        .get(app.url("/admin/api/v1/keys"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(api.status(), 200, "the token works");

    // An empty name re-renders the form with the message beside the field.
    let res = browser
        .post(app.url("/admin/tokens"))
        .form(&[("csrf", csrf_in(&again).as_str()), ("name", "")])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 422);
    assert!(res.text().await.unwrap().contains("Name is required"));
    app.stop();
    db.cleanup().await;
}

#[tokio::test]
async fn static_assets_are_served_with_types_and_caching() {
    let db = TestDb::new(Backend::Sqlite).await.unwrap();
    let app = spawn_app(&db).await;
    let html = page(&app, &client(), "/admin/sign-in").await;
    let start = html.find("/admin/static/admin.css?v=").unwrap();
    let css_url: String = html[start..].chars().take_while(|c| *c != '"').collect();
    let res = app.get(&css_url).await;
    assert_eq!(res.status(), 200);
    assert_eq!(res.headers()["content-type"], "text/css; charset=utf-8");
    assert!(
        res.headers()["cache-control"]
            .to_str()
            .unwrap()
            .contains("immutable")
    );
    let res = app.get("/admin/static/copy.js").await;
    assert_eq!(
        res.headers()["content-type"],
        "text/javascript; charset=utf-8"
    );
    assert_eq!(res.headers()["cache-control"], "no-cache");
    assert_eq!(app.get("/admin/static/nope.js").await.status(), 404);
    app.stop();
    db.cleanup().await;
}
