//! Incremental upstream scopes through the broker (keycloak#43965): a broker request naming a
//! scope the stored grant lacks gets `insufficient_scope` and an upgrade URL; the user follows
//! it, signs in at the provider with the extra scope, and the broker then serves a token with
//! it. Every attack the feature opens is tried as an attacker would: a scope the admin did not
//! allow, the URL opened in another user's browser or in none, an upstream login as someone
//! else, a replayed or expired ticket, and a return URL of the attacker's.

use serde_json::Value;

use crate::helpers::{TestApp, TestDb};
use crate::oidc_support::*;
use crate::on_both_backends;
use crate::upstream_idp::{UpUser, Upstream};

const BROKER: &str = "broker:read-token";

on_both_backends!(
    a_missing_scope_is_granted_through_the_upgrade_url,
    the_user_lands_at_a_registered_redirect_uri_of_the_client,
    a_scope_the_admin_did_not_allow_is_refused,
    the_url_opened_in_another_users_browser_or_none_is_refused,
    an_upstream_login_as_another_subject_is_refused,
    a_replayed_or_expired_ticket_is_refused,
    an_unregistered_return_url_is_refused,
    the_user_is_asked_on_portico_naming_the_client_and_the_scopes,
    the_consent_form_needs_its_csrf_token_and_its_user,
    cancel_returns_access_denied_and_drops_the_ticket,
    a_ticket_is_checked_again_when_used,
    an_upgrade_waits_for_a_refresh_holding_the_lease,
    a_provider_omitting_scope_keeps_the_grant_it_was_asked_for,
    a_later_sign_in_keeps_the_upgraded_grant_until_it_ends,
    the_upstream_callback_replayed_in_another_browser_is_refused,
    the_callback_at_another_providers_endpoint_is_refused,
    a_session_switched_to_another_user_before_the_callback_is_refused,
    a_provider_granting_less_than_asked_leaves_the_scope_missing,
    odd_scope_inputs_are_refused_or_normalised,
    an_identity_keeps_at_most_five_live_upgrades,
    the_janitor_removes_expired_upgrades,
    the_upgrade_pages_are_rate_limited_per_address,
);

/// Portico whose test client may read broker tokens and whose provider lets `repo` and
/// `read:org` be asked for incrementally; the stand-in grants both when asked.
async fn spawn(db: &TestDb, upstream: &Upstream) -> TestApp {
    spawn_with(db, upstream, |_| {}).await
}

/// As [`spawn`], with `more` settings.
async fn spawn_with(
    db: &TestDb,
    upstream: &Upstream,
    more: impl FnOnce(&mut portico::config::Settings),
) -> TestApp {
    upstream.grant_scopes(&["repo", "read:org", "admin:org"]);
    spawn_portico(db, upstream, |s| {
        s.clients[0]
            .scopes
            .as_mut()
            .expect("the test client lists its scopes")
            .push(BROKER.into());
        s.providers[0].incremental_scopes = vec!["repo".into(), "read:org".into()];
        more(s);
    })
    .await
}

/// The upstream stand-in, Portico (`spawn`) and a broker token of Alice.
async fn setup(db: &TestDb) -> (Upstream, TestApp, String) {
    let upstream = Upstream::start().await;
    let app = spawn(db, &upstream).await;
    let token = portico_token(&app).await;
    (upstream, app, token)
}

/// Logs in through Portico in the app's browser and returns an access token for the broker.
async fn portico_token(app: &TestApp) -> String {
    let rp = relying_party(app, CLIENT_ID, Some(CLIENT_SECRET), REDIRECT).await;
    let auth = authorize(app, &rp, REDIRECT, &[BROKER]).await;
    let (tokens, _) = exchange(&rp, auth).await;
    use openidconnect::OAuth2TokenResponse;
    tokens.access_token().secret().clone()
}

/// `GET /broker/corp/token` with `query`: status, WWW-Authenticate, body.
async fn broker(app: &TestApp, token: &str, query: &[(&str, &str)]) -> (u16, String, Value) {
    let res = rp_http()
        .get(app.url("/broker/corp/token"))
        .query(query)
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    let status = res.status().as_u16();
    assert_eq!(res.headers()["cache-control"], "no-store");
    let challenge = res
        .headers()
        .get("www-authenticate")
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default();
    (status, challenge, res.json().await.unwrap_or(Value::Null))
}

