//! Scale-out: two or three instances on one database (PostgreSQL; and two on one SQLite file),
//! sharing one issuer as they would behind a load balancer, with the requests of each flow
//! spread across them. Every piece of flow state (pending requests, codes, refresh families,
//! the token vault's lease, SAML request and assertion IDs, the admin sign-in throttle, signing
//! keys) lives in the database, so each rule holds across instances as it does on one; the
//! request rate limits are the exception, per instance by design (docs/ARCHITECTURE.md,
//! "Several instances").

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use futures_util::future::join_all;
use openidconnect::OAuth2TokenResponse;
use portico::config::{Issuer, Settings};
use portico::crypto::MasterKey;
use reqwest::Method;
use serde_json::Value;

use crate::admin::{
    EMAIL, PASSWORD, api_token, call, create_admin, json_of, page, sign_in, sign_in_form, signed_in,
};
use crate::broker::broker;
use crate::helpers::{Backend, TestApp, TestDb, spawn_app_with};
use crate::oidc::refresh_form as refresh;
use crate::oidc_support::*;
use crate::on_both_backends;
use crate::saml_idp::{self, SSO_URL};
use crate::saml_support::*;
use crate::trust::browser;
use crate::upstream_idp::Upstream;

on_both_backends!(
    a_login_spread_over_instances_holds,
    one_code_redeemed_at_two_instances_at_once_succeeds_once,
    many_codes_redeemed_at_once_on_small_pools_all_succeed,
    concurrent_refreshes_across_instances_make_one_successor,
    a_token_rotated_at_one_instance_and_replayed_at_another_revokes_the_family,
    broker_calls_across_instances_make_one_upstream_refresh,
    a_saml_response_accepted_at_one_instance_is_refused_at_another,
    admin_sessions_and_lockouts_are_shared_and_the_sign_in_rate_is_per_instance,
    request_rate_limits_are_per_instance,
    a_key_rotation_at_one_instance_reaches_every_instance,
);

const BROKER: &str = "broker:read-token";

/// Instances on one database with one master key and one issuer (the first one's address):
/// what a load balancer in front of them would present. Each is still reached at its own port.
struct Cluster {
    apps: Vec<TestApp>,
}

impl Cluster {
    /// Three instances on PostgreSQL, two on SQLite (one file, one writer at a time).
    async fn start(db: &TestDb, customize: impl Fn(&mut Settings)) -> Self {
        let size = match db.backend {
            Backend::Postgres => 3,
            Backend::Sqlite => 2,
        };
        let key = MasterKey::generate();
        let first = spawn_app_with(db, key.clone(), &customize).await;
        let issuer = Issuer::parse(&first.address).unwrap();
        let mut apps = vec![first];
        for _ in 1..size {
            let issuer = issuer.clone();
            let app = spawn_app_with(db, key.clone(), |s| {
                customize(s);
                s.server.issuer = issuer;
            })
            .await;
            apps.push(app);
        }
        Self { apps }
    }

    /// Instances with the upstream as provider `corp`, the test clients, and `broker:read-token`
    /// for the confidential one.
    async fn portico(db: &TestDb, upstream: &Upstream, customize: impl Fn(&mut Settings)) -> Self {
        Self::start(db, |s| {
            s.providers = vec![provider("corp", &upstream.issuer, false)];
            s.clients = clients();
            s.clients[0]
                .scopes
                .as_mut()
                .expect("the test client lists its scopes")
                .push(BROKER.into());
            customize(s);
        })
        .await
    }

    fn len(&self) -> usize {
        self.apps.len()
    }

    /// Instance `i`, round robin.
    fn at(&self, i: usize) -> &TestApp {
        &self.apps[i % self.apps.len()]
    }

    fn issuer(&self) -> &str {
        &self.apps[0].address
    }

    /// `url` at instance `i`, when it is one of Portico's (under the shared issuer).
    fn route(&self, url: &str, i: usize) -> Option<String> {
        match url.strip_prefix(self.issuer()) {
            Some(rest) if rest.is_empty() || rest.starts_with(['/', '?']) => {
                Some(format!("{}{rest}", self.at(i).address))
            }
            _ => None,
        }
    }

