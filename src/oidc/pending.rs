//! Pending authorizations: an /authorize request waiting for the upstream login, kept in the
//! database (never in process memory) so that any instance can take the callback.

use secrecy::{ExposeSecret, SecretString};
use sqlx::Row;

use super::authorize::AuthRequest;
use crate::crypto::{SealTarget, Sealer, TokenDigest};
use crate::store::{self, Store, StoreError};

#[derive(Debug, Clone)]
pub struct Pending {
    pub id: String,
    pub request: AuthRequest,
    browser_digest: Vec<u8>,
    pub provider_id: Option<String>,
    pub expires_at: i64,
}

impl Pending {
    /// Whether the browser presenting `login_cookie` is the one that started this request.
    pub fn belongs_to(&self, login_cookie: Option<&str>) -> bool {
        match (login_cookie, TokenDigest::from_slice(&self.browser_digest)) {
            (Some(c), Some(d)) => d.matches(c),
            _ => false,
        }
    }

    pub fn is_live(&self) -> bool {
        self.expires_at > store::now()
    }
}

fn from_row(row: &sqlx::any::AnyRow) -> Result<Pending, StoreError> {
    let request: String = row.try_get("request")?;
    Ok(Pending {
        id: row.try_get("id")?,
        request: serde_json::from_str(&request)
            .map_err(|_| StoreError::Corrupt("pending authorization request".into()))?,
        browser_digest: row.try_get("browser_digest")?,
        provider_id: row.try_get("provider_id")?,
        expires_at: row.try_get("expires_at")?,
    })
}

impl Store {
    pub async fn create_pending(
        &self,
        request: &AuthRequest,
        browser_token: &str,
        ttl_secs: u64,
    ) -> Result<String, StoreError> {
        let id = crate::crypto::random_token("").expose_secret().to_owned();
        let now = store::now();
        sqlx::query(
            "INSERT INTO pending_authorizations (id, client_id, request, browser_digest, \
             created_at, expires_at) VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(&id)
        .bind(&request.client_id)
        .bind(serde_json::to_string(request).expect("request serialises"))
        .bind(TokenDigest::of(browser_token).as_bytes().to_vec())
        .bind(now)
        .bind(now + ttl_secs as i64)
        .execute(self.pool())
        .await?;
        Ok(id)
    }

    pub async fn pending(&self, id: &str) -> Result<Option<Pending>, StoreError> {
        let row = sqlx::query(
            "SELECT id, request, browser_digest, provider_id, expires_at \
             FROM pending_authorizations WHERE id = $1",
        )
        .bind(id)
        .fetch_optional(self.pool())
        .await?;
        row.as_ref().map(from_row).transpose()
    }

    /// Records the upstream login just started: the provider, its `state` (by digest) and
    /// the connector's secret values, sealed to this row.
    pub async fn pending_started(
        &self,
        sealer: &Sealer,
        id: &str,
        provider_id: &str,
        upstream_state: &SecretString,
        secret: &SecretString,
    ) -> Result<(), StoreError> {
        let sealed = sealer.seal_str(
            secret.expose_secret(),
            SealTarget::new("pending_authorizations", "upstream_secret", id),
        );
        sqlx::query(
            "UPDATE pending_authorizations SET provider_id = $1, upstream_state_digest = $2, \
             upstream_secret = $3 WHERE id = $4",
        )
        .bind(provider_id)
        .bind(
            TokenDigest::of(upstream_state.expose_secret())
                .as_bytes()
                .to_vec(),
        )
        .bind(sealed)
        .bind(id)
        .execute(self.pool())
        .await?;
        Ok(())
    }

    /// Takes (deletes and returns) the pending authorization whose upstream login sent back
    /// `state`, with its opened secret. Single use: a replayed callback finds nothing.
    pub async fn take_pending_by_state(
        &self,
        sealer: &Sealer,
        state: &str,
    ) -> Result<Option<(Pending, SecretString)>, StoreError> {
        let row = sqlx::query(
            "DELETE FROM pending_authorizations WHERE upstream_state_digest = $1 \
             RETURNING id, request, browser_digest, provider_id, expires_at, upstream_secret",
        )
        .bind(TokenDigest::of(state).as_bytes().to_vec())
        .fetch_optional(self.pool())
        .await?;
        let Some(row) = row else {
            return Ok(None);
        };
        let pending = from_row(&row)?;
        let sealed: Vec<u8> = row.try_get("upstream_secret")?;
        let secret = sealer.open_string(
            &sealed,
            SealTarget::new("pending_authorizations", "upstream_secret", &pending.id),
        )?;
        Ok(Some((pending, secret)))
    }
}
