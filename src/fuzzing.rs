//! Entry points for the fuzz targets in `fuzz/` (cargo-fuzz), and nothing else.
//!
//! Each function runs the same code a request runs, up to the first database access, on a
//! fixed configuration, and asserts the invariants that code promises. They add no way in:
//! everything called here is reachable from a request already; only private helpers are made
//! `pub(crate)` so these functions can reach them. Not part of Portico's API.

use std::collections::HashMap;

use jsonwebtoken::DecodingKey;

use crate::clients::{Client, ClientId, ClientType, GrantType, RedirectUri};
use crate::keys::SigningAlg;
use crate::keys::jwt::{self, Expect, JwtError};
use crate::oidc::authorize::{Refusal, all_values, code_redirect, validate};
use crate::oidc::error::redirect_error;
use crate::oidc::scope::Scope;
use crate::upstream::saml::{
    IdpMetadata, OutstandingRequests, ReplayCache, SamlError, SpConfig, VerifiedAssertion,
    VerifyContext,
};

/// A fixed set of verification keys, as the key ring holds them after a reload.
pub struct JwtKeys(HashMap<String, (SigningAlg, DecodingKey)>);

impl JwtKeys {
    /// From a JWKS document (`{"keys": [...]}`, each with `kid` and `alg`), as `/jwks.json`.
    pub fn from_jwks(jwks: &str) -> Self {
        let doc: serde_json::Value = serde_json::from_str(jwks).expect("a JWKS document");
        let mut keys = HashMap::new();
        for public in doc["keys"].as_array().expect("keys") {
            let alg = SigningAlg::parse(public["alg"].as_str().expect("alg")).expect("alg");
            let kid = public["kid"].as_str().expect("kid").to_owned();
            let jwk: jsonwebtoken::jwk::Jwk = serde_json::from_value(public.clone()).expect("jwk");
            let key = DecodingKey::from_jwk(&jwk).expect("a usable public key");
            keys.insert(kid, (alg, key));
        }
        Self(keys)
    }

    /// [`crate::keys::KeyRing::verify`] without its reload on an unknown `kid`.
    pub fn verify(&self, token: &str, expect: &Expect<'_>) -> Result<serde_json::Value, JwtError> {
        let (kid, alg, typ) = jwt::key_id(token)?;
        let (key_alg, key) = self.0.get(&kid).ok_or(JwtError::UnknownKey)?;
        jwt::decode(token, alg, typ.as_deref(), *key_alg, key, expect)
    }
}

fn client(id: &str, client_type: ClientType, redirect_uris: &[&str]) -> Client {
    Client {
        client_id: ClientId::parse(id).expect("client id"),
        name: id.to_owned(),
        client_type,
        secret_digest: None,
        redirect_uris: redirect_uris
            .iter()
            .map(|r| RedirectUri::parse(r).expect("redirect URI"))
            .collect(),
        post_logout_redirect_uris: Vec::new(),
        grant_types: GrantType::ALL.to_vec(),
        scopes: ["openid", "profile", "email", "offline_access"]
            .map(str::to_owned)
            .to_vec(),
        allowed_providers: vec![crate::upstream::ProviderId::parse("google").expect("id")],
        allowed_resources: vec![
            crate::clients::ResourceUri::parse("https://api.portico.test/").expect("resource"),
        ],
        id_token_alg: SigningAlg::ES256,
        access_token_ttl: 300,
        id_token_ttl: 300,
        refresh_token_ttl: 3600,
        managed_by_config: false,
        development: false,
        claims: None,
        group_filter: crate::claims::GroupFilter::default(),
        created_at: 0,
    }
}

/// The clients [`authorize_query`] knows: a public one with a loopback and a custom-scheme
/// redirect URI, and a confidential one with an https redirect URI that has a query.
pub fn authorize_clients() -> Vec<Client> {
    vec![
        client(
            "spa",
            ClientType::Public,
            &[
                "http://127.0.0.1/cb",
                "http://[::1]:8000/cb",
                "com.example.app:/cb",
            ],
        ),
        client(
            "web",
            ClientType::Confidential,
            &["https://app.example/cb?tenant=1"],
        ),
    ]
}

