//! The OpenID Connect provider, driven by the `openidconnect` crate as relying party, with a
//! real upstream OIDC provider served over HTTP in the test.

use openidconnect::core::CoreUserInfoClaims;
use openidconnect::{AccessToken, OAuth2TokenResponse, TokenResponse};
use serde_json::Value;

use crate::helpers::TestDb;
use crate::oidc_support::*;
use crate::on_both_backends;
use crate::upstream_idp::{UpUser, Upstream};

on_both_backends!(
    the_whole_flow_works_with_an_openidconnect_relying_party,
    a_live_session_answers_at_once_and_prompt_none_without_one_is_refused,
    a_wrong_redirect_uri_gets_an_error_page_and_no_redirect,
    pkce_is_required_for_public_clients_and_plain_is_refused,
    a_missing_or_wrong_pkce_verifier_is_refused,
    a_reused_code_is_refused_and_revokes_its_tokens,
    an_expired_code_is_refused,
    a_reused_refresh_token_revokes_its_family,
    a_refresh_within_the_grace_window_is_not_reuse,
    client_authentication_failures_are_401_with_www_authenticate,
    client_credentials_works_for_confidential_clients_only,
    an_hs256_token_forged_with_the_public_key_is_refused,
    an_unregistered_post_logout_redirect_is_refused,
    a_disabled_users_refresh_is_refused,
);

const SCOPES: &[&str] = &["email", "profile", "groups", "offline_access"];

