//! The admin UI in headless Chromium over WebDriver (chromedriver), as an admin uses it.
//! Skips, saying so, where `/usr/bin/chromedriver` is absent (`apt-get install chromium
//! chromium-driver`). With `PORTICO_SCREENSHOTS=1` it saves screenshots of the main pages to
//! `docs/screenshots/`.
//!
//! On every page it visits, admin and user-facing, it runs axe-core (vendored beside this file)
//! and fails on any violation of impact "serious" or "critical". At 390 px wide it checks that
//! the admin menu folds away and that who is signed in stays in view.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::{Client, ClientBuilder, Locator};
use hyper_util::client::legacy::connect::HttpConnector;
use serde_json::json;

use super::{EMAIL, PASSWORD, audit_count, call, create_admin, json_of};
use portico::crypto::MasterKey;

mod first_run;

use crate::helpers::{Backend, TestApp, TestDb, spawn_app_with};
use crate::oidc_support::{
    CLIENT_ID, CLIENT_SECRET, REDIRECT, clients, provider, relying_party, start_url,
};
use crate::saml_idp::{KeyPair, metadata_xml};
use crate::upstream_idp::Upstream;
use crate::webhooks::{Receiver, signed_with};

const CHROMEDRIVER: &str = "/usr/bin/chromedriver";
const CHROMIUM: &str = "/usr/bin/chromium";
/// How long a step may take. Waits end as soon as the condition holds; the bound is generous
/// because CI starts from a fresh machine, where Chromium's first start and first pages are slow.
const WAIT: Duration = Duration::from_secs(30);

/// One browser at a time: two Chromiums on two cores beside the rest of the suite make every
/// step slow; the browser tests queue for this turn instead.
static TURN: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// chromedriver and its profile directory, cleaned up on drop.
struct Driver {
    child: Child,
    profile: PathBuf,
    /// Where chromedriver listens.
    url: String,
    _turn: tokio::sync::MutexGuard<'static, ()>,
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.profile);
    }
}

