//! Admin sign-in under hostile load: attempts counted before hashing, a hashing cap with reused
//! memory, and a per-instance sign-in rate.

use futures_util::future::join_all;

use super::{EMAIL, create_admin, sign_in_form};
use crate::helpers::{TestApp, TestDb, spawn_app_with};
use crate::on_both_backends;
use portico::crypto::MasterKey;

on_both_backends!(concurrent_attempts_on_one_account_are_counted_before_verifying);

/// A client with its sign-in form loaded: (client, csrf token).
async fn with_form(app: &TestApp) -> (reqwest::Client, String) {
    let client = super::client();
    let csrf = sign_in_form(app, &client).await;
    (client, csrf)
}

/// An app whose throttle lets one address fail freely, so that only the instance rate and the
/// hashing cap are in play.
async fn flood_app(db: &TestDb, per_sec: u32, burst: u32) -> TestApp {
    let app = spawn_app_with(db, MasterKey::generate(), |s| {
        s.admin.delay_base_ms = 0;
        s.admin.ip_lockout_failures = 10_000;
        s.admin.sign_in_per_sec = per_sec;
        s.admin.sign_in_burst = burst;
    })
    .await;
    create_admin(&app).await;
    app
}

/// Posts every form at once; the statuses in order.
async fn post_all(app: &TestApp, forms: Vec<(reqwest::Client, String, String)>) -> Vec<u16> {
    join_all(forms.iter().map(|(client, csrf, email)| {
        client
            .post(app.url("/admin/sign-in"))
            .form(&[
                ("csrf", csrf.as_str()),
                ("email", email.as_str()),
                ("password", "wrong wrong wrong"),
            ])
            .send()
    }))
    .await
    .into_iter()
    .map(|res| res.unwrap().status().as_u16())
    .collect()
}

async fn concurrent_attempts_on_one_account_are_counted_before_verifying(db: &TestDb) {
    let app = spawn_app_with(db, MasterKey::generate(), |s| {
        s.admin.delay_base_ms = 60_000;
        s.admin.delay_max_ms = 60_000;
    })
    .await;
    create_admin(&app).await;
    let mut forms = Vec::new();
    for _ in 0..8 {
        let (client, csrf) = with_form(&app).await;
        forms.push((client, csrf, EMAIL.to_owned()));
    }
    // Eight guesses at once: the first is counted (and waits 60 s) before its hash is checked,
    // so the other seven are refused without hashing.
    let statuses = post_all(&app, forms).await;
    assert_eq!(
        statuses.iter().filter(|s| **s == 401).count(),
        1,
        "{statuses:?}"
    );
    assert_eq!(
        statuses.iter().filter(|s| **s == 429).count(),
        7,
        "{statuses:?}"
    );
    app.stop();
}

#[tokio::test]
async fn sign_ins_never_hash_more_at_once_than_the_cap() {
    let db = TestDb::new(crate::helpers::Backend::Sqlite).await.unwrap();
    let app = flood_app(&db, 1000, 1000).await;
    let runs_before = app.state.passwords.runs();
    let mut forms = Vec::new();
    for i in 0..16 {
        let (client, csrf) = with_form(&app).await;
        forms.push((client, csrf, format!("random-{i}@example.com")));
    }
    let statuses = post_all(&app, forms).await;
    assert!(statuses.iter().all(|s| *s == 401), "{statuses:?}");
    let hasher = &app.state.passwords;
    assert_eq!(
        hasher.runs() - runs_before,
        16,
        "each unknown account cost a hash"
    );
    assert!(
        hasher.peak_concurrent() <= hasher.max_concurrent(),
        "{} at once, cap {}",
        hasher.peak_concurrent(),
        hasher.max_concurrent()
    );
    // Working memory is pooled: one 19 MiB buffer per permit at most, however many ran.
    assert!(
        hasher.buffers() <= hasher.max_concurrent(),
        "{}",
        hasher.buffers()
    );
    app.stop();
    db.cleanup().await;
}

#[tokio::test]
async fn the_instance_sign_in_rate_answers_429_without_hashing() {
    let db = TestDb::new(crate::helpers::Backend::Sqlite).await.unwrap();
    let app = flood_app(&db, 1, 2).await;
    let runs_before = app.state.passwords.runs();
    let mut statuses = Vec::new();
    for i in 0..5 {
        let (client, csrf) = with_form(&app).await;
        let res = client
            .post(app.url("/admin/sign-in"))
            .form(&[
                ("csrf", csrf.as_str()),
                ("email", &format!("flood-{i}@example.com")),
                ("password", "guess"),
            ])
            .send()
            .await
            .unwrap();
        let status = res.status().as_u16();
        if status == 429 {
            assert!(res.text().await.unwrap().contains("try again in"));
        }
        statuses.push(status);
    }
    assert_eq!(statuses, [401, 401, 429, 429, 429]);
    assert_eq!(
        app.state.passwords.runs() - runs_before,
        2,
        "no hash past the limit"
    );
    app.stop();
    db.cleanup().await;
}
