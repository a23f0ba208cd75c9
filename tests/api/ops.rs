use crate::helpers::{TestDb, spawn_app, spawn_app_with};
use crate::on_both_backends;
use portico::config::Issuer;
use portico::crypto::MasterKey;

on_both_backends!(health_and_readiness_answer, discovery_names_the_issuer);

async fn health_and_readiness_answer(db: &TestDb) {
    let app = spawn_app(db).await;
    let res = app.get("/healthz").await;
    assert_eq!(res.status(), 200);
    let res = app.get("/readyz").await;
    assert_eq!(res.status(), 200);
    assert_eq!(
        res.json::<serde_json::Value>().await.unwrap()["status"],
        "ready"
    );

    // Readiness follows the database: a closed pool is not ready.
    app.state.store.close().await;
    assert_eq!(app.get("/readyz").await.status(), 503);
    assert_eq!(app.get("/healthz").await.status(), 200);
    app.stop();
}

async fn discovery_names_the_issuer(db: &TestDb) {
    let app = spawn_app(db).await;
    for path in [
        "/.well-known/openid-configuration",
        "/.well-known/oauth-authorization-server",
    ] {
        let res = app.get(path).await;
        assert_eq!(res.status(), 200);
        assert_eq!(res.headers()["content-type"], "application/json");
        let doc: serde_json::Value = res.json().await.unwrap();
        assert_eq!(doc["issuer"], app.address);
        assert_eq!(doc["jwks_uri"], format!("{}/jwks.json", app.address));
    }
    app.stop();
}

#[tokio::test]
async fn every_response_carries_security_headers_and_a_request_id() {
    let db = TestDb::new(crate::helpers::Backend::Sqlite).await.unwrap();
    let app = spawn_app(&db).await;
    for path in ["/healthz", "/jwks.json", "/no-such-page"] {
        let res = app.get(path).await;
        let h = res.headers();
        assert_eq!(h["x-frame-options"], "DENY", "{path}");
        assert_eq!(h["x-content-type-options"], "nosniff", "{path}");
        assert_eq!(h["referrer-policy"], "no-referrer", "{path}");
        assert!(
            h["content-security-policy"]
                .to_str()
                .unwrap()
                .contains("frame-ancestors 'none'")
        );
        assert!(h.get("x-request-id").is_some(), "{path}");
        // The issuer is plain http here, so HSTS would be wrong.
        assert!(h.get("strict-transport-security").is_none(), "{path}");
    }
    app.stop();

    let db2 = TestDb::new(crate::helpers::Backend::Sqlite).await.unwrap();
    let app = spawn_app_with(&db2, MasterKey::generate(), |s| {
        s.server.issuer = Issuer::parse("https://id.example.com").unwrap();
    })
    .await;
    let res = app.get("/healthz").await;
    assert!(
        res.headers()["strict-transport-security"]
            .to_str()
            .unwrap()
            .starts_with("max-age=")
    );
    app.stop();
    db.cleanup().await;
    db2.cleanup().await;
}

