use portico::admin::webhooks::service as webhooks_admin;
use portico::crypto::{MasterKey, SealTarget, Sealer};
use portico::store::SEALED_COLUMNS;
use sqlx::Row;

use crate::helpers::{TestDb, portico_command, spawn_app_with, try_spawn_app_with};
use crate::on_both_backends;

on_both_backends!(
    a_wrong_master_key_is_refused_at_start,
    rotate_master_reseals_every_secret,
    rotate_master_changes_nothing_when_it_fails,
);

async fn a_wrong_master_key_is_refused_at_start(db: &TestDb) {
    let app = spawn_app_with(db, MasterKey::generate(), |_| {}).await;
    app.stop();
    let err = try_spawn_app_with(db, MasterKey::generate(), |_| {})
        .await
        .err()
        .expect("a wrong key must not start");
    let message = format!("{err:#}");
    assert!(message.contains("master key"), "{message}");
    assert!(message.contains("PORTICO_MASTER_KEY"), "{message}");

    // The binary says the same on one line and exits non-zero.
    let out = portico_command(db, &MasterKey::generate())
        .args(["keys", "rotate"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8(out.stderr).unwrap();
    let last = stderr.lines().last().unwrap_or_default();
    assert!(
        last.starts_with("portico: ") && last.contains("master key"),
        "{stderr}"
    );
}

/// Opens every sealed value in the database with `sealer`; returns (opened, refused).
async fn open_all(app_store: &portico::store::Store, sealer: &Sealer) -> (usize, usize) {
    let (mut ok, mut bad) = (0, 0);
    for col in SEALED_COLUMNS {
        let rows = sqlx::query(&format!(
            "SELECT {id}, {c} FROM {t} WHERE {c} IS NOT NULL",
            id = col.id_column,
            c = col.column,
            t = col.table
        ))
        .fetch_all(app_store.pool())
        .await
        .unwrap();
        for row in rows {
            let id: String = row.get(0);
            let value: Vec<u8> = row.get(1);
            match sealer.open(&value, SealTarget::new(col.table, col.column, &id)) {
                Ok(_) => ok += 1,
                Err(_) => bad += 1,
            }
        }
    }
    (ok, bad)
}

async fn rotate_master_reseals_every_secret(db: &TestDb) {
    let old = MasterKey::generate();
    let app = spawn_app_with(db, old.clone(), |s| {
        s.webhooks.allow_private_targets = true;
    })
    .await;
    // A webhook endpoint whose secret was rotated holds two sealed secrets.
    let new = portico::webhooks::NewEndpoint {
        url: "http://127.0.0.1:9/hook".into(),
        events: vec!["login.succeeded".into()],
        enabled: false,
        description: String::new(),
    };
    let cli = portico::admin::Caller::cli();
    let id = webhooks_admin::create(&app.state, &cli, new)
        .await
        .unwrap()
        .webhook
        .id;
    webhooks_admin::rotate_secret(&app.state, &cli, &id)
        .await
        .unwrap();
    let (before, _) = open_all(&app.state.store, &Sealer::new(&old)).await;
    assert!(
        before >= 6,
        "key check, three signing keys and two webhook secrets are sealed"
    );
    app.shut_down().await;
    let store = db.store().await;

    let new = MasterKey::generate();
    let key_file = db.dir.join("new.key");
    new.write_new_file(&key_file).unwrap();
    let out = portico_command(db, &old)
        .args(["secrets", "rotate-master", "--new-key-file"])
        .arg(&key_file)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    assert_eq!(open_all(&store, &Sealer::new(&new)).await, (before, 0));
    assert_eq!(open_all(&store, &Sealer::new(&old)).await, (0, before));

    // Portico starts with the new key and signs with the keys it re-sealed; the old key is refused.
    let app = spawn_app_with(db, new, |_| {}).await;
    assert_eq!(app.get("/jwks.json").await.status(), 200);
    app.stop();
    assert!(try_spawn_app_with(db, old, |_| {}).await.is_err());
}

async fn rotate_master_changes_nothing_when_it_fails(db: &TestDb) {
    let old = MasterKey::generate();
    let app = spawn_app_with(db, old.clone(), |_| {}).await;
    app.shut_down().await;
    let store = db.store().await;
    // A sealed value that does not open (sealed for another row) makes the rotation fail part-way.
    let sealer = Sealer::new(&old);
    let misplaced = sealer.seal(
        b"x",
        SealTarget::new("signing_keys", "private_key", "elsewhere"),
    );
    sqlx::query(
        "INSERT INTO signing_keys (kid, alg, private_key, public_jwk, created_at, retired_at, publish_until) \
         VALUES ('zzz-broken', 'ES256', $1, '{}', 0, 0, 0)",
    )
    .bind(misplaced)
    .execute(store.pool())
    .await
    .unwrap();
    let (before, broken) = open_all(&store, &sealer).await;
    assert_eq!(broken, 1);

    let err = store
        .rotate_master_key(&sealer, &Sealer::new(&MasterKey::generate()))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("authentication"), "{err}");
    assert_eq!(
        open_all(&store, &sealer).await,
        (before, 1),
        "nothing was re-sealed"
    );
}
