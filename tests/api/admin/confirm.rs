//! Every destructive action of the admin UI asks first, as a newcomer or a script meets it: the
//! button is a link to a confirmation page that names the object and says what happens; a POST
//! without the page's `confirm=yes` (an old form, a scripted request) answers with that same
//! page and changes nothing; confirmed, the action is done and audited as before. Rotating the
//! signing keys breaks nothing, so it stays one step and the page says why.

use reqwest::Method;
use serde_json::json;

use super::{api_token, audit_count, call, create_admin, csrf_in, json_of, page, signed_in};
use crate::helpers::{Backend, TestApp, TestDb, spawn_app};
use crate::on_both_backends;

on_both_backends!(
    deleting_a_client_or_rotating_its_secret_asks_first,
    deleting_a_provider_asks_first,
    disabling_a_user_or_ending_its_sessions_asks_first,
    deleting_a_webhook_or_rotating_its_secret_asks_first,
    revoking_an_api_token_asks_first,
);

/// The confirmation of one action: where it is asked, where it posts, where Cancel goes.
struct Asked<'a> {
    page: &'a str,
    action: &'a str,
    cancel: &'a str,
}

/// Asks first: the confirmation page, and a post to the action without `confirm=yes` (none, or
/// another value), all answer 200 with the same page, which names the object and the
/// consequence (`says`), confirms with a CSRF-protected form to the action and cancels back.
/// `confirm=yes` without the CSRF token is refused.
async fn asks(app: &TestApp, browser: &reqwest::Client, asked: &Asked<'_>, says: &[&str]) {
    let csrf = csrf_in(&page(app, browser, "/admin").await);
    let mut answers = vec![page(app, browser, asked.page).await];
    for form in [
        vec![("csrf", csrf.as_str())],
        vec![("csrf", &csrf), ("confirm", "no")],
    ] {
        let res = browser
            .post(app.url(asked.action))
            .form(&form)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 200, "POST {} {form:?}", asked.action);
        answers.push(res.text().await.unwrap());
    }
    for html in &answers {
        assert!(html.contains("id=\"confirm\""), "{html}");
        let form = format!("method=\"post\" action=\"{}\"", asked.action);
        assert!(html.contains(&form), "{form}: {html}");
        assert!(html.contains("name=\"confirm\" value=\"yes\""), "{html}");
        assert!(html.contains(&format!("value=\"{csrf}\"")), "{html}");
        let cancel = format!("href=\"{}\" id=\"cancel\"", asked.cancel);
        assert!(html.contains(&cancel), "{cancel}: {html}");
        for words in says {
            assert!(html.contains(words), "says `{words}`: {html}");
        }
    }
    let res = browser
        .post(app.url(asked.action))
        .form(&[("confirm", "yes")])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 403, "confirmed without its CSRF token");
}

/// Confirms: the post the confirmation page's form sends.
async fn confirm(app: &TestApp, browser: &reqwest::Client, action: &str) -> reqwest::Response {
    let csrf = csrf_in(&page(app, browser, "/admin").await);
    browser
        .post(app.url(action))
        .form(&[("csrf", csrf.as_str()), ("confirm", "yes")])
        .send()
        .await
        .unwrap()
}

async fn admin_and_token(db: &TestDb) -> (TestApp, reqwest::Client, String) {
    let app = spawn_app(db).await;
    create_admin(&app).await;
    let browser = signed_in(&app).await;
    let token = api_token(&app, "setup").await;
    (app, browser, token)
}

