//! The store API on both back ends.

use portico::config::DatabaseUrl;
use portico::crypto::{MasterKey, Sealer};
use portico::keys::repo::{Retire, SigningKeyRow};
use portico::store::{KeyCheck, Store};
use portico::webhooks::events::{self, EventType};

use crate::helpers::TestDb;
use crate::on_both_backends;

on_both_backends!(
    migrations_are_idempotent_and_make_the_store_ready,
    the_key_check_is_written_once_and_then_enforced,
    signing_key_rotation_is_conditional,
    events_commit_and_roll_back_with_their_transaction,
    concurrent_writers_take_turns_and_none_is_lost,
);

async fn open(db: &TestDb) -> Store {
    let store = Store::connect(&DatabaseUrl::parse(&db.url).unwrap(), 3)
        .await
        .unwrap();
    store.migrate().await.unwrap();
    store
}

fn key_row(kid: &str, created_at: i64) -> SigningKeyRow {
    SigningKeyRow {
        kid: kid.into(),
        alg: "ES256".into(),
        private_key: vec![1, 2, 3],
        public_jwk: "{}".into(),
        created_at,
        retired_at: None,
        publish_until: None,
    }
}

async fn migrations_are_idempotent_and_make_the_store_ready(db: &TestDb) {
    let store = Store::connect(&DatabaseUrl::parse(&db.url).unwrap(), 3)
        .await
        .unwrap();
    assert!(!store.is_ready().await, "not ready before migrations");
    store.migrate().await.unwrap();
    store.migrate().await.unwrap();
    assert!(store.is_ready().await);
    store.close().await;
}

async fn the_key_check_is_written_once_and_then_enforced(db: &TestDb) {
    let store = open(db).await;
    let key = MasterKey::generate();
    let sealer = Sealer::new(&key);
    assert_eq!(
        store
            .check_master_key(&sealer, &key.id_hex())
            .await
            .unwrap(),
        KeyCheck::Initialised
    );
    assert_eq!(
        store
            .check_master_key(&sealer, &key.id_hex())
            .await
            .unwrap(),
        KeyCheck::Matched
    );
    let other = MasterKey::generate();
    let err = store
        .check_master_key(&Sealer::new(&other), &other.id_hex())
        .await
        .unwrap_err();
    assert!(
        err.to_string().contains(&key.id_hex()),
        "names the stored key id: {err}"
    );
    store.close().await;
}

async fn signing_key_rotation_is_conditional(db: &TestDb) {
    let store = open(db).await;
    assert!(
        portico::keys::repo::add(&store, &key_row("a", 100), Retire::NoneIfActiveExists, 0)
            .await
            .unwrap()
    );
    assert!(
        !portico::keys::repo::add(&store, &key_row("b", 101), Retire::NoneIfActiveExists, 0)
            .await
            .unwrap(),
        "an active key exists"
    );
    // Two instances race to rotate key a on schedule: only the first adds a key.
    assert!(
        portico::keys::repo::add(&store, &key_row("c", 200), Retire::Only("a"), 500)
            .await
            .unwrap()
    );
    assert!(
        !portico::keys::repo::add(&store, &key_row("d", 200), Retire::Only("a"), 500)
            .await
            .unwrap()
    );

    let keys = portico::keys::repo::published(&store, 300).await.unwrap();
    let kids: Vec<_> = keys
        .iter()
        .map(|k| (k.kid.as_str(), k.is_active()))
        .collect();
    assert_eq!(kids, vec![("c", true), ("a", false)]);
    // After its publication window the retired key leaves the JWKS, then the table.
    assert_eq!(
        portico::keys::repo::published(&store, 500)
            .await
            .unwrap()
            .len(),
        1
    );
    assert_eq!(
        portico::keys::repo::delete_expired(&store, 499)
            .await
            .unwrap(),
        0
    );
    assert_eq!(
        portico::keys::repo::delete_expired(&store, 500)
            .await
            .unwrap(),
        1
    );

    // An operator's rotation retires every active key of the algorithm.
    assert!(
        portico::keys::repo::add(&store, &key_row("e", 600), Retire::AllActive, 900)
            .await
            .unwrap()
    );
    let active: Vec<_> = portico::keys::repo::published(&store, 600)
        .await
        .unwrap()
        .into_iter()
        .filter(|k| k.is_active())
        .map(|k| k.kid)
        .collect();
    assert_eq!(active, vec!["e".to_owned()]);
    store.close().await;
}

