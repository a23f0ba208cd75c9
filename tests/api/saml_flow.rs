//! SAML wired end to end: an `openidconnect` relying party logs in at Portico, Portico sends
//! the browser to a test IdP with an AuthnRequest, the IdP signs a real Response to it (xmlsec)
//! and the browser posts it to the ACS; the app gets an ID token. Refusals through the same
//! path each show an HTML error page and record `login.failed` with their reason.

use openidconnect::{OAuth2TokenResponse, TokenResponse};
use portico::upstream::IdpInitiatedTarget;

use crate::helpers::TestDb;
use crate::oidc_support::*;
use crate::on_both_backends;
use crate::saml_idp::{self, KeyPair, SSO_URL, assertion, b64, response};
use crate::saml_support::*;

on_both_backends!(
    a_saml_login_runs_through_portico_to_an_id_token,
    metadata_from_a_url_with_a_rollover_certificate_works,
    an_unsigned_response_fails_the_login,
    a_wrong_audience_fails_the_login,
    a_replayed_assertion_fails_the_login,
    an_unknown_in_response_to_fails_the_login,
    an_oversized_post_is_refused_unread,
    idp_initiated_login_is_refused_when_off,
    idp_initiated_login_lands_at_the_configured_client_when_on,
    refresh_ends_at_the_maximum_session_lifetime,
    sp_metadata_is_served_and_signed_requests_are_announced,
);

async fn a_saml_login_runs_through_portico_to_an_id_token(db: &TestDb) {
    let saml = Saml::start(db, |_| {}).await;
    let (started, _) = log_in(&saml).await;
    assert!(started.idp_url.as_str().starts_with(SSO_URL));
    let nonce = started.auth.nonce.clone();
    let (tokens, _) = exchange(&saml.rp, started.auth).await;

    let id_token = tokens.id_token().expect("an ID token");
    let claims = id_token
        .claims(&saml.rp.id_token_verifier(), &nonce)
        .unwrap();
    assert_eq!(claims.email().unwrap().as_str(), "ada@example.com");
    let raw = jwt_claims(&id_token.to_string());
    assert_eq!(raw["name"], "Ada Lovelace");
    assert_eq!(raw["groups"], serde_json::json!(["admins", "engineering"]));

    let succeeded = events(&saml.app, "login.succeeded").await;
    assert_eq!(succeeded.len(), 1);
    let e = &succeeded[0];
    assert_eq!(e["provider"], PROVIDER);
    assert_eq!(e["client_id"], CLIENT_ID);
    assert_eq!(e["email"], "ada@example.com");
    assert_eq!(e["new_user"], true);
    assert_eq!(e["user_id"], raw["sub"]);

    // The NameID is the identity's subject; the outstanding request was used up.
    let subject: String =
        sqlx::query_scalar("SELECT subject FROM identities WHERE provider_id = $1")
            .bind(PROVIDER)
            .fetch_one(saml.app.state.store.pool())
            .await
            .unwrap();
    assert_eq!(subject, "00u1abcd");
    let outstanding: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM saml_requests")
        .fetch_one(saml.app.state.store.pool())
        .await
        .unwrap();
    assert_eq!(outstanding, 0);
}

async fn metadata_from_a_url_with_a_rollover_certificate_works(db: &TestDb) {
    let old = KeyPair::generate("old idp key");
    let idp = KeyPair::generate("new idp key");
    let url = saml_idp::serve_metadata(saml_idp::metadata_xml(IDP_ENTITY, &[&old, &idp])).await;
    let saml = Saml::with_provider(db, idp, saml_provider(None, Some(url))).await;
    let (started, _) = log_in(&saml).await;
    let (tokens, _) = exchange(&saml.rp, started.auth).await;
    assert!(tokens.id_token().is_some());
}

async fn an_unsigned_response_fails_the_login(db: &TestDb) {
    let saml = Saml::start(db, |_| {}).await;
    let started = saml.begin().await;
    let c = saml.claims(Some(&started.request_id));
    let unsigned = b64(&response(&c, &assertion(&c, None), None));
    assert_refused(
        &saml,
        &unsigned,
        Some(&started.relay_state),
        "response unsigned",
        Some(CLIENT_ID),
    )
    .await;
    assert!(events(&saml.app, "login.succeeded").await.is_empty());
}

async fn a_wrong_audience_fails_the_login(db: &TestDb) {
    let saml = Saml::start(db, |_| {}).await;
    let started = saml.begin().await;
    let mut c = saml.claims(Some(&started.request_id));
    c.audience = "https://another-sp.example/metadata".into();
    assert_refused(
        &saml,
        &saml.signed(&c),
        Some(&started.relay_state),
        "audience mismatch",
        Some(CLIENT_ID),
    )
    .await;
}

