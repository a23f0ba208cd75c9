//! Secrets shown once, after a redirect (Post/Redirect/Get): creating or rotating answers 303 to
//! a reveal page, which shows the secret this once from a short-lived cookie sealed to the admin
//! session and removes it; reloading says the secret was shown once and how to get a new one.
//! The cookie opens in no other session, for no other object, and not once tampered with.

use std::time::Duration;

use reqwest::Method;
use serde_json::json;

use super::{
    EMAIL, PASSWORD, api_token, audit_count, call, client, create_admin, csrf_in, json_of, page,
    set_cookie, sign_in, signed_in,
};
use crate::helpers::{TestApp, TestDb, spawn_app};
use crate::oidc_support::post_form;
use crate::on_both_backends;
use crate::webhooks::{Receiver, signed_with};

on_both_backends!(
    a_client_secret_is_shown_once_after_a_redirect,
    webhook_secrets_and_api_tokens_are_shown_once_after_a_redirect,
    a_reveal_cookie_opens_only_in_its_own_session,
);

const GONE: &str = "was shown once";

/// The text of `<code id="{id}" class="secret">…</code>`, if the page shows it.
fn shown(html: &str, id: &str) -> Option<String> {
    let marker = format!("id=\"{id}\" class=\"secret\">");
    let start = html.find(&marker)? + marker.len();
    Some(html[start..start + html[start..].find('<')?].to_owned())
}

/// Posts a form as the signed-in browser, with the CSRF token of `/admin/keys`.
async fn submit(
    app: &TestApp,
    browser: &reqwest::Client,
    path: &str,
    fields: &[(&str, &str)],
) -> reqwest::Response {
    let csrf = csrf_in(&page(app, browser, "/admin/keys").await);
    let mut form = vec![("csrf", csrf.as_str())];
    form.extend_from_slice(fields);
    browser
        .post(app.url(path))
        .form(&form)
        .send()
        .await
        .unwrap()
}

/// The 303 to the reveal page, with the cookie that carries the secret to it: `HttpOnly`,
/// `SameSite=Strict`, for that page only, for five minutes. Returns the page and the cookie.
fn redirected(res: &reqwest::Response, to: &str) -> (String, String) {
    assert_eq!(res.status(), 303);
    let location = res.headers()["location"].to_str().unwrap().to_owned();
    assert!(location.starts_with(to), "{location}");
    let cookie = set_cookie(res, "portico_reveal").expect("the reveal cookie");
    let path = to.split('?').next().unwrap();
    for attribute in [
        "HttpOnly",
        "SameSite=Strict",
        &format!("Path={path}"),
        "Max-Age=300",
    ] {
        assert!(cookie.contains(attribute), "{attribute}: {cookie}");
    }
    assert!(!cookie.contains("Secure"), "plain http issuer: {cookie}");
    (location, cookie)
}

/// Opens the reveal page: the secret shown (uncached), and its cookie removed in the same
/// answer. Returns the page.
async fn opened(app: &TestApp, browser: &reqwest::Client, location: &str) -> String {
    let res = browser.get(app.url(location)).send().await.unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(res.headers()["cache-control"], "no-store");
    let removal = set_cookie(&res, "portico_reveal").expect("the cookie is removed");
    assert!(removal.contains("Max-Age=0"), "{removal}");
    res.text().await.unwrap()
}

/// Reloading the reveal page: 200, no secret, the "shown once" message and how to get another.
async fn reloaded(
    app: &TestApp,
    browser: &reqwest::Client,
    location: &str,
    secret: &str,
) -> String {
    let html = page(app, browser, location).await;
    assert!(!html.contains(secret), "shown once: {html}");
    assert!(html.contains(GONE), "{html}");
    html
}

async fn token_status(app: &TestApp, client_id: &str, secret: &str) -> u16 {
    let form = [("grant_type", "client_credentials")];
    post_form(app, "/token", Some((client_id, secret)), &form)
        .await
        .0
}

