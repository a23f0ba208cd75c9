//! `/.well-known/openid-configuration` (and the RFC 8414 alias), built once from the issuer.
//! It claims only what this build serves.

use actix_web::http::header;
use actix_web::web::Bytes;
use actix_web::{HttpResponse, web};
use serde::Serialize;

use crate::config::Issuer;
use crate::keys::SigningAlg;
use crate::state::AppState;

#[derive(Serialize)]
pub struct ProviderMetadata {
    pub issuer: String,
    pub authorization_endpoint: String,
    pub token_endpoint: String,
    pub userinfo_endpoint: String,
    pub jwks_uri: String,
    pub revocation_endpoint: String,
    pub introspection_endpoint: String,
    pub end_session_endpoint: String,
    pub scopes_supported: Vec<&'static str>,
    pub response_types_supported: Vec<&'static str>,
    pub response_modes_supported: Vec<&'static str>,
    pub grant_types_supported: Vec<&'static str>,
    pub subject_types_supported: Vec<&'static str>,
    pub id_token_signing_alg_values_supported: Vec<&'static str>,
    pub userinfo_signing_alg_values_supported: Vec<&'static str>,
    pub token_endpoint_auth_methods_supported: Vec<&'static str>,
    pub revocation_endpoint_auth_methods_supported: Vec<&'static str>,
    pub introspection_endpoint_auth_methods_supported: Vec<&'static str>,
    pub code_challenge_methods_supported: Vec<&'static str>,
    pub claims_supported: Vec<&'static str>,
    pub prompt_values_supported: Vec<&'static str>,
    pub claims_parameter_supported: bool,
    pub request_parameter_supported: bool,
    pub request_uri_parameter_supported: bool,
    pub authorization_response_iss_parameter_supported: bool,
}

impl ProviderMetadata {
    pub fn new(issuer: &Issuer) -> Self {
        let auth_methods = vec!["client_secret_basic", "client_secret_post", "none"];
        Self {
            issuer: issuer.as_str().to_owned(),
            authorization_endpoint: issuer.url("/authorize"),
            token_endpoint: issuer.url("/token"),
            userinfo_endpoint: issuer.url("/userinfo"),
            jwks_uri: issuer.url("/jwks.json"),
            revocation_endpoint: issuer.url("/revoke"),
            introspection_endpoint: issuer.url("/introspect"),
            end_session_endpoint: issuer.url("/logout"),
            scopes_supported: vec![
                "openid",
                "profile",
                "email",
                "groups",
                "offline_access",
                // Clients allowed it (their `scopes`) may ask for it: see docs/broker.md.
                super::broker::BROKER_SCOPE,
            ],
            response_types_supported: vec!["code"],
            response_modes_supported: vec!["query"],
            grant_types_supported: vec![
                "authorization_code",
                "refresh_token",
                "client_credentials",
            ],
            subject_types_supported: vec!["public"],
            id_token_signing_alg_values_supported: SigningAlg::ALL
                .iter()
                .map(|a| a.as_str())
                .collect(),
            userinfo_signing_alg_values_supported: vec!["none"],
            token_endpoint_auth_methods_supported: auth_methods.clone(),
            revocation_endpoint_auth_methods_supported: auth_methods,
            introspection_endpoint_auth_methods_supported: vec![
                "client_secret_basic",
                "client_secret_post",
            ],
            code_challenge_methods_supported: vec!["S256"],
            claims_supported: vec![
                "iss",
                "sub",
                "aud",
                "exp",
                "iat",
                "auth_time",
                "nonce",
                "at_hash",
                "azp",
                "email",
                "email_verified",
                "name",
                "picture",
                "groups",
            ],
            prompt_values_supported: vec!["none", "login"],
            claims_parameter_supported: false,
            request_parameter_supported: false,
            request_uri_parameter_supported: false,
            authorization_response_iss_parameter_supported: true,
        }
    }

    pub fn to_bytes(&self) -> Bytes {
        Bytes::from(serde_json::to_vec(self).expect("discovery metadata serialises"))
    }
}

pub async fn document(state: web::Data<AppState>) -> HttpResponse {
    HttpResponse::Ok()
        .content_type("application/json")
        .insert_header((header::CACHE_CONTROL, "public, max-age=3600"))
        .body(state.discovery.clone())
}
