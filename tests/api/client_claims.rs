//! Per-client claims (#17, client side): a client's `group_filter` narrows the `groups` claim
//! and its `claims` list keeps only the user claims it names, in every answer that carries user
//! claims (the ID token of the code and refresh grants, userinfo, introspection), as the client
//! is set now (an admin's change applies at the next refresh). Driven as an application would:
//! a real sign-in through the upstream stand-in, as alice, who is in four groups.

use openidconnect::{OAuth2TokenResponse, TokenResponse};
use reqwest::Method;
use serde_json::{Value, json};

use crate::admin::{api_token, audit_count, call, create_admin, csrf_in, error, json_of};
use crate::admin::{page, signed_in};
use crate::helpers::{TestApp, TestDb, portico_command};
use crate::oidc_support::*;
use crate::on_both_backends;
use crate::upstream_idp::{UpUser, Upstream};

on_both_backends!(
    a_group_filter_narrows_groups_everywhere_and_follows_the_admin,
    a_claim_list_keeps_only_the_named_claims_through_a_refresh,
    bad_settings_are_refused_by_the_api,
    declared_settings_are_stored_diffed_and_checked_at_start,
    the_client_forms_round_trip_the_settings,
    provider_claims_need_profile_and_stored_reserved_names_never_leak,
);

const REDIRECT_A: &str = "http://127.0.0.1:7777/team-a-cb";
const REDIRECT_B: &str = "http://127.0.0.1:7777/team-b-cb";
const ALICE_GROUPS: [&str; 4] = ["eng-web", "eng-api", "sales", "admin"];
const ASKED: [&str; 4] = ["profile", "email", "groups", "offline_access"];

/// A client as the admin API takes it, with `extra` fields (`claims`, `group_filter`).
fn client_body(id: &str, redirect: &str, extra: Value) -> Value {
    let mut body = json!({
        "client_id": id,
        "name": format!("Client {id}"),
        "type": "confidential",
        "redirect_uris": [redirect],
        "grant_types": ["authorization_code", "refresh_token"],
        "scopes": ["openid", "profile", "email", "groups", "offline_access"],
    });
    for (k, v) in extra.as_object().unwrap() {
        body[k] = v.clone();
    }
    body
}

/// Portico with provider `corp`, alice at the upstream in her four groups, and an API token.
struct Setup {
    _upstream: Upstream,
    app: TestApp,
    admin: String,
}

impl Setup {
    async fn new(db: &TestDb) -> Self {
        Self::with(db, |_| {}).await
    }

    /// [`Self::new`], with the settings changed by `customize` first.
    async fn with(db: &TestDb, customize: impl FnOnce(&mut portico::config::Settings)) -> Self {
        let upstream = Upstream::start().await;
        upstream.login_as(UpUser {
            groups: ALICE_GROUPS.map(str::to_owned).to_vec(),
            ..UpUser::new("alice-sub", "alice@corp.example")
        });
        let app = spawn_portico(db, &upstream, customize).await;
        let admin = api_token(&app, "automation").await;
        Self {
            _upstream: upstream,
            app,
            admin,
        }
    }

