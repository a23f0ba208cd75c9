//! Resources declared in portico.toml across two starts on one database: what the file no
//! longer declares is removed (clients, webhook endpoints, providers nobody is linked to) or
//! disabled (a provider users are linked to), its access ends, each removal is audited with
//! actor `config`, what an admin made is never touched, and `portico config diff` prints the
//! same plan without changing anything.

use std::time::Duration;

use openidconnect::OAuth2TokenResponse;
use portico::admin::Caller;
use portico::admin::webhooks::service as webhooks_admin;
use portico::clients::{ClientConfig, NewClient};
use portico::config::Settings;
use portico::crypto::MasterKey;
use portico::providers::repo::{ProviderWrite, SecretChange};
use portico::webhooks::events::{self, EventType};
use portico::webhooks::{ManagedEndpoint, NewEndpoint};
use serde_json::json;

use crate::helpers::{TestApp, TestDb, portico_command, spawn_app_with, try_spawn_app_with};
use crate::oidc_support::*;
use crate::on_both_backends;
use crate::upstream_idp::Upstream;
use crate::webhooks::{Receiver, fast};

on_both_backends!(
    removed_resources_are_pruned_audited_and_admin_ones_kept,
    a_declared_id_an_admin_already_uses_stops_the_start,
);

fn hook(url: &str) -> ManagedEndpoint {
    ManagedEndpoint {
        id: "hook".into(),
        url: url.to_owned(),
        events: vec!["login.succeeded".into()],
        enabled: true,
        description: "declared".into(),
        secret: None,
    }
}

/// The first start's file: providers corp (signed in through) and spare (never used), clients
/// app and spa, endpoint hook.
fn everything(s: &mut Settings, issuer: &str, hook_url: &str) {
    fast(s, &[]);
    s.providers = vec![
        provider("corp", issuer, false),
        provider("spare", issuer, false),
    ];
    s.clients = clients();
    s.webhooks.endpoints = vec![hook(hook_url)];
}

/// The second start's file: client spa renamed and a new client; nothing else.
fn second_toml() -> String {
    format!(
        "[[clients]]\nclient_id = \"{PUBLIC_ID}\"\nname = \"SPA v2\"\ntype = \"public\"\n\
         redirect_uris = [\"{PUBLIC_REDIRECT}\"]\n\n\
         [[clients]]\nclient_id = \"newcomer\"\ntype = \"public\"\n\
         redirect_uris = [\"{PUBLIC_REDIRECT}\"]\n"
    )
}

fn second(s: &mut Settings) {
    fast(s, &[]);
    let file: toml::Table = toml::from_str(&second_toml()).unwrap();
    s.clients = file["clients"].clone().try_into().unwrap();
}

fn admin_client() -> NewClient {
    let config: ClientConfig = toml::from_str(
        r#"
client_id = "made-by-admin"
type = "confidential"
redirect_uris = ["https://admin-app.example/cb"]
"#,
    )
    .unwrap();
    NewClient::from_config(&config).unwrap()
}

fn admin_provider(id: &str) -> ProviderWrite {
    ProviderWrite {
        incremental_scopes: Vec::new(),
        id: portico::upstream::ProviderId::parse(id).unwrap(),
        kind: portico::upstream::ProviderKind::parse("oidc").unwrap(),
        display_name: "Made by an admin".into(),
        enabled: true,
        client_id: "admin-made".into(),
        secret: SecretChange::Set("admin-made-secret".to_owned().into()),
        issuer: Some("https://idp.example".into()),
        scopes: vec!["openid".into()],
        settings: json!({}),
        email_domains: vec![],
        trust_email: false,
    }
}

async fn audit_of(app: &TestApp, action: &str, target: &str) -> Vec<(String, String)> {
    sqlx::query_as("SELECT actor, details FROM audit_log WHERE action = $1 AND target = $2")
        .bind(action)
        .bind(target)
        .fetch_all(app.state.store.pool())
        .await
        .unwrap()
}

async fn count(app: &TestApp, sql: &str) -> i64 {
    sqlx::query_scalar(sql)
        .fetch_one(app.state.store.pool())
        .await
        .unwrap()
}

