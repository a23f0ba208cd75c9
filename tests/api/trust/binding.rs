//! Logins bound to the browser that started them: a SAML Response auto-posted from another
//! site into the victim's browser, a login cookie planted before the login, and SAML IdPs
//! asked to re-authenticate (`prompt=login`, `max_age`) with `auth_time` taken from their
//! AuthnInstant.

use std::sync::Arc;

use reqwest::cookie::{CookieStore, Jar};

use crate::helpers::TestDb;
use crate::oidc_support::*;
use crate::on_both_backends;
use crate::saml_support::*;
use crate::upstream_idp::{UpUser, Upstream};

on_both_backends!(
    a_saml_response_posted_from_another_browser_gets_no_session,
    a_planted_login_cookie_is_not_the_binding,
    logins_started_in_two_tabs_both_complete,
    saml_prompt_login_and_max_age_force_a_fresh_authentication,
    saml_auth_time_is_the_authn_instant,
);

async fn count(app: &crate::helpers::TestApp, table: &str) -> i64 {
    sqlx::query_scalar(&format!("SELECT COUNT(*) FROM {table}"))
        .fetch_one(app.state.store.pool())
        .await
        .unwrap()
}

fn jar_browser(jar: Arc<Jar>) -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .cookie_provider(jar)
        .build()
        .unwrap()
}

async fn a_saml_response_posted_from_another_browser_gets_no_session(db: &TestDb) {
    let saml = Saml::start(db, |_| {}).await;
    // The attacker starts a login in their own browser and has the IdP answer it.
    let started = saml.begin().await;
    let c = saml.claims(Some(&started.request_id));
    let posted = saml.signed(&c);

    // Their page auto-posts Response and RelayState from the victim's browser.
    let victim_jar = Arc::new(Jar::default());
    let victim = jar_browser(victim_jar.clone());
    let res = victim
        .post(saml.acs())
        .form(&[
            ("SAMLResponse", posted.as_str()),
            ("RelayState", started.relay_state.as_str()),
        ])
        .send()
        .await
        .unwrap();
    let base = url::Url::parse(&saml.app.address).unwrap();
    let mut arrival = None;
    let mut pending_id = String::new();
    let mut res = res;
    for _ in 0..5 {
        for set in res.headers().get_all("set-cookie") {
            victim_jar.add_cookie_str(set.to_str().unwrap(), &base);
        }
        if !res.status().is_redirection() {
            arrival = Some((res.status().as_u16(), res.text().await.unwrap()));
            break;
        }
        let next = res.headers()["location"].to_str().unwrap().to_owned();
        if let Some(id) = url::Url::parse(&next).ok().and_then(|u| param(&u, "req")) {
            pending_id = id;
        }
        assert!(
            !next.starts_with(REDIRECT),
            "the victim's browser was sent to the app with the attacker's login: {next}"
        );
        let next = if next.starts_with('/') {
            saml.app.url(&next)
        } else {
            next
        };
        res = victim.get(&next).send().await.unwrap();
    }
    let (status, page) = arrival.expect("the victim's browser ends on a page");
    assert_eq!(status, 400, "{page}");
    let cookies = victim_jar
        .cookies(&base)
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default();
    assert!(
        !cookies.contains("portico_session"),
        "the victim got an SSO session: {cookies}"
    );
    assert_eq!(count(&saml.app, "sso_sessions").await, 0);
    assert_eq!(count(&saml.app, "auth_codes").await, 0);
    let failed = events(&saml.app, "login.failed").await;
    assert!(
        failed
            .iter()
            .any(|e| e["reason"]
                == "the SAML response reached a browser that did not start the login"),
        "{failed:?}"
    );
    assert!(events(&saml.app, "login.succeeded").await.is_empty());

    // The same Response cannot be posted again: its RelayState and InResponseTo were spent.
    let again = saml.post_acs(&posted, Some(&started.relay_state)).await;
    assert_eq!(again.status().as_u16(), 400);
    // The victim's visit did not spend the login either: it is the attacker's, and it
    // completes only in the attacker's own browser, for the attacker.
    let completion = saml
        .app
        .url(&format!("/saml/{PROVIDER}/complete?req={}", pending_id));
    let arrived = browse_with(&saml.browser, &saml.app, &completion, REDIRECT)
        .await
        .url();
    assert!(param(&arrived, "code").is_some());
    saml.app.stop();
}

