//! Sign-in events: a failed login can be looked up on `/admin/sign-ins` and in
//! `GET /admin/api/v1/sign-ins` with its reason, provider, client and the request id the user
//! saw on the error page; filters by outcome, provider and client; the dashboard links there.

use portico::crypto::MasterKey;
use portico::providers::ProviderConfig;
use portico::upstream::ProviderId;
use serde_json::Value;

use super::{api_token, call, create_admin, json_of, page, signed_in};
use crate::federation_flow::{full_login, google_provider};
use crate::helpers::{TestApp, TestDb, spawn_app_with};
use crate::oidc_support::*;
use crate::on_both_backends;
use crate::standins::google::{Account, GoogleStandIn};

on_both_backends!(
    a_failed_login_can_be_found_by_the_request_id_on_its_error_page,
    sign_in_events_filter_by_outcome_provider_and_client,
);

/// A second Google provider that only lets in a domain the stand-in's account is not from.
fn strict_provider(issuer: &str) -> ProviderConfig {
    let mut strict = google_provider(issuer, r#"hosted_domains = ["other.example"]"#);
    strict.id = ProviderId::parse("strict").unwrap();
    strict
}

async fn spawn(db: &TestDb, standin: &GoogleStandIn) -> TestApp {
    let issuer = standin.issuer.clone();
    spawn_app_with(db, MasterKey::generate(), move |s| {
        s.providers = vec![google_provider(&issuer, ""), strict_provider(&issuer)];
        s.clients = clients();
    })
    .await
}

/// A login through `provider` that the upstream sends back to Portico's callback, as a
/// browser would: the callback's status, its `x-request-id` and the page.
async fn login_through(app: &TestApp, provider: &str) -> (u16, String, String) {
    let rp = relying_party(app, CLIENT_ID, Some(CLIENT_SECRET), REDIRECT).await;
    let url = start_url(&rp, &[("provider", provider)]);
    let callback = browse(app, url.as_str(), &app.url("/callback/"))
        .await
        .url();
    let res = app.client.get(callback.as_str()).send().await.unwrap();
    let status = res.status().as_u16();
    let request_id = res.headers()["x-request-id"].to_str().unwrap().to_owned();
    (status, request_id, res.text().await.unwrap())
}

async fn sign_ins(app: &TestApp, token: &str, query: &str) -> Value {
    let path = format!("/sign-ins{query}");
    json_of(
        call(app, reqwest::Method::GET, Some(token), &path, None).await,
        200,
    )
    .await
}

fn field<'a>(page: &'a Value, name: &str) -> Vec<&'a str> {
    page["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i[name].as_str().unwrap_or(""))
        .collect()
}

/// How many sign-in rows a page shows.
fn rows(html: &str) -> usize {
    html.matches("<tr class=\"sign-in ").count()
}