    /// An admin API request with the token.
    async fn admin_call(
        &self,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> reqwest::Response {
        call(&self.app, method, Some(&self.admin), path, body).await
    }

    /// Replaces client `id` through the admin API with `extra` settings; returns its view.
    async fn update(&self, id: &str, redirect: &str, extra: Value) -> Value {
        let mut body = client_body(id, redirect, extra);
        body.as_object_mut().unwrap().remove("client_id");
        let path = format!("/clients/{id}");
        json_of(self.admin_call(Method::PUT, &path, Some(body)).await, 200).await
    }

    /// Creates a client through the admin API; returns its secret.
    async fn create(&self, body: Value) -> String {
        let created = json_of(
            self.admin_call(Method::POST, "/clients", Some(body)).await,
            201,
        )
        .await;
        created["client_secret"].as_str().unwrap().to_owned()
    }

    /// alice signs in to `id`: (access token, refresh token, ID token claims).
    async fn sign_in(&self, id: &str, secret: &str, redirect: &str) -> (String, String, Value) {
        let rp = relying_party(&self.app, id, Some(secret), redirect).await;
        let auth = authorize(&self.app, &rp, redirect, &ASKED).await;
        let (tokens, _) = exchange(&rp, auth).await;
        let id_token = jwt_claims(&tokens.id_token().unwrap().to_string());
        (
            tokens.access_token().secret().clone(),
            tokens.refresh_token().unwrap().secret().clone(),
            id_token,
        )
    }

    /// The refresh grant: (access token, refresh token, ID token claims).
    async fn refresh(&self, id: &str, secret: &str, token: &str) -> (String, String, Value) {
        let (status, _, body) = post_form(
            &self.app,
            "/token",
            Some((id, secret)),
            &[("grant_type", "refresh_token"), ("refresh_token", token)],
        )
        .await;
        assert_eq!(status, 200, "{body}");
        (
            body["access_token"].as_str().unwrap().to_owned(),
            body["refresh_token"].as_str().unwrap().to_owned(),
            jwt_claims(body["id_token"].as_str().unwrap()),
        )
    }

    async fn userinfo(&self, access: &str) -> Value {
        let res = rp_http()
            .get(self.app.url("/userinfo"))
            .bearer_auth(access)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 200);
        res.json().await.unwrap()
    }

    async fn introspect(&self, id: &str, secret: &str, token: &str) -> Value {
        let (status, _, body) = post_form(
            &self.app,
            "/introspect",
            Some((id, secret)),
            &[("token", token)],
        )
        .await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["active"], true, "{body}");
        body
    }
}

/// The stored client `id`, if any.
async fn stored(app: &TestApp, id: &str) -> Option<portico::clients::Client> {
    portico::clients::repo::find(&app.state.store, id)
        .await
        .unwrap()
}

/// The claim names a stored client keeps, if it limits them.
fn listed(client: &portico::clients::Client) -> Option<Vec<&str>> {
    let names = client.claims.as_ref()?.names();
    Some(names.iter().map(String::as_str).collect())
}

fn groups(claims: &Value) -> Value {
    claims["groups"].clone()
}

async fn a_group_filter_narrows_groups_everywhere_and_follows_the_admin(db: &TestDb) {
    let s = Setup::new(db).await;
    let filter = json!({ "group_filter": { "allow": ["eng-*"] } });
    let secret = s.create(client_body("team-a", REDIRECT_A, filter)).await;
    let eng = json!(["eng-web", "eng-api"]);

    let (access, refresh, id_token) = s.sign_in("team-a", &secret, REDIRECT_A).await;
    assert_eq!(groups(&id_token), eng, "{id_token}");
    // The other claims its scopes give are all there.
    assert_eq!(id_token["email"], "alice@corp.example");
    assert!(id_token["name"].is_string(), "{id_token}");
    assert_eq!(groups(&s.userinfo(&access).await), eng);
    let introspected = s.introspect("team-a", &secret, &access).await;
    assert_eq!(groups(&introspected), eng, "{introspected}");
    assert_eq!(introspected["email"], "alice@corp.example");
    // The access token itself carries no user claims to filter.
    assert!(jwt_claims(&access).get("groups").is_none());

    // A refresh filters the same way.
    let (access, refresh, id_token) = s.refresh("team-a", &secret, &refresh).await;
    assert_eq!(groups(&id_token), eng, "{id_token}");
    assert_eq!(groups(&s.userinfo(&access).await), eng);

    // The admin denies eng-api: audited, and the next refresh, userinfo and introspection
    // follow at once (deny wins over allow).
    let deny = json!({ "group_filter": { "allow": ["eng-*"], "deny": ["/eng-(api|ops)/"] } });
    let view = s.update("team-a", REDIRECT_A, deny).await;
    assert_eq!(
        view["group_filter"],
        json!({ "allow": ["eng-*"], "deny": ["/eng-(api|ops)/"] })
    );
    let details: String = sqlx::query_scalar(
        "SELECT details FROM audit_log WHERE action = 'client.updated' AND target = \
         'client:team-a'",
    )
    .fetch_one(s.app.state.store.pool())
    .await
    .unwrap();
    let details: Value = serde_json::from_str(&details).unwrap();
    assert_eq!(details["group_filter"]["deny"], json!(["/eng-(api|ops)/"]));

    assert_eq!(groups(&s.userinfo(&access).await), json!(["eng-web"]));
    let (access, _, id_token) = s.refresh("team-a", &secret, &refresh).await;
    assert_eq!(groups(&id_token), json!(["eng-web"]), "{id_token}");
    let introspected = s.introspect("team-a", &secret, &access).await;
    assert_eq!(groups(&introspected), json!(["eng-web"]));

    // Another client without a filter sees every group of the same user.
    let secret_b = s.create(client_body("team-b", REDIRECT_B, json!({}))).await;
    let (_, _, id_token) = s.sign_in("team-b", &secret_b, REDIRECT_B).await;
    assert_eq!(groups(&id_token), json!(ALICE_GROUPS), "{id_token}");
    s.app.stop();
}