async fn the_whole_flow_works_with_an_openidconnect_relying_party(db: &TestDb) {
    let upstream = Upstream::start().await;
    let app = spawn_portico(db, &upstream, |_| {}).await;

    // Discovery lists what works.
    let doc: Value = app
        .get("/.well-known/openid-configuration")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        doc["code_challenge_methods_supported"],
        serde_json::json!(["S256"])
    );
    assert_eq!(doc["response_types_supported"], serde_json::json!(["code"]));
    assert!(
        doc["grant_types_supported"]
            .as_array()
            .unwrap()
            .contains(&"refresh_token".into())
    );
    assert_eq!(
        doc["end_session_endpoint"],
        format!("{}/logout", app.address)
    );

    let rp = relying_party(&app, CLIENT_ID, Some(CLIENT_SECRET), REDIRECT).await;
    let auth = authorize(&app, &rp, REDIRECT, SCOPES).await;
    let (tokens, nonce) = exchange(&rp, auth).await;

    // The ID token verifies with the openidconnect crate (signature, iss, aud, exp, nonce).
    let id_token = tokens.id_token().expect("an ID token");
    let claims = id_token.claims(&rp.id_token_verifier(), &nonce).unwrap();
    assert_eq!(claims.email().unwrap().as_str(), "alice@corp.example");
    // The upstream calls the address verified, but `corp` is not trusted for e-mail: a
    // downstream email_verified means a trusted provider verified it (docs/SECURITY.md).
    assert_eq!(claims.email_verified(), Some(false));
    let raw = jwt_claims(&id_token.to_string());
    assert_eq!(raw["azp"], CLIENT_ID);
    assert_eq!(raw["groups"], serde_json::json!(["staff"]));
    assert!(raw["at_hash"].is_string() && raw["auth_time"].is_i64());
    let user_id = raw["sub"].as_str().unwrap().to_owned();

    // RFC 9068 access token.
    let access = tokens.access_token().secret().clone();
    assert_eq!(jwt_header(&access)["typ"], "at+jwt");
    let at = jwt_claims(&access);
    assert_eq!(at["client_id"], CLIENT_ID);
    assert_eq!(at["aud"], CLIENT_ID);
    assert_eq!(at["sub"], user_id.as_str());
    assert!(at["jti"].is_string());

    // Events: the first login created the user.
    let created = events(&app, "user.created").await;
    assert_eq!(created.len(), 1);
    assert_eq!(created[0]["user_id"], user_id.as_str());
    let logins = events(&app, "login.succeeded").await;
    assert_eq!(logins[0]["provider"], "corp");
    assert_eq!(logins[0]["client_id"], CLIENT_ID);
    assert_eq!(logins[0]["new_user"], true);
    assert_eq!(logins[0]["email"], "alice@corp.example");

    // Userinfo through the openidconnect crate.
    let info: CoreUserInfoClaims = rp
        .user_info(AccessToken::new(access.clone()), None)
        .unwrap()
        .request_async(&rp_http())
        .await
        .unwrap();
    assert_eq!(info.email().unwrap().as_str(), "alice@corp.example");
    let posted = rp_http()
        .post(app.url("/userinfo"))
        .bearer_auth(&access)
        .send()
        .await
        .unwrap();
    assert_eq!(posted.status(), 200);

    // Refresh: rotation, and fresh claims from the upstream's refresh.
    upstream.update_user(UpUser {
        groups: vec!["staff".into(), "admins".into()],
        ..UpUser::new("alice-sub", "alice@corp.example")
    });
    let refresh = tokens.refresh_token().expect("a refresh token").clone();
    let refreshed = rp
        .exchange_refresh_token(&refresh)
        .unwrap()
        .request_async(&rp_http())
        .await
        .unwrap();
    assert_eq!(upstream.refresh_calls(), 1);
    let new_refresh = refreshed.refresh_token().unwrap().clone();
    assert_ne!(new_refresh.secret(), refresh.secret());
    let new_id = jwt_claims(&refreshed.id_token().unwrap().to_string());
    assert_eq!(new_id["groups"], serde_json::json!(["staff", "admins"]));

    // Introspection of the new access token, by the confidential client.
    let new_access = refreshed.access_token().secret().clone();
    let (status, headers, body) = post_form(
        &app,
        "/introspect",
        Some((CLIENT_ID, CLIENT_SECRET)),
        &[("token", &new_access)],
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(headers["cache-control"], "no-store");
    assert_eq!(body["active"], true);
    assert_eq!(body["sub"], user_id.as_str());

    // Revoke the access token: userinfo refuses it, introspection says inactive.
    let (status, _, _) = post_form(
        &app,
        "/revoke",
        Some((CLIENT_ID, CLIENT_SECRET)),
        &[("token", &new_access)],
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(userinfo_status(&app, &new_access).await, 401);
    let (_, _, body) = post_form(
        &app,
        "/introspect",
        Some((CLIENT_ID, CLIENT_SECRET)),
        &[("token", &new_access)],
    )
    .await;
    assert_eq!(body["active"], false);

    // Revoke the refresh token: its family ends.
    let (status, _, _) = post_form(
        &app,
        "/revoke",
        Some((CLIENT_ID, CLIENT_SECRET)),
        &[
            ("token", new_refresh.secret()),
            ("token_type_hint", "refresh_token"),
        ],
    )
    .await;
    assert_eq!(status, 200);
    let again = rp
        .exchange_refresh_token(&new_refresh)
        .unwrap()
        .request_async(&rp_http())
        .await;
    assert!(again.is_err(), "a revoked refresh token still worked");

    // Logout with id_token_hint and a registered post-logout redirect: back with state.
    let logout = format!(
        "/logout?id_token_hint={}&post_logout_redirect_uri={}&state=bye-state",
        id_token,
        urlencode(POST_LOGOUT)
    );
    let res = app.client.get(app.url(&logout)).send().await.unwrap();
    assert_eq!(res.status(), 302);
    let location = res.headers()["location"].to_str().unwrap();
    assert_eq!(location, format!("{POST_LOGOUT}?state=bye-state"));
    let ended = events(&app, "session.ended").await;
    assert_eq!(ended.len(), 1);
    assert_eq!(ended[0]["user_id"], user_id.as_str());
    assert_eq!(ended[0]["reason"], "logout");

    // The session is gone: prompt=none now answers login_required.
    let url = prompt_none_url(&app);
    let arrived = browse(&app, &url, REDIRECT).await.url();
    assert_eq!(param(&arrived, "error").as_deref(), Some("login_required"));
    app.stop();
}

fn urlencode(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

pub(crate) fn prompt_none_url(app: &crate::helpers::TestApp) -> String {
    app.url(&format!(
        "/authorize?response_type=code&client_id={CLIENT_ID}&redirect_uri={}&scope=openid&state=s1&prompt=none",
        urlencode(REDIRECT)
    ))
}

async fn a_live_session_answers_at_once_and_prompt_none_without_one_is_refused(db: &TestDb) {
    let upstream = Upstream::start().await;
    let app = spawn_portico(db, &upstream, |_| {}).await;
    // No session yet.
    let arrived = browse(&app, &prompt_none_url(&app), REDIRECT).await.url();
    assert_eq!(param(&arrived, "error").as_deref(), Some("login_required"));
    assert_eq!(param(&arrived, "state").as_deref(), Some("s1"));

    let rp = relying_party(&app, CLIENT_ID, Some(CLIENT_SECRET), REDIRECT).await;
    let _ = authorize(&app, &rp, REDIRECT, SCOPES).await;
    // With the session, prompt=none gets a code straight from /authorize.
    let res = app.client.get(prompt_none_url(&app)).send().await.unwrap();
    assert_eq!(res.status(), 302);
    let location = url::Url::parse(res.headers()["location"].to_str().unwrap()).unwrap();
    assert!(param(&location, "code").is_some(), "{location}");
    // The session cookie is HttpOnly and SameSite=Lax.
    let logins = events(&app, "login.succeeded").await;
    assert_eq!(logins.len(), 1, "the second authorization needed no login");
    app.stop();
}

async fn a_wrong_redirect_uri_gets_an_error_page_and_no_redirect(db: &TestDb) {
    let upstream = Upstream::start().await;
    let app = spawn_portico(db, &upstream, |_| {}).await;
    for bad in [
        "http://127.0.0.1:7777/cb/evil",
        "https://evil.example/cb",
        "http://127.0.0.1:7777/cb?x=1",
    ] {
        let res = app
            .get(&format!(
                "/authorize?response_type=code&client_id={CLIENT_ID}&redirect_uri={}&scope=openid&state=x",
                urlencode(bad)
            ))
            .await;
        assert_eq!(res.status(), 400, "{bad}");
        assert!(res.headers().get("location").is_none());
        assert!(res.text().await.unwrap().contains("not registered"));
    }
    // An unknown client too.
    let res = app
        .get(&format!(
            "/authorize?response_type=code&client_id=nobody&redirect_uri={}",
            urlencode(REDIRECT)
        ))
        .await;
    assert_eq!(res.status(), 400);
    assert!(res.headers().get("location").is_none());
    // A loopback redirect of a native app may change only its port (RFC 8252).
    let res = app
        .get(&format!(
            "/authorize?response_type=code&client_id={PUBLIC_ID}&redirect_uri={}&scope=openid&code_challenge=E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM&code_challenge_method=S256",
            urlencode("http://127.0.0.1:53111/spa-cb")
        ))
        .await;
    assert_eq!(res.status(), 302);
    app.stop();
}

async fn pkce_is_required_for_public_clients_and_plain_is_refused(db: &TestDb) {
    let upstream = Upstream::start().await;
    let app = spawn_portico(db, &upstream, |_| {}).await;
    let base = format!(
        "/authorize?response_type=code&client_id={PUBLIC_ID}&redirect_uri={}&scope=openid&state=st",
        urlencode(PUBLIC_REDIRECT)
    );
    for (extra, what) in [
        ("", "no PKCE"),
        (
            "&code_challenge=E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM&code_challenge_method=plain",
            "plain",
        ),
        (
            "&code_challenge=E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM",
            "plain by default",
        ),
    ] {
        let res = app.get(&format!("{base}{extra}")).await;
        assert_eq!(res.status(), 302, "{what}");
        let location = url::Url::parse(res.headers()["location"].to_str().unwrap()).unwrap();
        assert!(location.as_str().starts_with(PUBLIC_REDIRECT), "{what}");
        assert_eq!(
            param(&location, "error").as_deref(),
            Some("invalid_request"),
            "{what}"
        );
        assert_eq!(param(&location, "state").as_deref(), Some("st"), "{what}");
    }
    // Unsupported response types are redirected errors too.
    let res = app
        .get(&format!(
            "/authorize?response_type=token&client_id={CLIENT_ID}&redirect_uri={}&state=t",
            urlencode(REDIRECT)
        ))
        .await;
    let location = url::Url::parse(res.headers()["location"].to_str().unwrap()).unwrap();
    assert_eq!(
        param(&location, "error").as_deref(),
        Some("unsupported_response_type")
    );

    // The public client's full flow works with S256 and no secret.
    let rp = relying_party(&app, PUBLIC_ID, None, PUBLIC_REDIRECT).await;
    let auth = authorize(&app, &rp, PUBLIC_REDIRECT, &["email"]).await;
    let (tokens, _) = exchange(&rp, auth).await;
    assert!(tokens.id_token().is_some());
    app.stop();
}

async fn a_missing_or_wrong_pkce_verifier_is_refused(db: &TestDb) {
    let upstream = Upstream::start().await;
    let app = spawn_portico(db, &upstream, |_| {}).await;
    let rp = relying_party(&app, CLIENT_ID, Some(CLIENT_SECRET), REDIRECT).await;
    for verifier in [
        None,
        Some("a-wrong-verifier-that-is-long-enough-0123456789abcdef"),
    ] {
        let auth = authorize(&app, &rp, REDIRECT, SCOPES).await;
        let mut form = vec![
            ("grant_type", "authorization_code"),
            ("code", auth.code.as_str()),
            ("redirect_uri", REDIRECT),
        ];
        if let Some(v) = verifier {
            form.push(("code_verifier", v));
        }
        let (status, headers, body) =
            post_form(&app, "/token", Some((CLIENT_ID, CLIENT_SECRET)), &form).await;
        assert_eq!(status, 400, "{verifier:?}");
        assert_eq!(body["error"], "invalid_grant");
        assert_eq!(headers["cache-control"], "no-store");
    }
    // The right verifier but another redirect_uri is refused as well.
    let auth = authorize(&app, &rp, REDIRECT, SCOPES).await;
    let (status, _, body) = post_form(
        &app,
        "/token",
        Some((CLIENT_ID, CLIENT_SECRET)),
        &[
            ("grant_type", "authorization_code"),
            ("code", &auth.code),
            ("redirect_uri", "http://127.0.0.1:7777/other"),
            ("code_verifier", auth.verifier.secret()),
        ],
    )
    .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_grant"))
    );
    app.stop();
}

async fn a_reused_code_is_refused_and_revokes_its_tokens(db: &TestDb) {
    let upstream = Upstream::start().await;
    let app = spawn_portico(db, &upstream, |_| {}).await;
    let rp = relying_party(&app, CLIENT_ID, Some(CLIENT_SECRET), REDIRECT).await;
    let auth = authorize(&app, &rp, REDIRECT, SCOPES).await;
    let code = auth.code.clone();
    let verifier = auth.verifier.secret().clone();
    let (tokens, _) = exchange(&rp, auth).await;
    let access = tokens.access_token().secret().clone();
    assert_eq!(userinfo_status(&app, &access).await, 200);

    let (status, _, body) = post_form(
        &app,
        "/token",
        Some((CLIENT_ID, CLIENT_SECRET)),
        &[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", REDIRECT),
            ("code_verifier", &verifier),
        ],
    )
    .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_grant"))
    );
    // What the first redemption issued is revoked.
    assert_eq!(userinfo_status(&app, &access).await, 401);
    let refresh = rp
        .exchange_refresh_token(tokens.refresh_token().unwrap())
        .unwrap()
        .request_async(&rp_http())
        .await;
    assert!(
        refresh.is_err(),
        "the refresh token from a reused code still works"
    );
    app.stop();
}

