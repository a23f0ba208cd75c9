//! The claims pipeline of each provider (issue #17): nested group claims read by path, the
//! prefix applied first, allow/deny, renames, the cap, and static and extra claims, all the way
//! to the ID token and userinfo; the same group name from two directories never meeting as one;
//! SAML multi-valued attributes; the preview in the admin API and pages; bad rules refused at
//! start and by the API.

use openidconnect::{OAuth2TokenResponse, TokenResponse};
use reqwest::Method;
use serde_json::{Value, json};

use crate::admin::{api_token, call, create_admin, csrf_in, error, json_of, page, signed_in};
use crate::federation_flow::{full_login, github_provider, login_at, spawn_with};
use crate::helpers::{TestApp, TestDb, spawn_app_with, try_spawn_app_with};
use crate::oidc_support::{
    Authorized, CLIENT_ID, CLIENT_SECRET, REDIRECT, clients, exchange, jwt_claims, param, provider,
    relying_party, userinfo_of,
};
use crate::on_both_backends;
use crate::saml_support::{Saml, log_in};
use crate::standins::github::{GithubStandIn, Scenario};
use crate::upstream_idp::{UpUser, Upstream};
use portico::crypto::MasterKey;

on_both_backends!(
    nested_groups_reach_the_tokens_prefixed_filtered_renamed_and_capped_with_static_claims,
    the_same_group_from_two_providers_stays_apart,
    saml_multi_valued_groups_go_through_the_pipeline,
    github_teams_go_through_the_pipeline,
    the_admin_api_previews_claims_and_refuses_bad_input,
    the_admin_page_previews_claims_behind_its_csrf_token,
    bad_claim_rules_are_refused_at_start_and_by_the_api,
    namespaces_may_not_overlap_and_unprefixed_providers_are_warned_about,
    an_unprefixed_provider_never_hands_out_another_providers_groups,
);

const SCOPES: &[&str] = &["email", "profile", "groups"];

/// Logs in through `provider`: the ID token's claims and userinfo's.
async fn claims_via(app: &TestApp, provider: &str) -> (Value, Value) {
    let rp = relying_party(app, CLIENT_ID, Some(CLIENT_SECRET), REDIRECT).await;
    let (arrival, nonce, verifier) = login_at(app, &rp, provider, SCOPES).await;
    let arrived = arrival.url();
    let code = param(&arrived, "code").unwrap_or_else(|| panic!("no code in {arrived}"));
    let auth = Authorized {
        code,
        nonce,
        verifier,
    };
    let (tokens, _) = exchange(&rp, auth).await;
    let id = jwt_claims(&tokens.id_token().unwrap().to_string());
    let info = userinfo_of(app, tokens.access_token().secret()).await;
    (id, info)
}

/// An upstream user whose ID token carries `{"org": {"groups": groups, "dept": "r&d"}}`.
fn nested(sub: &str, groups: &[&str]) -> UpUser {
    let mut user = UpUser::new(sub, &format!("{sub}@corp.example"));
    user.groups = vec!["flat-group".into()];
    user.extra.insert(
        "org".into(),
        json!({"groups": groups, "dept": "r&d", "ignored": [1, 2]}),
    );
    user
}

