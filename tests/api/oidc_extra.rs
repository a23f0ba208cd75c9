//! Sessions, the login chooser, rate limits, the client service, and upstream refresh.

use openidconnect::OAuth2TokenResponse;
use portico::clients::NewClient;
use secrecy::{ExposeSecret, SecretString};

use crate::helpers::TestDb;
use crate::oidc_support::*;
use crate::on_both_backends;
use crate::upstream_idp::Upstream;

on_both_backends!(
    the_session_cookie_is_httponly_lax_and_expires_when_idle,
    the_chooser_lists_allowed_providers_and_routes_by_email_domain,
    rate_limits_answer_429_with_retry_after,
    client_secrets_are_shown_once_and_stored_as_digests,
    a_lost_upstream_grant_refuses_the_downstream_refresh,
);

async fn the_session_cookie_is_httponly_lax_and_expires_when_idle(db: &TestDb) {
    let upstream = Upstream::start().await;
    let app = spawn_portico(db, &upstream, |_| {}).await;
    let rp = relying_party(&app, CLIENT_ID, Some(CLIENT_SECRET), REDIRECT).await;
    let url = start_url(&rp, &[]);
    let callback = browse(&app, url.as_str(), &app.url("/callback/"))
        .await
        .url();
    let res = app.client.get(callback.as_str()).send().await.unwrap();
    let cookie = res
        .headers()
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap().to_owned())
        .find(|c| c.starts_with("portico_session="))
        .expect("a session cookie");
    assert!(cookie.contains("HttpOnly"), "{cookie}");
    assert!(cookie.contains("SameSite=Lax"), "{cookie}");
    assert!(!cookie.contains("Secure"), "plain-http issuer: {cookie}");

    let prompt_none = app.url(&format!(
        "/authorize?response_type=code&client_id={CLIENT_ID}&redirect_uri={}&scope=openid&prompt=none",
        url::form_urlencoded::byte_serialize(REDIRECT.as_bytes()).collect::<String>()
    ));
    let arrived = browse(&app, &prompt_none, REDIRECT).await.url();
    assert!(param(&arrived, "code").is_some());
    // max_age: a session older than the client accepts does not answer prompt=none.
    sqlx::query("UPDATE sso_sessions SET auth_time = $1")
        .bind(portico::store::now() - 100)
        .execute(app.state.store.pool())
        .await
        .unwrap();
    let arrived = browse(&app, &format!("{prompt_none}&max_age=10"), REDIRECT)
        .await
        .url();
    assert_eq!(param(&arrived, "error").as_deref(), Some("login_required"));
    let arrived = browse(&app, &format!("{prompt_none}&max_age=1000"), REDIRECT)
        .await
        .url();
    assert!(param(&arrived, "code").is_some());
    // Idle for longer than the idle timeout: the session no longer counts.
    let idle = app.state.settings.oidc.session_idle_secs as i64;
    sqlx::query("UPDATE sso_sessions SET last_seen_at = $1")
        .bind(portico::store::now() - idle - 5)
        .execute(app.state.store.pool())
        .await
        .unwrap();
    let arrived = browse(&app, &prompt_none, REDIRECT).await.url();
    assert_eq!(param(&arrived, "error").as_deref(), Some("login_required"));
    app.stop();
}