async fn an_expired_code_is_refused(db: &TestDb) {
    let upstream = Upstream::start().await;
    let app = spawn_portico(db, &upstream, |_| {}).await;
    let rp = relying_party(&app, CLIENT_ID, Some(CLIENT_SECRET), REDIRECT).await;
    let auth = authorize(&app, &rp, REDIRECT, SCOPES).await;
    // Age the code past its 60 seconds.
    sqlx::query("UPDATE auth_codes SET expires_at = $1")
        .bind(portico::store::now() - 1)
        .execute(app.state.store.pool())
        .await
        .unwrap();
    let (status, body) = redeem(&app, &auth).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_grant"))
    );
    assert!(
        body["error_description"]
            .as_str()
            .unwrap()
            .contains("expired")
    );
    app.stop();
}

pub(crate) async fn refresh_form(app: &crate::helpers::TestApp, token: &str) -> (u16, Value) {
    let (status, _, body) = post_form(
        app,
        "/token",
        Some((CLIENT_ID, CLIENT_SECRET)),
        &[("grant_type", "refresh_token"), ("refresh_token", token)],
    )
    .await;
    (status, body)
}

async fn a_reused_refresh_token_revokes_its_family(db: &TestDb) {
    let upstream = Upstream::start().await;
    let app = spawn_portico(db, &upstream, |s| s.oidc.refresh_grace_secs = 5).await;
    let rp = relying_party(&app, CLIENT_ID, Some(CLIENT_SECRET), REDIRECT).await;
    let (tokens, _) = exchange(&rp, authorize(&app, &rp, REDIRECT, SCOPES).await).await;
    let first = tokens.refresh_token().unwrap().secret().clone();
    let (status, body) = refresh_form(&app, &first).await;
    assert_eq!(status, 200);
    let second = body["refresh_token"].as_str().unwrap().to_owned();
    // Past the grace window, the rotated token comes back: theft.
    sqlx::query("UPDATE refresh_tokens SET rotated_at = $1 WHERE rotated_at IS NOT NULL")
        .bind(portico::store::now() - 60)
        .execute(app.state.store.pool())
        .await
        .unwrap();
    let (status, body) = refresh_form(&app, &first).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_grant"))
    );
    // The whole family is revoked, including the legitimate newest token.
    let (status, body) = refresh_form(&app, &second).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_grant"))
    );
    let reuse = events(&app, "token.reuse_detected").await;
    assert_eq!(reuse.len(), 1);
    assert_eq!(reuse[0]["client_id"], CLIENT_ID);
    assert!(reuse[0]["user_id"].is_string());
    app.stop();
}