async fn nested_groups_reach_the_tokens_prefixed_filtered_renamed_and_capped_with_static_claims(
    db: &TestDb,
) {
    let upstream = Upstream::start().await;
    let issuer = upstream.issuer.clone();
    let app = spawn_app_with(db, MasterKey::generate(), move |s| {
        let mut p = provider("corp", &issuer, false);
        p.options["claims"]["groups"] = "/org/groups".into();
        p.options["group_prefix"] = "corp:".into();
        p.options["group_allow"] = json!(["corp:eng-*", "corp:admin", "/corp:team-[0-9]+/"]);
        p.options["group_deny"] = json!(["corp:eng-secret"]);
        p.options["group_rename"] = json!({"corp:eng-web": "corp:web-team"});
        p.options["max_groups"] = 4.into();
        p.options["static_claims"] = json!({"department": "engineering", "tier": 2});
        p.options["extra_claims"] = json!({"division": "org.dept"});
        s.providers = vec![p];
        s.clients = clients();
    })
    .await;
    // Right after a start, `portico config diff` plans nothing: the rules compare equal.
    let state = &app.state;
    let plan = portico::declared::diff(&state.store, &state.sealer, &state.settings)
        .await
        .unwrap();
    assert!(plan.changes.is_empty(), "{plan}");
    upstream.login_as(nested(
        "alice",
        &[
            "eng-web",
            "eng-secret",
            "sales",
            "admin",
            "eng-web",
            "team-1",
            "team-2",
            "team-x",
        ],
    ));
    let (id, info) = claims_via(&app, "corp").await;
    // Prefixed first, filtered (deny wins), renamed, each once, cut at 4 in order.
    let expected = json!(["corp:web-team", "corp:admin", "corp:team-1", "corp:team-2"]);
    assert_eq!(id["groups"], expected, "{id}");
    assert_eq!(info["groups"], expected, "{info}");
    for claims in [&id, &info] {
        assert_eq!(claims["department"], "engineering");
        assert_eq!(claims["tier"], 2);
        assert_eq!(claims["division"], "r&d");
        assert!(claims.get("ignored").is_none());
    }
    // The flat `groups` claim is not read: the path points elsewhere.
    assert!(!id.to_string().contains("flat-group"));
    app.stop();
}

async fn the_same_group_from_two_providers_stays_apart(db: &TestDb) {
    let upstream = Upstream::start().await;
    let issuer = upstream.issuer.clone();
    let app = spawn_app_with(db, MasterKey::generate(), move |s| {
        let mut corp = provider("corp", &issuer, false);
        corp.options["group_prefix"] = "corp:".into();
        let mut other = provider("other", &issuer, false);
        other.options["group_prefix"] = "other:".into();
        s.providers = vec![corp, other];
        s.clients = clients();
    })
    .await;
    // The attacker controls a directory (`other`) and names a group there `admin`, and another
    // one after the prefix of the real one.
    let mut mallory = UpUser::new("mallory", "mallory@other.example");
    mallory.groups = vec!["admin".into(), "corp:admin".into()];
    upstream.login_as(mallory);
    let (id, info) = claims_via(&app, "other").await;
    assert_eq!(id["groups"], json!(["other:admin", "other:corp:admin"]));
    assert_eq!(info["groups"], id["groups"]);

    let mut alice = UpUser::new("alice", "alice@corp.example");
    alice.groups = vec!["admin".into()];
    upstream.login_as(alice);
    let (id, info) = claims_via(&app, "corp").await;
    assert_eq!(id["groups"], json!(["corp:admin"]));
    assert_eq!(info["groups"], json!(["corp:admin"]));
    // No token ever said a bare `admin`.
    let bare: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM users WHERE groups LIKE '%\"admin\"%' \
         OR (groups LIKE '%\"corp:admin\"%' AND id IN \
         (SELECT user_id FROM identities WHERE provider_id = 'other'))",
    )
    .fetch_one(app.state.store.pool())
    .await
    .unwrap();
    assert_eq!(bare, 0);
    app.stop();
}

