//! Upgrade tickets: a service asked the broker for an upstream scope the stored grant lacks,
//! and the user is to add it by signing in at the provider again. This module owns
//! `broker_upgrades`.
//!
//! A ticket is bound to one user's identity at one provider, to the scopes the service asked
//! for, to the client that asked and to where the user lands afterwards, all decided when the
//! broker made it; the URL carries only a random ticket, kept here by digest. It lives
//! [`TICKET_SECS`] and is spent by the first visit that claims it (the user's own, in a
//! browser signed in to Portico as that user, after Portico's consent page, checked by the web
//! layer): the claim clears the ticket and records the upstream `state` (by digest), the
//! connector's secret (sealed to the row), the digest of a fresh binding set in that browser,
//! and the exact scopes sent (what the provider granted if its answer names none). The
//! callback takes the row by its `state`, once. So a link that leaks is useless to anyone
//! else, and used once.
//!
//! Rows are bounded per identity: every live row, claimed or not, counts toward
//! [`MAX_PER_IDENTITY`] (the user's row locked while counting, so concurrent requests on
//! PostgreSQL cannot all pass), and a claim drops the identity's other claimed rows.

use secrecy::{ExposeSecret, SecretString};
use sqlx::Row;
use sqlx::any::AnyRow;

use crate::crypto::{Sealer, TokenDigest};
use crate::store::{self, Store, StoreError, json_list, sealed};

/// How long a ticket waits for the user's visit, and then the upstream login for its callback.
pub const TICKET_SECS: i64 = 600;
/// Live rows (tickets, visited or not) kept per identity: a new one beyond it replaces the
/// oldest.
pub const MAX_PER_IDENTITY: i64 = 5;

/// A ticket as stored.
#[derive(Debug, Clone)]
pub struct Upgrade {
    pub id: String,
    pub user_id: String,
    pub identity_id: String,
    pub provider_id: String,
    pub client_id: String,
    /// Once claimed, every scope sent to the provider (its own, the stored grant's as it was
    /// then, and the new ones): what it granted when its answer leaves `scope` out.
    pub scopes: Vec<String>,
    /// The scopes the service asked for that the grant lacked.
    pub requested: Vec<String>,
    /// One of the client's registered redirect URIs; `None`: Portico's own page.
    pub return_uri: Option<String>,
    browser_digest: Option<Vec<u8>>,
    pub expires_at: i64,
}

impl Upgrade {
    pub fn is_live(&self) -> bool {
        self.expires_at > store::now()
    }

    /// Whether `binding` (the upgrade cookie's value) is the one set in the browser that
    /// claimed the ticket.
    pub fn belongs_to(&self, binding: Option<&str>) -> bool {
        let digest = self
            .browser_digest
            .as_deref()
            .and_then(TokenDigest::from_slice);
        matches!((digest, binding), (Some(d), Some(b)) if d.matches(b))
    }
}

const COLUMNS: &str = "id, user_id, identity_id, provider_id, client_id, scopes, requested, \
                       return_uri, browser_digest, expires_at";

fn from_row(row: &AnyRow) -> Result<Upgrade, StoreError> {
    Ok(Upgrade {
        id: row.try_get("id")?,
        user_id: row.try_get("user_id")?,
        identity_id: row.try_get("identity_id")?,
        provider_id: row.try_get("provider_id")?,
        client_id: row.try_get("client_id")?,
        scopes: json_list(row, "scopes")?,
        requested: json_list(row, "requested")?,
        return_uri: row.try_get("return_uri")?,
        browser_digest: row.try_get("browser_digest")?,
        expires_at: row.try_get("expires_at")?,
    })
}

/// What the broker binds a ticket to.
pub struct NewUpgrade<'a> {
    pub user_id: &'a str,
    pub identity_id: &'a str,
    pub provider_id: &'a str,
    pub client_id: &'a str,
    pub requested: &'a [String],
    pub return_uri: Option<&'a str>,
}

/// Stores a ticket for `new` and returns the ticket, which only its URL carries; audited as
/// `broker.upgrade_issued` in the same transaction. Every live row of the identity, visited
/// or not, counts toward [`MAX_PER_IDENTITY`]: beyond it the oldest go. The user's row is
/// locked first, so concurrent requests (on PostgreSQL) cannot all pass the count.
pub async fn create(
    store: &Store,
    new: &NewUpgrade<'_>,
    ip: Option<&str>,
) -> Result<SecretString, StoreError> {
    let ticket = crate::crypto::random_token("");
    let (id, now) = (uuid::Uuid::new_v4().to_string(), store::now());
    let mut tx = store.begin_write().await?;
    crate::users::repo::lock_in(&mut tx, new.user_id).await?;
    sqlx::query("DELETE FROM broker_upgrades WHERE identity_id = $1 AND expires_at <= $2")
        .bind(new.identity_id)
        .bind(now)
        .execute(&mut *tx)
        .await?;
    sqlx::query(
        "DELETE FROM broker_upgrades WHERE id IN (SELECT id FROM broker_upgrades \
         WHERE identity_id = $1 ORDER BY created_at_ms DESC, id DESC LIMIT 1000 OFFSET $2)",
    )
    .bind(new.identity_id)
    .bind(MAX_PER_IDENTITY - 1)
    .execute(&mut *tx)
    .await?;
    sqlx::query(
        "INSERT INTO broker_upgrades (id, ticket_digest, user_id, identity_id, provider_id, \
         client_id, scopes, requested, return_uri, created_at, created_at_ms, expires_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)",
    )
    .bind(&id)
    .bind(digest(ticket.expose_secret()))
    .bind(new.user_id)
    .bind(new.identity_id)
    .bind(new.provider_id)
    .bind(new.client_id)
    .bind(store::to_json_list(new.requested))
    .bind(store::to_json_list(new.requested))
    .bind(new.return_uri)
    .bind(now)
    .bind(store::now_ms())
    .bind(now + TICKET_SECS)
    .execute(&mut *tx)
    .await?;
    crate::audit::record(
        &mut tx,
        &format!("client:{}", new.client_id),
        "broker.upgrade_issued",
        &format!("identity:{}", new.identity_id),
        serde_json::json!({
            "upgrade": id,
            "provider": new.provider_id,
            "requested": new.requested,
            "return_uri": new.return_uri,
        }),
        ip,
    )
    .await?;
    tx.commit().await?;
    Ok(ticket)
}