async fn a_claim_list_keeps_only_the_named_claims_through_a_refresh(db: &TestDb) {
    let s = Setup::new(db).await;
    let secret = s
        .create(client_body(
            "team-b",
            REDIRECT_B,
            json!({ "claims": ["email"] }),
        ))
        .await;
    let view = json_of(
        s.admin_call(Method::GET, "/clients/team-b", None).await,
        200,
    )
    .await;
    assert_eq!(view["claims"], json!(["email"]));

    let only_email = |claims: &Value, what: &str| {
        assert_eq!(claims["email"], "alice@corp.example", "{what}: {claims}");
        for gone in ["name", "picture", "groups", "email_verified"] {
            assert!(claims.get(gone).is_none(), "{what} has {gone}: {claims}");
        }
    };
    let (access, refresh, id_token) = s.sign_in("team-b", &secret, REDIRECT_B).await;
    only_email(&id_token, "ID token");
    // The protocol claims stay, whatever the list says.
    for kept in [
        "iss",
        "sub",
        "aud",
        "exp",
        "iat",
        "auth_time",
        "nonce",
        "at_hash",
        "azp",
    ] {
        assert!(
            id_token.get(kept).is_some(),
            "ID token lacks {kept}: {id_token}"
        );
    }
    let info = s.userinfo(&access).await;
    only_email(&info, "userinfo");
    assert!(info["sub"].is_string());
    let introspected = s.introspect("team-b", &secret, &access).await;
    only_email(&introspected, "introspection");
    for kept in ["active", "scope", "client_id", "sub", "exp", "iat", "jti"] {
        assert!(introspected.get(kept).is_some(), "{introspected}");
    }

    let (access, _, id_token) = s.refresh("team-b", &secret, &refresh).await;
    only_email(&id_token, "refreshed ID token");
    only_email(&s.userinfo(&access).await, "userinfo after a refresh");

    // Cleared by the admin (null): everything its scopes give again, at the next refresh.
    let view = s
        .update("team-b", REDIRECT_B, json!({ "claims": null }))
        .await;
    assert_eq!(view["claims"], Value::Null);
    let info = s.userinfo(&access).await;
    assert_eq!(groups(&info), json!(ALICE_GROUPS), "{info}");
    assert!(info["name"].is_string(), "{info}");
    s.app.stop();
}