/// Asks for `scope` and expects the upgrade answer; returns the upgrade URL.
async fn upgrade_uri(app: &TestApp, token: &str, query: &[(&str, &str)]) -> String {
    let (status, challenge, body) = broker(app, token, query).await;
    assert_eq!(status, 403, "{body}");
    assert_eq!(body["error"], "insufficient_scope", "{body}");
    assert!(
        challenge.contains(r#"error="insufficient_scope""#),
        "{challenge}"
    );
    assert!(challenge.contains("scope=\""), "{challenge}");
    assert!(body.get("access_token").is_none());
    let uri = body["upgrade_uri"]
        .as_str()
        .expect("an upgrade_uri")
        .to_owned();
    assert!(
        uri.starts_with(&format!("{}/broker/corp/connect?", app.address)),
        "{uri}"
    );
    uri
}

/// The scope the broker serves now.
async fn served_scope(app: &TestApp, token: &str) -> String {
    let (status, _, body) = broker(app, token, &[]).await;
    assert_eq!(status, 200, "{body}");
    body["scope"].as_str().unwrap().to_owned()
}

/// The sealed upstream tokens of the identity, as stored.
async fn stored_grant(app: &TestApp) -> Vec<Vec<u8>> {
    let row: (Vec<u8>, Vec<u8>) = sqlx::query_as("SELECT access_token, token_meta FROM identities")
        .fetch_one(app.state.store.pool())
        .await
        .unwrap();
    vec![row.0, row.1]
}

async fn audited(app: &TestApp) -> i64 {
    sqlx::query_scalar("SELECT COUNT(*) FROM audit_log WHERE action = 'identity.scopes_granted'")
        .fetch_one(app.state.store.pool())
        .await
        .unwrap()
}

/// A browser of its own, signed in to Portico as `user`.
async fn other_browser(app: &TestApp, upstream: &Upstream, user: UpUser) -> reqwest::Client {
    let browser = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .cookie_store(true)
        .build()
        .unwrap();
    upstream.login_as(user);
    let rp = relying_party(app, CLIENT_ID, Some(CLIENT_SECRET), REDIRECT).await;
    let (url, ..) = start(&rp, &[], &[]);
    let arrived = browse_with(&browser, app, url.as_str(), REDIRECT)
        .await
        .url();
    assert!(param(&arrived, "code").is_some(), "{arrived}");
    browser
}

/// The value of the form field `name` in `page`.
fn field_in(page: &str, name: &str) -> String {
    let marker = format!("name=\"{name}\" value=\"");
    let start = page.find(&marker).expect("the field") + marker.len();
    let end = start + page[start..].find('"').unwrap();
    page[start..end].to_owned()
}

/// Opens the upgrade URL in `b`: Portico's own page (nothing is sent upstream yet).
async fn consent_page(app: &TestApp, b: &reqwest::Client, uri: &str) -> String {
    let (status, page) = browse_with(b, app, uri, "http://nowhere.invalid")
        .await
        .page();
    assert_eq!(status, 200, "{page}");
    assert!(page.contains("id=\"continue\""), "{page}");
    page
}

/// POSTs the consent page's form in `b` with `action`, `csrf` and `ticket` as given.
async fn decide(
    app: &TestApp,
    b: &reqwest::Client,
    fields: &(impl serde::Serialize + ?Sized),
) -> reqwest::Response {
    b.post(app.url("/broker/corp/connect"))
        .form(fields)
        .send()
        .await
        .unwrap()
}

/// Follows `res` in `b` to a page, or to a URL starting with `stop`.
async fn follow_from(
    app: &TestApp,
    b: &reqwest::Client,
    res: reqwest::Response,
    stop: &str,
) -> Arrival {
    if !res.status().is_redirection() {
        let status = res.status().as_u16();
        return Arrival::Page(status, res.text().await.unwrap());
    }
    let location = res.headers()["location"].to_str().unwrap().to_owned();
    let next = if location.starts_with('/') {
        app.url(&location)
    } else {
        location
    };
    if next.starts_with(stop) {
        return Arrival::At(url::Url::parse(&next).unwrap());
    }
    browse_with(b, app, &next, stop).await
}

/// The consent page's form, answered with `action`.
fn form_of(page: &str, action: &str) -> Vec<(&'static str, String)> {
    vec![
        ("csrf", field_in(page, "csrf")),
        ("ticket", field_in(page, "ticket")),
        ("action", action.to_owned()),
    ]
}

/// Opens the upgrade URL in `b` and answers Portico's page with `action`.
async fn answer(app: &TestApp, b: &reqwest::Client, uri: &str, action: &str) -> reqwest::Response {
    let page = consent_page(app, b, uri).await;
    decide(app, b, &form_of(&page, action)).await
}

/// Opens the upgrade URL in `b`, continues on Portico's page, and follows through the
/// provider to a page or to `stop`.
async fn grant_with(app: &TestApp, b: &reqwest::Client, uri: &str, stop: &str) -> Arrival {
    let res = answer(app, b, uri, "continue").await;
    follow_from(app, b, res, stop).await
}

async fn grant(app: &TestApp, uri: &str, stop: &str) -> Arrival {
    grant_with(app, &app.client, uri, stop).await
}

async fn count(app: &TestApp, sql: &str) -> i64 {
    sqlx::query_scalar(sql)
        .fetch_one(app.state.store.pool())
        .await
        .unwrap()
}

async fn refusals(app: &TestApp) -> Vec<String> {
    let rows: Vec<String> = sqlx::query_scalar(
        "SELECT details FROM audit_log WHERE action = 'broker.upgrade_refused' ORDER BY id",
    )
    .fetch_all(app.state.store.pool())
    .await
    .unwrap();
    rows
}

/// Portico, the upstream, a broker token of Alice, whose grant was upgraded with `repo`, and
/// the (spent) upgrade URL.
async fn upgraded(db: &TestDb) -> (Upstream, TestApp, String, String) {
    let (upstream, app, token) = setup(db).await;
    let uri = upgrade_uri(&app, &token, &[("scope", "repo")]).await;
    let (status, page) = grant(&app, &uri, "http://nowhere.invalid").await.page();
    assert_eq!(status, 200, "{page}");
    (upstream, app, token, uri)
}

fn alice() -> UpUser {
    UpUser::new("alice-sub", "alice@corp.example")
}

async fn a_missing_scope_is_granted_through_the_upgrade_url(db: &TestDb) {
    let (upstream, app, token) = setup(db).await;

    // Scopes the grant has are served as before.
    let (status, _, body) = broker(&app, &token, &[("scope", "email profile")]).await;
    assert_eq!(status, 200, "{body}");

    let uri = upgrade_uri(&app, &token, &[("scope", "repo email")]).await;
    let (_, challenge, _) = broker(&app, &token, &[("scope", "repo")]).await;
    assert!(challenge.contains(r#"scope="repo""#), "{challenge}");

    let (status, page) = grant(&app, &uri, "http://nowhere.invalid").await.page();
    assert_eq!(status, 200, "{page}");
    assert!(page.contains("Access granted"), "{page}");
    let asked = upstream.authorize_scopes().last().cloned().unwrap();
    for scope in ["openid", "email", "profile", "groups", "repo"] {
        assert!(asked.split(' ').any(|s| s == scope), "{asked}");
    }
    let scope = served_scope(&app, &token).await;
    assert!(scope.split(' ').any(|s| s == "repo"), "{scope}");
    let (status, _, body) = broker(&app, &token, &[("scope", "repo")]).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(audited(&app).await, 1);

    // A later upgrade keeps what earlier ones granted.
    let uri = upgrade_uri(&app, &token, &[("scope", "read:org")]).await;
    let (status, _) = grant(&app, &uri, "http://nowhere.invalid").await.page();
    assert_eq!(status, 200);
    let scope = served_scope(&app, &token).await;
    for s in ["repo", "read:org", "email"] {
        assert!(scope.split(' ').any(|x| x == s), "{scope}");
    }
    app.stop();
}

async fn the_user_lands_at_a_registered_redirect_uri_of_the_client(db: &TestDb) {
    let (_upstream, app, token) = setup(db).await;
    let uri = upgrade_uri(
        &app,
        &token,
        &[("scope", "repo"), ("redirect_uri", REDIRECT)],
    )
    .await;
    let arrived = grant(&app, &uri, REDIRECT).await.url();
    assert_eq!(arrived.as_str().split('?').next(), Some(REDIRECT));
    let scope = served_scope(&app, &token).await;
    assert!(scope.split(' ').any(|s| s == "repo"), "{scope}");
    app.stop();
}

async fn a_scope_the_admin_did_not_allow_is_refused(db: &TestDb) {
    let (_upstream, app, token) = setup(db).await;
    for asked in ["admin:org", "repo admin:org", "delete_repo"] {
        let (status, _, body) = broker(&app, &token, &[("scope", asked)]).await;
        assert_eq!(status, 400, "{asked}: {body}");
        assert_eq!(body["error"], "invalid_scope", "{body}");
        assert!(body.get("upgrade_uri").is_none());
    }
    let (status, _, body) = broker(&app, &token, &[("scope", "bad\"scope")]).await;
    assert_eq!(
        (status, &body["error"]),
        (400, &Value::from("invalid_scope"))
    );
    let tickets: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM broker_upgrades")
        .fetch_one(app.state.store.pool())
        .await
        .unwrap();
    assert_eq!(tickets, 0, "no ticket for a refused scope");

    // Without broker:read-token the scope parameter changes nothing.
    let rp = relying_party(&app, CLIENT_ID, Some(CLIENT_SECRET), REDIRECT).await;
    let auth = authorize(&app, &rp, REDIRECT, &["email"]).await;
    let (tokens, _) = exchange(&rp, auth).await;
    use openidconnect::OAuth2TokenResponse;
    let weak = tokens.access_token().secret().clone();
    let (status, _, body) = broker(&app, &weak, &[("scope", "repo")]).await;
    assert_eq!(status, 403);
    assert!(body.get("upgrade_uri").is_none(), "{body}");
    app.stop();
}

async fn the_url_opened_in_another_users_browser_or_none_is_refused(db: &TestDb) {
    let (upstream, app, token) = setup(db).await;
    let uri = upgrade_uri(&app, &token, &[("scope", "repo")]).await;
    let before = stored_grant(&app).await;

    // Mallory's browser, signed in to Portico as Mallory (the attacker's own login).
    let mallory = other_browser(
        &app,
        &upstream,
        UpUser::new("mallory-sub", "mallory@corp.example"),
    )
    .await;
    let asked_before = upstream.authorize_scopes().len();
    let (status, page) = browse_with(&mallory, &app, &uri, "http://nowhere.invalid")
        .await
        .page();
    assert_eq!(status, 403, "{page}");
    assert!(page.contains("Sign in first"), "{page}");
    // A browser with no Portico session at all.
    let (status, _) = browse_with(&rp_http(), &app, &uri, "http://nowhere.invalid")
        .await
        .page();
    assert_eq!(status, 403);
    assert_eq!(
        upstream.authorize_scopes().len(),
        asked_before,
        "nobody was sent upstream"
    );
    assert_eq!(stored_grant(&app).await, before);
    let (status, _, _) = broker(&app, &token, &[("scope", "repo")]).await;
    assert_eq!(status, 403, "the grant still lacks repo");
    assert_eq!(audited(&app).await, 0);

    // The user it was made for can still use it.
    upstream.login_as(alice());
    let (status, page) = grant(&app, &uri, "http://nowhere.invalid").await.page();
    assert_eq!(status, 200, "{page}");
    assert!(served_scope(&app, &token).await.contains("repo"));
    app.stop();
}

async fn an_upstream_login_as_another_subject_is_refused(db: &TestDb) {
    let (upstream, app, token) = setup(db).await;
    let before = stored_grant(&app).await;
    let scope_before = served_scope(&app, &token).await;
    let uri = upgrade_uri(&app, &token, &[("scope", "repo")]).await;

    // At the provider, the browser signs in as someone else (the attacker's account).
    upstream.login_as(UpUser::new("mallory-sub", "mallory@corp.example"));
    let (status, page) = grant(&app, &uri, "http://nowhere.invalid").await.page();
    assert_eq!(status, 403, "{page}");
    assert!(page.contains("Another account"), "{page}");
    assert_eq!(
        stored_grant(&app).await,
        before,
        "the stored grant is unchanged"
    );
    assert_eq!(served_scope(&app, &token).await, scope_before);
    let identities: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM identities")
        .fetch_one(app.state.store.pool())
        .await
        .unwrap();
    assert_eq!(identities, 1, "no identity was linked");
    assert_eq!(audited(&app).await, 0);
    app.stop();
}

async fn a_replayed_or_expired_ticket_is_refused(db: &TestDb) {
    let (upstream, app, token, uri) = upgraded(db).await;
    let asked = upstream.authorize_scopes().len();
    let (status, _) = browse(&app, &uri, "http://nowhere.invalid").await.page();
    assert_eq!(status, 400, "a used ticket");
    assert_eq!(upstream.authorize_scopes().len(), asked);

    // A forged ticket.
    let forged = format!("{}/broker/corp/connect?ticket=AAAA", app.address);
    let (status, _) = browse(&app, &forged, "http://nowhere.invalid").await.page();
    assert_eq!(status, 400);

    // An expired one.
    let uri = upgrade_uri(&app, &token, &[("scope", "read:org")]).await;
    sqlx::query("UPDATE broker_upgrades SET expires_at = $1")
        .bind(portico::store::now() - 1)
        .execute(app.state.store.pool())
        .await
        .unwrap();
    let (status, _) = browse(&app, &uri, "http://nowhere.invalid").await.page();
    assert_eq!(status, 400);
    assert_eq!(upstream.authorize_scopes().len(), asked);
    assert!(!served_scope(&app, &token).await.contains("read:org"));

    // The ticket names its provider: another provider's connect URL does not take it.
    let uri = upgrade_uri(&app, &token, &[("scope", "read:org")]).await;
    let elsewhere = uri.replace("/broker/corp/", "/broker/other/");
    let (status, _) = browse(&app, &elsewhere, "http://nowhere.invalid")
        .await
        .page();
    assert_eq!(status, 400);
    app.stop();
}

async fn an_unregistered_return_url_is_refused(db: &TestDb) {
    let (_upstream, app, token) = setup(db).await;
    for evil in [
        "https://evil.example/cb",
        "http://127.0.0.1:7777/cb/../evil",
        "http://127.0.0.1:7777/cb?next=https://evil.example",
        POST_LOGOUT,
    ] {
        let query = [("scope", "repo"), ("redirect_uri", evil)];
        let (status, _, body) = broker(&app, &token, &query).await;
        assert_eq!(status, 400, "{evil}: {body}");
        assert_eq!(body["error"], "invalid_request", "{body}");
        assert!(body.get("upgrade_uri").is_none());
    }
    // A return URL added to the upgrade URL is not taken: the user lands on Portico's page.
    let uri = upgrade_uri(&app, &token, &[("scope", "repo")]).await;
    let tampered = format!("{uri}&redirect_uri=https%3A%2F%2Fevil.example%2Fcb");
    let (status, page) = grant(&app, &tampered, "https://evil.example").await.page();
    assert_eq!(status, 200, "{page}");
    assert!(page.contains("Access granted"), "{page}");
    app.stop();
}

async fn the_user_is_asked_on_portico_naming_the_client_and_the_scopes(db: &TestDb) {
    let (upstream, app, token) = setup(db).await;
    let uri = upgrade_uri(&app, &token, &[("scope", "repo read:org")]).await;
    let issued = "SELECT COUNT(*) FROM audit_log WHERE action = 'broker.upgrade_issued'";
    assert_eq!(
        count(&app, issued).await,
        1,
        "the ticket's issuance is audited"
    );
    let asked = upstream.authorize_scopes().len();

    // Opening the link shows Portico's page; nothing goes upstream, the ticket stays.
    let page = consent_page(&app, &app.client, &uri).await;
    assert_eq!(
        upstream.authorize_scopes().len(),
        asked,
        "nobody was sent upstream"
    );
    for shown in [
        "<title>Allow more access at Corp corp?",
        "<strong>The App</strong> asks for more access to your Corp corp account",
        "alice@corp.example",
        "<code>repo</code>",
        "<code>read:org</code>",
        "every application that may use Corp corp",
        "id=\"cancel\"",
        "autofocus",
    ] {
        assert!(page.contains(shown), "{shown}: {page}");
    }
    let open = "SELECT COUNT(*) FROM broker_upgrades WHERE ticket_digest IS NOT NULL";
    assert_eq!(count(&app, open).await, 1);
    // Shown again on reload; Continue then goes upstream, once.
    let page = consent_page(&app, &app.client, &uri).await;
    let fields = form_of(&page, "continue");
    let res = decide(&app, &app.client, &fields).await;
    assert_eq!(res.status(), 302);
    let cookies: Vec<String> = (res.headers().get_all("set-cookie").iter())
        .map(|v| v.to_str().unwrap().to_owned())
        .collect();
    assert!(
        cookies
            .iter()
            .any(|c| c.starts_with("portico_upgrade_") && c.contains("HttpOnly")),
        "a binding cookie named after the upgrade: {cookies:?}"
    );
    let location = res.headers()["location"].to_str().unwrap().to_owned();
    assert!(
        location.contains("login_hint=alice%40corp.example"),
        "{location}"
    );
    let (status, page) = browse(&app, &location, "http://nowhere.invalid")
        .await
        .page();
    assert_eq!(status, 200, "{page}");
    assert!(
        page.contains("every application that may use Corp corp"),
        "{page}"
    );
    let res = decide(&app, &app.client, &fields).await;
    assert_eq!(res.status(), 400, "a used ticket");
    assert_eq!(upstream.authorize_scopes().len(), asked + 1);
    app.stop();
}

async fn the_consent_form_needs_its_csrf_token_and_its_user(db: &TestDb) {
    let (upstream, app, token) = setup(db).await;
    let uri = upgrade_uri(&app, &token, &[("scope", "repo")]).await;
    let page = consent_page(&app, &app.client, &uri).await;
    let (csrf, ticket) = (field_in(&page, "csrf"), field_in(&page, "ticket"));
    let asked = upstream.authorize_scopes().len();
    let before = stored_grant(&app).await;

    // The user's own browser, but a form without the token or with a forged one (another
    // site posting into the session).
    for bad in ["", "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"] {
        let fields = [("csrf", bad), ("ticket", &*ticket), ("action", "continue")];
        let res = decide(&app, &app.client, &fields).await;
        assert_eq!(res.status(), 403, "csrf {bad:?}");
    }
    let no_csrf = [("ticket", &*ticket), ("action", "continue")];
    assert_eq!(decide(&app, &app.client, &no_csrf).await.status(), 403);
    // The right form from a browser with no session, or with Mallory's.
    let fields = [
        ("csrf", &*csrf),
        ("ticket", &*ticket),
        ("action", "continue"),
    ];
    assert_eq!(decide(&app, &rp_http(), &fields).await.status(), 403);
    let mallory = other_browser(
        &app,
        &upstream,
        UpUser::new("mallory-sub", "mallory@corp.example"),
    )
    .await;
    let asked_mallory = upstream.authorize_scopes().len();
    assert_eq!(decide(&app, &mallory, &fields).await.status(), 403);
    let cancel = [("csrf", &*csrf), ("ticket", &*ticket), ("action", "cancel")];
    assert_eq!(decide(&app, &mallory, &cancel).await.status(), 403);
    assert_eq!(upstream.authorize_scopes().len(), asked_mallory);
    assert!(
        asked_mallory == asked + 1,
        "only Mallory's own sign-in went upstream"
    );
    assert_eq!(stored_grant(&app).await, before);
    assert!(refusals(&app).await.len() >= 5, "each refusal is audited");

    // The ticket is still its user's.
    upstream.login_as(alice());
    let (status, page) = grant(&app, &uri, "http://nowhere.invalid").await.page();
    assert_eq!(status, 200, "{page}");
    assert!(served_scope(&app, &token).await.contains("repo"));
    app.stop();
}

async fn cancel_returns_access_denied_and_drops_the_ticket(db: &TestDb) {
    let (upstream, app, token) = setup(db).await;
    let asked = upstream.authorize_scopes().len();
    let query = [("scope", "repo"), ("redirect_uri", REDIRECT)];
    let uri = upgrade_uri(&app, &token, &query).await;
    let res = answer(&app, &app.client, &uri, "cancel").await;
    let arrived = follow_from(&app, &app.client, res, REDIRECT).await.url();
    assert_eq!(param(&arrived, "error").as_deref(), Some("access_denied"));
    assert_eq!(count(&app, "SELECT COUNT(*) FROM broker_upgrades").await, 0);
    let (status, _) = browse(&app, &uri, "http://nowhere.invalid").await.page();
    assert_eq!(status, 400, "a cancelled ticket is gone");

    // Without a return URI: Portico's page.
    let uri = upgrade_uri(&app, &token, &[("scope", "repo")]).await;
    let res = answer(&app, &app.client, &uri, "cancel").await;
    assert_eq!(res.status(), 200);
    assert!(res.text().await.unwrap().contains("Nothing was changed"));
    assert_eq!(
        upstream.authorize_scopes().len(),
        asked,
        "nobody was sent upstream"
    );
    assert_eq!(count(&app, "SELECT COUNT(*) FROM broker_upgrades").await, 0);
    assert!(refusals(&app).await.iter().all(|d| d.contains("cancelled")));
    assert_eq!(audited(&app).await, 0);
    app.stop();
}

async fn a_ticket_is_checked_again_when_used(db: &TestDb) {
    let (upstream, app, token) = setup(db).await;
    let asked = upstream.authorize_scopes().len();

    // The admin withdraws the scope after the ticket was made: the page refuses it.
    let uri = upgrade_uri(&app, &token, &[("scope", "repo")]).await;
    sqlx::query("UPDATE providers SET incremental_scopes = '[\"read:org\"]'")
        .execute(app.state.store.pool())
        .await
        .unwrap();
    let (status, _) = browse(&app, &uri, "http://nowhere.invalid").await.page();
    assert_eq!(status, 400);

    // Withdrawn between Continue and the callback: nothing is stored.
    let uri = upgrade_uri(&app, &token, &[("scope", "read:org")]).await;
    let res = answer(&app, &app.client, &uri, "continue").await;
    assert_eq!(res.status(), 302);
    sqlx::query("UPDATE providers SET incremental_scopes = '[]'")
        .execute(app.state.store.pool())
        .await
        .unwrap();
    let before = stored_grant(&app).await;
    let (status, _) = follow_from(&app, &app.client, res, "http://nowhere.invalid")
        .await
        .page();
    assert_eq!(status, 400);
    assert_eq!(stored_grant(&app).await, before);
    assert_eq!(audited(&app).await, 0);
    assert_eq!(upstream.authorize_scopes().len(), asked + 1);
    assert!(
        refusals(&app)
            .await
            .iter()
            .any(|d| d.contains("no longer an incremental scope")),
        "{:?}",
        refusals(&app).await
    );
    app.stop();
}

async fn lease_until(app: &TestApp) -> Option<i64> {
    sqlx::query_scalar("SELECT refresh_lease_until FROM identities")
        .fetch_one(app.state.store.pool())
        .await
        .unwrap()
}

async fn an_upgrade_waits_for_a_refresh_holding_the_lease(db: &TestDb) {
    let (upstream, app, token) = setup(db).await;
    let uri = upgrade_uri(&app, &token, &[("scope", "repo")]).await;
    let res = answer(&app, &app.client, &uri, "continue").await;
    assert_eq!(res.status(), 302);
    let before = stored_grant(&app).await;

    // A refresh of the identity (on any instance) holds the lease while the callback arrives.
    let held = portico::store::now() + 60;
    sqlx::query("UPDATE identities SET refresh_lease_until = $1")
        .bind(held)
        .execute(app.state.store.pool())
        .await
        .unwrap();
    let issued = upstream.issued_tokens().len();
    let callback = follow_from(&app, &app.client, res, "http://nowhere.invalid");
    let refresh = async {
        // The provider answered the callback's code exchange: the upgrade has its tokens.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
        while upstream.issued_tokens().len() == issued {
            assert!(std::time::Instant::now() < deadline, "no code exchange");
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        // While the refresh holds the lease, the upgrade has not written over its tokens.
        assert_eq!(stored_grant(&app).await, before);
        assert_eq!(lease_until(&app).await, Some(held));
        // The refresh ends (its own write is not shown: it only ends the lease).
        sqlx::query("UPDATE identities SET refresh_lease_until = NULL")
            .execute(app.state.store.pool())
            .await
            .unwrap();
    };
    let (arrival, ()) = tokio::join!(callback, refresh);
    let (status, page) = arrival.page();
    assert_eq!(status, 200, "{page}");
    assert!(page.contains("Access granted"), "{page}");
    assert_ne!(stored_grant(&app).await, before);
    assert_eq!(lease_until(&app).await, None, "the upgrade ended its lease");
    assert!(served_scope(&app, &token).await.contains("repo"));
    app.stop();
}

async fn a_provider_omitting_scope_keeps_the_grant_it_was_asked_for(db: &TestDb) {
    let (upstream, app, token) = setup(db).await;
    // The upgrade's answer has no scope: what was sent stands, exactly.
    upstream.omit_scope(true);
    upstream.set_expires_in(30);
    let uri = upgrade_uri(&app, &token, &[("scope", "repo")]).await;
    let (status, _) = grant(&app, &uri, "http://nowhere.invalid").await.page();
    assert_eq!(status, 200);
    let sent = upstream.authorize_scopes().last().cloned().unwrap();
    let refreshes = upstream.refresh_calls();
    // The token expires within the broker's margin: it is refreshed, and the refresh's answer
    // has no scope either; the grant keeps its scope.
    let scope = served_scope(&app, &token).await;
    assert_eq!(upstream.refresh_calls(), refreshes + 1, "refreshed");
    let mut served: Vec<&str> = scope.split(' ').collect();
    let mut asked: Vec<&str> = sent.split(' ').collect();
    served.sort_unstable();
    asked.sort_unstable();
    assert_eq!(served, asked, "{scope} / {sent}");
    assert!(served.contains(&"repo"));
    let (status, _, body) = broker(&app, &token, &[("scope", "repo")]).await;
    assert_eq!(status, 200, "{body}");
    app.stop();
}

async fn a_later_sign_in_keeps_the_upgraded_grant_until_it_ends(db: &TestDb) {
    let (upstream, app, token, _) = upgraded(db).await;
    assert!(served_scope(&app, &token).await.contains("repo"));

    // Alice signs in again in another browser: the provider is asked for the configured
    // scopes only, and its smaller grant does not replace the upgraded one.
    let asked = upstream.authorize_scopes().len();
    let _second = other_browser(&app, &upstream, alice()).await;
    assert_eq!(
        upstream.authorize_scopes().len(),
        asked + 1,
        "an upstream sign-in"
    );
    let last = upstream.authorize_scopes().last().cloned().unwrap();
    assert!(!last.split(' ').any(|s| s == "repo"), "{last}");
    let (status, _, body) = broker(&app, &token, &[("scope", "repo")]).await;
    assert_eq!(status, 200, "the upgrade lasts: {body}");

    // Once the grant has ended upstream (invalid_grant seen), a new sign-in replaces it.
    sqlx::query("UPDATE identities SET needs_login = 1")
        .execute(app.state.store.pool())
        .await
        .unwrap();
    let _third = other_browser(&app, &upstream, alice()).await;
    let fresh = portico_token(&app).await;
    let (status, _, body) = broker(&app, &fresh, &[("scope", "repo")]).await;
    assert_eq!(status, 403, "{body}");
    assert_eq!(body["error"], "insufficient_scope", "{body}");
    app.stop();
}

/// Continues the upgrade at `uri` in the app's browser and follows it through the provider up
/// to Portico's callback, which is not opened: its URL (with the provider's code and state).
async fn callback_url(app: &TestApp, uri: &str) -> String {
    let res = answer(app, &app.client, uri, "continue").await;
    assert_eq!(res.status(), 302);
    let stop = app.url("/callback/");
    let arrived = follow_from(app, &app.client, res, &stop).await.url();
    assert!(param(&arrived, "code").is_some(), "{arrived}");
    arrived.to_string()
}

/// Nothing was stored (the grant is `before`, no `identity.scopes_granted`), and a refusal
/// with `reason` is audited.
async fn refused_unchanged(app: &TestApp, before: &[Vec<u8>], reason: &str) {
    assert_eq!(stored_grant(app).await, before);
    assert_eq!(audited(app).await, 0);
    let reasons = refusals(app).await;
    assert!(reasons.iter().any(|r| r.contains(reason)), "{reasons:?}");
}

async fn upgrade_rows(app: &TestApp) -> i64 {
    count(app, "SELECT COUNT(*) FROM broker_upgrades").await
}

async fn the_upstream_callback_replayed_in_another_browser_is_refused(db: &TestDb) {
    let (upstream, app, token) = setup(db).await;

    // Another browser of the same user (signed in as Alice, no upgrade cookie).
    let uri = upgrade_uri(&app, &token, &[("scope", "repo")]).await;
    let callback = callback_url(&app, &uri).await;
    let second = other_browser(&app, &upstream, alice()).await;
    let (status, page) = browse_with(&second, &app, &callback, "http://nowhere.invalid")
        .await
        .page();
    assert_eq!(status, 400, "{page}");
    // The state was spent by the refused attempt: the original browser cannot finish either.
    let (status, _) = browse(&app, &callback, "http://nowhere.invalid")
        .await
        .page();
    assert_eq!(status, 400);

    // A victim's browser (another user's session), and a browser with no session at all.
    let uri = upgrade_uri(&app, &token, &[("scope", "repo")]).await;
    let callback = callback_url(&app, &uri).await;
    let victim = other_browser(&app, &upstream, UpUser::new("bob-sub", "bob@corp.example")).await;
    let (status, _) = browse_with(&victim, &app, &callback, "http://nowhere.invalid")
        .await
        .page();
    assert_eq!(status, 400);
    let uri = upgrade_uri(&app, &token, &[("scope", "repo")]).await;
    upstream.login_as(alice());
    let callback = callback_url(&app, &uri).await;
    let (status, _) = browse_with(&rp_http(), &app, &callback, "http://nowhere.invalid")
        .await
        .page();
    assert_eq!(status, 400);

    // (Alice's own sign-ins in the other browsers stored their grants; no upgrade did.)
    assert_eq!(audited(&app).await, 0, "nothing stored by an upgrade");
    let reasons = refusals(&app).await;
    let started_elsewhere = reasons
        .iter()
        .filter(|r| r.contains("did not start the upgrade"))
        .count();
    assert_eq!(started_elsewhere, 3, "{reasons:?}");
    let (status, _, _) = broker(&app, &token, &[("scope", "repo")]).await;
    assert_eq!(status, 403, "the grant still lacks repo");
    app.stop();
}

async fn the_callback_at_another_providers_endpoint_is_refused(db: &TestDb) {
    let (_upstream, app, token) = setup(db).await;
    let before = stored_grant(&app).await;
    let uri = upgrade_uri(&app, &token, &[("scope", "repo")]).await;
    let callback = callback_url(&app, &uri).await;
    let elsewhere = callback.replace("/callback/corp", "/callback/other");
    assert_ne!(elsewhere, callback);
    let (status, _) = browse(&app, &elsewhere, "http://nowhere.invalid")
        .await
        .page();
    assert_eq!(status, 400);
    refused_unchanged(&app, &before, "another provider's endpoint").await;
    app.stop();
}

async fn a_session_switched_to_another_user_before_the_callback_is_refused(db: &TestDb) {
    let (upstream, app, token) = setup(db).await;
    let before = stored_grant(&app).await;
    let uri = upgrade_uri(&app, &token, &[("scope", "repo")]).await;
    let callback = callback_url(&app, &uri).await;

    // The same browser signs in to Portico as Mallory before the callback arrives.
    upstream.login_as(UpUser::new("mallory-sub", "mallory@corp.example"));
    let rp = relying_party(&app, CLIENT_ID, Some(CLIENT_SECRET), REDIRECT).await;
    let (url, ..) = start(&rp, &[], &[("prompt", "login")]);
    let arrived = browse(&app, url.as_str(), REDIRECT).await.url();
    assert!(param(&arrived, "code").is_some(), "{arrived}");

    let (status, page) = browse(&app, &callback, "http://nowhere.invalid")
        .await
        .page();
    assert_eq!(status, 403, "{page}");
    refused_unchanged(&app, &before, "no longer signed in as the user").await;
    app.stop();
}

async fn a_provider_granting_less_than_asked_leaves_the_scope_missing(db: &TestDb) {
    let (upstream, app, token) = setup(db).await;
    // The user unticks `repo` at the provider: it grants only its base scopes.
    upstream.grant_scopes(&["read:org"]);
    let uri = upgrade_uri(&app, &token, &[("scope", "repo read:org")]).await;
    let (status, page) = grant(&app, &uri, "http://nowhere.invalid").await.page();
    assert_eq!(status, 200);
    assert!(page.contains("Access partly granted"), "{page}");
    assert!(page.contains("<li><code>repo</code></li>"), "{page}");
    assert!(!page.contains("<code>read:org</code>"), "{page}");
    let scope = served_scope(&app, &token).await;
    assert!(scope.split(' ').any(|s| s == "read:org"), "{scope}");
    assert!(!scope.split(' ').any(|s| s == "repo"), "{scope}");
    let (status, _, body) = broker(&app, &token, &[("scope", "repo")]).await;
    assert_eq!(status, 403, "{body}");
    assert_eq!(body["scope"], "repo", "{body}");
    let (status, _, body) = broker(&app, &token, &[("scope", "read:org")]).await;
    assert_eq!(status, 200, "{body}");
    app.stop();
}

async fn odd_scope_inputs_are_refused_or_normalised(db: &TestDb) {
    let (_upstream, app, token) = setup(db).await;
    // Scope names are compared exactly: another case is another scope, not allowed.
    for refused in [
        "REPO",
        "Repo",
        "repo\tread:org",
        "repo\nread:org",
        "repo,read:org",
    ] {
        let (status, _, body) = broker(&app, &token, &[("scope", refused)]).await;
        assert_eq!(status, 400, "{refused:?}: {body}");
        assert_eq!(body["error"], "invalid_scope", "{body}");
    }
    // 51 distinct scope tokens are too many; 50 are read (and refused as not allowed).
    let many: Vec<String> = (0..51).map(|i| format!("s{i}")).collect();
    let (status, _, body) = broker(&app, &token, &[("scope", &many.join(" "))]).await;
    assert_eq!(status, 400);
    assert!(
        body["error_description"]
            .as_str()
            .unwrap()
            .contains("at most 50"),
        "{body}"
    );
    let (status, _, body) = broker(&app, &token, &[("scope", &many[..50].join(" "))]).await;
    assert_eq!(status, 400);
    assert!(
        body["error_description"]
            .as_str()
            .unwrap()
            .contains("incremental_scopes")
    );
    assert_eq!(upgrade_rows(&app).await, 0, "no ticket for refused input");

    // Extra spaces and repeats collapse: one ticket for `repo` (repeats do not count to 50).
    let repeated = format!("  repo {} ", ["repo"; 60].join("  "));
    let (_, challenge, body) = broker(&app, &token, &[("scope", &repeated)]).await;
    assert_eq!(body["scope"], "repo", "{body}");
    assert!(challenge.contains(r#"scope="repo""#), "{challenge}");
    let requested: String = sqlx::query_scalar("SELECT requested FROM broker_upgrades")
        .fetch_one(app.state.store.pool())
        .await
        .unwrap();
    assert_eq!(requested, r#"["repo"]"#);
    app.stop();
}

async fn an_identity_keeps_at_most_five_live_upgrades(db: &TestDb) {
    let (_upstream, app, token) = setup(db).await;
    // One ticket followed (claimed), then six more: every live row counts toward the cap.
    let first = upgrade_uri(&app, &token, &[("scope", "repo")]).await;
    let callback = callback_url(&app, &first).await;
    let mut uris = Vec::new();
    for _ in 0..6 {
        uris.push(upgrade_uri(&app, &token, &[("scope", "repo")]).await);
    }
    assert_eq!(upgrade_rows(&app).await, 5);
    // The claimed one and the oldest new one went; the five newest work.
    let (status, _) = browse(&app, &callback, "http://nowhere.invalid")
        .await
        .page();
    assert_eq!(status, 400, "the claimed row was dropped");
    let (status, _) = browse(&app, &uris[0], "http://nowhere.invalid")
        .await
        .page();
    assert_eq!(status, 400, "the oldest open ticket was dropped");
    consent_page(&app, &app.client, &uris[5]).await;

    // Following one drops the identity's other claimed rows.
    callback_url(&app, &uris[1]).await;
    callback_url(&app, &uris[2]).await;
    let claimed = "SELECT COUNT(*) FROM broker_upgrades WHERE ticket_digest IS NULL";
    assert_eq!(count(&app, claimed).await, 1);
    assert_eq!(upgrade_rows(&app).await, 4);

    // Concurrent requests cannot pass the cap together.
    let burst = (0..8).map(|_| broker(&app, &token, &[("scope", "repo")]));
    for (status, _, body) in futures_util::future::join_all(burst).await {
        assert_eq!(status, 403, "{body}");
    }
    assert_eq!(upgrade_rows(&app).await, 5);
    app.stop();
}

async fn the_janitor_removes_expired_upgrades(db: &TestDb) {
    let (_upstream, app, token) = setup(db).await;
    let old = upgrade_uri(&app, &token, &[("scope", "read:org")]).await;
    let live = upgrade_uri(&app, &token, &[("scope", "repo")]).await;
    sqlx::query("UPDATE broker_upgrades SET expires_at = $1 WHERE requested = $2")
        .bind(portico::store::now() - 1)
        .bind(r#"["read:org"]"#)
        .execute(app.state.store.pool())
        .await
        .unwrap();
    let settings = portico::store::janitor::JanitorSettings::default();
    let rules = [&portico::vault::upgrades::JANITOR];
    let report = (app.state.store)
        .sweep(portico::store::now(), &settings, &rules)
        .await
        .unwrap();
    assert_eq!(report, vec![("broker_upgrades", 1)]);
    assert_eq!(upgrade_rows(&app).await, 1);
    let (status, _) = browse(&app, &old, "http://nowhere.invalid").await.page();
    assert_eq!(status, 400);
    consent_page(&app, &app.client, &live).await;
    app.stop();
}

async fn the_upgrade_pages_are_rate_limited_per_address(db: &TestDb) {
    let upstream = Upstream::start().await;
    let app = spawn_with(db, &upstream, |s| {
        s.oidc.rate_limit.per_ip_per_sec = 1;
        s.oidc.rate_limit.per_ip_burst = 20;
    })
    .await;
    let token = portico_token(&app).await;
    let uri = upgrade_uri(&app, &token, &[("scope", "repo")]).await;
    // Guessing tickets (GET) or posting forms (POST) from one address runs into the limit.
    let forged = app.url("/broker/corp/connect?ticket=guess");
    let mut statuses = Vec::new();
    for i in 0..40 {
        let res = if i % 2 == 0 {
            app.client.get(&forged).send().await.unwrap()
        } else {
            let form = [("ticket", "guess"), ("csrf", "x"), ("action", "continue")];
            decide(&app, &app.client, &form).await
        };
        statuses.push(res.status().as_u16());
        if res.status() == 429 {
            break;
        }
    }
    assert_eq!(statuses.last(), Some(&429), "{statuses:?}");
    assert!(statuses[..statuses.len() - 1].iter().all(|s| *s == 400));
    // The user's real link still works once the address is under its limit again (the
    // limiter refills one request a second).
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        let (status, page) = browse(&app, &uri, "http://nowhere.invalid").await.page();
        if status == 200 {
            assert!(page.contains("id=\"continue\""), "{page}");
            break;
        }
        assert_eq!(status, 429);
        assert!(std::time::Instant::now() < deadline, "still limited");
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    app.stop();
}
