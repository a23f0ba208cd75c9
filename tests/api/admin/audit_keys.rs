//! Key rotation commits with its audit entry; the audit log filters by type, user and time range
//! on the page and in the API.

use serde_json::{Value, json};

use super::{api_token, audit_count, create_admin, csrf_in, page, signed_in};
use crate::helpers::{TestApp, TestDb, spawn_app};
use crate::on_both_backends;

on_both_backends!(
    a_key_rotation_and_its_audit_entry_commit_together,
    the_audit_log_filters_by_type_user_and_time,
    the_audit_page_reads_as_key_values_with_linked_targets,
);

async fn active_kids(app: &TestApp) -> Vec<String> {
    sqlx::query_scalar("SELECT kid FROM signing_keys WHERE retired_at IS NULL ORDER BY kid")
        .fetch_all(app.state.store.pool())
        .await
        .unwrap()
}

async fn rename_audit_log(app: &TestApp, from: &str, to: &str) {
    sqlx::query(&format!("ALTER TABLE {from} RENAME TO {to}"))
        .execute(app.state.store.pool())
        .await
        .unwrap();
}

async fn a_key_rotation_and_its_audit_entry_commit_together(db: &TestDb) {
    let app = spawn_app(db).await;
    create_admin(&app).await;
    let browser = signed_in(&app).await;
    let csrf = csrf_in(&page(&app, &browser, "/admin/keys").await);
    let before = active_kids(&app).await;

    let res = browser
        .post(app.url("/admin/keys/rotate"))
        .form(&[("csrf", csrf.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 303);
    let after = active_kids(&app).await;
    assert_eq!(after.len(), before.len());
    assert!(
        after.iter().all(|k| !before.contains(k)),
        "every key is new"
    );
    // One entry, by this admin, naming exactly the keys that now sign.
    assert_eq!(audit_count(&app, "keys.rotated").await, 1);
    let (actor, details): (String, String) =
        sqlx::query_as("SELECT actor, details FROM audit_log WHERE action = 'keys.rotated'")
            .fetch_one(app.state.store.pool())
            .await
            .unwrap();
    assert_eq!(actor, "admin:ada@example.com");
    let details: Value = serde_json::from_str(&details).unwrap();
    let mut named: Vec<String> = details["created"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["kid"].as_str().unwrap().to_owned())
        .collect();
    named.sort();
    assert_eq!(named, after);

    // When the audit entry cannot be written, the keys are not rotated either.
    let token = api_token(&app, "rotator").await;
    rename_audit_log(&app, "audit_log", "audit_log_away").await;
    let res = app
        .client
        .post(app.url("/admin/api/v1/keys/rotate"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    let status = res.status();
    rename_audit_log(&app, "audit_log_away", "audit_log").await;
    assert_eq!(status, 500);
    assert_eq!(active_kids(&app).await, after, "nothing rotated");
    let keys: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM signing_keys")
        .fetch_one(app.state.store.pool())
        .await
        .unwrap();
    assert_eq!(keys as usize, 2 * after.len());
    app.stop();
}

/// "<action> <target>" of each entry of an audit page.
pub(super) fn audit_targets(page: &Value) -> Vec<String> {
    page["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            format!(
                "{} {}",
                e["action"].as_str().unwrap(),
                e["target"].as_str().unwrap()
            )
        })
        .collect()
}

/// Five entries at known times (1_000_000 + 100 * i), written as the services write them, with
/// a secret in their details for the redaction checks.
pub(super) async fn seed_audit(app: &TestApp) {
    let pool = app.state.store.pool();
    for (i, (action, target)) in [
        ("user.disabled", "user:u1"),
        ("client.created", "client:c1"),
        ("user.sessions_ended", "user:u1"),
        ("client.created", "client:c2"),
        ("user.disabled", "user:u2"),
    ]
    .into_iter()
    .enumerate()
    {
        let mut tx = pool.begin().await.unwrap();
        portico::audit::record(
            &mut tx,
            "admin:ada@example.com",
            action,
            target,
            json!({"client_secret": "hunter2hunter2", "note": i}),
            Some("192.0.2.7"),
        )
        .await
        .unwrap();
        tx.commit().await.unwrap();
        sqlx::query("UPDATE audit_log SET created_at = $1 WHERE target = $2 AND action = $3")
            .bind(1_000_000 + (i as i64) * 100)
            .bind(target)
            .bind(action)
            .execute(pool)
            .await
            .unwrap();
    }
}

async fn the_audit_log_filters_by_type_user_and_time(db: &TestDb) {
    let app = spawn_app(db).await;
    create_admin(&app).await;
    seed_audit(&app).await;
    let token = api_token(&app, "auditor").await;
    let api = |query: &'static str| {
        let app = &app;
        let token = token.clone();
        async move {
            app.client
                .get(app.url(&format!("/admin/api/v1/audit{query}")))
                .bearer_auth(&token)
                .send()
                .await
                .unwrap()
        }
    };

    // since (inclusive) and until (exclusive), in either form.
    let res = api("?since=1000100&until=1970-01-12T13:53:20Z").await;
    assert_eq!(res.status(), 200);
    assert_eq!(
        audit_targets(&res.json().await.unwrap()),
        [
            "client.created client:c2",
            "user.sessions_ended user:u1",
            "client.created client:c1"
        ]
    );
    // Type, user and time together.
    let res = api("?type=user.disabled&user_id=u1&since=1000000&until=1000500").await;
    assert_eq!(
        audit_targets(&res.json().await.unwrap()),
        ["user.disabled user:u1"]
    );
    let res = api("?user_id=u1&since=1000100").await;
    assert_eq!(
        audit_targets(&res.json().await.unwrap()),
        ["user.sessions_ended user:u1"]
    );
    // Bad times: 422 naming the parameter.
    let res = api("?since=last-tuesday").await;
    assert_eq!(res.status(), 422);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["error"], "validation_failed");
    assert!(body["fields"]["since"].is_string(), "{body}");
    let res = api("?since=1000400&until=1000000").await;
    assert_eq!(res.status(), 422);
    let body: Value = res.json().await.unwrap();
    assert!(body["fields"]["until"].is_string(), "{body}");

    // The OpenAPI document lists the parameters.
    let doc: Value = app
        .get("/admin/api/v1/openapi.json")
        .await
        .json()
        .await
        .unwrap();
    let params: Vec<&str> = doc["paths"]["/audit"]["get"]["parameters"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    for name in ["type", "user_id", "since", "until"] {
        assert!(params.contains(&name), "{name} in {params:?}");
    }

    // The page: the same filters, kept in the form and in the link to older entries.
    let browser = signed_in(&app).await;
    let html = page(
        &app,
        &browser,
        "/admin/audit?type=client.created&since=1000150",
    )
    .await;
    assert!(
        html.contains("client:c2") && !html.contains("client:c1"),
        "{html}"
    );
    assert!(html.contains("name=\"since\" value=\"1000150\""), "{html}");
    let html = page(&app, &browser, "/admin/audit?user_id=u1&until=1000150").await;
    assert!(
        html.contains(">user.disabled</span>") && !html.contains(">user.sessions_ended</span>")
    );
    assert!(html.contains("name=\"until\" value=\"1000150\""));
    let html = page(
        &app,
        &browser,
        "/admin/audit?user_id=u1&since=1000000&until=1000500&limit=1",
    )
    .await;
    let marker = "id=\"next-page\"";
    let end = html.find(marker).expect("a next page");
    let start = html[..end].rfind("href=\"").unwrap() + 6;
    let next = html[start..end]
        .trim_end_matches("\" ")
        .replace("&#38;", "&")
        .replace("&amp;", "&");
    assert!(next.contains("user_id=u1"), "{next}");
    assert!(
        next.contains("since=1000000") && next.contains("until=1000500"),
        "{next}"
    );
    let html = page(&app, &browser, &next).await;
    assert!(
        html.contains(">user.disabled</span>") && !html.contains(">user.sessions_ended</span>")
    );
    // The older name still works.
    let html = page(
        &app,
        &browser,
        "/admin/audit?type=client.created&from=1000150",
    )
    .await;
    assert!(html.contains("client:c2") && !html.contains("client:c1"));
    // A bad time: 422 and the message next to the field.
    let res = browser
        .get(app.url("/admin/audit?since=soon"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 422);
    let html = res.text().await.unwrap();
    assert!(html.contains("Since must be a time such as"), "{html}");
    app.stop();
}

/// The audit page as a newcomer reads it: details as key/value lists (secrets redacted, nested
/// values compact), targets linked to their pages, the type filter a select of the known
/// actions, and every time in one format, which the time filters also take.
async fn the_audit_page_reads_as_key_values_with_linked_targets(db: &TestDb) {
    let app = spawn_app(db).await;
    create_admin(&app).await;
    let pool = app.state.store.pool();
    let entries = [
        (
            "client.created",
            "client:shop",
            json!({"name": "Shop", "redirect_uris": ["https://a.example/cb", "https://b.example/cb"],
                   "client_secret": "hunter2hunter2"}),
        ),
        (
            "provider.updated",
            "provider:corp",
            json!({"enabled": false, "settings": {"hosted_domains": ["corp.example"]}}),
        ),
        ("webhook.created", "webhook:wh_9", json!({})),
        (
            "webhook.endpoint_disabled",
            "wh_7",
            json!({"reason": "410 Gone"}),
        ),
        ("user.disabled", "user:u1", json!({"sessions_ended": 2})),
        (
            "api_token.created",
            "api_token:tok_1",
            json!({"name": "ci"}),
        ),
        ("keys.rotated", "keys", json!({"created": ["kid-1"]})),
    ];
    for (i, (action, target, details)) in entries.into_iter().enumerate() {
        let mut tx = pool.begin().await.unwrap();
        portico::audit::record(&mut tx, "cli", action, target, details, None)
            .await
            .unwrap();
        tx.commit().await.unwrap();
        sqlx::query("UPDATE audit_log SET created_at = $1 WHERE action = $2")
            .bind(1_000_000 + (i as i64) * 100)
            .bind(action)
            .execute(pool)
            .await
            .unwrap();
    }
    let browser = signed_in(&app).await;
    let html = page(&app, &browser, "/admin/audit").await;

    // Details as key/value pairs, not JSON text.
    assert!(html.contains("<dl class=\"kv\">"), "{html}");
    assert!(html.contains("<dt>name</dt><dd>Shop</dd>"), "{html}");
    assert!(
        html.contains("<dd>https://a.example/cb, https://b.example/cb</dd>")
            || html.contains("<dd>https:&#x2f;&#x2f;a.example&#x2f;cb"),
        "{html}"
    );
    assert!(
        html.contains("<dt>client_secret</dt><dd>[redacted]</dd>"),
        "{html}"
    );
    assert!(!html.contains("hunter2"), "{html}");
    assert!(html.contains("<dt>sessions_ended</dt><dd>2</dd>"), "{html}");
    assert!(html.contains("<dt>settings</dt>"), "{html}");
    assert!(html.contains("hosted_domains"), "{html}");
    assert!(!html.contains("&#34;name&#34;:"), "no raw JSON: {html}");

    // Targets link to their objects.
    for href in [
        "/admin/clients/shop",
        "/admin/providers/corp",
        "/admin/webhooks/wh_9",
        "/admin/webhooks/wh_7",
        "/admin/users/u1",
        "/admin/tokens",
        "/admin/keys",
    ] {
        assert!(
            html.contains(&format!("href=\"{href}\"")),
            "{href} in {html}"
        );
    }

    // The type filter offers every known action.
    assert!(
        html.contains("<select id=\"f-type\" name=\"type\""),
        "{html}"
    );
    for action in portico::audit::ACTIONS {
        assert!(
            html.contains(&format!("<option value=\"{action}\"")),
            "{action}"
        );
    }
    let html = page(&app, &browser, "/admin/audit?type=keys.rotated").await;
    assert!(
        html.contains("<option value=\"keys.rotated\" selected>"),
        "{html}"
    );
    assert!(!html.contains("href=\"/admin/clients/shop\""), "{html}");

    // One date format: the one the rest of the admin pages use, and the filters take it.
    let html = page(&app, &browser, "/admin/audit").await;
    assert!(html.contains("1970-01-12 13:46:40 UTC"), "{html}");
    let rfc3339 = regex_like_rfc3339(&html);
    assert!(rfc3339.is_none(), "another date format: {rfc3339:?}");
    let html = page(
        &app,
        &browser,
        "/admin/audit?since=1970-01-12%2013%3A48%3A21%20UTC&until=1970-01-12%2013:51",
    )
    .await;
    assert!(html.contains("href=\"/admin/webhooks/wh_9\""), "{html}");
    assert!(!html.contains("href=\"/admin/providers/corp\""), "{html}");
    assert!(!html.contains("href=\"/admin/webhooks/wh_7\""), "{html}");
    app.stop();
}

/// The first `YYYY-MM-DDTHH:MM` in `html`, if any.
pub(super) fn regex_like_rfc3339(html: &str) -> Option<&str> {
    let b = html.as_bytes();
    (0..b.len().saturating_sub(16)).find_map(|i| {
        let w = &b[i..i + 16];
        let digits = |r: std::ops::Range<usize>| w[r].iter().all(u8::is_ascii_digit);
        (digits(0..4)
            && w[4] == b'-'
            && digits(5..7)
            && w[7] == b'-'
            && digits(8..10)
            && w[10] == b'T'
            && digits(11..13)
            && w[13] == b':'
            && digits(14..16))
        .then(|| &html[i..i + 16])
    })
}