fn digest(token: &str) -> Vec<u8> {
    TokenDigest::of(token).as_bytes().to_vec()
}

/// The live, unvisited ticket `ticket`.
pub async fn find_open(store: &Store, ticket: &str) -> Result<Option<Upgrade>, StoreError> {
    let row = sqlx::query(&format!(
        "SELECT {COLUMNS} FROM broker_upgrades WHERE ticket_digest = $1 AND expires_at > $2"
    ))
    .bind(digest(ticket))
    .bind(store::now())
    .fetch_optional(store.pool())
    .await?;
    row.as_ref().map(from_row).transpose()
}

/// What the visit that claims a ticket records.
pub struct Claim<'a> {
    /// The binding set in the visiting browser.
    pub browser: &'a str,
    /// The upstream login's `state` and the connector's secret values.
    pub upstream_state: &'a SecretString,
    pub secret: &'a SecretString,
    /// Every scope sent to the provider.
    pub scopes: &'a [String],
}

/// Spends the ticket `ticket` of row `id` for the upstream login `claim` started; `false`
/// when it was spent or expired meanwhile (of two visits at once, one wins). The identity's
/// other visited rows go: one upstream upgrade at a time per identity.
pub async fn claim(
    store: &Store,
    sealer: &Sealer,
    id: &str,
    ticket: &str,
    claim: &Claim<'_>,
) -> Result<bool, StoreError> {
    let column = sealed::BROKER_UPGRADE_SECRET;
    let now = store::now();
    let mut tx = store.begin_write().await?;
    let claimed = sqlx::query(
        "UPDATE broker_upgrades SET ticket_digest = NULL, browser_digest = $1, \
         upstream_state_digest = $2, upstream_secret = $3, expires_at = $4, scopes = $5 \
         WHERE id = $6 AND ticket_digest = $7 AND expires_at > $8",
    )
    .bind(digest(claim.browser))
    .bind(digest(claim.upstream_state.expose_secret()))
    .bind(sealer.seal_str(claim.secret.expose_secret(), column.target(id)))
    .bind(now + TICKET_SECS)
    .bind(store::to_json_list(claim.scopes))
    .bind(id)
    .bind(digest(ticket))
    .bind(now)
    .execute(&mut *tx)
    .await?;
    if claimed.rows_affected() != 1 {
        return Ok(false);
    }
    sqlx::query(
        "DELETE FROM broker_upgrades WHERE ticket_digest IS NULL AND id <> $1 \
         AND identity_id = (SELECT identity_id FROM broker_upgrades WHERE id = $1)",
    )
    .bind(id)
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(true)
}

/// Drops the unvisited ticket `ticket` of row `id` (the user cancelled); `false` when it was
/// spent or expired meanwhile.
pub async fn cancel(store: &Store, id: &str, ticket: &str) -> Result<bool, StoreError> {
    let dropped = sqlx::query(
        "DELETE FROM broker_upgrades WHERE id = $1 AND ticket_digest = $2 AND expires_at > $3",
    )
    .bind(id)
    .bind(digest(ticket))
    .bind(store::now())
    .execute(&mut *store.write_conn().await?)
    .await?;
    Ok(dropped.rows_affected() == 1)
}

/// Takes (deletes and returns) the claimed ticket whose upstream login sent back `state`,
/// with its opened secret. Single use: a replayed callback finds nothing.
pub async fn take_by_state(
    store: &Store,
    sealer: &Sealer,
    state: &str,
) -> Result<Option<(Upgrade, SecretString)>, StoreError> {
    let row = sqlx::query(&format!(
        "DELETE FROM broker_upgrades WHERE upstream_state_digest = $1 \
         RETURNING {COLUMNS}, upstream_secret"
    ))
    .bind(digest(state))
    .fetch_optional(&mut *store.write_conn().await?)
    .await?;
    let Some(row) = row else {
        return Ok(None);
    };
    let upgrade = from_row(&row)?;
    let column = sealed::BROKER_UPGRADE_SECRET;
    let sealed: Vec<u8> = row.try_get(column.column)?;
    let opened = sealer.open_string(&sealed, column.target(&upgrade.id))?;
    Ok(Some((upgrade, opened)))
}

/// Tickets never visited, or whose upstream login never came back.
pub const JANITOR: crate::store::janitor::Rule =
    crate::store::janitor::Rule::expired("broker_upgrades", "id");