async fn a_replayed_assertion_fails_the_login(db: &TestDb) {
    let saml = Saml::start(db, |_| {}).await;
    let (started, posted) = log_in(&saml).await;
    // The same POST again, as an attacker holding the browser's form would send it.
    assert_refused(
        &saml,
        &posted,
        Some(&started.relay_state),
        "assertion replayed",
        None,
    )
    .await;
    // Into a fresh login of its own, too.
    let next = saml.begin().await;
    assert_refused(
        &saml,
        &posted,
        Some(&next.relay_state),
        "assertion replayed",
        Some(CLIENT_ID),
    )
    .await;
    assert_eq!(events(&saml.app, "login.succeeded").await.len(), 1);
}

async fn an_unknown_in_response_to_fails_the_login(db: &TestDb) {
    let saml = Saml::start(db, |_| {}).await;
    let started = saml.begin().await;
    let c = saml.claims(Some("_0123456789abcdef0123456789abcdef"));
    assert_refused(
        &saml,
        &saml.signed(&c),
        Some(&started.relay_state),
        "unknown or reused InResponseTo",
        Some(CLIENT_ID),
    )
    .await;

    // A valid answer to another login's request cannot be posted into this one.
    let first = saml.begin().await;
    let second = saml.begin().await;
    let c = saml.claims(Some(&first.request_id));
    let posted = saml.signed(&c);
    assert_refused(
        &saml,
        &posted,
        Some(&second.relay_state),
        "unknown or reused InResponseTo",
        Some(CLIENT_ID),
    )
    .await;
    // Refused there, it spent nothing: its own login still accepts it (a double submit to two
    // instances must not lose the login to the post that cannot succeed).
    let res = saml.post_acs(&posted, Some(&first.relay_state)).await;
    let arrived = saml.follow(res).await.url();
    assert_eq!(
        param(&arrived, "state").as_deref(),
        Some(first.csrf.as_str())
    );
    assert!(param(&arrived, "code").is_some(), "{arrived}");
}

async fn an_oversized_post_is_refused_unread(db: &TestDb) {
    let saml = Saml::start(db, |_| {}).await;
    let started = saml.begin().await;
    let huge = "A".repeat(400 * 1024);
    let res = saml.post_acs(&huge, Some(&started.relay_state)).await;
    assert_eq!(res.status().as_u16(), 413);
    assert!(res.text().await.unwrap().contains("too large"));
    let failed = events(&saml.app, "login.failed").await;
    assert_eq!(failed.len(), 1);
    assert_eq!(failed[0]["reason"], "response too large");
    assert_eq!(failed[0]["provider"], PROVIDER);
    // The login it would have answered is still waiting.
    let c = saml.claims(Some(&started.request_id));
    let res = saml
        .post_acs(&saml.signed(&c), Some(&started.relay_state))
        .await;
    assert!(saml.follow(res).await.url().as_str().starts_with(REDIRECT));
}

async fn idp_initiated_login_is_refused_when_off(db: &TestDb) {
    let saml = Saml::start(db, |_| {}).await;
    let c = saml.claims(None);
    assert_refused(
        &saml,
        &saml.signed(&c),
        None,
        "IdP-initiated login not allowed",
        None,
    )
    .await;
    // A RelayState an IdP made up (here a URL) changes nothing and is never followed.
    let c = saml.claims(None);
    assert_refused(
        &saml,
        &saml.signed(&c),
        Some("https://evil.example/"),
        "IdP-initiated login not allowed",
        None,
    )
    .await;
}