    /// As `browse_with`, each request to Portico going to the next instance in turn; where the
    /// browser arrived, and how many requests Portico answered.
    async fn browse(&self, browser: &reqwest::Client, start: &str, stop: &str) -> (Arrival, usize) {
        let portico_hops = std::cell::Cell::new(0);
        let arrival = browse_routed(browser, self.issuer(), start, stop, |url, _| {
            match self.route(url, portico_hops.get()) {
                Some(routed) => {
                    portico_hops.set(portico_hops.get() + 1);
                    routed
                }
                None => url.to_owned(),
            }
        })
        .await;
        (arrival, portico_hops.get())
    }

    /// A login with `offline_access` through the cluster, its code redeemed: the refresh token.
    async fn refresh_token(&self) -> String {
        let rp = relying_party(self.at(0), CLIENT_ID, Some(CLIENT_SECRET), REDIRECT).await;
        let auth = self
            .authorize(&rp, &browser(), &["offline_access"], &[])
            .await;
        let (tokens, _) = exchange(&rp, auth).await;
        tokens.refresh_token().unwrap().secret().clone()
    }

    /// A login with its hops spread over the instances: the code, nonce and verifier.
    async fn authorize(
        &self,
        rp: &Rp,
        browser: &reqwest::Client,
        scopes: &[&str],
        extra: &[(&str, &str)],
    ) -> Authorized {
        let (url, csrf, nonce, verifier) = start(rp, scopes, extra);
        let (arrived, portico_hops) = self.browse(browser, url.as_str(), REDIRECT).await;
        let arrived = arrived.url();
        // A login through the upstream (not answered by the SSO session at once) is spread.
        if portico_hops > 1 {
            assert!(
                portico_hops >= self.len(),
                "{portico_hops} requests to Portico"
            );
        }
        assert_eq!(
            param(&arrived, "state").as_deref(),
            Some(csrf.secret().as_str())
        );
        assert_eq!(param(&arrived, "iss").as_deref(), Some(self.issuer()));
        let code = param(&arrived, "code").unwrap_or_else(|| panic!("no code in {arrived}"));
        Authorized {
            code,
            nonce,
            verifier,
        }
    }

    fn stop(&self) {
        for app in &self.apps {
            app.stop();
        }
    }
}

/// Introspects `token` at `app` as the client it was issued to: `active`.
async fn introspect(app: &TestApp, token: &str) -> bool {
    let (status, _, body) = post_form(
        app,
        "/introspect",
        Some((CLIENT_ID, CLIENT_SECRET)),
        &[("token", token)],
    )
    .await;
    assert_eq!(status, 200, "{body}");
    body["active"].as_bool().unwrap()
}

