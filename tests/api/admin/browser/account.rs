//! The account page in a real browser, as a user meets it: `/account` signed out goes through
//! the chooser and back; the page lists the connected account; "Connect" signs in at a second
//! provider (another stand-in) and the page lists both, with Disconnect on each. Each state is
//! checked with axe-core in both colour schemes; `PORTICO_SCREENSHOTS=1` saves
//! `docs/screenshots/account.png`.

use portico::crypto::MasterKey;

use super::{Axe, arrive, click, count, screenshot, start_browser, wait_for, whereabouts};
use crate::helpers::{Backend, TestApp, TestDb, spawn_app_with};
use crate::oidc_support::{clients, provider};
use crate::upstream_idp::{UpUser, Upstream};

#[tokio::test]
async fn a_user_connects_a_second_account_in_a_real_browser() {
    let Some((driver, browser)) = start_browser().await else {
        return;
    };
    let db = TestDb::new(Backend::Sqlite).await.unwrap();
    let corp = Upstream::start().await;
    corp.login_as(UpUser::new("ada", "ada@corp.example"));
    let other = Upstream::start().await;
    other.login_as(UpUser::new("ada-elsewhere", "ada@partner.example"));
    let (a, b) = (corp.issuer.clone(), other.issuer.clone());
    let app = spawn_app_with(&db, MasterKey::generate(), move |s| {
        let mut work = provider("corp", &a, false);
        work.display_name = Some("Corp Workspace".into());
        let mut partner = provider("partner", &b, false);
        partner.display_name = Some("Partner Login".into());
        partner.email_domains = vec!["partner.example".into()];
        s.providers = vec![work, partner];
        s.clients = clients();
    })
    .await;
    walk(&app, &driver, &browser).await;
    let _ = browser.close().await;
    app.stop();
    db.cleanup().await;
}

/// Waits for the URL to contain `part`, failing with where the browser is instead.
async fn at(browser: &fantoccini::Client, part: &str) {
    if let Err(e) = arrive(browser, part).await {
        panic!("{e}");
    }
}

async fn walk(app: &TestApp, driver: &super::Driver, browser: &fantoccini::Client) {
    let mut axe = Axe::default();

    // Signed out: the chooser, which leads back to the account page.
    browser.goto(&app.url("/account")).await.unwrap();
    at(browser, "/login?req=").await;
    wait_for(browser, ".providers").await;
    click(browser, "a[href*='provider=corp']").await;
    wait_for(browser, "#connect-partner").await;
    at(browser, "/account").await;
    assert_eq!(
        count(browser, ".identity").await,
        1,
        "{}",
        whereabouts(browser).await
    );
    assert_eq!(count(browser, "#last-identity").await, 1);
    axe.check_both_schemes(browser, driver, "account page, one account")
        .await;

    // Connect the second provider: its sign-in, the question naming the account, then back
    // to the page, which lists both.
    click(browser, "#connect-partner").await;
    wait_for(browser, "#confirm-connect").await;
    axe.check_both_schemes(browser, driver, "connect confirmation")
        .await;
    click(browser, "#confirm-connect").await;
    at(browser, "done=connected").await;
    wait_for(browser, "#account-notice").await;
    wait_for(browser, "#disconnect-partner").await;
    assert_eq!(
        count(browser, ".identity").await,
        2,
        "{}",
        whereabouts(browser).await
    );
    assert_eq!(count(browser, "#connect-partner").await, 0);
    let source = browser.source().await.unwrap();
    assert!(
        source.contains("ada@partner.example"),
        "{}",
        whereabouts(browser).await
    );
    screenshot(browser, "account.png").await;
    axe.check_both_schemes(browser, driver, "account page, two accounts")
        .await;

    // Disconnect it again (the sign-in is fresh: no second sign-in is asked).
    click(browser, "#disconnect-partner").await;
    at(browser, "done=disconnected").await;
    wait_for(browser, "#connect-partner").await;
    assert_eq!(
        count(browser, ".identity").await,
        1,
        "{}",
        whereabouts(browser).await
    );
    axe.check(browser, "account page, disconnected").await;

    axe.assert_clean();
}
