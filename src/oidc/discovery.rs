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
    pub jwks_uri: String,
    pub id_token_signing_alg_values_supported: Vec<&'static str>,
}

impl ProviderMetadata {
    pub fn new(issuer: &Issuer) -> Self {
        Self {
            issuer: issuer.as_str().to_owned(),
            jwks_uri: issuer.url("/jwks.json"),
            id_token_signing_alg_values_supported: SigningAlg::ALL
                .iter()
                .map(|a| a.as_str())
                .collect(),
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