/// A count read straight from `db`, with no Portico running.
async fn probe(db: &TestDb, sql: &str) -> i64 {
    let url = portico::config::DatabaseUrl::parse(&db.url).unwrap();
    let store = portico::store::Store::connect(&url, 1).await.unwrap();
    let n = sqlx::query_scalar(sql)
        .fetch_one(store.pool())
        .await
        .unwrap();
    store.close().await;
    n
}

/// Stops `app` and waits until nothing of it runs (the next start is the test's subject).
async fn stop(app: TestApp) {
    app.shut_down().await;
}

async fn removed_resources_are_pruned_audited_and_admin_ones_kept(db: &TestDb) {
    let upstream = Upstream::start().await;
    let removed_hook = Receiver::start(vec![]).await;
    let kept_hook = Receiver::start(vec![]).await;
    let key = MasterKey::generate();
    let issuer = upstream.issuer.clone();
    let hook_url = removed_hook.url();
    let app = spawn_app_with(db, key.clone(), |s| everything(s, &issuer, &hook_url)).await;
    // Right after a start, its own file plans nothing more (every field compares equal,
    // sealed secrets included).
    let state = &app.state;
    let plan = portico::declared::diff(&state.store, &state.sealer, &state.settings)
        .await
        .unwrap();
    assert!(plan.changes.is_empty(), "{plan}");

    // Alice signs in through corp to app: tokens, a session, an identity linked to corp.
    let rp = relying_party(&app, CLIENT_ID, Some(CLIENT_SECRET), REDIRECT).await;
    let extra = [("provider", "corp")];
    let tokens = sign_in_with(&app, &rp, REDIRECT, &["offline_access"], &extra).await;
    let refresh = tokens
        .refresh_token()
        .expect("a refresh token")
        .secret()
        .clone();
    let access = tokens.access_token().secret().clone();
    assert_eq!(userinfo_status(&app, &access).await, 200);

    // What admins made: a client, a provider, an endpoint.
    let cli = Caller::cli();
    portico::admin::clients::service::create(&app.state, &cli, &admin_client())
        .await
        .unwrap();
    portico::admin::providers::service::create(&app.state, &cli, &admin_provider("admins-idp"))
        .await
        .unwrap();
    let kept = webhooks_admin::create(
        &app.state,
        &cli,
        NewEndpoint {
            url: kept_hook.url(),
            events: vec!["login.succeeded".into()],
            enabled: true,
            description: "made by an admin".into(),
        },
    )
    .await
    .unwrap()
    .webhook
    .id;
    // Hook got alice's login.succeeded; that is all it may ever get.
    let before = removed_hook
        .wait_for(1, Duration::from_secs(10))
        .await
        .len();
    stop(app).await;

    // `config diff` with the second file lists exactly what the start will change, and
    // changes nothing. (The CLI reads the settings from the environment and a file.)
    {
        let file = db.dir.join("second.toml");
        std::fs::write(&file, second_toml()).unwrap();
        let out = portico_command(db, &key)
            .args(["--config", file.to_str().unwrap(), "config", "diff"])
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let lines: Vec<Vec<&str>> = stdout
            .lines()
            .map(|l| l.split_whitespace().take(3).collect())
            .collect();
        assert_eq!(
            lines,
            [
                ["delete", "webhook", "hook"],
                ["disable", "provider", "corp"],
                ["delete", "provider", "spare"],
                ["update", "client", "spa"],
                ["create", "client", "newcomer"],
                ["delete", "client", "app"],
            ],
            "{stdout}"
        );
        assert!(stdout.contains("1 linked identities are kept"), "{stdout}");
    }
    assert_eq!(
        probe(
            db,
            "SELECT COUNT(*) FROM clients WHERE managed_by_config = 1"
        )
        .await,
        2,
        "the diff changed nothing"
    );
    assert_eq!(
        probe(db, "SELECT COUNT(*) FROM providers WHERE enabled = 1").await,
        3
    );
    assert_eq!(
        probe(db, "SELECT COUNT(*) FROM audit_log WHERE actor = 'config'").await,
        0
    );

    // The second start, with that file.
    let app = spawn_app_with(db, key.clone(), second).await;
    let store = &app.state.store;

    // Client app is gone; its refresh token is revoked and refused, its access token dead.
    assert!(
        portico::clients::repo::find(store, CLIENT_ID)
            .await
            .unwrap()
            .is_none()
    );
    assert!(
        family_of(&app, &refresh)
            .await
            .iter()
            .all(|(_, revoked)| revoked.is_some())
    );
    let (status, _, body) = post_form(
        &app,
        "/token",
        Some((CLIENT_ID, CLIENT_SECRET)),
        &[("grant_type", "refresh_token"), ("refresh_token", &refresh)],
    )
    .await;
    assert_eq!(status, 401, "{body}");
    assert_eq!(body["error"], "invalid_client");
    assert_eq!(userinfo_status(&app, &access).await, 401);
    let spa = portico::clients::repo::find(store, PUBLIC_ID)
        .await
        .unwrap()
        .unwrap();
    assert!(spa.managed_by_config);

    // Provider corp, which alice is linked to, is disabled and still managed; her identity
    // stays. A login through it is refused: the chooser does not offer it and a direct
    // request never reaches the upstream.
    let corp = portico::providers::repo::find(store, "corp")
        .await
        .unwrap()
        .unwrap();
    assert!(!corp.enabled && corp.managed_by_config);
    assert_eq!(
        count(
            &app,
            "SELECT COUNT(*) FROM identities WHERE provider_id = 'corp'"
        )
        .await,
        1
    );
    let spa_rp = relying_party(&app, PUBLIC_ID, None, PUBLIC_REDIRECT).await;
    let url = start_url(&spa_rp, &[("provider", "corp")]);
    let (status, html) = browse(&app, url.as_str(), &upstream.issuer).await.page();
    assert_eq!(status, 400, "{html}");
    assert!(html.contains("not available"), "{html}");
    // Provider spare, which nobody is linked to, is deleted.
    assert!(
        portico::providers::repo::find(store, "spare")
            .await
            .unwrap()
            .is_none()
    );

    // Endpoint hook is deleted and sent nothing more; the admin's endpoint still gets events.
    assert!(app.state.webhooks.get("hook").await.is_err());
    let mut tx = store.pool().begin().await.unwrap();
    events::record(
        &mut tx,
        EventType::LoginSucceeded,
        json!({
            "user_id": "usr_1", "provider": "corp", "client_id": "spa", "email": "a@corp.example",
            "ip": "203.0.113.9", "user_agent": "test", "new_user": false
        }),
    )
    .await
    .unwrap();
    tx.commit().await.unwrap();
    kept_hook.wait_for(1, Duration::from_secs(10)).await;
    assert_eq!(removed_hook.received().len(), before);
    assert_eq!(
        count(
            &app,
            "SELECT COUNT(*) FROM webhook_deliveries WHERE endpoint_id = 'hook'"
        )
        .await,
        0
    );

    // What admins made is untouched.
    let admins = portico::clients::repo::find(store, "made-by-admin")
        .await
        .unwrap()
        .unwrap();
    assert!(!admins.managed_by_config);
    let idp = portico::providers::repo::find(store, "admins-idp")
        .await
        .unwrap()
        .unwrap();
    assert!(idp.enabled && !idp.managed_by_config);
    assert!(app.state.webhooks.get(&kept).await.unwrap().enabled);

    // One audit entry per removal, by `config`.
    for (action, target) in [
        ("client.deleted", "client:app"),
        ("provider.disabled", "provider:corp"),
        ("provider.deleted", "provider:spare"),
        ("webhook.deleted", "webhook:hook"),
    ] {
        let entries = audit_of(&app, action, target).await;
        assert_eq!(entries.len(), 1, "{action} {target}: {entries:?}");
        assert_eq!(entries[0].0, "config");
        assert!(entries[0].1.contains("removed from portico.toml"));
    }
    let corp_entry = &audit_of(&app, "provider.disabled", "provider:corp").await[0].1;
    let details: serde_json::Value = serde_json::from_str(corp_entry).unwrap();
    assert_eq!(details["identities_kept"], 1);
    assert_eq!(details["sessions_ended"], 1);
    stop(app).await;

    // A third start with the same file changes nothing more, and `config diff` says so.
    let app = spawn_app_with(db, key.clone(), second).await;
    assert_eq!(
        count(
            &app,
            "SELECT COUNT(*) FROM audit_log WHERE actor = 'config'"
        )
        .await,
        4
    );
    stop(app).await;
    let out = portico_command(db, &key)
        .args(["--config", db.dir.join("second.toml").to_str().unwrap()])
        .args(["config", "diff"])
        .output()
        .unwrap();
    assert!(out.status.success());
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "no changes: the database matches the configuration\n"
    );

    // Declared again, the disabled provider comes back enabled with alice's identity.
    let app = spawn_app_with(db, key, |s| {
        second(s);
        s.providers = vec![provider("corp", &issuer, false)];
    })
    .await;
    let corp = portico::providers::repo::find(&app.state.store, "corp")
        .await
        .unwrap()
        .unwrap();
    assert!(corp.enabled && corp.managed_by_config);
    assert_eq!(
        count(
            &app,
            "SELECT COUNT(*) FROM identities WHERE provider_id = 'corp'"
        )
        .await,
        1
    );
    stop(app).await;
}