async fn the_chooser_lists_allowed_providers_and_routes_by_email_domain(db: &TestDb) {
    let upstream = Upstream::start().await;
    let issuer = upstream.issuer.clone();
    let app = spawn_portico(db, &upstream, move |s| {
        let mut other = provider("partner", &issuer, false);
        other.email_domains = vec!["partner.example".into()];
        s.providers = vec![provider("corp", &issuer, false), other];
    })
    .await;
    let rp = relying_party(&app, CLIENT_ID, Some(CLIENT_SECRET), REDIRECT).await;
    let url = start_url(&rp, &[]);
    let res = app.client.get(url.as_str()).send().await.unwrap();
    let login = app.url(res.headers()["location"].to_str().unwrap());
    let (status, page) = browse(&app, &login, "http://nowhere").await.page();
    assert_eq!(status, 200);
    assert!(
        page.contains("Corp corp") && page.contains("Corp partner"),
        "{page}"
    );
    assert!(page.contains("name=\"email\""), "{page}");
    // The home-realm hint: an e-mail at partner.example goes to `partner`.
    let res = app
        .client
        .get(format!("{login}&email=bob%40partner.example"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 302);
    let upstream_url = url::Url::parse(res.headers()["location"].to_str().unwrap()).unwrap();
    assert!(upstream_url.as_str().starts_with(&upstream.issuer));
    let redirect = param(&upstream_url, "redirect_uri").unwrap();
    assert!(redirect.ends_with("/callback/partner"), "{redirect}");
    assert_eq!(
        param(&upstream_url, "login_hint").as_deref(),
        Some("bob@partner.example")
    );
    // The stylesheet is served by Portico itself.
    let css = app.get("/static/portico.css").await;
    assert_eq!(css.status(), 200);
    // A login link opened in another browser is refused.
    let other = rp_http().get(&login).send().await.unwrap();
    assert_eq!(other.status(), 400);
    app.stop();
}

async fn rate_limits_answer_429_with_retry_after(db: &TestDb) {
    let upstream = Upstream::start().await;
    let app = spawn_portico(db, &upstream, |s| {
        s.oidc.rate_limit.per_client_per_sec = 1;
        s.oidc.rate_limit.per_client_burst = 3;
    })
    .await;
    let mut statuses = Vec::new();
    let mut retry_after = None;
    for _ in 0..6 {
        let res = rp_http()
            .post(app.url("/token"))
            .basic_auth(CLIENT_ID, Some(CLIENT_SECRET))
            .form(&[("grant_type", "client_credentials")])
            .send()
            .await
            .unwrap();
        statuses.push(res.status().as_u16());
        if res.status() == 429 {
            retry_after = res
                .headers()
                .get("retry-after")
                .map(|v| v.to_str().unwrap().to_owned());
        }
    }
    assert_eq!(&statuses[..3], &[200, 200, 200], "{statuses:?}");
    assert!(statuses.contains(&429), "{statuses:?}");
    let secs: u64 = retry_after.expect("Retry-After").parse().unwrap();
    assert!(secs >= 1);
    app.stop();
}

async fn client_secrets_are_shown_once_and_stored_as_digests(db: &TestDb) {
    let upstream = Upstream::start().await;
    let app = spawn_portico(db, &upstream, |_| {}).await;
    let config: portico::clients::ClientConfig = toml::from_str(
        r#"
client_id = "made-by-admin"
type = "confidential"
redirect_uris = ["https://admin-made.example/cb"]
grant_types = ["authorization_code", "client_credentials"]
"#,
    )
    .unwrap();
    let new = NewClient::from_config(&config).unwrap();
    let store = &app.state.store;
    // Through the admin service, audited, as every change an admin makes.
    let cli = portico::audit::Caller::cli();
    let created = portico::admin::clients::service::create(&app.state, &cli, &new)
        .await
        .unwrap();
    let secret = SecretString::from(
        created
            .client_secret
            .expect("a confidential client gets a secret"),
    );
    let client = portico::clients::repo::find(store, "made-by-admin")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(client.id_token_alg, portico::keys::SigningAlg::RS256);
    assert!(!client.managed_by_config);
    let stored: Vec<u8> =
        sqlx::query_scalar("SELECT secret_digest FROM clients WHERE client_id = 'made-by-admin'")
            .fetch_one(store.pool())
            .await
            .unwrap();
    assert_eq!(stored.len(), 32);
    assert!(
        !stored
            .windows(8)
            .any(|w| secret.expose_secret().as_bytes().windows(8).any(|s| s == w))
    );
    let ok = |s: String| {
        let app = &app;
        async move {
            rp_http()
                .post(app.url("/token"))
                .basic_auth("made-by-admin", Some(s))
                .form(&[("grant_type", "client_credentials")])
                .send()
                .await
                .unwrap()
                .status()
                .as_u16()
        }
    };
    assert_eq!(ok(secret.expose_secret().to_owned()).await, 200);
    let rotated =
        portico::admin::clients::service::rotate_secret(&app.state, &cli, "made-by-admin")
            .await
            .unwrap()
            .client_secret
            .unwrap();
    assert_eq!(ok(secret.expose_secret().to_owned()).await, 401);
    assert_eq!(ok(rotated).await, 200);
    // A second create with the same id is refused; config-managed clients are read-only.
    assert!(
        portico::admin::clients::service::create(&app.state, &cli, &new)
            .await
            .is_err()
    );
    assert!(
        portico::admin::clients::service::rotate_secret(&app.state, &cli, CLIENT_ID)
            .await
            .is_err()
    );
    assert!(
        portico::clients::repo::find(store, CLIENT_ID)
            .await
            .unwrap()
            .unwrap()
            .managed_by_config
    );
    app.stop();
}

async fn a_lost_upstream_grant_refuses_the_downstream_refresh(db: &TestDb) {
    let upstream = Upstream::start().await;
    let app = spawn_portico(db, &upstream, |_| {}).await;
    let rp = relying_party(&app, CLIENT_ID, Some(CLIENT_SECRET), REDIRECT).await;
    let (tokens, _) = exchange(
        &rp,
        authorize(&app, &rp, REDIRECT, &["offline_access"]).await,
    )
    .await;
    upstream.revoke_refresh_tokens();
    let (status, _, body) = post_form(
        &app,
        "/token",
        Some((CLIENT_ID, CLIENT_SECRET)),
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", tokens.refresh_token().unwrap().secret()),
        ],
    )
    .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_grant")),
        "{body}"
    );
    assert!(
        body["error_description"]
            .as_str()
            .unwrap()
            .contains("sign in again")
    );
    // No upstream refresh token in the database in clear.
    let sealed: Vec<Vec<u8>> = sqlx::query_scalar("SELECT refresh_token FROM identities")
        .fetch_all(app.state.store.pool())
        .await
        .unwrap();
    assert!(sealed.iter().all(|s| s[0] == 1 && s.len() > 40));
    app.stop();
}