async fn bad_settings_are_refused_by_the_api(db: &TestDb) {
    let s = Setup::new(db).await;
    let post = async |extra: Value| {
        let body = Some(client_body("bad", REDIRECT_A, extra));
        s.admin_call(Method::POST, "/clients", body).await
    };
    let refused = async |extra: Value, field: &str, needle: &str| {
        let body = error(post(extra).await, 422, "validation_failed").await;
        let message = body["fields"][field].as_str().unwrap_or_default();
        assert!(message.contains(needle), "{field}: {body}");
    };
    refused(
        json!({ "group_filter": { "allow": ["/(unclosed/"] } }),
        "group_filter",
        "not a valid regular expression",
    )
    .await;
    refused(
        json!({ "group_filter": { "deny": ["a".repeat(300)] } }),
        "group_filter",
        "longer than 256 characters",
    )
    .await;
    let many: Vec<String> = (0..101).map(|i| format!("g{i}")).collect();
    refused(
        json!({ "group_filter": { "allow": many } }),
        "group_filter",
        "at most 100",
    )
    .await;
    refused(
        json!({ "claims": ["email", "sub"] }),
        "claims",
        "`sub` is a protocol claim",
    )
    .await;
    refused(
        json!({ "claims": ["email", "email"] }),
        "claims",
        "listed twice",
    )
    .await;
    refused(
        json!({ "claims": ["has space"] }),
        "claims",
        "not a claim name",
    )
    .await;
    let many: Vec<String> = (0..101).map(|i| format!("c{i}")).collect();
    refused(json!({ "claims": many }), "claims", "at most 100").await;
    // An unknown key in the filter is a bad body, not a silently open filter.
    let unknown = json!({ "group_filter": { "allowed": ["eng-*"] } });
    error(post(unknown).await, 400, "bad_request").await;
    assert!(stored(&s.app, "bad").await.is_none());
    // The OpenAPI document describes both fields.
    let doc = json_of(s.admin_call(Method::GET, "/openapi.json", None).await, 200).await;
    let schemas = &doc["components"]["schemas"];
    for schema in ["ClientInput", "ClientView"] {
        let fields = &schemas[schema]["properties"];
        assert!(fields.get("claims").is_some(), "{schema}: {fields}");
        assert!(fields.get("group_filter").is_some(), "{schema}: {fields}");
    }
    assert!(schemas["GroupFilterLists"]["properties"]["deny"].is_object());
    assert_eq!(audit_count(&s.app, "client.created").await, 0);
    s.app.stop();
}

/// `app` of the test clients with `claims` and `group_filter` lines added.
fn declared_app(lines: &str) -> portico::clients::ClientConfig {
    toml::from_str(&format!(
        r#"
client_id = "{CLIENT_ID}"
type = "confidential"
client_secret = "{CLIENT_SECRET}"
redirect_uris = ["{REDIRECT}"]
{lines}
"#
    ))
    .unwrap()
}

async fn declared_settings_are_stored_diffed_and_checked_at_start(db: &TestDb) {
    let upstream = Upstream::start().await;
    upstream.login_as(UpUser {
        groups: ALICE_GROUPS.map(str::to_owned).to_vec(),
        ..UpUser::new("alice-sub", "alice@corp.example")
    });
    let lines = "claims = [\"email\", \"groups\"]\n[group_filter]\nallow = [\"eng-*\", \"sales\"]";
    let app = spawn_portico(db, &upstream, |s| s.clients = vec![declared_app(lines)]).await;
    let client = stored(&app, CLIENT_ID).await.unwrap();
    assert_eq!(listed(&client), Some(vec!["email", "groups"]));
    assert!(client.group_filter.permits("sales") && !client.group_filter.permits("admin"));

    // Its own file plans nothing after the start; a change of either setting is an update.
    let state = &app.state;
    let plan_with = async |lines: &str| {
        let mut settings = (*state.settings).clone();
        settings.clients = vec![declared_app(lines)];
        portico::declared::diff(&state.store, &state.sealer, &settings)
            .await
            .unwrap()
            .to_string()
    };
    assert_eq!(
        plan_with(lines).await,
        "no changes: the database matches the configuration\n"
    );
    let update = format!("update  client   {CLIENT_ID}\n");
    let other_filter = "claims = [\"email\", \"groups\"]\n[group_filter]\nallow = [\"eng-*\"]";
    assert_eq!(plan_with(other_filter).await, update);
    let other_claims = "claims = [\"email\"]\n[group_filter]\nallow = [\"eng-*\", \"sales\"]";
    assert_eq!(plan_with(other_claims).await, update);
    assert_eq!(plan_with("").await, update);

    // The declared settings apply to the sign-in.
    let rp = relying_party(&app, CLIENT_ID, Some(CLIENT_SECRET), REDIRECT).await;
    let tokens = sign_in_with(&app, &rp, REDIRECT, &["profile", "groups"], &[]).await;
    let id_token = jwt_claims(&tokens.id_token().unwrap().to_string());
    assert_eq!(groups(&id_token), json!(["eng-web", "eng-api", "sales"]));
    assert!(id_token.get("name").is_none(), "{id_token}");
    app.shut_down().await;

    // A bad pattern or a protocol claim in portico.toml stops the start, naming the client.
    let key = portico::crypto::MasterKey::generate();
    let cases = [
        (
            "group_filter = { allow = [\"/(unclosed/\"] }",
            "not a valid regular expression",
        ),
        ("claims = [\"email\", \"iss\"]", "`iss` is a protocol claim"),
    ];
    for (bad, needle) in cases {
        let file = db.dir.join("bad-claims.toml");
        std::fs::write(
            &file,
            format!(
                "[[clients]]\nclient_id = \"bad\"\ntype = \"public\"\n\
                 redirect_uris = [\"{PUBLIC_REDIRECT}\"]\n{bad}\n"
            ),
        )
        .unwrap();
        let out = portico_command(db, &key)
            .args(["--config", file.to_str().unwrap(), "config", "diff"])
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{stderr}");
        assert!(stderr.contains(needle), "{stderr}");
        assert!(stderr.contains("client `bad`"), "{stderr}");
    }
    let many: Vec<String> = (0..101).map(|i| format!("\"g{i}\"")).collect();
    let too_many = declared_app(&format!("[group_filter]\ndeny = [{}]", many.join(", ")));
    let err = portico::clients::validate_config(&[too_many]).unwrap_err();
    assert!(
        err.contains("client `app`") && err.contains("at most 100"),
        "{err}"
    );
}