/// `GET /authorize` with `query` (the raw query string) up to the session lookup: the client
/// and redirect URI checks, parameter validation, and the redirect built from the outcome.
/// Returns whether the request was valid.
pub fn authorize_query(clients: &[Client], query: &str) -> bool {
    // What actix's `web::Query<HashMap<String, String>>` does.
    let Ok(q) = serde_urlencoded::from_str::<HashMap<String, String>>(query) else {
        return false;
    };
    let Some(client) = q
        .get("client_id")
        .and_then(|id| clients.iter().find(|c| c.client_id.as_str() == id))
    else {
        return false;
    };
    let Some(candidate) = q.get("redirect_uri").filter(|r| !r.is_empty()) else {
        return false;
    };
    let Some(redirect) = client.redirect_uri(candidate) else {
        return false;
    };
    assert!(
        client.redirect_uris.iter().any(|r| r.matches(candidate)),
        "an unregistered redirect URI was accepted: {candidate:?}"
    );
    let issuer = "https://portico.test";
    let resources = all_values(query, "resource");
    let resources: Vec<&str> = resources.iter().map(String::as_str).collect();
    match validate(client, &redirect, &q, &resources) {
        Ok((request, provider, _prompt_none)) => {
            let scope = Scope::parse(&request.scope).expect("a validated scope reparses");
            if let Some(r) = &request.resource {
                assert!(
                    client.allowed_resource(r).is_some(),
                    "a resource the client may not name was granted: {r:?}"
                );
            }
            assert!(scope.within(&client.scopes), "scope {:?}", request.scope);
            assert!(
                request.code_challenge.is_some() || !client.is_public(),
                "a public client without PKCE"
            );
            if let Some(p) = &provider {
                let id = crate::upstream::ProviderId::parse(p).expect("a provider id");
                assert!(client.allows_provider(&id));
            }
            assert_redirect(&code_redirect(&request, "code", issuer));
            true
        }
        Err(Refusal(code, text)) => {
            assert_redirect(&redirect_error(
                &redirect,
                code,
                &text,
                q.get("state").map(String::as_str),
                issuer,
            ));
            false
        }
    }
}

/// Every outcome goes back to the client as a redirect with a usable `Location`.
fn assert_redirect(response: &actix_web::HttpResponse) {
    assert_eq!(response.status(), actix_web::http::StatusCode::FOUND);
    let location = response
        .headers()
        .get(actix_web::http::header::LOCATION)
        .and_then(|l| l.to_str().ok())
        .expect("a Location header");
    assert!(url::Url::parse(location).is_ok(), "{location}");
}

/// `POST /token` up to the client lookup: the form parser, the Basic credentials of
/// `authorization`, and the value checks the grants make before touching the database (scope
/// syntax, the PKCE verifier against a fixed challenge). Returns whether the form parsed.
pub fn token_request(authorization: Option<&str>, body: &[u8]) -> bool {
    if let Some(value) = authorization
        && let Err(e) = crate::oidc::client_auth::parse_basic(value)
    {
        let _ = e.response();
    }
    let form = match crate::oidc::token::parse_form(body) {
        Ok(form) => form,
        Err(e) => {
            let _ = e.response();
            return false;
        }
    };
    if let Some(scope) = form.get("scope") {
        let _ = Scope::parse(scope).map(|s| s.to_string());
    }
    if let Some(verifier) = form.get("code_verifier") {
        // RFC 7636 appendix B.
        let matched = crate::oidc::authorize::pkce_matches(
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM",
            verifier,
        );
        assert_eq!(
            matched,
            verifier == "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"
        );
    }
    true
}

/// Stand-ins for the SAML state: every request ID is outstanding, every assertion ID new.
struct NoState;

impl OutstandingRequests for NoState {
    fn consume<'a>(
        &'a self,
        _: &'a str,
    ) -> futures_util::future::BoxFuture<'a, Result<bool, SamlError>> {
        Box::pin(async { Ok(true) })
    }
}

impl ReplayCache for NoState {
    fn seen<'a>(
        &'a self,
        _: &'a str,
    ) -> futures_util::future::BoxFuture<'a, Result<bool, SamlError>> {
        Box::pin(async { Ok(false) })
    }

    fn first_use<'a>(
        &'a self,
        _: &'a str,
        _: i64,
    ) -> futures_util::future::BoxFuture<'a, Result<bool, SamlError>> {
        Box::pin(async { Ok(true) })
    }
}

/// [`crate::upstream::saml::verify_response`] on a posted `SAMLResponse` at the time `now`,
/// with no replay cache or outstanding requests to consult, so every check that reads the
/// message runs and nothing waits.
pub fn saml_verify(
    posted: &str,
    sp: &SpConfig,
    idp: &IdpMetadata,
    now: i64,
) -> Result<VerifiedAssertion, SamlError> {
    use std::task::{Context, Poll, Waker};
    let ctx = VerifyContext {
        sp,
        idp,
        now,
        requests: &NoState,
        replay: &NoState,
    };
    let mut verifying = std::pin::pin!(crate::upstream::saml::verify_response(posted, &ctx));
    match verifying
        .as_mut()
        .poll(&mut Context::from_waker(Waker::noop()))
    {
        Poll::Ready(outcome) => outcome,
        Poll::Pending => unreachable!("the stand-ins never wait"),
    }
}