async fn a_failed_login_can_be_found_by_the_request_id_on_its_error_page(db: &TestDb) {
    let standin = GoogleStandIn::start(Account::default()).await;
    let app = spawn(db, &standin).await;
    create_admin(&app).await;
    let token = api_token(&app, "support").await;

    full_login(&app, "google", &["email"]).await;
    let (status, request_id, html) = login_through(&app, "strict").await;
    assert_eq!(status, 403, "{html}");
    assert!(!request_id.is_empty());
    // The user can quote the id on the page.
    assert!(html.contains(&request_id), "{request_id} in {html}");

    // The events carry the request id (additive to the webhook payload).
    let failed = events(&app, "login.failed").await;
    assert_eq!(failed.len(), 1, "{failed:?}");
    assert_eq!(failed[0]["request_id"], request_id.as_str());
    let succeeded = events(&app, "login.succeeded").await;
    assert!(
        succeeded[0]["request_id"]
            .as_str()
            .is_some_and(|id| !id.is_empty())
    );
    let user_id = succeeded[0]["user_id"].as_str().unwrap().to_owned();

    // The API: newest first, the failure with everything needed to investigate it.
    let all = sign_ins(&app, &token, "").await;
    assert_eq!(field(&all, "outcome"), ["failed", "succeeded"], "{all}");
    let failure = &all["items"][0];
    assert_eq!(failure["provider"], "strict");
    assert_eq!(failure["client_id"], CLIENT_ID);
    assert_eq!(failure["request_id"], request_id.as_str());
    assert_eq!(failure["ip"], "127.0.0.1");
    assert!(failure["user_id"].is_null(), "{failure}");
    let reason = failure["reason"].as_str().unwrap();
    assert!(reason.contains("refused by policy"), "{reason}");
    assert!(failure["created_at"].as_str().unwrap().ends_with('Z'));
    let success = &all["items"][1];
    assert_eq!(success["provider"], "google");
    assert_eq!(success["user_id"], user_id.as_str());
    assert!(success["reason"].is_null(), "{success}");

    // The page: the failure's reason and request id, the user linked.
    let browser = signed_in(&app).await;
    let html = page(&app, &browser, "/admin/sign-ins?outcome=failed").await;
    assert_eq!(rows(&html), 1, "{html}");
    assert!(html.contains(&request_id), "{html}");
    assert!(html.contains("refused by policy"), "{html}");
    assert!(
        html.contains("aria-current=\"page\">Sign-ins"),
        "nav entry: {html}"
    );
    let html = page(&app, &browser, "/admin/sign-ins").await;
    assert_eq!(rows(&html), 2, "{html}");
    assert!(
        html.contains(&format!("href=\"/admin/users/{user_id}\"")),
        "{html}"
    );

    // The pages around it show times the same one way.
    for path in [
        "/admin/users".to_owned(),
        format!("/admin/users/{user_id}"),
        "/admin/tokens".to_owned(),
        format!("/admin/clients/{CLIENT_ID}"),
    ] {
        let html = page(&app, &browser, &path).await;
        let other = super::audit_keys::regex_like_rfc3339(&html);
        assert!(other.is_none(), "{path}: {other:?}");
        assert!(html.contains(" UTC"), "{path}: {html}");
    }

    // The dashboard's counts lead there.
    let html = page(&app, &browser, "/admin").await;
    assert!(
        html.contains("href=\"/admin/sign-ins?outcome=failed\""),
        "{html}"
    );
    assert!(
        html.contains("href=\"/admin/sign-ins?outcome=succeeded\""),
        "{html}"
    );

    // Neither face is open to the anonymous.
    let anonymous = super::client();
    let res = anonymous
        .get(app.url("/admin/sign-ins"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 303);
    let res = call(&app, reqwest::Method::GET, None, "/sign-ins", None).await;
    assert_eq!(res.status(), 401);
    app.stop();
}

async fn sign_in_events_filter_by_outcome_provider_and_client(db: &TestDb) {
    let standin = GoogleStandIn::start(Account::default()).await;
    let app = spawn(db, &standin).await;
    create_admin(&app).await;
    let token = api_token(&app, "support").await;
    full_login(&app, "google", &["email"]).await;
    let (status, _, _) = login_through(&app, "strict").await;
    assert_eq!(status, 403);
    // A callback with no state: a failure naming no client.
    assert_eq!(app.get("/callback/google").await.status(), 400);

    let by = |q: &'static str| {
        let app = &app;
        let token = token.clone();
        async move { sign_ins(app, &token, q).await }
    };
    let page1 = by("?outcome=succeeded").await;
    assert_eq!(field(&page1, "provider"), ["google"]);
    let page1 = by("?outcome=failed").await;
    assert_eq!(field(&page1, "provider"), ["google", "strict"]);
    let page1 = by("?outcome=failed&provider=strict").await;
    assert_eq!(field(&page1, "provider"), ["strict"]);
    let page1 = by("?provider=google").await;
    assert_eq!(field(&page1, "outcome"), ["failed", "succeeded"]);
    let page1 = by("?client_id=app").await;
    assert_eq!(field(&page1, "outcome"), ["failed", "succeeded"]);
    let page1 = by("?client_id=someone-else").await;
    assert!(page1["items"].as_array().unwrap().is_empty());
    let page1 = by("?outcome=all").await;
    assert_eq!(page1["items"].as_array().unwrap().len(), 3);

    // Keyset pages: two, then one, with nothing repeated.
    let first = by("?limit=2").await;
    assert_eq!(first["items"].as_array().unwrap().len(), 2);
    let cursor = first["next_cursor"].as_str().unwrap();
    let rest = sign_ins(&app, &token, &format!("?limit=2&cursor={cursor}")).await;
    assert_eq!(field(&rest, "outcome"), ["succeeded"]);
    assert!(rest["next_cursor"].is_null());

    // A bad filter is a 422 naming it.
    let res = call(
        &app,
        reqwest::Method::GET,
        Some(&token),
        "/sign-ins?outcome=maybe",
        None,
    )
    .await;
    let body = json_of(res, 422).await;
    assert!(body["fields"]["outcome"].is_string(), "{body}");

    // The page: selects for the outcome and the configured providers, the same filters.
    let browser = signed_in(&app).await;
    let html = page(
        &app,
        &browser,
        "/admin/sign-ins?outcome=failed&provider=strict",
    )
    .await;
    assert_eq!(rows(&html), 1, "{html}");
    assert!(
        html.contains("<select id=\"f-outcome\" name=\"outcome\""),
        "{html}"
    );
    assert!(
        html.contains("<option value=\"failed\" selected>"),
        "{html}"
    );
    assert!(
        html.contains("<option value=\"strict\" selected>"),
        "{html}"
    );
    assert!(html.contains("<option value=\"google\">"), "{html}");
    let html = page(&app, &browser, "/admin/sign-ins?client_id=app").await;
    assert_eq!(rows(&html), 2, "{html}");
    let html = page(&app, &browser, "/admin/sign-ins?limit=1").await;
    assert_eq!(rows(&html), 1, "{html}");
    assert!(html.contains("id=\"next-page\""), "{html}");
    let res = browser
        .get(app.url("/admin/sign-ins?outcome=maybe"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 422);
    app.stop();
}