/// `config diff` reads only: with no database it says so and creates none, and a database
/// behind this binary's migrations is refused rather than migrated.
#[tokio::test]
async fn config_diff_creates_and_migrates_nothing() {
    let db = TestDb::new(crate::helpers::Backend::Sqlite).await.unwrap();
    let key = MasterKey::generate();
    let refused = |why: &str| {
        let out = portico_command(&db, &key)
            .args(["config", "diff"])
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success() && stderr.contains(why), "{stderr}");
    };
    refused("there is no database");
    assert!(!db.dir.join("portico.db").exists());

    let url = portico::config::DatabaseUrl::parse(&db.url).unwrap();
    portico::store::Store::connect(&url, 1)
        .await
        .unwrap()
        .close()
        .await;
    refused("portico migrate");
    let store = portico::store::Store::connect(&url, 1).await.unwrap();
    let tables: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM sqlite_master WHERE type = 'table'")
        .fetch_one(store.pool())
        .await
        .unwrap();
    store.close().await;
    assert_eq!(tables, 0, "nothing was migrated");
    db.cleanup().await;
}

async fn a_declared_id_an_admin_already_uses_stops_the_start(db: &TestDb) {
    let key = MasterKey::generate();
    let app = spawn_app_with(db, key.clone(), |_| {}).await;
    portico::admin::clients::service::create(&app.state, &Caller::cli(), &admin_client())
        .await
        .unwrap();
    stop(app).await;

    let mut declared: ClientConfig = toml::from_str(&format!(
        "client_id = \"made-by-admin\"\ntype = \"public\"\nredirect_uris = [\"{PUBLIC_REDIRECT}\"]\n"
    ))
    .unwrap();
    let err = try_spawn_app_with(db, key.clone(), |s| s.clients = vec![declared.clone()])
        .await
        .err()
        .expect("the start is refused");
    let message = format!("{err:#}");
    assert!(
        message.contains("client `made-by-admin`") && message.contains("admin UI"),
        "{message}"
    );
    // `config diff` says the same, as a failure (the next start would fail).
    let file = db.dir.join("clash.toml");
    std::fs::write(
        &file,
        format!("[[clients]]\n{}", toml::to_string(&declared).unwrap()),
    )
    .unwrap();
    let out = portico_command(db, &key)
        .args(["--config", file.to_str().unwrap(), "config", "diff"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(stderr.contains("client `made-by-admin`"), "{stderr}");
    assert!(out.stdout.is_empty());

    // The admin's client is as it was; renamed in the file, the start goes ahead.
    declared.client_id = "from-the-file".into();
    let app = spawn_app_with(db, key, |s| s.clients = vec![declared]).await;
    let admins = portico::clients::repo::find(&app.state.store, "made-by-admin")
        .await
        .unwrap()
        .unwrap();
    assert!(!admins.managed_by_config);
    assert_eq!(
        admins.redirect_uris[0].as_str(),
        "https://admin-app.example/cb"
    );
    stop(app).await;
}