async fn a_refresh_within_the_grace_window_is_not_reuse(db: &TestDb) {
    let upstream = Upstream::start().await;
    let app = spawn_portico(db, &upstream, |s| s.oidc.refresh_grace_secs = 30).await;
    let rp = relying_party(&app, CLIENT_ID, Some(CLIENT_SECRET), REDIRECT).await;
    let (tokens, _) = exchange(&rp, authorize(&app, &rp, REDIRECT, SCOPES).await).await;
    let first = tokens.refresh_token().unwrap().secret().clone();
    let (a, _) = refresh_form(&app, &first).await;
    let (b, body) = refresh_form(&app, &first).await;
    assert_eq!((a, b), (200, 200), "{body}");
    assert!(events(&app, "token.reuse_detected").await.is_empty());
    app.stop();
}

async fn client_authentication_failures_are_401_with_www_authenticate(db: &TestDb) {
    let upstream = Upstream::start().await;
    let app = spawn_portico(db, &upstream, |_| {}).await;
    let form = [("grant_type", "client_credentials")];
    let (status, headers, body) = post_form(
        &app,
        "/token",
        Some((CLIENT_ID, "wrong-secret-wrong-secret-wrong-secret")),
        &form,
    )
    .await;
    assert_eq!(status, 401);
    assert_eq!(body["error"], "invalid_client");
    assert!(
        headers["www-authenticate"]
            .to_str()
            .unwrap()
            .starts_with("Basic")
    );
    assert_eq!(headers["cache-control"], "no-store");
    // client_secret_post with a wrong secret, and an unknown client.
    let (status, _, _) = post_form(
        &app,
        "/token",
        None,
        &[
            ("grant_type", "client_credentials"),
            ("client_id", CLIENT_ID),
            ("client_secret", "nope"),
        ],
    )
    .await;
    assert_eq!(status, 401);
    let (status, _, _) = post_form(&app, "/token", Some(("ghost", CLIENT_SECRET)), &form).await;
    assert_eq!(status, 401);
    // client_secret_post with the right secret works.
    let (status, _, body) = post_form(
        &app,
        "/token",
        None,
        &[
            ("grant_type", "client_credentials"),
            ("client_id", CLIENT_ID),
            ("client_secret", CLIENT_SECRET),
        ],
    )
    .await;
    assert_eq!(status, 200, "{body}");
    app.stop();
}