async fn a_client_secret_is_shown_once_after_a_redirect(db: &TestDb) {
    let app = spawn_app(db).await;
    create_admin(&app).await;
    let browser = signed_in(&app).await;

    // Created: a 303 to the client's reveal page, not the secret in the POST's answer.
    let fields = [
        ("client_id", "wiki"),
        ("name", "Team wiki"),
        ("redirect_uris", "https://wiki.example/cb"),
        ("grant_types", "authorization_code"),
        ("grant_types", "client_credentials"),
    ];
    let res = submit(&app, &browser, "/admin/clients", &fields).await;
    let (location, _) = redirected(&res, "/admin/clients/wiki/secret?done=created");
    assert!(res.text().await.unwrap().is_empty());
    let html = opened(&app, &browser, &location).await;
    let secret = shown(&html, "client-secret").expect("the secret is shown");
    assert!(html.contains("shown only this once"), "{html}");
    assert!(
        html.contains("data-copy=\"client-secret\""),
        "the copy button"
    );
    assert!(
        html.contains(&format!("client_secret: {secret}")),
        "the snippet"
    );
    assert!(html.contains("client_id: wiki"));
    assert!(
        html.contains("href=\"/admin/clients/wiki\""),
        "on to the client"
    );
    assert_eq!(token_status(&app, "wiki", &secret).await, 200, "it works");

    // Reloaded: shown once; rotating gets a new one. Never an error nor a second client.
    let html = reloaded(&app, &browser, &location, &secret).await;
    assert!(
        html.contains("href=\"/admin/clients/wiki/secret/rotate\""),
        "{html}"
    );
    assert!(
        html.contains("client_id: wiki"),
        "the snippet without the secret"
    );
    assert_eq!(audit_count(&app, "client.created").await, 1);

    // Rotated from the client's page: its reveal page, then back to the client.
    let res = submit(
        &app,
        &browser,
        "/admin/clients/wiki/secret",
        &[("confirm", "yes")],
    )
    .await;
    let (location, _) = redirected(&res, "/admin/clients/wiki/secret?done=rotated");
    let html = opened(&app, &browser, &location).await;
    let rotated = shown(&html, "client-secret").expect("the new secret is shown");
    assert_ne!(rotated, secret);
    assert!(
        html.contains("href=\"/admin/clients/wiki\""),
        "back to the client"
    );
    assert_eq!(
        token_status(&app, "wiki", &secret).await,
        401,
        "the old one"
    );
    assert_eq!(
        token_status(&app, "wiki", &rotated).await,
        200,
        "the new one"
    );
    reloaded(&app, &browser, &location, &rotated).await;
    assert_eq!(audit_count(&app, "client.secret_rotated").await, 1);

    // A public client has no secret: straight to its page.
    let fields = [
        ("client_id", "spa"),
        ("name", "Single page"),
        ("type", "public"),
        ("redirect_uris", "https://spa.example/cb"),
        ("grant_types", "authorization_code"),
    ];
    let res = submit(&app, &browser, "/admin/clients", &fields).await;
    assert_eq!(res.status(), 303);
    assert_eq!(res.headers()["location"], "/admin/clients/spa?done=created");
    assert!(set_cookie(&res, "portico_reveal").is_none());
    let html = page(&app, &browser, "/admin/clients/spa?done=created").await;
    assert!(html.contains("The client was created"), "{html}");
    app.stop();
}

async fn webhook_secrets_and_api_tokens_are_shown_once_after_a_redirect(db: &TestDb) {
    let receiver = Receiver::start(Vec::new()).await;
    let app = super::webhooks::spawn(db, "https://crm.example.com/hooks", |_| {}).await;
    create_admin(&app).await;
    let browser = signed_in(&app).await;

    // A webhook endpoint: its signing secret on its reveal page, once, and it signs.
    let url = receiver.url();
    let fields = [
        ("url", url.as_str()),
        ("events", "user.created"),
        ("enabled", "on"),
    ];
    let res = submit(&app, &browser, "/admin/webhooks", &fields).await;
    assert_eq!(res.status(), 303);
    let id: String = sqlx::query_scalar("SELECT id FROM webhook_endpoints WHERE managed = 0")
        .fetch_one(app.state.store.pool())
        .await
        .unwrap();
    let endpoint = format!("/admin/webhooks/{id}");
    let (location, _) = redirected(&res, &format!("{endpoint}/secret?done=created"));
    let html = opened(&app, &browser, &location).await;
    let secret = shown(&html, "webhook-secret").expect("the secret is shown");
    assert!(secret.starts_with("whsec_"));
    assert!(html.contains("data-copy=\"webhook-secret\""));
    assert!(
        html.contains(&format!("href=\"{endpoint}\"")),
        "on to the endpoint"
    );
    let html = reloaded(&app, &browser, &location, &secret).await;
    assert!(html.contains(&format!("href=\"{endpoint}/secret/rotate\"")));
    let ping = submit(&app, &browser, &format!("{endpoint}/test"), &[]).await;
    assert_eq!(ping.status(), 303);
    let got = receiver.wait_for(1, Duration::from_secs(10)).await;
    assert!(
        signed_with(&secret, &got[0]),
        "signed with the shown secret"
    );

    // Rotated: the new secret once, and what happens to the old one.
    let rotate = format!("{endpoint}/secret");
    let res = submit(&app, &browser, &rotate, &[("confirm", "yes")]).await;
    let (location, _) = redirected(&res, &format!("{endpoint}/secret?done=rotated"));
    let html = opened(&app, &browser, &location).await;
    let rotated = shown(&html, "webhook-secret").expect("the new secret is shown");
    assert_ne!(rotated, secret);
    assert!(
        html.contains("keeps signing alongside it for 24 hours"),
        "{html}"
    );
    reloaded(&app, &browser, &location, &rotated).await;
    let ping = submit(&app, &browser, &format!("{endpoint}/test"), &[]).await;
    assert_eq!(ping.status(), 303);
    let got = receiver.wait_for(2, Duration::from_secs(10)).await;
    assert!(signed_with(&rotated, &got[1]) && signed_with(&secret, &got[1]));

    // An admin API token: once, and it authenticates.
    let res = submit(&app, &browser, "/admin/tokens", &[("name", "deploy bot")]).await;
    let id: String =
        sqlx::query_scalar("SELECT id FROM admin_api_tokens WHERE name = 'deploy bot'")
            .fetch_one(app.state.store.pool())
            .await
            .unwrap();
    let (location, _) = redirected(&res, &format!("/admin/tokens/{id}/secret"));
    let html = opened(&app, &browser, &location).await;
    let token = shown(&html, "new-token").expect("the token is shown");
    assert!(token.starts_with("pat_"), "{token}");
    assert!(html.contains("Token “deploy bot” created"), "{html}");
    let res = call(&app, Method::GET, Some(&token), "/keys", None).await;
    assert_eq!(res.status(), 200, "the token works");
    let html = reloaded(&app, &browser, &location, &token).await;
    assert!(html.contains("href=\"/admin/tokens\""), "{html}");
    assert!(!page(&app, &browser, "/admin/tokens").await.contains(&token));
    app.stop();
}