#[tokio::test]
async fn metrics_count_requests_by_route_pattern() {
    let db = TestDb::new(crate::helpers::Backend::Sqlite).await.unwrap();
    let app = spawn_app(&db).await;
    app.get("/jwks.json").await;
    app.get("/nothing/here/12345").await;
    let res = app.get("/metrics").await;
    assert_eq!(res.status(), 200);
    assert!(
        res.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/plain")
    );
    let body = res.text().await.unwrap();
    assert!(
        body.contains(r#"http_requests_total{method="GET",route="/jwks.json",status="200"}"#),
        "{body}"
    );
    assert!(
        body.contains("http_request_duration_seconds_bucket"),
        "{body}"
    );
    // Unknown paths share one label instead of one series per path.
    assert!(body.contains(r#"route="unmatched""#), "{body}");
    assert!(!body.contains("12345"), "{body}");
    app.stop();
    db.cleanup().await;
}

#[tokio::test]
async fn made_up_methods_share_one_label() {
    let db = TestDb::new(crate::helpers::Backend::Sqlite).await.unwrap();
    let app = spawn_app(&db).await;
    for i in 0..30 {
        let method = reqwest::Method::from_bytes(format!("MADEUP{i}").as_bytes()).unwrap();
        let res = app
            .client
            .request(method, app.url("/healthz"))
            .send()
            .await
            .unwrap();
        assert!(res.status().is_client_error(), "{}", res.status());
    }
    let body = app.get("/metrics").await.text().await.unwrap();
    assert!(!body.contains("MADEUP"), "one series per made-up method");
    assert!(body.contains(r#"method="other""#), "{body}");
    // Every label value comes from a bounded set: methods, route patterns, status codes.
    for line in body
        .lines()
        .filter(|l| l.starts_with("http_requests_total{"))
    {
        let method = line
            .split("method=\"")
            .nth(1)
            .unwrap()
            .split('"')
            .next()
            .unwrap();
        assert!(
            [
                "GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "CONNECT", "TRACE",
                "other"
            ]
            .contains(&method),
            "{line}"
        );
    }
    app.stop();
    db.cleanup().await;
}

#[tokio::test]
async fn oversized_request_targets_and_headers_are_refused() {
    let db = TestDb::new(crate::helpers::Backend::Sqlite).await.unwrap();
    let app = spawn_app(&db).await;
    let authorize = |query_len: usize| {
        app.url(&format!(
            "/authorize?client_id=x&response_type=code&state={}",
            "a".repeat(query_len)
        ))
    };
    // A 20 kB /authorize query is refused before any handler runs, and so is 9 KiB.
    for len in [20_000, 9 * 1024] {
        let res = app.client.get(authorize(len)).send().await.unwrap();
        assert_eq!(res.status(), 414, "{len}");
    }
    // Just under the cap it reaches the handler (which refuses the unknown client).
    let res = app.client.get(authorize(7 * 1024)).send().await.unwrap();
    assert_ne!(res.status(), 414);

    // One 20 kB header, then more header lines than allowed.
    let res = app
        .client
        .get(app.url("/healthz"))
        .header("x-padding", "p".repeat(20_000))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 431);
    let mut req = app.client.get(app.url("/healthz"));
    for i in 0..70 {
        req = req.header(format!("x-h{i}"), "v");
    }
    assert_eq!(req.send().await.unwrap().status(), 431);
    // Ordinary requests are untouched.
    assert_eq!(app.get("/healthz").await.status(), 200);
    app.stop();
    db.cleanup().await;
}

/// A port that was free a moment ago.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Waits until `url` answers at all (the server is up), for up to 10 s.
pub async fn wait_for(url: &str) {
    for _ in 0..200 {
        if reqwest::get(url).await.is_ok() {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    panic!("{url} never answered");
}

/// The `portico` binary serving on a free port, its stderr collected.
pub struct ServerProcess {
    pub base: String,
    child: std::process::Child,
    stderr: std::thread::JoinHandle<Vec<u8>>,
}

impl ServerProcess {
    /// Starts `portico` on `db` with `PORTICO_LOG=log` and `env`, and waits until it answers.
    pub async fn start(db: &TestDb, log: &str, env: &[(&str, &str)]) -> Self {
        let port = free_port();
        let base = format!("http://127.0.0.1:{port}");
        let mut cmd = crate::helpers::portico_command(db, &MasterKey::generate());
        cmd.env("PORTICO_LISTEN", format!("127.0.0.1:{port}"))
            .env("PORTICO_ISSUER", &base)
            .env("PORTICO_LOG", log)
            .envs(env.iter().copied())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped());
        let mut child = cmd.spawn().unwrap();
        // Drain stderr while the server runs: debug logs fill a pipe buffer long
        // before the test ends, and a full pipe would block the server.
        let mut stderr = child.stderr.take().unwrap();
        let stderr = std::thread::spawn(move || {
            let mut buf = Vec::new();
            std::io::Read::read_to_end(&mut stderr, &mut buf).ok();
            buf
        });
        wait_for(&format!("{base}/healthz")).await;
        Self {
            base,
            child,
            stderr,
        }
    }

    /// Gives the last requests a moment to be logged, stops the server and returns its logs.
    pub async fn stop(mut self) -> String {
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
        self.child.kill().unwrap();
        self.child.wait().unwrap();
        String::from_utf8_lossy(&self.stderr.join().unwrap()).into_owned()
    }
}

/// Runs `portico serve` with `PORTICO_LOG=filter`, the `env` given and `config` as its
/// portico.toml; `drive` sends requests to its base URL with a client that follows no
/// redirects. Returns what it answered and everything the server logged.
async fn logs_of<T>(
    filter: &str,
    env: &[(&str, &str)],
    config: &str,
    drive: impl AsyncFnOnce(&str, &reqwest::Client) -> T,
) -> (T, String) {
    let db = TestDb::new(crate::helpers::Backend::Sqlite).await.unwrap();
    std::fs::write(db.dir.join("portico.toml"), config).unwrap();
    let server = ServerProcess::start(&db, filter, env).await;
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let answered = drive(&server.base, &client).await;
    let logs = server.stop().await;
    db.cleanup().await;
    (answered, logs)
}

#[tokio::test]
async fn query_strings_stay_out_of_the_logs() {
    let ((), logs) = logs_of("debug", &[], "", async |base, client| {
        for path in [
            "/authorize?client_id=nope&response_type=code&code=SECRET-CODE-1&state=SECRET-STATE-2",
            "/callback/nope?code=SECRET-CODE-3&state=SECRET-STATE-4",
            "/token?code=SECRET-CODE-5&refresh_token=SECRET-TOKEN-6",
            "/userinfo?access_token=SECRET-TOKEN-7",
        ] {
            client.get(format!("{base}{path}")).send().await.unwrap();
        }
        client
            .post(format!("{base}/token?code=SECRET-CODE-8"))
            .form(&[
                ("grant_type", "authorization_code"),
                ("code", "SECRET-CODE-9"),
            ])
            .send()
            .await
            .unwrap();
    })
    .await;
    // The requests were logged (their paths are there), their secrets were not.
    assert!(logs.contains("/authorize"), "{logs}");
    assert!(logs.contains("/callback/nope"), "{logs}");
    assert!(!logs.contains("SECRET"), "{logs}");
}

#[tokio::test]
async fn metrics_behind_a_bearer_token_refuse_without_it() {
    let db = TestDb::new(crate::helpers::Backend::Sqlite).await.unwrap();
    let app = spawn_app_with(&db, MasterKey::generate(), |s| {
        s.metrics.bearer_token = Some("s3cret-scrape-token-0123".into());
    })
    .await;
    assert_eq!(app.get("/metrics").await.status(), 401);
    for presented in ["wrong-token-wrong-token", "s3cret-scrape-token-012", ""] {
        let res = app
            .client
            .get(app.url("/metrics"))
            .bearer_auth(presented)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 401, "{presented}");
        assert!(res.headers().contains_key("www-authenticate"));
    }
    let res = app
        .client
        .get(app.url("/metrics"))
        .bearer_auth("s3cret-scrape-token-0123")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert!(res.text().await.unwrap().contains("http_requests_total"));
    app.stop();
    db.cleanup().await;
}

#[tokio::test]
async fn metrics_on_their_own_listener_leave_the_main_port() {
    let db = TestDb::new(crate::helpers::Backend::Sqlite).await.unwrap();
    let port = free_port();
    let app = spawn_app_with(&db, MasterKey::generate(), |s| {
        s.metrics.listen = Some(format!("127.0.0.1:{port}").parse().unwrap());
    })
    .await;
    app.get("/healthz").await;
    assert_eq!(app.get("/metrics").await.status(), 404);
    let url = format!("http://127.0.0.1:{port}/metrics");
    wait_for(&url).await;
    let res = reqwest::get(&url).await.unwrap();
    assert_eq!(res.status(), 200);
    let body = res.text().await.unwrap();
    assert!(
        body.contains(r#"http_requests_total{method="GET",route="/healthz",status="200"}"#),
        "{body}"
    );
    // The metrics listener serves nothing else.
    let other = reqwest::get(format!("http://127.0.0.1:{port}/healthz"))
        .await
        .unwrap();
    assert_eq!(other.status(), 404);
    app.stop();
    db.cleanup().await;
}

/// The value of an unlabelled counter in a rendering, 0 when absent.
fn counter(body: &str, name: &str) -> f64 {
    body.lines()
        .find_map(|l| l.strip_prefix(&format!("{name} ")))
        .map_or(0.0, |v| v.trim().parse().unwrap())
}

#[tokio::test]
async fn metrics_upkeep_runs_without_a_scrape() {
    let db = TestDb::new(crate::helpers::Backend::Sqlite).await.unwrap();
    let app = spawn_app_with(&db, MasterKey::generate(), |s| s.metrics.upkeep_secs = 1).await;
    let handle = portico::ops::metrics::handle();
    let before = counter(&handle.render(), "portico_metrics_upkeep_runs_total");
    tokio::time::sleep(std::time::Duration::from_millis(2500)).await;
    let after = counter(&handle.render(), "portico_metrics_upkeep_runs_total");
    // At least two upkeep passes (each drains every histogram's sample buffer into its
    // buckets) ran with nobody scraping /metrics.
    assert!(after - before >= 2.0, "{before} -> {after}");
    app.stop();
    db.cleanup().await;
}

/// The JSON log lines of a `portico serve` run with `config` as its portico.toml, after GETs
/// of `paths`; and each answer's status, `x-request-id` and body.
async fn json_log_of(
    config: &str,
    paths: &[&str],
) -> (Vec<serde_json::Value>, Vec<(u16, String, String)>) {
    let json = [("PORTICO_LOG_FORMAT", "json")];
    let (answers, logs) = logs_of("info", &json, config, async |base, client| {
        let mut answers = Vec::new();
        for path in paths {
            let res = client.get(format!("{base}{path}")).send().await.unwrap();
            let status = res.status().as_u16();
            let id = res.headers()["x-request-id"].to_str().unwrap().to_owned();
            answers.push((status, id, res.text().await.unwrap()));
        }
        answers
    })
    .await;
    let lines = logs
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect();
    (lines, answers)
}

/// The log line of request `id` whose message is `message`.
fn logged<'a>(
    lines: &'a [serde_json::Value],
    id: &str,
    message: &str,
) -> Option<&'a serde_json::Value> {
    lines
        .iter()
        .find(|l| l["message"] == message && l["request_id"] == id)
}

#[tokio::test]
async fn authorize_refusals_are_logged_at_info_with_the_client_and_reason() {
    let config = r#"
[[clients]]
client_id = "spa"
type = "public"
redirect_uris = ["http://127.0.0.1/spa-cb"]
"#;
    let long = "x".repeat(5000);
    let unknown = "/authorize?client_id=nope&response_type=code\
                   &redirect_uri=https%3A%2F%2Fevil.example%2F&login_hint=SECRET-HINT-1\
                   &state=SECRET-STATE-2";
    let unregistered = "/authorize?client_id=spa&response_type=code\
                        &redirect_uri=https%3A%2F%2Fevil.example%2F&login_hint=SECRET-HINT-3";
    let redirected = "/authorize?client_id=spa&response_type=token\
                      &redirect_uri=http%3A%2F%2F127.0.0.1%2Fspa-cb&login_hint=SECRET-HINT-4";
    let too_long = format!("/authorize?client_id={long}&response_type=code");
    let (lines, answers) = json_log_of(
        config,
        &[unknown, unregistered, redirected, too_long.as_str()],
    )
    .await;
    let all = serde_json::to_string(&lines).unwrap();
    assert!(!all.contains("SECRET"), "{all}");

    // An unknown client: an error page with the request id, and an INFO line with both.
    let (status, id, page) = &answers[0];
    assert_eq!(*status, 400);
    assert!(page.contains(id.as_str()), "{id} in {page}");
    let line = logged(&lines, id, "authorize refused").unwrap_or_else(|| panic!("{all}"));
    assert_eq!(line["level"], "INFO", "{line}");
    assert_eq!(line["client_id"], "nope", "{line}");
    assert!(
        line["reason"].as_str().unwrap().contains("not registered"),
        "{line}"
    );

    // A redirect URI the client did not register.
    let (status, id, page) = &answers[1];
    assert_eq!(*status, 400);
    assert!(page.contains(id.as_str()), "{page}");
    let line = logged(&lines, id, "authorize refused").unwrap_or_else(|| panic!("{all}"));
    assert_eq!(line["client_id"], "spa", "{line}");
    assert!(
        line["reason"].as_str().unwrap().contains("redirect_uri"),
        "{line}"
    );

    // An OAuth error sent back to the client is logged with its code.
    let (status, id, _) = &answers[2];
    assert_eq!(*status, 302);
    let line = logged(&lines, id, "authorize refused").unwrap_or_else(|| panic!("{all}"));
    assert_eq!(line["level"], "INFO", "{line}");
    assert_eq!(line["client_id"], "spa", "{line}");
    assert_eq!(line["error"], "unsupported_response_type", "{line}");
    assert!(
        line["reason"].as_str().unwrap().contains("response_type"),
        "{line}"
    );

    // A client id of any length is cut before it is logged.
    let (_, id, _) = &answers[3];
    let line = logged(&lines, id, "authorize refused").unwrap_or_else(|| panic!("{all}"));
    let logged_id = line["client_id"].as_str().unwrap();
    assert!(
        logged_id.len() <= 130 && logged_id.starts_with("xxx"),
        "{line}"
    );
}
