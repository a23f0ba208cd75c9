//! The janitor deletes expired rows in batches and leaves live ones.

use portico::config::DatabaseUrl;
use portico::store::Store;
use portico::store::janitor::JanitorSettings;

use crate::helpers::TestDb;
use crate::on_both_backends;

on_both_backends!(expired_rows_go_and_live_rows_stay);

const NOW: i64 = 1_800_000_000;

/// Runs `sql`; a `$1` in it is bound to a one-byte blob (BLOB and BYTEA literals differ).
async fn exec(store: &Store, sql: &str) {
    let query = sqlx::query(sql);
    let query = if sql.contains("$1") {
        query.bind(vec![0u8])
    } else {
        query
    };
    query
        .execute(store.pool())
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"));
}

async fn ids(store: &Store, table: &str, key: &str) -> Vec<String> {
    let mut ids: Vec<String> = sqlx::query_scalar(&format!("SELECT {key} FROM {table}"))
        .fetch_all(store.pool())
        .await
        .unwrap();
    ids.sort();
    ids
}

async fn expired_rows_go_and_live_rows_stay(db: &TestDb) {
    let store = Store::connect(&DatabaseUrl::parse(&db.url).unwrap(), 3)
        .await
        .unwrap();
    store.migrate().await.unwrap();
    let (past, future) = (NOW - 10, NOW + 600);

    // Three expired and one live row in each expiring table, so a batch size of 2 takes
    // more than one batch.
    for (i, exp) in [past, past - 1, past - 2, future].iter().enumerate() {
        let live = if *exp > NOW { "live" } else { "old" };
        exec(&store, &format!(
            "INSERT INTO pending_authorizations (id, client_id, request, browser_digest, created_at, expires_at) \
             VALUES ('{live}{i}', 'c', '{{}}', $1, 0, {exp})"
        ))
        .await;
        exec(
            &store,
            &format!(
                "INSERT INTO revoked_access_tokens (jti, expires_at) VALUES ('{live}{i}', {exp})"
            ),
        )
        .await;
        exec(&store, &format!(
            "INSERT INTO saml_requests (id, provider, expires_at) VALUES ('{live}{i}', 'p', {exp})"
        ))
        .await;
    }
    // Codes are kept for a grace period after expiry (late replays are still recognised).
    for (id, exp) in [("old", NOW - 90_000), ("grace", NOW - 10), ("live", future)] {
        exec(&store, &format!(
            "INSERT INTO auth_codes (code_digest, client_id, redirect_uri, user_id, identity_id, session_id, scope, auth_time, expires_at) \
             VALUES ('{id}', 'c', 'r', 'u', 'i', 's', 'openid', 0, {exp})"
        ))
        .await;
    }
    exec(
        &store,
        "INSERT INTO users (id, created_at, updated_at) VALUES ('u1', 0, 0)",
    )
    .await;
    for (id, exp) in [("old", past), ("live", future)] {
        exec(&store, &format!(
            "INSERT INTO sso_sessions (id, token_digest, user_id, identity_id, provider_id, auth_time, last_seen_at, expires_at) \
             VALUES ('{id}', '{id}', 'u1', 'i', 'p', 0, 0, {exp})"
        ))
        .await;
        exec(&store, &format!(
            "INSERT INTO refresh_tokens (token_digest, family_id, client_id, user_id, identity_id, scope, auth_time, created_at, expires_at) \
             VALUES ('{id}', 'f', 'c', 'u1', 'i', 'openid', 0, 0, {exp})"
        ))
        .await;
    }
    // Events past retention go with their finished deliveries; one with a pending delivery stays.
    let old = NOW - 31 * 86_400;
    exec(&store, "INSERT INTO webhook_endpoints (id, url, secret, created_at, updated_at) VALUES ('ep', 'https://x', $1, 0, 0)").await;
    for (id, created, status) in [
        ("e-old", old, "succeeded"),
        ("e-pending", old, "pending"),
        ("e-new", NOW, "succeeded"),
    ] {
        exec(&store, &format!(
            "INSERT INTO events (id, type, body, created_at) VALUES ('{id}', 'user.created', '{{}}', {created})"
        ))
        .await;
        exec(&store, &format!(
            "INSERT INTO webhook_deliveries (event_id, endpoint_id, status, next_attempt_at_ms, created_at, created_at_ms) \
             VALUES ('{id}', 'ep', '{status}', 0, {created}, 0)"
        ))
        .await;
    }

    let settings = JanitorSettings {
        batch_size: 2,
        ..JanitorSettings::default()
    };
    let report = store
        .sweep(NOW, &settings, portico::startup::JANITOR_RULES)
        .await
        .unwrap();
    let deleted = |table: &str| {
        report
            .iter()
            .find(|(t, _)| *t == table)
            .map(|(_, n)| *n)
            .unwrap()
    };
    assert_eq!(deleted("pending_authorizations"), 3);
    assert_eq!(deleted("auth_codes"), 1);
    assert_eq!(deleted("events"), 1);

    assert_eq!(
        ids(&store, "pending_authorizations", "id").await,
        vec!["live3"]
    );
    assert_eq!(
        ids(&store, "revoked_access_tokens", "jti").await,
        vec!["live3"]
    );
    assert_eq!(ids(&store, "saml_requests", "id").await, vec!["live3"]);
    assert_eq!(ids(&store, "sso_sessions", "id").await, vec!["live"]);
    assert_eq!(
        ids(&store, "events", "id").await,
        vec!["e-new", "e-pending"]
    );
    let codes: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM auth_codes")
        .fetch_one(store.pool())
        .await
        .unwrap();
    assert_eq!(
        codes, 2,
        "the code in its grace period and the live one stay"
    );
    let tokens: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM refresh_tokens")
        .fetch_one(store.pool())
        .await
        .unwrap();
    assert_eq!(tokens, 1);
    let deliveries: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM webhook_deliveries")
        .fetch_one(store.pool())
        .await
        .unwrap();
    assert_eq!(deliveries, 2, "the old event's delivery went with it");

    // A second pass finds nothing.
    let again = store
        .sweep(NOW, &settings, portico::startup::JANITOR_RULES)
        .await
        .unwrap();
    assert!(again.iter().all(|(_, n)| *n == 0), "{again:?}");
    store.close().await;
}
