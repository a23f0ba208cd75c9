//! The dashboard: logins and failures per provider over the last 24 hours, webhook health, and
//! the indexes behind both queries.

use portico::admin::webhooks::service as webhooks_admin;
use portico::admin::{Caller, dashboard};
use portico::store::Backend;
use portico::webhooks::{NewEndpoint, deliveries, events};

use super::{create_admin, page, signed_in};
use crate::federation_flow::{full_login, google_provider, spawn_with};
use crate::helpers::{TestApp, TestDb};
use crate::on_both_backends;
use crate::standins::google::{Account, GoogleStandIn};

on_both_backends!(
    the_dashboard_counts_logins_and_webhook_deliveries,
    the_dashboard_queries_use_indexes,
);

/// The text of each cell of the row of table `table` whose first cell is `first`.
fn row_cells(html: &str, table: &str, first: &str) -> Vec<String> {
    let start = html
        .find(&format!("id=\"{table}\""))
        .unwrap_or_else(|| panic!("table {table} in {html}"));
    let body = &html[start..start + html[start..].find("</table>").unwrap()];
    body.split("<tr>")
        .skip(1)
        .map(|row| {
            row.split("<td")
                .skip(1)
                .map(|cell| {
                    let inner = &cell[cell.find('>').unwrap() + 1..];
                    let inner = &inner[..inner.find("</td>").unwrap_or(inner.len())];
                    // Drop the tags, keep the text.
                    let mut text = String::new();
                    let mut in_tag = false;
                    for c in inner.chars() {
                        match c {
                            '<' => in_tag = true,
                            '>' => in_tag = false,
                            c if !in_tag => text.push(c),
                            _ => {}
                        }
                    }
                    text.split_whitespace().collect::<Vec<_>>().join(" ")
                })
                .collect::<Vec<_>>()
        })
        .find(|cells| cells.first().is_some_and(|c| c == first))
        .unwrap_or_else(|| panic!("a {first} row in {body}"))
}

fn stat(html: &str, id: &str) -> String {
    let marker = format!("id=\"{id}\"><span class=\"value\">");
    let start = html.find(&marker).unwrap_or_else(|| panic!("{id}")) + marker.len();
    html[start..start + html[start..].find('<').unwrap()].to_owned()
}