/// A session's cookie value, from its sign-in.
async fn session_of(app: &TestApp, email: &str, password: &str) -> String {
    let res = sign_in(app, &client(), email, password).await;
    assert_eq!(res.status(), 303);
    let cookie = set_cookie(&res, "portico_admin").unwrap();
    value(&cookie)
}

fn value(cookie: &str) -> String {
    let pair = cookie.split(';').next().unwrap();
    pair.split_once('=').unwrap().1.to_owned()
}

/// The reveal page at `path` asked with exactly these cookies: the secret, if shown.
async fn reveal_with(app: &TestApp, path: &str, session: &str, reveal: &str) -> Option<String> {
    let res = reqwest::Client::new()
        .get(app.url(path))
        .header(
            "cookie",
            format!("portico_admin={session}; portico_reveal={reveal}"),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200, "refused cleanly, never an error");
    let removal = set_cookie(&res, "portico_reveal").expect("the cookie is removed");
    assert!(removal.contains("Max-Age=0"), "{removal}");
    let html = res.text().await.unwrap();
    let secret = shown(&html, "client-secret");
    if secret.is_none() {
        assert!(html.contains(GONE), "{html}");
    }
    secret
}

async fn a_reveal_cookie_opens_only_in_its_own_session(db: &TestDb) {
    let app = spawn_app(db).await;
    create_admin(&app).await;
    let grace = "grace@example.com";
    portico::admin::auth::accounts::create(
        &app.state.store,
        &app.state.passwords,
        &portico::admin::auth::accounts::AdminEmail::parse(grace).unwrap(),
        secrecy::SecretString::from(PASSWORD),
        &portico::admin::Caller::cli(),
    )
    .await
    .unwrap();
    let token = api_token(&app, "setup").await;
    let other = json!({ "client_id": "other", "name": "Other",
                        "redirect_uris": ["https://other.example/cb"] });
    let res = call(&app, Method::POST, Some(&token), "/clients", Some(other)).await;
    json_of(res, 201).await;

    // Ada creates a client; the secret waits in the cookie of the 303.
    let ada = session_of(&app, EMAIL, PASSWORD).await;
    let csrf = csrf_in(
        &reqwest::Client::new()
            .get(app.url("/admin/keys"))
            .header("cookie", format!("portico_admin={ada}"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap(),
    );
    let res = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
        .post(app.url("/admin/clients"))
        .header("cookie", format!("portico_admin={ada}"))
        .form(&[
            ("csrf", csrf.as_str()),
            ("client_id", "wiki"),
            ("name", "Wiki"),
            ("redirect_uris", "https://wiki.example/cb"),
            ("grant_types", "authorization_code"),
        ])
        .send()
        .await
        .unwrap();
    let (_, cookie) = redirected(&res, "/admin/clients/wiki/secret");
    let reveal = value(&cookie);
    let path = "/admin/clients/wiki/secret";

    // Not in another admin's session, nor in another session of the same admin.
    let grace = session_of(&app, grace, PASSWORD).await;
    assert_eq!(reveal_with(&app, path, &grace, &reveal).await, None);
    let ada_again = session_of(&app, EMAIL, PASSWORD).await;
    assert_eq!(reveal_with(&app, path, &ada_again, &reveal).await, None);
    // Not on another client's reveal page.
    assert_eq!(
        reveal_with(&app, "/admin/clients/other/secret", &ada, &reveal).await,
        None
    );
    // Not tampered with: one character changed, cut short, or not base64 at all.
    let middle = reveal.len() / 2;
    let flipped = if &reveal[middle..=middle] == "A" {
        "B"
    } else {
        "A"
    };
    let tampered = format!("{}{flipped}{}", &reveal[..middle], &reveal[middle + 1..]);
    for bad in [
        tampered.as_str(),
        &reveal[..middle],
        "not%20a%20sealed%20value",
    ] {
        assert_eq!(reveal_with(&app, path, &ada, bad).await, None, "{bad}");
    }
    // In Ada's session it opens, and the secret is the client's.
    let secret = reveal_with(&app, path, &ada, &reveal).await.expect("shown");
    let stored = portico::clients::repo::find(&app.state.store, "wiki")
        .await
        .unwrap()
        .unwrap();
    assert!(stored.secret_matches(&secret));
    app.stop();
}
