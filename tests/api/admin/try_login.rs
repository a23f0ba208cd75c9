//! "Try a login" on a client's page: the test callback is added only after a confirmation
//! (audited), the real flow runs through the stand-in Google, and the callback shows the ID
//! token's claims. Refused, with nothing exchanged: no cookie, a wrong state, no admin session.

use reqwest::Method;
use serde_json::json;

use super::{EMAIL, PASSWORD, set_cookie, sign_in, signed_in};
use super::{api_token, audit_count, call, client, create_admin, csrf_in, json_of, page};
use crate::federation_flow::{google_provider, spawn_with};
use crate::helpers::{TestApp, TestDb};
use crate::oidc_support::{browse_with, param};
use crate::on_both_backends;
use crate::standins::google::{Account, GoogleStandIn};

on_both_backends!(
    try_a_login_adds_the_test_callback_after_asking_then_shows_the_claims,
    the_test_callback_refuses_without_cookie_state_or_session,
);

const CALLBACK: &str = "/admin/try-login/callback";

/// A confidential client `shop` with one redirect URI of its own.
async fn shop(app: &TestApp) {
    let token = api_token(app, "try").await;
    let body = json!({
        "client_id": "shop",
        "name": "Shop",
        "redirect_uris": ["https://shop.example/cb"],
        "scopes": ["openid", "email", "profile"],
    });
    json_of(
        call(app, Method::POST, Some(&token), "/clients", Some(body)).await,
        201,
    )
    .await;
}

/// How many authorization codes have been redeemed.
async fn redeemed(app: &TestApp) -> i64 {
    sqlx::query_scalar("SELECT COUNT(*) FROM auth_codes WHERE used_at IS NOT NULL")
        .fetch_one(app.state.store.pool())
        .await
        .unwrap()
}

async fn post(
    app: &TestApp,
    browser: &reqwest::Client,
    path: &str,
    csrf: &str,
    confirm: bool,
) -> reqwest::Response {
    let mut form = vec![("csrf", csrf)];
    if confirm {
        form.push(("confirm", "yes"));
    }
    browser
        .post(app.url(path))
        .form(&form)
        .send()
        .await
        .unwrap()
}

/// Adds the test callback to `shop` through its confirmation.
async fn add_callback(app: &TestApp, browser: &reqwest::Client, csrf: &str) {
    let res = post(
        app,
        browser,
        "/admin/clients/shop/try-login/callback-uri",
        csrf,
        true,
    )
    .await;
    assert_eq!(res.status(), 303);
}

/// Starts a test login of `shop` in `browser` and follows it through the stand-in Google to the
/// test callback; returns the callback URL (with code and state) and the nonce sent.
async fn run_to_callback(
    app: &TestApp,
    browser: &reqwest::Client,
    csrf: &str,
) -> (url::Url, String, String) {
    let res = post(app, browser, "/admin/clients/shop/try-login", csrf, false).await;
    assert_eq!(res.status(), 303);
    let cookie = set_cookie(&res, "portico_try_login").expect("the flow's cookie");
    for attribute in [
        "HttpOnly",
        "SameSite=Lax",
        &format!("Path={CALLBACK}"),
        "Max-Age=600",
    ] {
        assert!(cookie.contains(attribute), "{cookie}");
    }
    let location = res.headers()["location"].to_str().unwrap().to_owned();
    let authorize = url::Url::parse(&location).unwrap();
    assert_eq!(
        authorize.as_str().split('?').next().unwrap(),
        app.url("/authorize")
    );
    assert_eq!(param(&authorize, "client_id").unwrap(), "shop");
    assert_eq!(
        param(&authorize, "redirect_uri").unwrap(),
        app.url(CALLBACK)
    );
    assert_eq!(param(&authorize, "scope").unwrap(), "openid email profile");
    assert_eq!(param(&authorize, "response_type").unwrap(), "code");
    assert_eq!(param(&authorize, "code_challenge_method").unwrap(), "S256");
    let nonce = param(&authorize, "nonce").unwrap();
    let arrived = browse_with(browser, app, &location, &app.url(CALLBACK))
        .await
        .url();
    assert!(param(&arrived, "code").is_some(), "{arrived}");
    assert_eq!(param(&arrived, "state"), param(&authorize, "state"));
    let flow = cookie.split(';').next().unwrap().to_owned();
    (arrived, nonce, flow)
}