async fn events_commit_and_roll_back_with_their_transaction(db: &TestDb) {
    let store = open(db).await;
    let mut tx = store.pool().begin().await.unwrap();
    let event = events::record(
        &mut tx,
        EventType::UserCreated,
        serde_json::json!({"user_id": "u1"}),
    )
    .await
    .unwrap();
    tx.commit().await.unwrap();
    let body: serde_json::Value = serde_json::from_str(&event.body).unwrap();
    assert_eq!(body["type"], "user.created");
    assert_eq!(body["data"]["user_id"], "u1");
    assert!(body["timestamp"].as_str().unwrap().ends_with('Z'));

    let mut tx = store.pool().begin().await.unwrap();
    events::record(&mut tx, EventType::LoginFailed, serde_json::json!({}))
        .await
        .unwrap();
    tx.rollback().await.unwrap();

    let types: Vec<String> = sqlx::query_scalar("SELECT type FROM events")
        .fetch_all(store.pool())
        .await
        .unwrap();
    assert_eq!(types, vec!["user.created".to_owned()]);
    store.close().await;
}

/// Many writers at once, some holding their transaction across an await, some writing one
/// statement through `write_conn`: every write lands, and no two SQLite transactions overlap.
/// On SQLite a writer waits for the one writer connection while a write transaction is open
/// (it queues in the process, not in SQLite's busy handler).
async fn concurrent_writers_take_turns_and_none_is_lost(db: &TestDb) {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    let store = Store::connect(&DatabaseUrl::parse(&db.url).unwrap(), 8)
        .await
        .unwrap();
    store.migrate().await.unwrap();
    let holding = Arc::new(AtomicUsize::new(0));
    let most = Arc::new(AtomicUsize::new(0));
    let mut tasks = Vec::new();
    for i in 0..40 {
        let (store, holding, most) = (store.clone(), holding.clone(), most.clone());
        tasks.push(tokio::spawn(async move {
            let insert = "INSERT INTO saml_assertion_ids (id, expires_at) VALUES ($1, $2)";
            if i % 4 == 0 {
                let mut conn = store.write_conn().await.unwrap();
                sqlx::query(insert)
                    .bind(format!("w{i}"))
                    .bind(1_i64)
                    .execute(&mut *conn)
                    .await
                    .unwrap();
                return;
            }
            let mut tx = store.begin_write().await.unwrap();
            let now = holding.fetch_add(1, Ordering::SeqCst) + 1;
            most.fetch_max(now, Ordering::SeqCst);
            sqlx::query(insert)
                .bind(format!("t{i}"))
                .bind(1_i64)
                .execute(&mut *tx)
                .await
                .unwrap();
            tokio::time::sleep(std::time::Duration::from_millis(2)).await;
            holding.fetch_sub(1, Ordering::SeqCst);
            tx.commit().await.unwrap();
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let rows: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM saml_assertion_ids")
        .fetch_one(store.pool())
        .await
        .unwrap();
    assert_eq!(rows, 40, "every write landed");
    if store.backend() == portico::store::Backend::Sqlite {
        assert_eq!(
            most.load(Ordering::SeqCst),
            1,
            "one write transaction at a time"
        );
        let open = store.begin_write().await.unwrap();
        let waited =
            tokio::time::timeout(std::time::Duration::from_millis(200), store.write_conn()).await;
        assert!(
            waited.is_err(),
            "a writer queues behind the open transaction"
        );
        open.commit().await.unwrap();
        store
            .write_conn()
            .await
            .expect("and gets the connection after it");
    }
}