async fn a_planted_login_cookie_is_not_the_binding(db: &TestDb) {
    let upstream = Upstream::start().await;
    let app = spawn_portico(db, &upstream, |_| {}).await;
    let rp = relying_party(&app, CLIENT_ID, Some(CLIENT_SECRET), REDIRECT).await;
    let base = url::Url::parse(&app.address).unwrap();
    // A value the attacker knows, planted in both browsers (a sibling subdomain, a cookie
    // injection…).
    let planted = "planted-login-cookie-value-0123456789abcdefghijkl";
    let plant = || {
        let jar = Arc::new(Jar::default());
        jar.add_cookie_str(&format!("portico_login={planted}; Path=/"), &base);
        jar
    };
    let attacker_jar = plant();
    let attacker = jar_browser(attacker_jar.clone());
    let victim = jar_browser(plant());

    // The attacker logs in upstream as themselves and stops at the callback.
    upstream.login_as(UpUser::new("attacker-sub", "attacker@corp.example"));
    let url = start_url(&rp, &[]);
    let first = attacker.get(url.as_str()).send().await.unwrap();
    let minted: Vec<String> = first
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .filter(|v| v.starts_with("portico_login="))
        .map(str::to_owned)
        .collect();
    assert_eq!(
        minted.len(),
        1,
        "a login cookie is set with the pending login"
    );
    assert!(
        !minted[0].contains(planted),
        "the planted value was kept as the binding: {}",
        minted[0]
    );
    let digest: Vec<u8> = sqlx::query_scalar("SELECT browser_digest FROM pending_authorizations")
        .fetch_one(app.state.store.pool())
        .await
        .unwrap();
    assert_ne!(
        digest,
        portico::crypto::TokenDigest::of(planted)
            .as_bytes()
            .to_vec()
    );
    let next = first.headers()["location"].to_str().unwrap().to_owned();
    let callback = browse_with(&attacker, &app, &app.url(&next), &app.url("/callback/"))
        .await
        .url();

    // The callback, sent to the victim: their browser holds only the planted value.
    let res = victim.get(callback.as_str()).send().await.unwrap();
    assert_eq!(
        res.status(),
        400,
        "the victim was logged in as the attacker: {:?}",
        res.headers().get("location")
    );
    assert!(events(&app, "login.succeeded").await.is_empty());
    app.stop();
}

async fn logins_started_in_two_tabs_both_complete(db: &TestDb) {
    let upstream = Upstream::start().await;
    let app = spawn_portico(db, &upstream, |_| {}).await;
    let rp = relying_party(&app, CLIENT_ID, Some(CLIENT_SECRET), REDIRECT).await;
    // Two tabs of one browser reach the provider before either comes back: each login got
    // its own binding, and the cookie carries both.
    let first = start_url(&rp, &[]);
    let second = start_url(&rp, &[]);
    let at_callback = |url: url::Url| {
        let app = &app;
        async move {
            browse(app, url.as_str(), &app.url("/callback/"))
                .await
                .url()
        }
    };
    let first = at_callback(first).await;
    let second = at_callback(second).await;
    for callback in [second, first] {
        let arrived = browse(&app, callback.as_str(), REDIRECT).await.url();
        assert!(param(&arrived, "code").is_some(), "{arrived}");
    }
    assert_eq!(events(&app, "login.succeeded").await.len(), 2);
    app.stop();
}

async fn saml_prompt_login_and_max_age_force_a_fresh_authentication(db: &TestDb) {
    let saml = Saml::start(db, |_| {}).await;
    // prompt=login: ForceAuthn goes to the IdP.
    let started = saml.begin().await;
    assert!(
        started.request_xml.contains(r#"ForceAuthn="true""#),
        "{}",
        started.request_xml
    );
    // An IdP that ignores it and answers from an old session is refused.
    let mut c = saml.claims(Some(&started.request_id));
    c.authn_instant = portico::store::now() - 3600;
    let res = saml
        .post_acs(&saml.signed(&c), Some(&started.relay_state))
        .await;
    let failed = saml.follow(res).await;
    let (status, page) = failed.page();
    assert_eq!(status, 403, "{page}");
    let reasons: Vec<String> = events(&saml.app, "login.failed")
        .await
        .iter()
        .map(|e| e["reason"].as_str().unwrap_or_default().to_owned())
        .collect();
    assert!(
        reasons
            .iter()
            .any(|r| r.contains("the IdP did not authenticate the user again")),
        "{reasons:?}"
    );
    assert!(events(&saml.app, "login.succeeded").await.is_empty());

    // max_age: ForceAuthn too, and an AuthnInstant older than max_age is refused.
    let started = saml.begin_with(false, &[("max_age", "60")]).await;
    assert!(started.request_xml.contains(r#"ForceAuthn="true""#));
    let mut c = saml.claims(Some(&started.request_id));
    c.authn_instant = portico::store::now() - 600;
    let res = saml
        .post_acs(&saml.signed(&c), Some(&started.relay_state))
        .await;
    assert_eq!(saml.follow(res).await.page().0, 403);

    // Without either, no ForceAuthn.
    let started = saml.begin_with(false, &[]).await;
    assert!(!started.request_xml.contains("ForceAuthn"));
    saml.app.stop();
}

async fn saml_auth_time_is_the_authn_instant(db: &TestDb) {
    use openidconnect::TokenResponse;
    let saml = Saml::start(db, |_| {}).await;
    // The IdP's own session is ten minutes old: that is when the user authenticated.
    let mut started = saml.begin_with(false, &[]).await;
    let mut c = saml.claims(Some(&started.request_id));
    let authn_instant = portico::store::now() - 600;
    c.authn_instant = authn_instant;
    let res = saml
        .post_acs(&saml.signed(&c), Some(&started.relay_state))
        .await;
    let arrived = saml.follow(res).await.url();
    started.auth.code = param(&arrived, "code").expect("a code");
    let (tokens, _) = exchange(&saml.rp, started.auth).await;
    let claims = jwt_claims(&tokens.id_token().unwrap().to_string());
    assert_eq!(claims["auth_time"], authn_instant);
    // The SSO session carries it too: max_age=300 sends the user back to the IdP.
    let (url, ..) = saml.authorization_with(false, &[("max_age", "300")]);
    let at_idp = browse_with(
        &saml.browser,
        &saml.app,
        url.as_str(),
        crate::saml_idp::SSO_URL,
    )
    .await
    .url();
    assert!(param(&at_idp, "SAMLRequest").is_some());
    saml.app.stop();
}