/// The attack: `plain` has no prefix, and its directory (the attacker's) names a group
/// `corp:admin`, the real `corp` provider's namespace that the apps trust.
async fn an_unprefixed_provider_never_hands_out_another_providers_groups(db: &TestDb) {
    let upstream = Upstream::start().await;
    let issuer = upstream.issuer.clone();
    let app = spawn_app_with(db, MasterKey::generate(), move |s| {
        let mut corp = provider("corp", &issuer, false);
        corp.options["group_prefix"] = "corp:".into();
        let plain = provider("plain", &issuer, false);
        s.providers = vec![corp, plain];
        s.clients = clients();
    })
    .await;
    let mut mallory = UpUser::new("mallory", "mallory@plain.example");
    mallory.groups = vec!["corp:admin".into(), "dev".into(), "corp:".into()];
    upstream.login_as(mallory);
    let (id, info) = claims_via(&app, "plain").await;
    assert_eq!(id["groups"], json!(["dev"]), "{id}");
    assert_eq!(info["groups"], json!(["dev"]), "{info}");
    // Nothing stored says it either (the user's row, the identity's).
    let stored: i64 = sqlx::query_scalar(
        "SELECT (SELECT COUNT(*) FROM users WHERE groups LIKE '%corp:%') + \
         (SELECT COUNT(*) FROM identities WHERE groups LIKE '%corp:%')",
    )
    .fetch_one(app.state.store.pool())
    .await
    .unwrap();
    assert_eq!(stored, 0);

    // The preview drops them too, and says how many (never which).
    create_admin(&app).await;
    let token = api_token(&app, "preview").await;
    let claims = json!({"sub": "m", "groups": ["corp:admin", "dev"]});
    let body = json_of(
        call(
            &app,
            Method::POST,
            Some(token.as_str()),
            "/providers/plain/claims-preview",
            Some(json!({"claims": claims})),
        )
        .await,
        200,
    )
    .await;
    assert_eq!(body["groups"], json!(["dev"]), "{body}");
    let notes = body["notes"].as_array().unwrap();
    assert_eq!(notes.len(), 1, "{body}");
    let note = notes[0].as_str().unwrap();
    assert!(
        note.contains("1 groups start with another provider's group_prefix"),
        "{note}"
    );
    assert!(!note.contains("corp:admin"), "{note}");
    // And the page shows the note.
    let browser = signed_in(&app).await;
    let html = page(&app, &browser, "/admin/providers/plain").await;
    let csrf = csrf_in(&html);
    let res = browser
        .post(app.url("/admin/providers/plain/claims-preview"))
        .form(&[
            ("csrf", csrf.as_str()),
            ("claims", claims.to_string().as_str()),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let html = res.text().await.unwrap();
    assert!(
        html.contains(">dev<") && !html.contains(">corp:admin<"),
        "{html}"
    );
    assert!(
        html.contains("class=\"alert preview-note\"")
            && html.contains("1 groups start with another provider&#39;s group_prefix"),
        "{html}"
    );
    app.stop();
}

async fn saml_multi_valued_groups_go_through_the_pipeline(db: &TestDb) {
    let saml = Saml::start(db, |p| {
        p.options["group_prefix"] = "acme:".into();
        p.options["group_rename"] = json!({"acme:admins": "acme:admin-team"});
        p.options["static_claims"] = json!({"idp": "acme", "staff": true});
        p.options["extra_claims"] = json!({"mail_list": "mail"});
    })
    .await;
    let (started, _) = log_in(&saml).await;
    let (tokens, _) = exchange(&saml.rp, started.auth).await;
    let id = jwt_claims(&tokens.id_token().unwrap().to_string());
    // The stand-in's `groups` attribute has two values: engineering and admins.
    assert_eq!(id["groups"], json!(["acme:admin-team", "acme:engineering"]));
    assert_eq!(id["idp"], "acme");
    assert_eq!(id["staff"], true);
    // A SAML attribute is a list of values.
    assert_eq!(id["mail_list"], json!(["ada@example.com"]));
    saml.app.stop();
}

async fn github_teams_go_through_the_pipeline(db: &TestDb) {
    let standin = GithubStandIn::start(Scenario {
        teams: vec![
            ("acme".into(), "platform".into()),
            ("acme".into(), "security".into()),
            ("acme".into(), "contractors".into()),
        ],
        ..Scenario::default()
    })
    .await;
    let rules = r#"
scopes = ["read:user", "user:email", "read:org"]
group_prefix = "github:"
group_allow = ["github:acme:*"]
group_deny = ["github:acme:contractors"]
group_rename = { "github:acme:platform" = "github:platform-team" }
static_claims = { source = "github" }
extra_claims = { github_login = "login" }
"#;
    let app = spawn_with(db, github_provider(&standin, rules)).await;
    let (_, info) = full_login(&app, "github", SCOPES).await;
    // Organisations and the denied team are gone; the rest prefixed or renamed.
    assert_eq!(
        info["groups"],
        json!(["github:platform-team", "github:acme:security"]),
        "{info}"
    );
    assert_eq!(info["source"], "github");
    assert_eq!(info["github_login"], "octocat");
    app.stop();
}

/// An app with provider `corp` (OIDC, nested groups and rules) and an admin.
async fn app_with_rules(db: &TestDb) -> TestApp {
    let app = spawn_app_with(db, MasterKey::generate(), |s| {
        let mut p = provider("corp", "https://idp.example", false);
        p.options["claims"]["groups"] = "realm_access.roles".into();
        p.options["group_prefix"] = "kc:".into();
        p.options["group_deny"] = json!(["kc:offline_access"]);
        p.options["max_groups"] = 2.into();
        p.options["static_claims"] = json!({"department": "engineering"});
        s.providers = vec![p];
        s.clients = clients();
    })
    .await;
    create_admin(&app).await;
    app
}

fn keycloak_claims() -> Value {
    json!({
        "sub": "u1",
        "email": "Ada@Corp.Example",
        "email_verified": true,
        "name": "Ada",
        "realm_access": {"roles": ["offline_access", "admin", 7, "dev", "ops"]},
    })
}

async fn the_admin_api_previews_claims_and_refuses_bad_input(db: &TestDb) {
    let app = app_with_rules(db).await;
    let token = api_token(&app, "preview").await;
    let t = Some(token.as_str());
    let path = "/providers/corp/claims-preview";
    let body = json_of(
        call(
            &app,
            Method::POST,
            t,
            path,
            Some(json!({"claims": keycloak_claims()})),
        )
        .await,
        200,
    )
    .await;
    assert_eq!(body["email"], "ada@corp.example");
    assert_eq!(body["email_verified"], true);
    assert_eq!(body["name"], "Ada");
    assert_eq!(body["groups"], json!(["kc:admin", "kc:dev"]));
    assert_eq!(body["claims"], json!({"department": "engineering"}));
    let note = body["truncated"].as_str().unwrap();
    assert!(
        note.contains("3 groups") && note.contains("first 2"),
        "{note}"
    );
    // Nothing was changed or logged in.
    let users: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM users")
        .fetch_one(app.state.store.pool())
        .await
        .unwrap();
    assert_eq!(users, 0);

    // Bad input: not an object, unreadable JSON, too large, unknown provider, no token.
    let not_object = call(&app, Method::POST, t, path, Some(json!({"claims": [1]}))).await;
    let e = error(not_object, 422, "validation_failed").await;
    assert!(e.to_string().contains("JSON object"), "{e}");
    let unreadable = app
        .client
        .post(app.url(&format!("/admin/api/v1{path}")))
        .bearer_auth(&token)
        .header("content-type", "application/json")
        .body("{\"claims\": {")
        .send()
        .await
        .unwrap();
    error(unreadable, 400, "bad_request").await;
    let huge = json!({"claims": {"groups": vec!["x".repeat(100); 1000]}});
    let too_large = call(&app, Method::POST, t, path, Some(huge)).await;
    error(too_large, 400, "bad_request").await;
    let missing = call(
        &app,
        Method::POST,
        t,
        "/providers/nope/claims-preview",
        Some(json!({"claims": {}})),
    )
    .await;
    assert_eq!(missing.status(), 404);
    let anonymous = call(&app, Method::POST, None, path, Some(json!({"claims": {}}))).await;
    assert_eq!(anonymous.status(), 401);
    // Documented.
    let doc: Value = app
        .get("/admin/api/v1/openapi.json")
        .await
        .json()
        .await
        .unwrap();
    let op = &doc["paths"]["/providers/{id}/claims-preview"]["post"];
    assert!(op["responses"]["200"].is_object(), "{op}");
    for schema in ["ClaimsPreview", "PreviewRequest"] {
        assert!(doc["components"]["schemas"][schema].is_object(), "{schema}");
    }
    app.stop();
}

async fn the_admin_page_previews_claims_behind_its_csrf_token(db: &TestDb) {
    let app = app_with_rules(db).await;
    let browser = signed_in(&app).await;
    let html = page(&app, &browser, "/admin/providers/corp").await;
    assert!(html.contains("id=\"claims-preview\""));
    let csrf = csrf_in(&html);
    let url = app.url("/admin/providers/corp/claims-preview");
    let claims = keycloak_claims().to_string();
    let res = browser
        .post(&url)
        .form(&[("csrf", csrf.as_str()), ("claims", claims.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let html = res.text().await.unwrap();
    assert!(html.contains("id=\"preview-result\""), "{html}");
    assert!(html.contains(">kc:admin<") && html.contains(">kc:dev<"));
    assert!(!html.contains(">kc:offline_access<"));
    assert!(
        html.contains("department: ") && html.contains("engineering"),
        "{html}"
    );
    assert!(html.contains("id=\"preview-truncated\""));
    // Bad JSON: a 422 page that says so, with what was pasted kept.
    let res = browser
        .post(&url)
        .form(&[("csrf", csrf.as_str()), ("claims", "{not json")])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 422);
    let html = res.text().await.unwrap();
    assert!(html.contains("not valid JSON"), "{html}");
    assert!(html.contains("{not json"));
    // A paste over 64 KiB is refused unread.
    let huge = format!("{{\"groups\": [\"{}\"]}}", "x".repeat(70 * 1024));
    let res = browser
        .post(&url)
        .form(&[("csrf", csrf.as_str()), ("claims", huge.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 422);
    assert!(res.text().await.unwrap().contains("larger than 64 KiB"));
    // Without the CSRF token: refused.
    let res = browser
        .post(&url)
        .form(&[("claims", claims.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 403);
    app.stop();
}

/// Why a start with provider `corp` whose options `options` sets is refused.
async fn start_refused(db: &TestDb, key: &MasterKey, options: Value) -> String {
    let key = MasterKey::parse(&key.to_base64()).unwrap();
    try_spawn_app_with(db, key, move |s| {
        let mut p = provider("corp", "https://idp.example", false);
        for (k, v) in options.as_object().unwrap() {
            p.options[k] = v.clone();
        }
        s.providers = vec![p];
    })
    .await
    .err()
    .map(|e| format!("{e:#}"))
    .expect("refused")
}

async fn bad_claim_rules_are_refused_at_start_and_by_the_api(db: &TestDb) {
    // At start: a reserved static claim stops it, naming the provider and the option.
    let master = MasterKey::generate();
    let same = MasterKey::parse(&master.to_base64()).unwrap();
    let err = start_refused(db, &master, json!({"static_claims": {"sub": "root"}})).await;
    assert!(
        err.contains("corp") && err.contains("static_claims") && err.contains("`sub`"),
        "{err}"
    );
    // At start: a rename out of the provider's namespace stops it too.
    let rename_out = json!({"group_prefix": "corp:", "group_rename": {"corp:helpdesk": "admin"}});
    let err = start_refused(db, &master, rename_out).await;
    assert!(
        err.contains("corp") && err.contains("group_rename") && err.contains("group_prefix"),
        "{err}"
    );
    // The same rule as portico.toml text.
    let toml = r#"
id = "corp"
kind = "oidc"
client_id = "x"
issuer = "https://idp.example"
max_groups = 5000
"#;
    let e = toml::from_str::<portico::providers::ProviderConfig>(toml)
        .unwrap_err()
        .to_string();
    assert!(e.contains("max_groups"), "{e}");

    // By the API, with the field named.
    let app = spawn_app_with(db, same, |s| s.clients = clients()).await;
    let token = api_token(&app, "rules").await;
    let body = |extra: Value| {
        let mut b = json!({
            "id": "kc", "kind": "oidc", "client_id": "portico",
            "issuer": "https://idp.example",
        });
        for (k, v) in extra.as_object().unwrap() {
            b[k] = v.clone();
        }
        b
    };
    // A rule bad on its own makes the body unreadable (400 `bad_request`); a rule bad only
    // beside another option (a rename and the prefix) is a 422 `validation_failed` on it.
    let cases = [
        (
            json!({"static_claims": {"groups": ["admin"]}}),
            400,
            "reserved",
        ),
        (json!({"group_allow": ["/(/"]}), 400, "group_allow"),
        (json!({"max_groups": 0}), 400, "max_groups"),
        (
            json!({"extra_claims": {"dept": "/a//b"}}),
            400,
            "claim path",
        ),
        // With a prefix: a deny written for bare names would deny nothing (fail open) ...
        (
            json!({"group_prefix": "kc:", "group_deny": ["admin"]}),
            422,
            "group_deny: `admin` can never match",
        ),
        // ... and a rename may not leave the namespace (a bare `admin` for everyone).
        (
            json!({"group_prefix": "kc:", "group_rename": {"kc:ops": "admin"}}),
            422,
            "leaves the provider's namespace",
        ),
        (
            json!({"group_prefix": "kc:", "group_rename": {"ops": "kc:admin"}}),
            422,
            "group_rename: `ops` can never match",
        ),
        // A reserved name in another case, and a regex that only compiles once wrapped.
        (json!({"static_claims": {"SUB": "root"}}), 400, "reserved"),
        (json!({"group_deny": ["/a)|(b/"]}), 400, "group_deny"),
        // An empty pattern is refused, not dropped.
        (json!({"group_deny": ["kc:x", ""]}), 400, "group_deny"),
    ];
    for (extra, expected, word) in cases {
        let res = call(
            &app,
            Method::POST,
            Some(&token),
            "/providers",
            Some(body(extra.clone())),
        )
        .await;
        let status = res.status().as_u16();
        let text = res.text().await.unwrap();
        assert_eq!(status, expected, "{extra}: {text}");
        assert!(text.contains(word), "{extra}: {text}");
    }
    // Good rules are stored and shown back as given.
    let good = body(
        json!({"group_prefix": "kc:", "group_rename": {"kc:a": "kc:b"},
                          "static_claims": {"department": "x"}}),
    );
    let created = json_of(
        call(&app, Method::POST, Some(&token), "/providers", Some(good)).await,
        201,
    )
    .await;
    assert_eq!(created["group_prefix"], "kc:");
    assert_eq!(created["group_rename"], json!({"kc:a": "kc:b"}));
    assert_eq!(created["static_claims"], json!({"department": "x"}));
    assert_eq!(created["max_groups"], 100);
    app.stop();
}

/// Across providers: overlapping prefixes stop the start; a provider beside others without a
/// prefix is named on the providers page; the API refuses a prefix or a rename target inside
/// another provider's namespace.
async fn namespaces_may_not_overlap_and_unprefixed_providers_are_warned_about(db: &TestDb) {
    let master = MasterKey::generate();
    let key = || MasterKey::parse(&master.to_base64()).unwrap();
    let err = try_spawn_app_with(db, key(), |s| {
        let mut corp = provider("corp", "https://idp.example", false);
        corp.options["group_prefix"] = "corp:".into();
        let mut eu = provider("eu", "https://idp.example", false);
        eu.options["group_prefix"] = "corp:eu:".into();
        s.providers = vec![corp, eu];
    })
    .await
    .err()
    .map(|e| format!("{e:#}"))
    .expect("refused");
    assert!(
        err.contains("group_prefix") && err.contains("overlaps"),
        "{err}"
    );

    let app = spawn_app_with(db, key(), |s| {
        let mut corp = provider("corp", "https://idp.example", false);
        corp.options["group_prefix"] = "corp:".into();
        s.providers = vec![corp, provider("other", "https://idp.example", false)];
        s.clients = clients();
    })
    .await;
    create_admin(&app).await;
    let browser = signed_in(&app).await;
    let html = page(&app, &browser, "/admin/providers").await;
    assert!(html.contains("id=\"namespace-warning\""), "{html}");
    assert!(html.contains("beside other providers: other."), "{html}");

    let token = api_token(&app, "namespaces").await;
    let cases = [
        (
            json!({"id": "sub", "group_prefix": "corp:x:"}),
            "group_prefix",
        ),
        (json!({"id": "wide", "group_prefix": "co"}), "group_prefix"),
        (
            json!({"id": "bare", "group_rename": {"ops": "corp:admin"}}),
            "group_rename",
        ),
    ];
    for (extra, field) in cases {
        let mut body = json!({"kind": "oidc", "client_id": "portico",
                              "issuer": "https://idp.example"});
        for (k, v) in extra.as_object().unwrap() {
            body[k] = v.clone();
        }
        let res = call(&app, Method::POST, Some(&token), "/providers", Some(body)).await;
        assert_eq!(res.status(), 422, "{extra}");
        let e: Value = res.json().await.unwrap();
        let message = e["fields"][field].as_str().unwrap_or_default();
        assert!(message.contains("provider `corp`"), "{extra}: {e}");
    }
    app.stop();
}