async fn idp_initiated_login_lands_at_the_configured_client_when_on(db: &TestDb) {
    let saml = Saml::start(db, |p| {
        p.options["saml"]["idp_initiated"] = serde_json::to_value(IdpInitiatedTarget {
            client_id: CLIENT_ID.into(),
            redirect_uri: REDIRECT.into(),
            scope: "openid email".into(),
        })
        .unwrap();
    })
    .await;
    let c = saml.claims(None);
    let posted = saml.signed(&c);
    let res = saml.post_acs(&posted, None).await;
    let arrived = location(&res);
    assert!(arrived.as_str().starts_with(REDIRECT), "{arrived}");
    assert_eq!(param(&arrived, "state"), None);
    let code = param(&arrived, "code").expect("a code");
    let (status, _, body) = post_form(
        &saml.app,
        "/token",
        Some((CLIENT_ID, CLIENT_SECRET)),
        &[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", REDIRECT),
        ],
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let id = jwt_claims(body["id_token"].as_str().unwrap());
    assert_eq!(id["aud"], CLIENT_ID);
    assert_eq!(id["email"], "ada@example.com");

    // Replay protection still applies.
    assert_refused(&saml, &posted, None, "assertion replayed", None).await;
    // And an SP-initiated login still needs the answer to its own request.
    let started = saml.begin().await;
    let c = saml.claims(None);
    assert_refused(
        &saml,
        &saml.signed(&c),
        Some(&started.relay_state),
        "IdP-initiated login not allowed",
        Some(CLIENT_ID),
    )
    .await;
}

async fn refresh_ends_at_the_maximum_session_lifetime(db: &TestDb) {
    let saml = Saml::start(db, |p| p.options["saml"]["max_session_secs"] = 3600.into()).await;
    let (started, _) = log_in(&saml).await;
    let (tokens, _) = exchange(&saml.rp, started.auth).await;
    let refresh = tokens.refresh_token().expect("a refresh token").secret();

    let refresh_with = |token: String| {
        let app = &saml.app;
        async move {
            post_form(
                app,
                "/token",
                Some((CLIENT_ID, CLIENT_SECRET)),
                &[("grant_type", "refresh_token"), ("refresh_token", &token)],
            )
            .await
        }
    };
    // Within the lifetime, refresh works (SAML has no upstream refresh; the claims stand).
    let (status, _, body) = refresh_with(refresh.clone()).await;
    assert_eq!(status, 200, "{body}");
    let rotated = body["refresh_token"].as_str().unwrap().to_owned();

    // Two hours after the SAML login, it is refused.
    sqlx::query("UPDATE refresh_tokens SET auth_time = auth_time - 7200")
        .execute(saml.app.state.store.pool())
        .await
        .unwrap();
    let (status, _, body) = refresh_with(rotated).await;
    assert_eq!(status, 400);
    assert_eq!(body["error"], "invalid_grant");

    // Within the lifetime, the SSO session answers /authorize at once...
    let (url, ..) = saml.authorization(false);
    let arrived = browse_with(&saml.browser, &saml.app, url.as_str(), REDIRECT)
        .await
        .url();
    assert!(param(&arrived, "code").is_some());
    // ...and past it, the user goes back to the IdP.
    sqlx::query("UPDATE sso_sessions SET auth_time = auth_time - 7200")
        .execute(saml.app.state.store.pool())
        .await
        .unwrap();
    let (url, ..) = saml.authorization(false);
    let at_idp = browse_with(&saml.browser, &saml.app, url.as_str(), SSO_URL)
        .await
        .url();
    assert!(param(&at_idp, "SAMLRequest").is_some());
}

async fn sp_metadata_is_served_and_signed_requests_are_announced(db: &TestDb) {
    let sp_key = KeyPair::generate("portico sp");
    let key_pem = String::from_utf8(sp_key.key_pem()).unwrap();
    let cert_pem = String::from_utf8(sp_key.cert_pem()).unwrap();
    let saml = Saml::start(db, |p| {
        p.options["saml"]["sp_signing_key"] = key_pem.into();
        p.options["saml"]["sp_certificate"] = cert_pem.into();
        p.options["saml"]["name_id_format"] = "email".into();
    })
    .await;
    let res = saml.app.get(&format!("/saml/{PROVIDER}/metadata")).await;
    assert_eq!(res.status().as_u16(), 200);
    assert_eq!(
        res.headers()["content-type"],
        "application/samlmetadata+xml"
    );
    let xml = res.text().await.unwrap();
    let descriptor: samael::metadata::EntityDescriptor = xml.parse().expect("valid SP metadata");
    assert_eq!(
        descriptor.entity_id.as_deref(),
        Some(saml.entity_id().as_str())
    );
    let sp = &descriptor.sp_sso_descriptors.as_ref().unwrap()[0];
    assert_eq!(sp.authn_requests_signed, Some(true));
    let acs = &sp.assertion_consumer_services[0];
    assert_eq!(acs.location, saml.acs());
    assert_eq!(
        acs.binding,
        "urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST"
    );
    assert!(xml.contains(&sp_key.cert_b64()));
    assert!(xml.contains("nameid-format:emailAddress"));

    // The AuthnRequest goes out signed, and the login still completes.
    let started = saml.begin().await;
    assert!(param(&started.idp_url, "Signature").is_some());
    assert!(param(&started.idp_url, "SigAlg").is_some());

    // The SP key is stored sealed, never in clear.
    let sealed: Vec<u8> = sqlx::query_scalar("SELECT saml_sp_key FROM providers WHERE id = $1")
        .bind(PROVIDER)
        .fetch_one(saml.app.state.store.pool())
        .await
        .unwrap();
    assert!(!String::from_utf8_lossy(&sealed).contains("PRIVATE KEY"));
    let settings: String = sqlx::query_scalar("SELECT settings FROM providers WHERE id = $1")
        .bind(PROVIDER)
        .fetch_one(saml.app.state.store.pool())
        .await
        .unwrap();
    assert!(!settings.contains("PRIVATE KEY"));

    // An unknown provider has no metadata.
    assert_eq!(saml.app.get("/saml/nope/metadata").await.status(), 404);

    // A saml provider without IdP metadata, or with both kinds, is refused at load, by name.
    let err = portico::providers::validate_config(&[saml_provider(None, None)]).unwrap_err();
    assert!(
        err.contains("acme") && err.contains("exactly one of"),
        "{err}"
    );
    let both = saml_provider(
        Some(saml_idp::metadata_xml(IDP_ENTITY, &[&saml.idp])),
        Some("https://idp.test/md".into()),
    );
    assert!(portico::providers::validate_config(&[both]).is_err());
}