async fn the_client_forms_round_trip_the_settings(db: &TestDb) {
    let s = Setup::new(db).await;
    create_admin(&s.app).await;
    let browser = signed_in(&s.app).await;
    let html = page(&s.app, &browser, "/admin/clients").await;
    assert!(html.contains(r#"name="limit_claims""#), "{html}");
    assert!(html.contains(r#"name="group_allow""#), "{html}");
    assert!(html.contains(r#"name="group_deny""#), "{html}");
    let csrf = csrf_in(&html);
    let base = |extra: &[(&'static str, &'static str)]| {
        let mut form = vec![
            ("csrf", csrf.clone()),
            ("client_id", "ui-app".to_owned()),
            ("name", "UI app".to_owned()),
            ("type", "confidential".to_owned()),
            ("redirect_uris", REDIRECT_A.to_owned()),
            ("grant_types", "authorization_code".to_owned()),
            ("scopes", "openid email groups".to_owned()),
        ];
        form.extend(extra.iter().map(|(k, v)| (*k, (*v).to_owned())));
        form
    };

    // A bad pattern: 422, the message beside the field, the input kept, nothing saved.
    let res = browser
        .post(s.app.url("/admin/clients"))
        .form(&base(&[("group_allow", "eng-*\n/(unclosed/")]))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 422);
    let html = res.text().await.unwrap();
    assert!(
        html.contains(r#"<p class="field-error" id="client-group_filter-error">"#)
            && html.contains("not a valid regular expression"),
        "{html}"
    );
    assert!(html.contains("eng-*\n/(unclosed/</textarea>"), "{html}");
    assert!(stored(&s.app, "ui-app").await.is_none());

    // Created with both settings; a group name with a space is one pattern per line.
    let res = browser
        .post(s.app.url("/admin/clients"))
        .form(&base(&[
            ("limit_claims", "true"),
            ("claims", "email groups"),
            ("group_allow", "eng-*\nDomain Users"),
            ("group_deny", "eng-secret"),
        ]))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 303);
    let client = stored(&s.app, "ui-app").await.unwrap();
    assert_eq!(listed(&client), Some(vec!["email", "groups"]));
    assert!(client.group_filter.permits("Domain Users"));
    assert!(!client.group_filter.permits("eng-secret"));

    // The edit form shows them as stored.
    let html = page(&s.app, &browser, "/admin/clients/ui-app").await;
    assert!(
        html.contains(r#"name="limit_claims" value="true" checked"#),
        "{html}"
    );
    assert!(
        html.contains(r#"name="claims" value="email groups""#),
        "{html}"
    );
    assert!(html.contains(">eng-*\nDomain Users</textarea>"), "{html}");
    assert!(html.contains(">eng-secret</textarea>"), "{html}");

    // Edited: the limit unticked (everything its scopes give), the deny list emptied; audited.
    let csrf = csrf_in(&html);
    let res = browser
        .post(s.app.url("/admin/clients/ui-app"))
        .form(&[
            ("csrf", csrf.as_str()),
            ("name", "UI app"),
            ("redirect_uris", REDIRECT_A),
            ("grant_types", "authorization_code"),
            ("scopes", "openid email groups"),
            ("claims", "email groups"),
            ("group_allow", "eng-*"),
            ("group_deny", ""),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 303);
    let client = stored(&s.app, "ui-app").await.unwrap();
    assert_eq!(listed(&client), None);
    assert!(client.group_filter.permits("eng-secret"));
    assert!(!client.group_filter.permits("Domain Users"));
    assert_eq!(audit_count(&s.app, "client.updated").await, 1);
    let html = page(&s.app, &browser, "/admin/clients/ui-app").await;
    assert!(
        html.contains(r#"name="limit_claims" value="true">"#)
            || html.contains(r#"name="limit_claims" value="true" aria"#),
        "{html}"
    );
    s.app.stop();
}

/// Static and extra claims are profile-like (OIDC Core 5.4): an `openid`-only client gets none.
/// And should a stored row ever hold a reserved name (a bug, a hand edit, an old version), it
/// never reaches the ID token of a refresh, userinfo or introspection.
async fn provider_claims_need_profile_and_stored_reserved_names_never_leak(db: &TestDb) {
    let s = Setup::with(db, |settings| {
        settings.providers[0].options["static_claims"] = json!({"department": "engineering"});
    })
    .await;
    let secret = s.create(client_body("team-a", REDIRECT_A, json!({}))).await;

    // `openid` alone: no provider claims anywhere.
    let rp = relying_party(&s.app, "team-a", Some(&secret), REDIRECT_A).await;
    let auth = authorize(&s.app, &rp, REDIRECT_A, &[]).await;
    let (tokens, _) = exchange(&rp, auth).await;
    let id = jwt_claims(&tokens.id_token().unwrap().to_string());
    assert!(id.get("department").is_none(), "{id}");
    let access = tokens.access_token().secret().clone();
    let info = s.userinfo(&access).await;
    assert!(info.get("department").is_none(), "{info}");
    let seen = s.introspect("team-a", &secret, &access).await;
    assert!(seen.get("department").is_none(), "{seen}");

    // With `profile`: released.
    let (access, refresh, id) = s.sign_in("team-a", &secret, REDIRECT_A).await;
    assert_eq!(id["department"], "engineering", "{id}");

    // A stored row with reserved names, on the user (userinfo, introspection) and on the
    // identity (the refresh grant's ID token).
    let forged = r#"{"department":"engineering","sub":"root","Email":"x@evil.example","active":false,"email":"x@evil.example"}"#;
    for table in ["users", "identities"] {
        sqlx::query(&format!("UPDATE {table} SET extra_claims = $1"))
            .bind(forged)
            .execute(s.app.state.store.pool())
            .await
            .unwrap();
    }
    let (_, _, refreshed) = s.refresh("team-a", &secret, &refresh).await;
    let info = s.userinfo(&access).await;
    let seen = s.introspect("team-a", &secret, &access).await;
    for claims in [&refreshed, &info, &seen] {
        assert_eq!(claims["department"], "engineering", "{claims}");
        assert_ne!(claims["sub"], "root", "{claims}");
        assert!(claims.get("Email").is_none(), "{claims}");
        assert_eq!(claims["email"], "alice@corp.example", "{claims}");
    }
    assert_eq!(seen["active"], true, "{seen}");
}