/// Polls `check` every 50 ms for up to `within`; whether it came true.
async fn eventually<F: std::future::Future<Output = bool>>(
    within: Duration,
    mut check: impl FnMut() -> F,
) -> bool {
    let started = Instant::now();
    loop {
        if check().await {
            return true;
        }
        if started.elapsed() >= within {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Every stateful step of an OIDC login on a different instance from the one before: the
/// pending request and the flow cookie (authorize at one, callback at the next), the code, the
/// SSO session (a silent `prompt=none` at another), the refresh family, revocation.
async fn a_login_spread_over_instances_holds(db: &TestDb) {
    let upstream = Upstream::start().await;
    let cluster = Cluster::portico(db, &upstream, |_| {}).await;
    let rp = relying_party(cluster.at(0), CLIENT_ID, Some(CLIENT_SECRET), REDIRECT).await;
    let browser = browser();
    let auth = cluster
        .authorize(&rp, &browser, &["email", "offline_access"], &[])
        .await;
    let (status, tokens) = redeem(cluster.at(1), &auth).await;
    assert_eq!(status, 200, "{tokens}");
    let access = tokens["access_token"].as_str().unwrap();
    let id_claims = jwt_claims(tokens["id_token"].as_str().unwrap());
    assert_eq!(id_claims["iss"], cluster.issuer());
    assert_eq!(id_claims["nonce"], auth.nonce.secret().as_str());
    for i in 0..cluster.len() {
        assert_eq!(userinfo_status(cluster.at(i), access).await, 200);
    }

    // The SSO session made at one instance answers a silent request at the others.
    let issued = upstream.issued_tokens().len();
    let silent = cluster
        .authorize(&rp, &browser, &["email"], &[("prompt", "none")])
        .await;
    assert_eq!(upstream.issued_tokens().len(), issued, "no upstream login");
    let (status, body) = redeem(cluster.at(2), &silent).await;
    assert_eq!(status, 200, "{body}");

    // The refresh family moves between instances; a revocation at one holds at every other.
    let (status, body) = refresh(cluster.at(2), tokens["refresh_token"].as_str().unwrap()).await;
    assert_eq!(status, 200, "{body}");
    let next = body["refresh_token"].as_str().unwrap().to_owned();
    let (status, _, _) = post_form(
        cluster.at(0),
        "/revoke",
        Some((CLIENT_ID, CLIENT_SECRET)),
        &[("token", &next), ("token_type_hint", "refresh_token")],
    )
    .await;
    assert_eq!(status, 200);
    let (status, body) = refresh(cluster.at(1), &next).await;
    assert_invalid_grant(status, &body);
    cluster.stop();
}

/// A code presented at two instances at the same moment is redeemed once: the database's
/// conditional UPDATE decides. The loser's presentation is a replay, which revokes what the
/// winner got (RFC 6749 4.1.2) whichever of the two finished first.
async fn one_code_redeemed_at_two_instances_at_once_succeeds_once(db: &TestDb) {
    let upstream = Upstream::start().await;
    let cluster = Cluster::portico(db, &upstream, |_| {}).await;
    let rp = relying_party(cluster.at(0), CLIENT_ID, Some(CLIENT_SECRET), REDIRECT).await;
    let browser = browser();
    for round in 0..3 {
        let auth = cluster
            .authorize(&rp, &browser, &["offline_access"], &[])
            .await;
        let (a, b) = tokio::join!(
            redeem(cluster.at(round), &auth),
            redeem(cluster.at(round + 1), &auth)
        );
        let (won, lost) = match (a.0, b.0) {
            (200, 400) => (a.1, b.1),
            (400, 200) => (b.1, a.1),
            _ => panic!("round {round}: not exactly one success: {a:?} {b:?}"),
        };
        assert_eq!(lost["error"], "invalid_grant", "{lost}");
        let access = won["access_token"].as_str().unwrap();
        let refresh_token = won["refresh_token"].as_str().unwrap();
        for i in 0..cluster.len() {
            assert_eq!(
                userinfo_status(cluster.at(i), access).await,
                401,
                "round {round}: the winner's access token outlived the replay"
            );
        }
        let (status, body) = refresh(cluster.at(round + 2), refresh_token).await;
        assert_eq!(
            (status, body["error"].as_str()),
            (400, Some("invalid_grant")),
            "round {round}: the winner's refresh token outlived the replay: {body}"
        );
    }
    cluster.stop();
}

/// A redemption holds one connection for its transaction and takes no second one: eight at
/// once on pools of two connections per instance all succeed (waiting for a second connection
/// while holding the first would starve the pool until its acquire timeout).
async fn many_codes_redeemed_at_once_on_small_pools_all_succeed(db: &TestDb) {
    let upstream = Upstream::start().await;
    let cluster = Cluster::portico(db, &upstream, |s| s.database.max_connections = 2).await;
    let rp = relying_party(cluster.at(0), CLIENT_ID, Some(CLIENT_SECRET), REDIRECT).await;
    let browser = browser();
    let mut codes = Vec::new();
    for _ in 0..8 {
        codes.push(
            cluster
                .authorize(&rp, &browser, &["offline_access"], &[])
                .await,
        );
    }
    let answers = join_all(
        codes
            .iter()
            .enumerate()
            .map(|(i, auth)| redeem(cluster.at(i), auth)),
    )
    .await;
    for (status, body) in &answers {
        assert_eq!(*status, 200, "{body}");
        assert!(body["refresh_token"].is_string(), "{body}");
    }
    cluster.stop();
}

/// Ten refreshes of one token at once, spread over the instances: one successor, given to
/// all of them (the grace-window rule of `grants::refresh`), and no reuse detected.
async fn concurrent_refreshes_across_instances_make_one_successor(db: &TestDb) {
    let upstream = Upstream::start().await;
    let cluster = Cluster::portico(db, &upstream, |_| {}).await;
    let first = cluster.refresh_token().await;

    let answers = join_all((0..10).map(|i| refresh(cluster.at(i), &first))).await;
    let successors: BTreeSet<String> = answers
        .iter()
        .map(|(status, body)| {
            assert_eq!(*status, 200, "{body}");
            body["refresh_token"].as_str().unwrap().to_owned()
        })
        .collect();
    assert_eq!(successors.len(), 1, "the chain forked: {successors:?}");
    let successor = successors.into_iter().next().unwrap();
    assert_eq!(family_of(cluster.at(0), &first).await.len(), 2);
    assert!(
        events(cluster.at(0), "token.reuse_detected")
            .await
            .is_empty()
    );
    // Every instance accepts the one successor's access tokens and the successor itself.
    for (i, (_, body)) in answers.iter().enumerate() {
        let access = body["access_token"].as_str().unwrap();
        assert_eq!(userinfo_status(cluster.at(i + 1), access).await, 200);
    }
    let (status, body) = refresh(cluster.at(1), &successor).await;
    assert_eq!(status, 200, "{body}");
    assert_ne!(body["refresh_token"], successor.as_str());
    cluster.stop();
}

/// Reuse detection does not depend on where the token was rotated: rotated at one instance,
/// presented at another after the grace window, it revokes the family everywhere.
async fn a_token_rotated_at_one_instance_and_replayed_at_another_revokes_the_family(db: &TestDb) {
    let upstream = Upstream::start().await;
    let cluster = Cluster::portico(db, &upstream, |_| {}).await;
    let first = cluster.refresh_token().await;
    let (status, body) = refresh(cluster.at(0), &first).await;
    assert_eq!(status, 200, "{body}");
    let second = body["refresh_token"].as_str().unwrap().to_owned();

    // An hour later, far past the grace window.
    sqlx::query(
        "UPDATE refresh_tokens SET rotated_at = rotated_at - 3600 WHERE rotated_at IS NOT NULL",
    )
    .execute(cluster.at(0).state.store.pool())
    .await
    .unwrap();
    let (status, body) = refresh(cluster.at(1), &first).await;
    assert_invalid_grant(status, &body);
    assert_eq!(events(cluster.at(0), "token.reuse_detected").await.len(), 1);
    let family = family_of(cluster.at(0), &first).await;
    assert!(
        family.iter().all(|(_, revoked)| revoked.is_some()),
        "a member of the family survived: {family:?}"
    );
    for i in 0..cluster.len() {
        let (status, _) = refresh(cluster.at(i), &second).await;
        assert_eq!(status, 400, "the successor still refreshes at instance {i}");
    }
    cluster.stop();
}

/// The token vault's lease is a row in the database: ten broker calls spread over the
/// instances, with the stored upstream access token expired, make one upstream refresh.
async fn broker_calls_across_instances_make_one_upstream_refresh(db: &TestDb) {
    let upstream = Upstream::start().await;
    let cluster = Cluster::portico(db, &upstream, |_| {}).await;
    // The login's upstream access token expires as it is issued (`expires_in: 0`).
    upstream.set_expires_in(0);
    let rp = relying_party(cluster.at(0), CLIENT_ID, Some(CLIENT_SECRET), REDIRECT).await;
    let auth = cluster.authorize(&rp, &browser(), &[BROKER], &[]).await;
    let token = exchange(&rp, auth).await.0.access_token().secret().clone();
    upstream.set_expires_in(3600);
    // A slow provider holds the ten together.
    upstream.set_refresh_delay_ms(300);
    let answers = join_all((0..10).map(|i| broker(cluster.at(i), &token))).await;
    assert_eq!(
        upstream.refresh_calls(),
        1,
        "one upstream refresh for ten calls on {} instances",
        cluster.len()
    );
    let first = &answers[0].1["access_token"];
    assert!(first.is_string(), "{answers:?}");
    for (status, body) in &answers {
        assert_eq!(*status, 200, "{body}");
        assert_eq!(&body["access_token"], first);
    }
    // Fresh now: served from the vault at every instance without asking upstream.
    for i in 0..cluster.len() {
        let (status, body) = broker(cluster.at(i), &token).await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(&body["access_token"], first);
    }
    assert_eq!(upstream.refresh_calls(), 1);
    cluster.stop();
}

/// A SAML instance beside `saml.app`, with the same provider, clients, master key and issuer.
async fn saml_peer(db: &TestDb, saml: &Saml) -> TestApp {
    let provider = saml_provider(Some(saml_idp::metadata_xml(IDP_ENTITY, &[&saml.idp])), None);
    let issuer = Issuer::parse(&saml.app.address).unwrap();
    spawn_app_with(db, saml.app.master_key.clone(), move |s| {
        s.providers = vec![provider];
        s.clients = clients();
        s.server.issuer = issuer;
    })
    .await
}

/// Posts a Response to `app`'s ACS as the IdP's form would: (status, body).
async fn post_acs_at(app: &TestApp, saml_response: &str, relay_state: &str) -> (u16, String) {
    let res = rp_http()
        .post(app.url(&format!("/saml/{PROVIDER}/acs")))
        .form(&[("SAMLResponse", saml_response), ("RelayState", relay_state)])
        .send()
        .await
        .unwrap();
    (res.status().as_u16(), res.text().await.unwrap())
}

/// The replay cache and the outstanding AuthnRequests are rows in the database: a Response
/// accepted at one instance is refused at another, into its own login or a fresh one, and
/// one Response posted to two instances at once is accepted once.
async fn a_saml_response_accepted_at_one_instance_is_refused_at_another(db: &TestDb) {
    let saml = Saml::start(db, |_| {}).await;
    let peer = saml_peer(db, &saml).await;
    let (started, posted) = log_in(&saml).await;
    assert!(started.idp_url.as_str().starts_with(SSO_URL));
    let (status, page) = post_acs_at(&peer, &posted, &started.relay_state).await;
    assert_eq!(status, 400, "{page}");
    assert!(page.contains("assertion replayed"), "{page}");
    let next = saml.begin().await;
    let (status, page) = post_acs_at(&peer, &posted, &next.relay_state).await;
    assert_eq!(status, 400, "{page}");
    assert!(page.contains("assertion replayed"), "{page}");
    let failed = events(&saml.app, "login.failed").await;
    assert_eq!(
        failed
            .iter()
            .filter(|e| e["reason"] == "assertion replayed")
            .count(),
        2,
        "{failed:?}"
    );

    // A fresh login begun at one instance, its Response posted at both at once: accepted once.
    let third = saml.begin().await;
    let fresh = saml.signed(&saml.claims(Some(&third.request_id)));
    let (a, b) = tokio::join!(
        post_acs_at(&saml.app, &fresh, &third.relay_state),
        post_acs_at(&peer, &fresh, &third.relay_state)
    );
    let mut statuses = [a.0, b.0];
    statuses.sort();
    assert_eq!(statuses, [303, 400], "{a:?} {b:?}");
    peer.stop();
    saml.app.stop();
}

/// Admin sessions and the sign-in throttle's counts are rows in the database, so a session
/// works at every instance and failures spread over instances add up to one lockout; the
/// sign-in rate in front of it is each instance's own.
async fn admin_sessions_and_lockouts_are_shared_and_the_sign_in_rate_is_per_instance(db: &TestDb) {
    let cluster = Cluster::start(db, |s| {
        s.admin.delay_base_ms = 0;
        s.admin.account_lockout_failures = 3;
        s.admin.ip_lockout_failures = 10_000;
        s.admin.sign_in_per_sec = 1;
        s.admin.sign_in_burst = 6;
    })
    .await;
    create_admin(cluster.at(0)).await;
    // An admin session opened at one instance is one at every other.
    let admin = signed_in(cluster.at(0)).await;
    for i in 1..cluster.len() {
        page(cluster.at(i), &admin, "/admin").await;
    }
    for (i, wrong) in ["wrong one", "wrong two"].iter().enumerate() {
        let res = sign_in(cluster.at(i), &browser(), EMAIL, wrong).await;
        assert_eq!(res.status(), 401, "failure {} at instance {i}", i + 1);
    }
    // The third failure, at yet another instance, reaches the lockout.
    let res = sign_in(cluster.at(2), &browser(), EMAIL, "wrong three").await;
    assert_eq!(res.status(), 429);
    assert!(res.text().await.unwrap().contains("locked"));
    for i in 0..cluster.len() {
        let res = sign_in(cluster.at(i), &browser(), EMAIL, PASSWORD).await;
        assert_eq!(res.status(), 429, "instance {i} lets the locked account in");
        assert!(res.text().await.unwrap().contains("locked"));
    }

    // The instance rate: twelve attempts at once (each on its own account, so the throttle
    // lets them through) overrun the last instance's bucket, while the first still answers.
    let last = cluster.at(cluster.len() - 1);
    let mut forms = Vec::new();
    for n in 0..12 {
        let browser = browser();
        let csrf = sign_in_form(last, &browser).await;
        forms.push((browser, csrf, format!("nobody{n}@example.com")));
    }
    let answers = join_all(forms.iter().map(|(browser, csrf, email)| async move {
        let res = browser
            .post(last.url("/admin/sign-in"))
            .form(&[
                ("csrf", csrf.as_str()),
                ("email", email.as_str()),
                ("password", "guess"),
            ])
            .send()
            .await
            .unwrap();
        (res.status().as_u16(), res.text().await.unwrap())
    }))
    .await;
    let limited: Vec<&String> = answers
        .iter()
        .filter(|(status, _)| *status == 429)
        .map(|(_, page)| page)
        .collect();
    assert!(
        !limited.is_empty(),
        "the instance's sign-in rate never applied"
    );
    assert!(limited.iter().all(|page| page.contains("try again")));
    assert!(
        answers
            .iter()
            .all(|(status, _)| [401, 429].contains(status))
    );
    let res = sign_in(cluster.at(0), &browser(), "somebody@example.com", "guess").await;
    assert_eq!(res.status(), 401, "another instance's bucket is its own");
    cluster.stop();
}

/// Whether a `/token` request from this address is refused by the per-IP rate limit.
async fn token_limited(app: &TestApp) -> bool {
    let (status, _, _) = post_form(
        app,
        "/token",
        Some(("nobody", "nothing")),
        &[("grant_type", "client_credentials")],
    )
    .await;
    status == 429
}

/// The request rate limits (`[oidc.rate_limit]`) are buckets in each instance's memory: an
/// address over its limit at one instance is still served by another.
async fn request_rate_limits_are_per_instance(db: &TestDb) {
    let cluster = Cluster::start(db, |s| {
        s.oidc.rate_limit.per_ip_per_sec = 1;
        s.oidc.rate_limit.per_ip_burst = 2;
    })
    .await;
    // Ten requests at once from one address: over the first instance's burst of two.
    let first = cluster.at(0);
    let limited = join_all((0..10).map(|_| token_limited(first))).await;
    let limited = limited.contains(&true);
    assert!(limited, "the per-IP limit never applied");
    for i in 1..cluster.len() {
        assert!(
            !token_limited(cluster.at(i)).await,
            "instance {i} shares the first instance's bucket"
        );
    }
    cluster.stop();
}

/// The `kid`s of an instance's JWKS.
async fn published(app: &TestApp) -> BTreeSet<String> {
    let res = app.get("/jwks.json").await;
    assert_eq!(res.status(), 200);
    let doc: Value = res.json().await.unwrap();
    kids(&doc["keys"])
}

/// The `kid`s of a JSON array of keys.
fn kids(keys: &Value) -> BTreeSet<String> {
    keys.as_array()
        .unwrap()
        .iter()
        .map(|k| k["kid"].as_str().unwrap().to_owned())
        .collect()
}

fn kid_of(jwt: &str) -> String {
    jwt_header(jwt)["kid"].as_str().unwrap().to_owned()
}

/// A rotation through the admin API at one instance: tokens it signs right after verify at
/// every other at once (an unknown `kid` makes them re-read the keys), and within
/// `keys.refresh_secs` (1 s in tests) the others publish the new keys and sign with them.
async fn a_key_rotation_at_one_instance_reaches_every_instance(db: &TestDb) {
    let upstream = Upstream::start().await;
    let cluster = Cluster::portico(db, &upstream, |_| {}).await;
    let before = published(cluster.at(0)).await;
    for i in 1..cluster.len() {
        assert_eq!(
            published(cluster.at(i)).await,
            before,
            "instances share keys"
        );
    }
    let rp = relying_party(cluster.at(0), CLIENT_ID, Some(CLIENT_SECRET), REDIRECT).await;
    let auth = cluster
        .authorize(&rp, &browser(), &["offline_access"], &[])
        .await;
    let (status, tokens) = redeem(cluster.at(0), &auth).await;
    assert_eq!(status, 200, "{tokens}");
    let old_access = tokens["access_token"].as_str().unwrap().to_owned();

    let admin = api_token(cluster.at(0), "rotation").await;
    let res = call(
        cluster.at(0),
        Method::POST,
        Some(&admin),
        "/keys/rotate",
        None,
    )
    .await;
    let rotated = json_of(res, 200).await;
    let new_kids = kids(&rotated["created"]);
    assert_eq!(new_kids.len(), 3);
    assert!(new_kids.is_disjoint(&before));

    // Signed by the rotating instance with a new key, at once accepted by every other.
    let (status, body) = refresh(cluster.at(0), tokens["refresh_token"].as_str().unwrap()).await;
    assert_eq!(status, 200, "{body}");
    let new_access = body["access_token"].as_str().unwrap().to_owned();
    assert!(
        new_kids.contains(&kid_of(&new_access)),
        "signed with an old key"
    );
    for i in 1..cluster.len() {
        assert_eq!(userinfo_status(cluster.at(i), &new_access).await, 200);
        assert!(introspect(cluster.at(i), &new_access).await);
    }
    let refresh_token = body["refresh_token"].as_str().unwrap().to_owned();

    // Within the refresh period the others publish the new keys, and sign with them.
    for i in 1..cluster.len() {
        let app = cluster.at(i);
        let seen = eventually(Duration::from_secs(10), || async {
            new_kids.is_subset(&published(app).await)
        })
        .await;
        assert!(seen, "instance {i} does not publish the new keys");
        assert!(before.is_subset(&published(app).await), "old keys stay");
    }
    let (status, body) = refresh(cluster.at(1), &refresh_token).await;
    assert_eq!(status, 200, "{body}");
    let from_peer = body["access_token"].as_str().unwrap();
    assert!(
        new_kids.contains(&kid_of(from_peer)),
        "the peer signs with an old key"
    );
    // Tokens signed before the rotation still verify everywhere.
    for i in 0..cluster.len() {
        assert_eq!(userinfo_status(cluster.at(i), from_peer).await, 200);
        assert_eq!(userinfo_status(cluster.at(i), &old_access).await, 200);
    }
    cluster.stop();
}