async fn deleting_a_client_or_rotating_its_secret_asks_first(db: &TestDb) {
    let (app, browser, token) = admin_and_token(db).await;
    let body = json!({
        "client_id": "wiki",
        "name": "Team wiki",
        "redirect_uris": ["https://wiki.example/cb"],
    });
    let created = call(&app, Method::POST, Some(&token), "/clients", Some(body)).await;
    let created = json_of(created, 201).await;
    let secret = created["client_secret"].as_str().unwrap().to_owned();
    let stored = || async {
        portico::clients::repo::find(&app.state.store, "wiki")
            .await
            .unwrap()
    };

    // The buttons on the list and on the client's page are links to the confirmations.
    for path in ["/admin/clients", "/admin/clients/wiki"] {
        let html = page(&app, &browser, path).await;
        assert!(
            html.contains("href=\"/admin/clients/wiki/delete\""),
            "{html}"
        );
        assert!(html.contains("href=\"/admin/clients/wiki/secret/rotate\""));
        assert!(
            !html.contains("action=\"/admin/clients/wiki/delete\""),
            "{html}"
        );
    }

    let rotate = Asked {
        page: "/admin/clients/wiki/secret/rotate",
        action: "/admin/clients/wiki/secret",
        cancel: "/admin/clients/wiki",
    };
    let says = [
        "Rotate the secret of the client “Team wiki”?",
        "<dd class=\"mono\">wiki</dd>",
        "The current secret stops working now",
        "until they are updated with the new secret",
    ];
    asks(&app, &browser, &rotate, &says).await;
    assert!(
        stored().await.unwrap().secret_matches(&secret),
        "not rotated"
    );
    assert_eq!(audit_count(&app, "client.secret_rotated").await, 0);

    let delete = Asked {
        page: "/admin/clients/wiki/delete",
        action: "/admin/clients/wiki/delete",
        cancel: "/admin/clients/wiki",
    };
    let says = [
        "Delete the client “Team wiki”?",
        "<dd class=\"mono\">wiki</dd>",
        "can no longer sign users in",
        "The refresh tokens issued to it are revoked now",
        "cannot be undone",
    ];
    asks(&app, &browser, &delete, &says).await;
    assert!(stored().await.is_some(), "not deleted");
    assert_eq!(audit_count(&app, "client.deleted").await, 0);

    let res = confirm(&app, &browser, delete.action).await;
    assert_eq!(res.status(), 303);
    assert_eq!(res.headers()["location"], "/admin/clients?done=deleted");
    assert!(stored().await.is_none());
    assert_eq!(audit_count(&app, "client.deleted").await, 1);
    // Gone: its confirmation is a 404 like its page.
    let res = browser.get(app.url(delete.page)).send().await.unwrap();
    assert_eq!(res.status(), 404);
    app.stop();
}