async fn client_credentials_works_for_confidential_clients_only(db: &TestDb) {
    let upstream = Upstream::start().await;
    let app = spawn_portico(db, &upstream, |s| {
        s.clients[0].allowed_resources = vec!["https://api.example/".into()];
    })
    .await;
    let (status, headers, body) = post_form(
        &app,
        "/token",
        Some((CLIENT_ID, CLIENT_SECRET)),
        &[
            ("grant_type", "client_credentials"),
            ("scope", "api:read"),
            ("resource", "https://api.example/"),
        ],
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(headers["cache-control"], "no-store");
    assert!(body.get("id_token").is_none() && body.get("refresh_token").is_none());
    let token = body["access_token"].as_str().unwrap();
    assert_eq!(jwt_header(token)["typ"], "at+jwt");
    let claims = jwt_claims(token);
    assert_eq!(claims["aud"], "https://api.example/");
    assert_eq!(claims["sub"], CLIENT_ID);
    assert_eq!(claims["scope"], "api:read");

    let (status, _, body) = post_form(
        &app,
        "/token",
        None,
        &[
            ("grant_type", "client_credentials"),
            ("client_id", PUBLIC_ID),
        ],
    )
    .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("unauthorized_client"))
    );
    app.stop();
}

async fn an_hs256_token_forged_with_the_public_key_is_refused(db: &TestDb) {
    use base64::Engine;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let upstream = Upstream::start().await;
    let app = spawn_portico(db, &upstream, |_| {}).await;
    let rp = relying_party(&app, CLIENT_ID, Some(CLIENT_SECRET), REDIRECT).await;
    let (tokens, _) = exchange(&rp, authorize(&app, &rp, REDIRECT, SCOPES).await).await;
    let genuine = tokens.access_token().secret().clone();
    let kid = jwt_header(&genuine)["kid"].as_str().unwrap().to_owned();
    let jwks: Value = app.get("/jwks.json").await.json().await.unwrap();
    let public = jwks["keys"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["kid"] == kid.as_str())
        .unwrap()
        .clone();
    // The classic confusion attack: HMAC keyed with the published public key material.
    for key_material in [
        public.to_string().into_bytes(),
        URL_SAFE_NO_PAD
            .decode(public["n"].as_str().unwrap())
            .unwrap(),
    ] {
        let header =
            URL_SAFE_NO_PAD.encode(format!(r#"{{"alg":"HS256","kid":"{kid}","typ":"at+jwt"}}"#));
        let payload = genuine.split('.').nth(1).unwrap();
        let signing_input = format!("{header}.{payload}");
        let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, &key_material);
        let sig = URL_SAFE_NO_PAD.encode(ring::hmac::sign(&key, signing_input.as_bytes()).as_ref());
        let forged = format!("{signing_input}.{sig}");
        assert_eq!(userinfo_status(&app, &forged).await, 401);
    }
    // alg none as well.
    let header = URL_SAFE_NO_PAD.encode(r#"{"alg":"none","typ":"at+jwt"}"#);
    let payload = genuine.split('.').nth(1).unwrap();
    assert_eq!(
        userinfo_status(&app, &format!("{header}.{payload}.")).await,
        401
    );
    assert_eq!(userinfo_status(&app, &genuine).await, 200);
    app.stop();
}

async fn an_unregistered_post_logout_redirect_is_refused(db: &TestDb) {
    let upstream = Upstream::start().await;
    let app = spawn_portico(db, &upstream, |_| {}).await;
    let rp = relying_party(&app, CLIENT_ID, Some(CLIENT_SECRET), REDIRECT).await;
    let (tokens, _) = exchange(&rp, authorize(&app, &rp, REDIRECT, SCOPES).await).await;
    let id_token = tokens.id_token().unwrap().to_string();
    let res = app
        .client
        .get(app.url(&format!(
            "/logout?id_token_hint={id_token}&post_logout_redirect_uri={}&state=x",
            urlencode("https://evil.example/bye")
        )))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 400);
    assert!(res.headers().get("location").is_none());
    // The session survived the refused request.
    assert!(events(&app, "session.ended").await.is_empty());
    app.stop();
}

async fn a_disabled_users_refresh_is_refused(db: &TestDb) {
    let upstream = Upstream::start().await;
    let app = spawn_portico(db, &upstream, |_| {}).await;
    let rp = relying_party(&app, CLIENT_ID, Some(CLIENT_SECRET), REDIRECT).await;
    let (tokens, _) = exchange(&rp, authorize(&app, &rp, REDIRECT, SCOPES).await).await;
    let user_id = jwt_claims(&tokens.id_token().unwrap().to_string())["sub"]
        .as_str()
        .unwrap()
        .to_owned();
    // Disabled behind Portico's back (the admin service would end the sessions too): the
    // flag alone must stop the session, the refresh and a new login.
    let flagged = sqlx::query("UPDATE users SET disabled = 1 WHERE id = $1")
        .bind(&user_id)
        .execute(app.state.store.pool())
        .await
        .unwrap();
    assert_eq!(flagged.rows_affected(), 1);
    // The live SSO session no longer answers for a disabled user.
    let arrived = browse(&app, &prompt_none_url(&app), REDIRECT).await.url();
    assert_eq!(param(&arrived, "error").as_deref(), Some("login_required"));
    let mut tx = app.state.store.begin_write().await.unwrap();
    let ended = portico::grants::sessions::end_user_sessions_in(&mut tx, &user_id, "user disabled")
        .await
        .unwrap();
    tx.commit().await.unwrap();
    assert_eq!(ended, 1);
    assert_eq!(
        events(&app, "session.ended").await[0]["reason"],
        "user disabled"
    );
    let (status, body) = refresh_form(&app, tokens.refresh_token().unwrap().secret()).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_grant"))
    );
    // Nor can the user log in again.
    let mut browser_app = app;
    browser_app.client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .cookie_store(true)
        .build()
        .unwrap();
    let url = start_url(&rp, &[]);
    let arrived = browse(&browser_app, url.as_str(), REDIRECT).await.url();
    assert_eq!(param(&arrived, "error").as_deref(), Some("access_denied"));
    let failed = events(&browser_app, "login.failed").await;
    assert!(failed[0]["reason"].as_str().unwrap().contains("disabled"));
    browser_app.stop();
}