async fn insert_event(app: &TestApp, id: &str, kind: &str, provider: &str, created_at: i64) {
    let body = format!(r#"{{"type":"{kind}","timestamp":"x","data":{{"provider":"{provider}"}}}}"#);
    sqlx::query("INSERT INTO events (id, type, body, created_at) VALUES ($1, $2, $3, $4)")
        .bind(id)
        .bind(kind)
        .bind(body)
        .bind(created_at)
        .execute(app.state.store.pool())
        .await
        .unwrap();
}

struct Delivery {
    status: &'static str,
    age_secs: i64,
    status_code: Option<i64>,
    error: Option<&'static str>,
}

async fn insert_delivery(app: &TestApp, endpoint: &str, event: &str, d: Delivery) {
    let at = portico::store::now() - d.age_secs;
    let done = (d.status != "pending").then_some(at);
    sqlx::query(
        "INSERT INTO webhook_deliveries (event_id, endpoint_id, status, attempts, \
         next_attempt_at_ms, last_status_code, last_error, created_at, created_at_ms, completed_at) \
         VALUES ($1, $2, $3, 1, $4, $5, $6, $7, $8, $9)",
    )
    .bind(event)
    .bind(endpoint)
    .bind(d.status)
    // A pending one is not due for a day: the dispatcher leaves it alone.
    .bind((at + 86_400) * 1000)
    .bind(d.status_code)
    .bind(d.error)
    .bind(at)
    .bind(at * 1000)
    .bind(done)
    .execute(app.state.store.pool())
    .await
    .unwrap();
}

async fn the_dashboard_counts_logins_and_webhook_deliveries(db: &TestDb) {
    let standin = GoogleStandIn::start(Account::default()).await;
    let app = spawn_with(db, google_provider(&standin.issuer, "")).await;
    create_admin(&app).await;
    let browser = signed_in(&app).await;

    let html = page(&app, &browser, "/admin").await;
    assert!(html.contains("id=\"no-logins\""), "{html}");
    assert!(html.contains("id=\"no-webhooks\""), "{html}");
    assert_eq!(stat(&html, "logins-succeeded"), "0");

    // A login through Google, and a callback without its state: a failure for Google.
    full_login(&app, "google", &["email"]).await;
    let res = app.get("/callback/google").await;
    assert_eq!(res.status(), 400);
    // A failure two days ago is outside the window.
    let old = portico::store::now() - 2 * 86_400;
    insert_event(&app, "msg_old", "login.failed", "google", old).await;
    // Text from a callback URL is escaped on the way out.
    insert_event(
        &app,
        "msg_odd",
        "login.failed",
        "<b>x</b>",
        portico::store::now(),
    )
    .await;

    let html = page(&app, &browser, "/admin").await;
    assert_eq!(stat(&html, "logins-succeeded"), "1");
    assert_eq!(stat(&html, "logins-failed"), "2");
    let google = row_cells(&html, "logins", "google");
    assert_eq!(google[1..3], ["1", "1"], "{google:?}");
    assert!(html.contains("<meter class=\"bar good\""));
    assert!(!html.contains("<b>x</b>"));
    assert!(html.contains("&#60;b&#62;x") || html.contains("&lt;b&gt;x"));

    // Webhook health: counts of the window by status, and the latest failure whenever it was.
    let new = NewEndpoint {
        url: "https://hooks.example/in".into(),
        // Subscribed to nothing the test does, so only the rows below exist.
        events: vec!["token.reuse_detected".into()],
        enabled: true,
        description: String::new(),
    };
    let endpoint = webhooks_admin::create(&app.state, &Caller::cli(), new)
        .await
        .unwrap()
        .webhook;
    for d in [
        Delivery {
            status: "succeeded",
            age_secs: 600,
            status_code: Some(204),
            error: None,
        },
        Delivery {
            status: "succeeded",
            age_secs: 300,
            status_code: Some(200),
            error: None,
        },
        Delivery {
            status: "pending",
            age_secs: 60,
            status_code: Some(503),
            error: None,
        },
        Delivery {
            status: "failed",
            age_secs: 120,
            status_code: Some(500),
            error: None,
        },
        Delivery {
            status: "failed",
            age_secs: 2 * 86_400,
            status_code: None,
            error: Some("connection refused"),
        },
    ] {
        insert_delivery(&app, &endpoint.id, "msg_old", d).await;
    }
    let html = page(&app, &browser, "/admin").await;
    let hook = row_cells(&html, "webhook-health", "https://hooks.example/in");
    assert_eq!(hook[1], "enabled", "{hook:?}");
    assert_eq!(hook[2..5], ["1", "1", "2"], "{hook:?}");
    assert!(hook[5].ends_with("HTTP 500"), "{hook:?}");

    // An endpoint whose every attempt has failed but whose deliveries are still being retried
    // has no failed delivery yet: the count says so instead of a bare, reassuring 0.
    let new = NewEndpoint {
        url: "https://down.example/in".into(),
        events: vec!["token.reuse_detected".into()],
        enabled: true,
        description: String::new(),
    };
    let down = webhooks_admin::create(&app.state, &Caller::cli(), new)
        .await
        .unwrap()
        .webhook;
    let d = Delivery {
        status: "pending",
        age_secs: 60,
        status_code: Some(503),
        error: None,
    };
    insert_delivery(&app, &down.id, "msg_old", d).await;
    sqlx::query("UPDATE webhook_endpoints SET failing_since_ms = $1 WHERE id = $2")
        .bind(portico::store::now_ms() - 600_000)
        .bind(&down.id)
        .execute(app.state.store.pool())
        .await
        .unwrap();
    let html = page(&app, &browser, "/admin").await;
    let row = row_cells(&html, "webhook-health", "https://down.example/in");
    assert_eq!(row[3], "0, all attempts failing, retrying", "{row:?}");
    app.stop();
}

/// Both dashboard queries find their rows through an index, on each back end.
async fn the_dashboard_queries_use_indexes(db: &TestDb) {
    let app = crate::helpers::spawn_app(db).await;
    let store = &app.state.store;
    let since = portico::store::now() - dashboard::WINDOW_SECS;
    // Each query with its parameters' values (an endpoint id first, where it takes one).
    let queries = [
        (events::logins_sql(store.backend()), None, vec![since, 50]),
        (deliveries::WINDOW_SQL.to_owned(), Some("wh_1"), vec![since]),
    ];
    let mut conn = store.pool().acquire().await.unwrap();
    let explain = match store.backend() {
        Backend::Sqlite => "EXPLAIN QUERY PLAN",
        Backend::Postgres => {
            // The tables are tiny: forbid sequential scans, so the plan shows what the indexes
            // allow (and still scans if none applies).
            sqlx::query("SET enable_seqscan = off")
                .execute(&mut *conn)
                .await
                .unwrap();
            "EXPLAIN"
        }
    };
    let mut plans = Vec::new();
    for (sql, endpoint, binds) in &queries {
        let sql = format!("{explain} {sql}");
        let mut query = sqlx::query(&sql);
        if let Some(endpoint) = endpoint {
            query = query.bind(*endpoint);
        }
        for b in binds {
            query = query.bind(*b);
        }
        let rows = query.fetch_all(&mut *conn).await.unwrap();
        // SQLite: (id, parent, notused, detail); PostgreSQL: one "QUERY PLAN" column.
        let column = if store.backend() == Backend::Sqlite {
            3
        } else {
            0
        };
        let lines: Vec<String> = rows
            .iter()
            .map(|r| sqlx::Row::try_get::<String, _>(r, column).unwrap())
            .collect();
        plans.push(lines.join("\n"));
    }
    if store.backend() == Backend::Postgres {
        sqlx::query("RESET enable_seqscan")
            .execute(&mut *conn)
            .await
            .unwrap();
    }
    drop(conn);
    let (logins, hooks) = (&plans[0], &plans[1]);
    match store.backend() {
        Backend::Sqlite => {
            assert!(
                logins.contains("USING INDEX events_type_created (type=? AND created_at>?)"),
                "{logins}"
            );
            assert!(
                hooks.contains("COVERING INDEX webhook_deliveries_endpoint_created"),
                "{hooks}"
            );
            assert!(hooks.contains("webhook_deliveries_failed"), "{hooks}");
            assert!(
                !hooks.contains("SCAN d") && !hooks.contains("SCAN f"),
                "{hooks}"
            );
        }
        Backend::Postgres => {
            assert!(!logins.contains("Seq Scan on events"), "{logins}");
            assert!(logins.contains("events_type_created"), "{logins}");
            assert!(!hooks.contains("Seq Scan on webhook_deliveries"), "{hooks}");
            assert!(hooks.contains("webhook_deliveries_"), "{hooks}");
        }
    }
    app.stop();
}