async fn deleting_a_provider_asks_first(db: &TestDb) {
    let app = super::providers::spawn_with_config_provider(db).await;
    create_admin(&app).await;
    let browser = signed_in(&app).await;
    let token = api_token(&app, "setup").await;
    let body = json!({ "id": "corp", "kind": "github", "display_name": "Corp GitHub",
                       "client_id": "c", "client_secret": "s" });
    let res = call(&app, Method::POST, Some(&token), "/providers", Some(body)).await;
    json_of(res, 201).await;
    let stored = || async {
        portico::providers::repo::find(&app.state.store, "corp")
            .await
            .unwrap()
    };

    let html = page(&app, &browser, "/admin/providers/corp").await;
    assert!(
        html.contains(
            "href=\"/admin/providers/corp/delete\" class=\"button danger\" id=\"delete-provider\""
        ),
        "{html}"
    );
    let delete = Asked {
        page: "/admin/providers/corp/delete",
        action: "/admin/providers/corp/delete",
        cancel: "/admin/providers/corp",
    };
    let says = [
        "Delete the provider “Corp GitHub”?",
        "<dd class=\"mono\">corp</dd>",
        "their identities at this provider",
        "The SSO sessions that came through it end now",
        "the refresh tokens issued from those identities are revoked",
        "disable it instead",
    ];
    asks(&app, &browser, &delete, &says).await;
    assert!(stored().await.is_some(), "not deleted");
    assert_eq!(audit_count(&app, "provider.deleted").await, 0);

    let res = confirm(&app, &browser, delete.action).await;
    assert_eq!(res.status(), 303);
    assert_eq!(res.headers()["location"], "/admin/providers?done=deleted");
    assert!(stored().await.is_none());
    assert_eq!(audit_count(&app, "provider.deleted").await, 1);

    // A provider from portico.toml cannot be deleted here: nothing to confirm.
    let res = browser
        .get(app.url("/admin/providers/from-config/delete"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 400);
    app.stop();
}

async fn disabling_a_user_or_ending_its_sessions_asks_first(db: &TestDb) {
    let app = spawn_app(db).await;
    create_admin(&app).await;
    let browser = signed_in(&app).await;
    super::users::eve_with_a_session(&app).await;
    let disabled = || async {
        sqlx::query_scalar::<_, i64>("SELECT disabled FROM users WHERE id = 'usr-eve'")
            .fetch_one(app.state.store.pool())
            .await
            .unwrap()
    };
    let ended = || async {
        crate::oidc_support::events(&app, "session.ended")
            .await
            .len()
    };

    let html = page(&app, &browser, "/admin/users/usr-eve").await;
    assert!(
        html.contains(
            "href=\"/admin/users/usr-eve/disable\" class=\"button danger\" id=\"disable-user\""
        ),
        "{html}"
    );
    assert!(html.contains(
        "href=\"/admin/users/usr-eve/sessions/end\" class=\"button subtle\" id=\"end-sessions\""
    ));

    let disable = Asked {
        page: "/admin/users/usr-eve/disable",
        action: "/admin/users/usr-eve/disable",
        cancel: "/admin/users/usr-eve",
    };
    let says = [
        "Disable the user eve@example.com?",
        "<dd class=\"mono\">usr-eve</dd>",
        "Its live SSO sessions end now (1)",
        "Its refresh tokens are revoked (0)",
        "access tokens already issued are refused from now on",
        "cannot sign in",
    ];
    asks(&app, &browser, &disable, &says).await;
    let end = Asked {
        page: "/admin/users/usr-eve/sessions/end",
        action: "/admin/users/usr-eve/sessions/end",
        cancel: "/admin/users/usr-eve",
    };
    let says = [
        "End the sessions of the user eve@example.com?",
        "Its live SSO sessions end now (1)",
        "Its refresh tokens are revoked (0)",
        "can sign in again",
    ];
    asks(&app, &browser, &end, &says).await;
    assert_eq!(disabled().await, 0, "not disabled");
    assert_eq!(ended().await, 0, "no session ended");
    assert_eq!(audit_count(&app, "user.disabled").await, 0);
    assert_eq!(audit_count(&app, "user.sessions_ended").await, 0);

    let res = confirm(&app, &browser, end.action).await;
    assert_eq!(res.status(), 303);
    assert_eq!(
        res.headers()["location"],
        "/admin/users/usr-eve?done=sessions_ended"
    );
    assert_eq!(ended().await, 1);
    assert_eq!(audit_count(&app, "user.sessions_ended").await, 1);
    let res = confirm(&app, &browser, disable.action).await;
    assert_eq!(res.status(), 303);
    assert_eq!(
        res.headers()["location"],
        "/admin/users/usr-eve?done=disabled"
    );
    assert_eq!(disabled().await, 1);
    assert_eq!(audit_count(&app, "user.disabled").await, 1);

    // Already disabled: nothing to confirm, the user's page says so.
    let res = browser.get(app.url(disable.page)).send().await.unwrap();
    assert_eq!(res.status(), 303);
    assert_eq!(
        res.headers()["location"],
        "/admin/users/usr-eve?done=disabled"
    );
    app.stop();
}

async fn deleting_a_webhook_or_rotating_its_secret_asks_first(db: &TestDb) {
    let app = super::webhooks::spawn(db, "https://crm.example.com/hooks", |_| {}).await;
    create_admin(&app).await;
    let browser = signed_in(&app).await;
    let token = api_token(&app, "setup").await;
    let body = json!({ "url": "https://hooks.example.com/portico", "events": ["user.created"] });
    let res = call(&app, Method::POST, Some(&token), "/webhooks", Some(body)).await;
    let id = json_of(res, 201).await["id"].as_str().unwrap().to_owned();
    let sealed = || async {
        sqlx::query_scalar::<_, Option<Vec<u8>>>(
            "SELECT secret FROM webhook_endpoints WHERE id = $1",
        )
        .bind(&id)
        .fetch_optional(app.state.store.pool())
        .await
        .unwrap()
    };
    let before = sealed().await.expect("stored");

    let endpoint = format!("/admin/webhooks/{id}");
    let html = page(&app, &browser, &endpoint).await;
    let link =
        format!("href=\"{endpoint}/secret/rotate\" class=\"button subtle\" id=\"rotate-secret\"");
    assert!(html.contains(&link), "{html}");
    assert!(html.contains(&format!(
        "href=\"{endpoint}/delete\" class=\"button danger\" id=\"delete-webhook\""
    )));

    let (rotate_page, secret, delete) = (
        format!("{endpoint}/secret/rotate"),
        format!("{endpoint}/secret"),
        format!("{endpoint}/delete"),
    );
    let rotate = Asked {
        page: &rotate_page,
        action: &secret,
        cancel: &endpoint,
    };
    let says = [
        "Rotate the signing secret of the endpoint https://hooks.example.com/portico?",
        "A new secret signs every delivery from now on",
        "The current secret keeps signing alongside it for 24 hours",
        "receivers still verifying with it reject every delivery",
    ];
    asks(&app, &browser, &rotate, &says).await;
    assert_eq!(sealed().await.unwrap(), before, "not rotated");
    assert_eq!(audit_count(&app, "webhook.secret_rotated").await, 0);

    let delete = Asked {
        page: &delete,
        action: &delete,
        cancel: &endpoint,
    };
    let says = [
        "Delete the endpoint https://hooks.example.com/portico?",
        "It receives no more events",
        "its delivery log are deleted",
        "cannot be undone",
    ];
    asks(&app, &browser, &delete, &says).await;
    assert!(sealed().await.is_some(), "not deleted");
    assert_eq!(audit_count(&app, "webhook.deleted").await, 0);

    let res = confirm(&app, &browser, delete.action).await;
    assert_eq!(res.status(), 303);
    assert_eq!(res.headers()["location"], "/admin/webhooks?done=deleted");
    assert!(sealed().await.is_none());
    assert_eq!(audit_count(&app, "webhook.deleted").await, 1);

    // The endpoint from portico.toml cannot be deleted here: nothing to confirm.
    let res = browser
        .get(app.url("/admin/webhooks/crm/delete"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 400);
    app.stop();
}

async fn revoking_an_api_token_asks_first(db: &TestDb) {
    let (app, browser, _) = admin_and_token(db).await;
    let ci = api_token(&app, "ci").await;
    let id: String = sqlx::query_scalar("SELECT id FROM admin_api_tokens WHERE name = 'ci'")
        .fetch_one(app.state.store.pool())
        .await
        .unwrap();
    let works = || async {
        call(&app, Method::GET, Some(&ci), "/keys", None)
            .await
            .status()
    };

    let revoke_path = format!("/admin/tokens/{id}/revoke");
    let html = page(&app, &browser, "/admin/tokens").await;
    assert!(html.contains(&format!("href=\"{revoke_path}\"")), "{html}");
    let revoke = Asked {
        page: &revoke_path,
        action: &revoke_path,
        cancel: "/admin/tokens",
    };
    let says = [
        "Revoke the API token “ci”?",
        &ci[..8],
        "Every call made with it is refused (403) from now on",
        "cannot be undone",
    ];
    asks(&app, &browser, &revoke, &says).await;
    assert_eq!(works().await, 200, "not revoked");
    assert_eq!(audit_count(&app, "api_token.revoked").await, 0);

    let res = confirm(&app, &browser, revoke.action).await;
    assert_eq!(res.status(), 303);
    assert_eq!(res.headers()["location"], "/admin/tokens?done=revoked");
    assert_eq!(works().await, 403);
    assert_eq!(audit_count(&app, "api_token.revoked").await, 1);

    // Already revoked: nothing to confirm.
    let res = browser.get(app.url(revoke.page)).send().await.unwrap();
    assert_eq!(res.status(), 303);
    assert_eq!(res.headers()["location"], "/admin/tokens?done=revoked");
    app.stop();
}

/// Rotating the signing keys breaks nothing (retired keys stay published until the tokens they
/// signed have expired): one click, and the page says what happens.
#[tokio::test]
async fn rotating_signing_keys_needs_no_confirmation_and_says_why() {
    let Some(db) = TestDb::new(Backend::Sqlite).await else {
        return;
    };
    let app = spawn_app(&db).await;
    create_admin(&app).await;
    let browser = signed_in(&app).await;
    let html = page(&app, &browser, "/admin/keys").await;
    assert!(
        html.contains("Tokens already issued keep verifying"),
        "{html}"
    );
    assert!(html.contains("action=\"/admin/keys/rotate\""));
    let res = browser
        .post(app.url("/admin/keys/rotate"))
        .form(&[("csrf", csrf_in(&html).as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 303);
    assert_eq!(audit_count(&app, "keys.rotated").await, 1);
    app.stop();
    db.cleanup().await;
}