async fn try_a_login_adds_the_test_callback_after_asking_then_shows_the_claims(db: &TestDb) {
    let standin = GoogleStandIn::start(Account::default()).await;
    let app = spawn_with(db, google_provider(&standin.issuer, "")).await;
    create_admin(&app).await;
    shop(&app).await;
    let browser = signed_in(&app).await;
    let callback = app.url(CALLBACK);

    // Not registered yet: the button leads to a question, and so does a direct POST.
    let html = page(&app, &browser, "/admin/clients/shop").await;
    assert!(
        html.contains(r#"href="/admin/clients/shop/try-login/callback-uri" id="try-login-start""#),
        "{html}"
    );
    let csrf = csrf_in(&html);
    let res = post(
        &app,
        &browser,
        "/admin/clients/shop/try-login",
        &csrf,
        false,
    )
    .await;
    assert_eq!(res.status(), 303);
    assert_eq!(
        res.headers()["location"],
        "/admin/clients/shop/try-login/callback-uri"
    );
    assert!(set_cookie(&res, "portico_try_login").is_none());
    let question = page(&app, &browser, "/admin/clients/shop/try-login/callback-uri").await;
    assert!(
        question.contains(&format!(
            "Add Portico&#39;s test callback {callback} as a redirect URI of “Shop”?"
        )),
        "{question}"
    );
    // Without the confirmation, nothing changes.
    let res = post(
        &app,
        &browser,
        "/admin/clients/shop/try-login/callback-uri",
        &csrf,
        false,
    )
    .await;
    assert_eq!(res.status(), 200);
    assert_eq!(audit_count(&app, "client.updated").await, 0);

    // Confirmed: exactly that URI is added, audited.
    add_callback(&app, &browser, &csrf).await;
    let stored = portico::clients::repo::find(&app.state.store, "shop")
        .await
        .unwrap()
        .unwrap();
    let uris: Vec<&str> = stored.redirect_uris.iter().map(|u| u.as_str()).collect();
    assert_eq!(uris, ["https://shop.example/cb", callback.as_str()]);
    assert_eq!(audit_count(&app, "client.updated").await, 1);
    let details: String =
        sqlx::query_scalar("SELECT details FROM audit_log WHERE action = 'client.updated'")
            .fetch_one(app.state.store.pool())
            .await
            .unwrap();
    let details: serde_json::Value = serde_json::from_str(&details).unwrap();
    assert_eq!(details["redirect_uri_added"], callback.as_str());
    let html = page(&app, &browser, "/admin/clients/shop?done=callback-added").await;
    assert!(
        html.contains(r#"id="try-login-start">Try a login</button>"#),
        "{html}"
    );

    // The whole flow: the claims of a verified ID token, never a raw token.
    let (arrived, nonce, _) = run_to_callback(&app, &browser, &csrf).await;
    let res = browser.get(arrived.as_str()).send().await.unwrap();
    assert_eq!(res.status(), 200);
    let removed = set_cookie(&res, "portico_try_login").expect("the cookie is removed");
    assert!(removed.contains("Max-Age=0"), "{removed}");
    let html = res.text().await.unwrap();
    let claim = |name: &str| {
        let marker = format!(r#"data-claim="{name}">"#);
        let start = html
            .find(&marker)
            .unwrap_or_else(|| panic!("{name} in {html}"))
            + marker.len();
        html[start..start + html[start..].find('<').unwrap()].to_owned()
    };
    assert_eq!(claim("aud"), "shop");
    assert_eq!(claim("nonce"), nonce);
    assert_eq!(claim("email"), "alice@example.com");
    assert!(!claim("sub").is_empty());
    assert_eq!(claim("iss"), app.state.settings.server.issuer.as_str());
    assert!(
        html.contains("<dt>alg</dt><dd class=\"mono\">RS256</dd>"),
        "{html}"
    );
    assert!(!html.contains("eyJ"), "no raw token in {html}");
    assert_eq!(redeemed(&app).await, 1);

    // Once: the same answer again finds no test login in progress.
    let res = browser.get(arrived.as_str()).send().await.unwrap();
    assert_eq!(res.status(), 400);
    assert!(
        res.text()
            .await
            .unwrap()
            .contains("No test login to finish")
    );
    app.stop();
}

async fn the_test_callback_refuses_without_cookie_state_or_session(db: &TestDb) {
    let standin = GoogleStandIn::start(Account::default()).await;
    let app = spawn_with(db, google_provider(&standin.issuer, "")).await;
    create_admin(&app).await;
    shop(&app).await;
    let browser = signed_in(&app).await;
    let csrf = csrf_in(&page(&app, &browser, "/admin/clients/shop").await);
    add_callback(&app, &browser, &csrf).await;
    let (arrived, _, flow) = run_to_callback(&app, &browser, &csrf).await;

    // No admin session: the sign-in page, nothing exchanged.
    let res = client().get(arrived.as_str()).send().await.unwrap();
    assert_eq!(res.status(), 303);
    assert_eq!(res.headers()["location"], "/admin/sign-in");
    // Only the flow's cookie (a cross-site return withholds the Strict session cookie): a page
    // that loads the callback again from this origin, once.
    let res = client()
        .get(arrived.as_str())
        .header("cookie", "portico_try_login=anything")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let html = res.text().await.unwrap();
    assert!(html.contains("&#38;resumed=1\">"), "{html}");
    let resumed = format!("{arrived}&resumed=1");
    let res = client()
        .get(&resumed)
        .header("cookie", "portico_try_login=anything")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 303);
    assert_eq!(res.headers()["location"], "/admin/sign-in");

    // Another admin session, without the flow's cookie: refused.
    let other = signed_in(&app).await;
    let res = other.get(arrived.as_str()).send().await.unwrap();
    assert_eq!(res.status(), 400);
    assert!(
        res.text()
            .await
            .unwrap()
            .contains("No test login to finish")
    );

    // Another admin session presenting the flow's own cookie: it is sealed to the session that
    // started the flow, so refused the same way.
    let jar = std::sync::Arc::new(reqwest::cookie::Jar::default());
    let thief = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .cookie_provider(jar.clone())
        .build()
        .unwrap();
    jar.add_cookie_str(&flow, &arrived);
    // The jar sends the flow's cookie: with no session yet, the page that reloads once.
    let res = thief.get(arrived.as_str()).send().await.unwrap();
    assert_eq!(res.status(), 200);
    let res = sign_in(&app, &thief, EMAIL, PASSWORD).await;
    assert_eq!(res.status(), 303);
    let res = thief.get(arrived.as_str()).send().await.unwrap();
    assert_eq!(res.status(), 400);
    assert!(
        res.text()
            .await
            .unwrap()
            .contains("No test login to finish")
    );

    // The right session and cookie, a wrong state: refused.
    let mut forged = arrived.clone();
    let code = param(&arrived, "code").unwrap();
    forged
        .query_pairs_mut()
        .clear()
        .append_pair("code", &code)
        .append_pair("state", "guessed");
    let res = browser.get(forged.as_str()).send().await.unwrap();
    assert_eq!(res.status(), 400);
    assert!(
        res.text()
            .await
            .unwrap()
            .contains("This answer is not for your test login")
    );
    assert_eq!(redeemed(&app).await, 0, "nothing was exchanged");

    // The real answer still works: it was not spent by the refusals.
    let res = browser.get(arrived.as_str()).send().await.unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(redeemed(&app).await, 1);

    // An error answer from /authorize is shown in plain words.
    let (arrived, _, _) = run_to_callback(&app, &browser, &csrf).await;
    let state = param(&arrived, "state").unwrap();
    let mut denied = arrived.clone();
    denied
        .query_pairs_mut()
        .clear()
        .append_pair("error", "access_denied")
        .append_pair("error_description", "the user said no")
        .append_pair("state", &state);
    let res = browser.get(denied.as_str()).send().await.unwrap();
    assert_eq!(res.status(), 400);
    let html = res.text().await.unwrap();
    assert!(
        html.contains("The sign-in was refused or cancelled"),
        "{html}"
    );
    assert!(html.contains("access_denied: the user said no"), "{html}");

    // The client is deleted while its test login runs: an error page, and the spent cookie is
    // removed all the same.
    let (arrived, _, _) = run_to_callback(&app, &browser, &csrf).await;
    let token = api_token(&app, "delete").await;
    let res = call(&app, Method::DELETE, Some(&token), "/clients/shop", None).await;
    assert!(res.status().is_success(), "{}", res.status());
    let res = browser.get(arrived.as_str()).send().await.unwrap();
    assert_ne!(res.status(), 200);
    let removal = set_cookie(&res, "portico_try_login").expect("the cookie is removed");
    assert!(removal.contains("Max-Age=0"), "{removal}");
    app.stop();
}