async fn start_browser() -> Option<(Driver, Client)> {
    if !Path::new(CHROMEDRIVER).exists() {
        eprintln!(
            "skipping the browser test: {CHROMEDRIVER} is absent \
             (apt-get install chromium chromium-driver)"
        );
        return None;
    }
    let turn = TURN.lock().await;
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let child = Command::new(CHROMEDRIVER)
        .arg(format!("--port={port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("chromedriver starts");
    let profile = std::env::temp_dir().join(format!(
        "portico-chromium-{}",
        uuid::Uuid::new_v4().simple()
    ));
    std::fs::create_dir_all(&profile).unwrap();
    let url = format!("http://127.0.0.1:{port}");
    let driver = Driver {
        child,
        profile,
        url: url.clone(),
        _turn: turn,
    };
    let started = Instant::now();
    while reqwest::get(format!("{url}/status")).await.is_err() {
        assert!(started.elapsed() < 2 * WAIT, "chromedriver did not start");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let mut options = json!({
        "args": [
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--no-first-run",
            "--window-size=1280,900",
            format!("--user-data-dir={}", driver.profile.display()),
        ]
    });
    if Path::new(CHROMIUM).exists() {
        options["binary"] = json!(CHROMIUM);
    }
    let mut caps = serde_json::Map::new();
    caps.insert("browserName".into(), json!("chrome"));
    caps.insert("goog:chromeOptions".into(), options);
    let client = ClientBuilder::new(HttpConnector::new())
        .capabilities(caps)
        .connect(&url)
        .await
        .expect("a Chromium session");
    Some((driver, client))
}

/// Takes a screenshot (the test asserts it is a PNG). It is saved to `docs/screenshots/` only
/// when `PORTICO_SCREENSHOTS=1`, so ordinary test runs leave the work tree clean.
async fn screenshot(client: &Client, name: &str) {
    let png = client.screenshot().await.expect("a screenshot");
    assert!(png.starts_with(b"\x89PNG"), "a PNG");
    if std::env::var_os("PORTICO_SCREENSHOTS").is_some_and(|v| v == "1") {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/screenshots");
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join(name), png).unwrap();
    }
}

/// Where the browser is and what it shows, for a failure message: the URL and the start of
/// the page's text.
async fn whereabouts(client: &Client) -> String {
    let url = client
        .current_url()
        .await
        .map_or_else(|e| format!("(no URL: {e})"), |u| u.to_string());
    let text = client
        .execute(
            "return document.body ? document.body.innerText : '';",
            vec![],
        )
        .await
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_default();
    let text: String = text.chars().take(600).collect();
    format!("at {url}, the page reads:\n{text}")
}

/// Waits for an element, also through a navigation that is still going on (when a search
/// meets it, chromedriver answers "aborted by navigation").
async fn wait_for(client: &Client, css: &str) -> fantoccini::elements::Element {
    let started = Instant::now();
    loop {
        match client.find(Locator::Css(css)).await {
            Ok(found) => return found,
            Err(e) if started.elapsed() >= WAIT => {
                panic!("{css} did not appear: {e}; {}", whereabouts(client).await)
            }
            Err(_) => {}
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The text of an element, once it appears (found again when the page replaced it between
/// the search and the read).
async fn text_of(client: &Client, css: &str) -> String {
    let started = Instant::now();
    loop {
        match wait_for(client, css).await.text().await {
            Ok(text) => return text,
            Err(e) if started.elapsed() < WAIT && page_was_changing(&e) => {
                tokio::time::sleep(Duration::from_millis(100)).await
            }
            Err(e) => panic!("could not read {css}: {e}; {}", whereabouts(client).await),
        }
    }
}

async fn wait_for_url(client: &Client, part: &str) {
    if let Err(e) = arrive(client, part).await {
        panic!("{e}");
    }
}

/// Waits for a URL containing `part`; the error says where the browser is instead.
async fn arrive(client: &Client, part: &str) -> Result<(), String> {
    let started = Instant::now();
    while !client
        .current_url()
        .await
        .is_ok_and(|u| u.as_str().contains(part))
    {
        if started.elapsed() >= WAIT {
            return Err(format!(
                "never reached a URL with {part}; {}",
                whereabouts(client).await
            ));
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Ok(())
}

async fn type_into(client: &Client, css: &str, text: &str) {
    let field = wait_for(client, css).await;
    if let Err(e) = field.clear().await {
        panic!("could not clear {css}: {e}; {}", whereabouts(client).await);
    }
    if let Err(e) = field.send_keys(text).await {
        panic!(
            "could not type into {css}: {e}; {}",
            whereabouts(client).await
        );
    }
}

/// Whether a WebDriver command failed because the page changed under it, so that trying
/// again cannot repeat an action that happened.
fn page_was_changing(e: &fantoccini::error::CmdError) -> bool {
    let e = e.to_string();
    ["stale element", "click intercepted", "not interactable"]
        .iter()
        .any(|m| e.contains(m))
}

/// Clicks an element once it appears. A click that meets the page still changing (the element
/// replaced, or covered for a moment) is tried again on the element found afresh.
async fn click(client: &Client, css: &str) {
    let started = Instant::now();
    loop {
        match wait_for(client, css).await.click().await {
            Ok(_) => return,
            Err(e) if started.elapsed() < WAIT && page_was_changing(&e) => {
                tokio::time::sleep(Duration::from_millis(100)).await
            }
            Err(e) => panic!("could not click {css}: {e}; {}", whereabouts(client).await),
        }
    }
}

async fn count(client: &Client, css: &str) -> usize {
    client.find_all(Locator::Css(css)).await.unwrap().len()
}

/// A form sent back with errors puts the focus on the first field in error.
async fn assert_focus(client: &Client, id: &str) {
    let focused = client
        .execute("return document.activeElement.id;", vec![])
        .await
        .unwrap();
    assert_eq!(
        focused,
        json!(id),
        "the focus is on the first field in error"
    );
}

/// axe-core (vendored from npm with its MPL-2.0 notice in `axe-LICENSE.txt`), injected into
/// each page the test checks. WebDriver's scripts are not subject to the page's
/// Content-Security-Policy, so the strict one Portico sends does not stop it.
const AXE: &str = include_str!("axe.min.js");

/// Runs axe-core on the document and hands back its violations, each with the CSS selectors
/// of the elements that fail.
const RUN_AXE: &str = r#"
const done = arguments[arguments.length - 1];
axe.run(document, { resultTypes: ["violations"] })
  .then(function (results) {
    done(results.violations.map(function (v) {
      return {
        id: v.id,
        impact: v.impact,
        help: v.help,
        nodes: v.nodes.map(function (n) { return n.target.join(" "); })
      };
    }));
  })
  .catch(function (e) { done({ error: String(e) }); });
"#;

/// Makes the pages prefer a dark colour scheme, or a light one, through the DevTools protocol
/// command chromedriver passes on.
async fn prefer_dark(client: &Client, driver: &Driver, dark: bool) {
    let session = client.session_id().await.unwrap().expect("a session");
    let scheme = if dark { "dark" } else { "light" };
    let res = reqwest::Client::new()
        .post(format!("{}/session/{session}/goog/cdp/execute", driver.url))
        .json(&json!({
            "cmd": "Emulation.setEmulatedMedia",
            "params": { "features": [{ "name": "prefers-color-scheme", "value": scheme }] },
        }))
        .send()
        .await
        .unwrap();
    assert!(res.status().is_success(), "{}", res.text().await.unwrap());
    let now = client
        .execute(
            "return matchMedia('(prefers-color-scheme: dark)').matches;",
            vec![],
        )
        .await
        .unwrap();
    assert_eq!(now, json!(dark), "the page now prefers {scheme}");
}

/// What axe-core does not check: each `aria-describedby` names elements that exist, and on
/// the admin pages each required field's label carries the visible mark.
const OWN_CHECKS: &str = r#"
const problems = [];
document.querySelectorAll("[aria-describedby]").forEach(function (e) {
  e.getAttribute("aria-describedby").split(/\s+/).forEach(function (id) {
    if (!document.getElementById(id)) {
      problems.push("aria-describedby of #" + e.id + " names no element: " + id);
    }
  });
});
if (document.querySelector(".topbar")) {
  document.querySelectorAll("input[required], textarea[required]").forEach(function (e) {
    const label = e.labels && e.labels[0];
    if (!label || !label.querySelector(".req")) {
      problems.push("required #" + e.id + " has no visible mark");
    }
  });
}
return problems;
"#;

/// Runs axe-core once on the page; its violations.
async fn run_axe(client: &Client, page: &str) -> Vec<serde_json::Value> {
    let found = client
        .execute_async(RUN_AXE, vec![])
        .await
        .unwrap_or_else(|e| panic!("axe-core did not run on {page}: {e}"));
    match found {
        serde_json::Value::Array(violations) => violations,
        other => panic!("axe-core failed on {page}: {other}"),
    }
}

fn is_serious(violation: &serde_json::Value) -> bool {
    matches!(violation["impact"].as_str(), Some("serious" | "critical"))
}

/// The automated accessibility check of every page the test visits. Violations of impact
/// "serious" or "critical" fail the test, all of them listed at the end; lesser ones are
/// printed.
#[derive(Default)]
struct Axe {
    pages: Vec<String>,
    serious: Vec<String>,
}

impl Axe {
    async fn check(&mut self, client: &Client, page: &str) {
        let injected = client
            .execute(
                &format!("if (!window.axe) {{\n{AXE}\n}}\nreturn typeof window.axe.run;"),
                vec![],
            )
            .await
            .unwrap_or_else(|e| panic!("axe-core could not be injected into {page}: {e}"));
        assert_eq!(injected, json!("function"), "axe-core loaded on {page}");
        let mut violations = run_axe(client, page).await;
        if violations.iter().any(is_serious) {
            // A page caught while it still settles (a font or a style arriving) is measured
            // again; what stays is reported.
            tokio::time::sleep(Duration::from_millis(500)).await;
            violations = run_axe(client, page).await;
        }
        let url = client.current_url().await.unwrap();
        let at = format!(
            "{page} ({}{})",
            url.path(),
            url.query().map_or(String::new(), |q| format!("?{q}"))
        );
        for v in &violations {
            let impact = v["impact"].as_str().unwrap_or("unknown");
            let nodes: Vec<&str> = v["nodes"]
                .as_array()
                .map(|n| n.iter().filter_map(|t| t.as_str()).collect())
                .unwrap_or_default();
            let line = format!(
                "{at}: {} [{impact}] {}: {}",
                v["id"].as_str().unwrap_or("?"),
                v["help"].as_str().unwrap_or(""),
                nodes.join(", ")
            );
            eprintln!("axe: {line}");
            if matches!(impact, "serious" | "critical") {
                self.serious.push(line);
            }
        }
        let own = client.execute(OWN_CHECKS, vec![]).await.unwrap();
        for problem in own.as_array().into_iter().flatten() {
            let line = format!("{at}: {}", problem.as_str().unwrap_or("?"));
            eprintln!("a11y: {line}");
            self.serious.push(line);
        }
        self.pages.push(at);
    }

    /// The user-facing pages follow the system's colour scheme (`color-scheme: light dark`):
    /// checked in both.
    async fn check_both_schemes(&mut self, client: &Client, driver: &Driver, page: &str) {
        self.check(client, page).await;
        prefer_dark(client, driver, true).await;
        self.check(client, &format!("{page}, dark")).await;
        prefer_dark(client, driver, false).await;
    }

    /// Fails the test listing every serious or critical violation found.
    fn assert_clean(&self) {
        eprintln!(
            "axe checked {} pages:\n  {}",
            self.pages.len(),
            self.pages.join("\n  ")
        );
        assert!(
            self.serious.is_empty(),
            "axe-core found {} serious or critical accessibility violations:\n{}",
            self.serious.len(),
            self.serious.join("\n")
        );
    }
}

#[tokio::test]
async fn an_admin_works_the_ui_in_a_real_browser() {
    let Some((driver, browser)) = start_browser().await else {
        return;
    };
    let db = TestDb::new(Backend::Sqlite).await.unwrap();
    // An upstream that logs its user in at once, so the browser can also sign in as a user.
    let upstream = Upstream::start().await;
    let issuer = upstream.issuer.clone();
    // Short waits between failed sign-ins, so the lockout is reached quickly.
    let app = spawn_app_with(&db, MasterKey::generate(), |s| {
        s.admin.delay_base_ms = 200;
        s.admin.account_lockout_failures = 4;
        // Deliver to the loopback receiver at once.
        crate::webhooks::fast(s, &[]);
        // A provider and clients declared in the configuration (read-only in the UI).
        s.providers = vec![provider("corp", &issuer, false)];
        s.clients = clients();
    })
    .await;
    create_admin(&app).await;
    let result = drive(&app, &driver, &browser).await;
    let _ = browser.close().await;
    app.stop();
    db.cleanup().await;
    result
}

async fn drive(app: &TestApp, driver: &Driver, browser: &Client) {
    let mut axe = Axe::default();

    // Signed out, the dashboard sends us to sign in.
    browser.goto(&app.url("/admin")).await.unwrap();
    wait_for(browser, "#email").await;
    assert!(
        browser
            .current_url()
            .await
            .unwrap()
            .path()
            .ends_with("/admin/sign-in")
    );
    screenshot(browser, "sign-in.png").await;
    axe.check(browser, "sign-in").await;

    // A wrong password is refused with a message.
    type_into(browser, "#email", EMAIL).await;
    type_into(browser, "#password", "not the password").await;
    click(browser, "#sign-in").await;
    let error = wait_for(browser, "#sign-in-error").await;
    assert!(error.text().await.unwrap().contains("wrong"));
    assert_focus(browser, "password").await;
    axe.check(browser, "sign-in, refused").await;

    // Sign in (after the short wait a failure imposes).
    tokio::time::sleep(Duration::from_millis(300)).await;
    type_into(browser, "#email", EMAIL).await;
    type_into(browser, "#password", PASSWORD).await;
    click(browser, "#sign-in").await;
    wait_for(browser, ".stats").await;
    assert!(browser.source().await.unwrap().contains(EMAIL));
    axe.check(browser, "dashboard, nothing yet").await;

    // Mint an API token: shown once on the page the form leads to, with a copy button (the
    // page's only script); reloaded, that page says it was shown once.
    browser.goto(&app.url("/admin/tokens")).await.unwrap();
    wait_for(browser, "#token-name").await;
    axe.check(browser, "API tokens, none yet").await;
    type_into(browser, "#token-name", "deploy bot").await;
    click(browser, "#mint-token").await;
    let token = text_of(browser, "#new-token").await;
    assert!(token.starts_with("pat_"), "{token}");
    let copy = wait_for(browser, "button[data-copy]").await;
    assert!(
        copy.is_displayed().await.unwrap(),
        "copy.js revealed the copy button"
    );
    screenshot(browser, "tokens.png").await;
    axe.check(browser, "API tokens, new token shown").await;
    browser.refresh().await.unwrap();
    wait_for(browser, "#gone").await;
    axe.check(browser, "API tokens, the secret already shown")
        .await;
    assert!(
        !browser.source().await.unwrap().contains(&token),
        "shown exactly once"
    );
    browser.goto(&app.url("/admin/tokens")).await.unwrap();
    wait_for(browser, "#tokens").await;
    assert!(!browser.source().await.unwrap().contains(&token));
    assert_eq!(count(browser, "#new-token").await, 0);
    axe.check(browser, "API tokens").await;
    let api = || async {
        reqwest::Client::new()
            .get(app.url("/admin/api/v1/keys"))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap()
            .status()
    };
    assert_eq!(api().await, 200, "the minted token works");

    // Revoke it: the button leads to a page that says what happens; Cancel changes nothing,
    // confirming revokes.
    click(browser, "#tokens a.danger").await;
    wait_for(browser, "#confirm").await;
    axe.check(browser, "revoking a token, the confirmation")
        .await;
    click(browser, "#cancel").await;
    wait_for(browser, "#tokens").await;
    assert_eq!(api().await, 200, "cancelled");
    click(browser, "#tokens a.danger").await;
    let asked = text_of(browser, "#consequences").await;
    assert!(asked.contains("refused (403)"), "{asked}");
    click(browser, "#confirm-action").await;
    wait_for_url(browser, "done=revoked").await;
    assert_eq!(api().await, 403, "revoked");

    // Rotate the signing keys from the keys page.
    browser.goto(&app.url("/admin/keys")).await.unwrap();
    wait_for(browser, "#keys").await;
    assert_eq!(count(browser, ".key-row").await, 3);
    click(browser, "#rotate-keys").await;
    wait_for(browser, "#rotated-notice").await;
    assert_eq!(count(browser, ".key-row").await, 6);
    screenshot(browser, "keys.png").await;
    axe.check(browser, "signing keys, rotated").await;

    // Create a client, then edit it on its own page: ticking a grant type, saving.
    browser.goto(&app.url("/admin/clients")).await.unwrap();
    wait_for(browser, "#clients").await;
    axe.check(browser, "clients").await;
    // A bad client ID comes back with the error beside its field, the focus on it.
    type_into(browser, "#client-client_id", "not an id").await;
    type_into(browser, "#client-name", "Wiki").await;
    click(browser, "#create-client").await;
    wait_for(browser, "#client-client_id[aria-invalid=true]").await;
    assert_focus(browser, "client-client_id").await;
    axe.check(browser, "clients, a refused new client").await;
    type_into(browser, "#client-client_id", "wiki").await;
    type_into(browser, "#client-name", "Wiki").await;
    type_into(browser, "#client-redirect_uris", "https://wiki.example/cb").await;
    click(browser, "#create-client").await;
    let client_secret = text_of(browser, "#client-secret").await;
    assert!(client_secret.len() >= 32, "{client_secret}");
    axe.check(browser, "clients, new client's secret shown")
        .await;
    // The secret is shown once: the list, loaded again, does not have it.
    browser.goto(&app.url("/admin/clients")).await.unwrap();
    wait_for(browser, "#clients").await;
    assert!(!browser.source().await.unwrap().contains(&client_secret));
    assert_eq!(count(browser, "#client-secret").await, 0);
    browser.goto(&app.url("/admin/clients/wiki")).await.unwrap();
    wait_for(browser, "#edit-client").await;
    axe.check(browser, "client").await;
    type_into(browser, "#client-name", "Team wiki").await;
    click(browser, "input[name=grant_types][value=client_credentials]").await;
    click(browser, "#save-client").await;
    wait_for(browser, "#notice").await;
    let wiki = portico::clients::repo::find(&app.state.store, "wiki")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(wiki.name, "Team wiki");
    assert_eq!(wiki.grant_types.len(), 3, "{:?}", wiki.grant_types);
    screenshot(browser, "client.png").await;
    axe.check(browser, "client, saved").await;
    browser
        .goto(&app.url(&format!("/admin/clients/{CLIENT_ID}")))
        .await
        .unwrap();
    wait_for(browser, "#read-only").await;
    axe.check(browser, "client managed by config").await;

    // The create form of every provider kind (OpenID Connect last).
    for kind in ["github", "google", "saml", "oidc"] {
        browser
            .goto(&app.url(&format!("/admin/providers?kind={kind}")))
            .await
            .unwrap();
        wait_for(browser, "#provider-form").await;
        axe.check(browser, &format!("new {kind} provider")).await;
    }
    // A refused one shows its errors beside the fields.
    type_into(browser, "#provider-id", "bad-oidc").await;
    type_into(browser, "#provider-issuer", "ftp://idp.example").await;
    type_into(browser, "#provider-client_id", "portico").await;
    click(browser, "#save-provider").await;
    wait_for(browser, "#provider-issuer[aria-invalid=true]").await;
    assert_focus(browser, "provider-issuer").await;
    axe.check(browser, "new oidc provider, refused").await;

    // What to register at the provider follows the ID as it is typed (provider-form.js); the
    // kind's setup guide is a link away.
    browser
        .goto(&app.url("/admin/providers?kind=google"))
        .await
        .unwrap();
    type_into(browser, "#provider-id", "workspace-2").await;
    let shown = text_of(browser, "#callback-url").await;
    assert_eq!(shown, app.url("/callback/workspace-2"));
    screenshot(browser, "provider-new.png").await;
    click(browser, ".guide-link a").await;
    wait_for(browser, ".guide h1").await;
    axe.check(browser, "google setup guide").await;

    // A GitHub Enterprise provider, through the form made for GitHub.
    browser
        .goto(&app.url("/admin/providers?kind=github"))
        .await
        .unwrap();
    type_into(browser, "#provider-id", "ghe").await;
    type_into(browser, "#provider-display_name", "GitHub Enterprise").await;
    type_into(browser, "#provider-client_id", "Iv1.0123456789abcdef").await;
    type_into(
        browser,
        "#provider-client_secret",
        "0123456789abcdef0123456789abcdef01234567",
    )
    .await;
    type_into(
        browser,
        "#provider-github_web_base",
        "https://github.corp.example",
    )
    .await;
    type_into(
        browser,
        "#provider-github_api_base",
        "https://github.corp.example/api/v3",
    )
    .await;
    type_into(browser, "#provider-allowed_orgs", "acme").await;
    click(browser, "#save-provider").await;
    let callback = text_of(browser, "#callback-url").await;
    assert_eq!(callback, app.url("/callback/ghe"));
    let ghe = portico::providers::repo::find(&app.state.store, "ghe")
        .await
        .unwrap()
        .expect("stored");
    assert_eq!(ghe.kind, portico::upstream::ProviderKind::Github);
    assert!(ghe.has_secret());
    assert!(
        !browser
            .source()
            .await
            .unwrap()
            .contains("0123456789abcdef0123456789abcdef01234567"),
        "the provider's secret is never shown"
    );
    screenshot(browser, "provider.png").await;
    axe.check(browser, "github provider, created").await;

    // A provider of each other kind, made through the API, on its own page (its edit form);
    // the token minted in the browser was revoked above, so this takes one of its own.
    let token = super::api_token(app, "providers").await;
    let idp = KeyPair::generate("idp");
    for body in [
        json!({ "id": "acme", "kind": "oidc", "display_name": "Acme SSO",
                "issuer": "https://idp.acme.example", "client_id": "portico",
                "client_secret": "s3cret-s3cret", "email_domains": ["acme.example"] }),
        json!({ "id": "workspace", "kind": "google", "display_name": "Google Workspace",
                "client_id": "1234.apps.googleusercontent.com", "client_secret": "s3cret",
                "hosted_domains": ["acme.example"] }),
        json!({ "id": "okta", "kind": "saml", "display_name": "Okta",
                "saml_idp_metadata_xml": metadata_xml("https://idp.example/saml", &[&idp]),
                "saml": { "name_id_format": "email" } }),
    ] {
        let id = body["id"].as_str().unwrap().to_owned();
        json_of(
            call(
                app,
                reqwest::Method::POST,
                Some(&token),
                "/providers",
                Some(body),
            )
            .await,
            201,
        )
        .await;
        browser
            .goto(&app.url(&format!("/admin/providers/{id}")))
            .await
            .unwrap();
        wait_for(browser, "#provider-form").await;
        axe.check(browser, &format!("provider {id}")).await;
    }
    browser
        .goto(&app.url("/admin/providers/corp"))
        .await
        .unwrap();
    wait_for(browser, "#provider-form").await;
    axe.check(browser, "provider managed by config").await;
    browser.goto(&app.url("/admin/providers")).await.unwrap();
    wait_for(browser, "#providers").await;
    screenshot(browser, "providers.png").await;
    axe.check(browser, "providers").await;

    // A webhook: its secret shown once, then a test ping that arrives signed and shows in
    // the delivery log.
    let receiver = Receiver::start(Vec::new()).await;
    browser.goto(&app.url("/admin/webhooks")).await.unwrap();
    wait_for(browser, "#new-webhook").await;
    axe.check(browser, "webhooks, none yet").await;
    type_into(browser, "#webhook-url", &receiver.url()).await;
    click(browser, r#"input[name=events][value="login.succeeded"]"#).await;
    click(browser, "#create-webhook").await;
    let secret = text_of(browser, "#webhook-secret").await;
    assert!(secret.starts_with("whsec_"), "{secret}");
    axe.check(browser, "webhooks, new endpoint's secret shown")
        .await;
    browser.goto(&app.url("/admin/webhooks")).await.unwrap();
    wait_for(browser, "#webhooks").await;
    assert!(!browser.source().await.unwrap().contains(&secret));
    assert_eq!(count(browser, "#webhook-secret").await, 0);
    axe.check(browser, "webhooks").await;
    click(browser, "#webhooks tbody a").await;
    click(browser, "#send-ping").await;
    let received = receiver.wait_for(1, WAIT).await;
    assert_eq!(received.len(), 1, "the ping arrived");
    assert!(
        signed_with(&secret, &received[0]),
        "signed with the shown secret"
    );
    let started = Instant::now();
    loop {
        browser.refresh().await.unwrap();
        let table = text_of(browser, "#deliveries").await;
        if table.contains("succeeded") {
            break;
        }
        assert!(
            started.elapsed() < WAIT,
            "the delivery log never showed it: {table}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    screenshot(browser, "webhook.png").await;
    axe.check(browser, "webhook").await;
    click(browser, "#deliveries tbody a").await;
    wait_for(browser, "#attempts").await;
    axe.check(browser, "webhook, a delivery's attempts").await;

    // The pages a user sees, in the same browser: the sign-in chooser, the sign-out
    // question, the signed-out page and an error page.
    user_pages(app, driver, browser, &mut axe).await;

    // The user that signed in, in the admin's users pages.
    browser.goto(&app.url("/admin/users")).await.unwrap();
    wait_for(browser, "#users").await;
    screenshot(browser, "users.png").await;
    axe.check(browser, "users").await;
    click(browser, "#users tbody a").await;
    wait_for(browser, "#identities").await;
    axe.check(browser, "user").await;

    // The audit log shows what happened, and filters by type.
    browser.goto(&app.url("/admin/audit")).await.unwrap();
    wait_for(browser, "#audit-entries").await;
    let source = browser.source().await.unwrap();
    for action in [
        "keys.rotated",
        "api_token.created",
        "admin.signed_in",
        "admin.sign_in_failed",
    ] {
        assert!(source.contains(action), "{action} on the audit page");
    }
    axe.check(browser, "audit log").await;
    wait_for(browser, "#f-type")
        .await
        .select_by_value("keys.rotated")
        .await
        .unwrap();
    click(browser, "#apply-filters").await;
    wait_for_url(browser, "type=keys.rotated").await;
    wait_for(browser, "#audit-entries").await;
    assert_eq!(count(browser, "#audit-entries tbody tr").await, 1);
    screenshot(browser, "audit.png").await;
    type_into(browser, "#f-since", "yesterday").await;
    click(browser, "#apply-filters").await;
    wait_for(browser, "#f-since[aria-invalid=true]").await;
    assert_focus(browser, "f-since").await;
    axe.check(browser, "audit log, a refused filter").await;

    // Sign-in events, filtered by a select.
    browser.goto(&app.url("/admin/sign-ins")).await.unwrap();
    wait_for(browser, "#f-outcome")
        .await
        .select_by_value("succeeded")
        .await
        .unwrap();
    click(browser, "#apply-filters").await;
    wait_for_url(browser, "outcome=succeeded").await;
    axe.check(browser, "sign-in events").await;

    // An admin page that does not exist.
    browser
        .goto(&app.url("/admin/clients/no-such-client"))
        .await
        .unwrap();
    wait_for(browser, "main h1").await;
    axe.check(browser, "admin error page").await;

    // The dashboard, now that there is something to show, wide and then narrow.
    browser.goto(&app.url("/admin")).await.unwrap();
    wait_for(browser, ".stats").await;
    screenshot(browser, "dashboard.png").await;
    axe.check(browser, "dashboard").await;
    skip_link(browser).await;
    narrow_screen(app, browser, &mut axe).await;

    // Sign out.
    click(browser, ".signout button").await;
    wait_for(browser, "#email").await;
    browser.goto(&app.url("/admin/keys")).await.unwrap();
    wait_for(browser, "#email").await;

    // Four wrong passwords in a row lock the account, and then the right one is refused too.
    // The waits outlast the per-IP delays, which also count the failure at the start.
    for (attempt, wait_ms) in [(1, 450), (2, 850), (3, 1650), (4, 0)] {
        type_into(browser, "#email", EMAIL).await;
        type_into(browser, "#password", &format!("wrong password {attempt}")).await;
        click(browser, "#sign-in").await;
        wait_for_url(browser, "/admin/sign-in").await;
        wait_for(browser, "#sign-in-error").await;
        tokio::time::sleep(Duration::from_millis(wait_ms)).await;
    }
    type_into(browser, "#email", EMAIL).await;
    type_into(browser, "#password", PASSWORD).await;
    click(browser, "#sign-in").await;
    // The refusal is audited once the response is on its way; then the page says why.
    let started = Instant::now();
    while audit_count(app, "admin.sign_in_refused").await == 0 {
        assert!(
            started.elapsed() < WAIT,
            "the right password was not refused"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let text = text_of(browser, "#sign-in-error").await;
    assert!(text.contains("locked"), "{text}");
    screenshot(browser, "sign-in-locked.png").await;
    assert!(!browser.source().await.unwrap().contains("class=\"stats\""));
    axe.check(browser, "sign-in, locked").await;

    axe.assert_clean();
}

/// A user signs in to the configured client through the chooser, then signs out.
async fn user_pages(app: &TestApp, driver: &Driver, browser: &Client, axe: &mut Axe) {
    let rp = relying_party(app, CLIENT_ID, Some(CLIENT_SECRET), REDIRECT).await;
    browser.goto(start_url(&rp, &[]).as_str()).await.unwrap();
    wait_for(browser, ".providers").await;
    wait_for_url(browser, "/login?req=").await;
    screenshot(browser, "login.png").await;
    axe.check_both_schemes(browser, driver, "sign-in chooser")
        .await;
    // An e-mail domain no provider serves: the chooser says so.
    type_into(browser, "#email", "someone@elsewhere.example").await;
    click(browser, ".realm button").await;
    wait_for_url(browser, "email=").await;
    wait_for(browser, "#email[aria-invalid=true]").await;
    assert_focus(browser, "email").await;
    axe.check_both_schemes(browser, driver, "sign-in chooser, unknown e-mail domain")
        .await;
    // The configured upstream signs the user in at once and Portico sends the browser to the
    // client, which is not listening: the user's session is what counts.
    click(browser, "a[href*='provider=corp']").await;
    wait_for_url(browser, "127.0.0.1:7777/cb").await;

    browser
        .goto(&app.url(&format!("/logout?client_id={CLIENT_ID}")))
        .await
        .unwrap();
    wait_for(browser, "#sign-out").await;
    axe.check_both_schemes(browser, driver, "sign-out question")
        .await;
    click(browser, "#sign-out").await;
    wait_for(browser, "#signed-out").await;
    axe.check_both_schemes(browser, driver, "signed out").await;

    browser
        .goto(&app.url(
            "/authorize?client_id=no-such-client&response_type=code&scope=openid\
             &redirect_uri=https%3A%2F%2Fapp.example%2Fcb",
        ))
        .await
        .unwrap();
    wait_for(browser, "main h1").await;
    axe.check_both_schemes(browser, driver, "error page of a bad authorization request")
        .await;
}

/// The first thing a keyboard reaches is a link past the menu to the page's content.
async fn skip_link(browser: &Client) {
    let skip = wait_for(browser, "a.skip-link").await;
    assert_eq!(
        skip.attr("href").await.unwrap().as_deref(),
        Some("#content")
    );
    assert_eq!(count(browser, "main#content").await, 1);
    let first = browser
        .execute(
            "return document.querySelector('a[href], button, input, summary') \
             === document.querySelector('a.skip-link');",
            vec![],
        )
        .await
        .unwrap();
    assert_eq!(first, json!(true), "the skip link comes first");
    // Hidden until focused, then on screen.
    let shown = browser
        .execute(
            "const a = document.querySelector('a.skip-link'); a.focus(); \
             const r = a.getBoundingClientRect(); \
             return r.width > 0 && r.left >= 0 && r.top >= 0 && r.bottom <= innerHeight;",
            vec![],
        )
        .await
        .unwrap();
    assert_eq!(shown, json!(true), "the focused skip link is on screen");
    skip.click().await.unwrap();
    let focused = browser
        .execute("return document.activeElement.id;", vec![])
        .await
        .unwrap();
    assert_eq!(focused, json!("content"), "the skip link moves the focus");
}

/// Where the parts of the top bar are, in CSS pixels of the viewport.
const TOPBAR_BOXES: &str = "
const box = function (css) {
  const e = document.querySelector(css);
  if (!e) { return null; }
  const r = e.getBoundingClientRect();
  return { top: r.top, bottom: r.bottom, left: r.left, right: r.right,
           width: r.width, height: r.height };
};
return { viewport: window.innerWidth, who: box('.who'), menu: box('.menu'),
         topbar: box('.topbar') };
";

/// At 390 px wide (a phone) the menu folds into one line that opens on demand, and who is
/// signed in stays on screen.
async fn narrow_screen(app: &TestApp, browser: &Client, axe: &mut Axe) {
    browser.set_window_size(390, 844).await.unwrap();
    let viewport = browser
        .execute("return window.innerWidth;", vec![])
        .await
        .unwrap();
    assert_eq!(viewport, json!(390), "a 390 px viewport");
    browser.refresh().await.unwrap();
    wait_for(browser, ".stats").await;
    browser
        .execute("window.scrollTo(0, 0);", vec![])
        .await
        .unwrap();
    let boxes = browser.execute(TOPBAR_BOXES, vec![]).await.unwrap();
    let who = &boxes["who"];
    let who_text = wait_for(browser, ".who").await;
    assert!(
        who_text.is_displayed().await.unwrap(),
        "who is signed in is shown at 390 px: {boxes}"
    );
    let who_says = who_text.text().await.unwrap();
    assert!(who_says.ends_with(EMAIL), "{who_says}");
    assert!(
        who["width"].as_f64().unwrap() > 0.0
            && who["left"].as_f64().unwrap() >= 0.0
            && who["right"].as_f64().unwrap() <= 390.0
            && who["bottom"].as_f64().unwrap() <= boxes["topbar"]["bottom"].as_f64().unwrap(),
        "who is signed in is inside the top bar, on screen: {boxes}"
    );
    let menu_height = boxes["menu"]["height"].as_f64().unwrap();
    assert!(
        menu_height <= 60.0,
        "the folded menu is {menu_height} px high: {boxes}"
    );
    let links = browser.find_all(Locator::Css(".menu nav a")).await.unwrap();
    assert_eq!(links.len(), 9);
    for link in &links {
        assert!(!link.is_displayed().await.unwrap(), "the menu is folded");
    }
    screenshot(browser, "dashboard-narrow.png").await;
    axe.check(browser, "dashboard at 390 px").await;
    // Opened, it shows every page and still who is signed in.
    click(browser, ".menu summary").await;
    for link in &links {
        assert!(
            link.is_displayed().await.unwrap(),
            "the opened menu shows its links"
        );
    }
    assert!(who_text.is_displayed().await.unwrap());
    screenshot(browser, "dashboard-narrow-menu.png").await;
    axe.check(browser, "dashboard at 390 px, menu opened").await;
    click(browser, ".menu summary").await;
    // Forms and wide tables at this width.
    for (path, ready) in [
        ("/admin/clients", "#new-client"),
        ("/admin/providers?kind=oidc", "#provider-form"),
        ("/admin/webhooks", "#webhooks"),
        ("/admin/audit", "#audit-entries"),
        ("/admin/sign-ins", "#f-outcome"),
    ] {
        browser.goto(&app.url(path)).await.unwrap();
        wait_for(browser, ready).await;
        axe.check(browser, &format!("{path} at 390 px")).await;
    }

    // Wide again, the menu is a row of links with nothing to open. (WebDriver calls what is
    // in a closed <details> hidden whatever CSS shows, so this asks what is on screen.)
    browser.set_window_size(1280, 900).await.unwrap();
    browser.goto(&app.url("/admin")).await.unwrap();
    wait_for(browser, ".stats").await;
    let on_screen = browser
        .execute(
            "return Array.from(document.querySelectorAll('.menu nav a')).map(function (a) { \
               const r = a.getBoundingClientRect(); \
               const hit = document.elementFromPoint(r.left + r.width / 2, r.top + r.height / 2); \
               return r.width > 0 && a.contains(hit); });",
            vec![],
        )
        .await
        .unwrap();
    assert_eq!(
        on_screen,
        json!(vec![true; 9]),
        "the wide menu shows its links"
    );
    let summary = wait_for(browser, ".menu summary").await;
    assert!(
        !summary.is_displayed().await.unwrap(),
        "nothing to open when wide"
    );
}
