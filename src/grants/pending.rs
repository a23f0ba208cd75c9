//! Pending authorizations: an /authorize request waiting for the upstream login, kept in the
//! database (never in process memory) so that any instance can take the callback. This module
//! owns `pending_authorizations`.
//!
//! A pending login has a [`Purpose`]: a client's authorization request, or a login for
//! Portico's own account page (sign in to it, step up, connect another identity). What an
//! account login is for, and for which user, is stored here, server-side: the callback never
//! takes it from the request.
//!
//! Each pending login is bound to the browser that started it: `/authorize` mints a fresh
//! random binding for it and sets it in the login cookie; the row keeps its digest. The
//! callback (and the SAML completion step) must come with it. A binding is never taken from
//! the request: a login cookie planted in the victim's browser before the login binds nothing.
//! So that logins started in several tabs at once all complete, the cookie carries the
//! bindings of up to [`MAX_BINDINGS`] logins, but only those of logins still pending.

use secrecy::{ExposeSecret, SecretString};
use sqlx::Row;

use serde::{Deserialize, Serialize};

use crate::clients::RedirectUri;
use crate::crypto::{Sealer, TokenDigest};
use crate::store::sealed;
use crate::store::{self, Store, StoreError};

/// A validated authorization request, as saved while the user logs in upstream.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AuthRequest {
    pub client_id: String,
    /// One of the client's registered redirect URIs (or a loopback variant of one).
    pub redirect_uri: RedirectUri,
    pub scope: String,
    pub state: Option<String>,
    pub nonce: Option<String>,
    /// The S256 challenge; `None` only for a confidential client that sent none.
    pub code_challenge: Option<String>,
    pub resource: Option<String>,
    pub max_age: Option<u64>,
    pub prompt_login: bool,
    pub login_hint: Option<String>,
}

/// What a pending login is for.
#[derive(Debug, Clone)]
pub enum Purpose {
    /// A client's `/authorize` request: the login ends at its redirect URI with a code.
    Authorize(AuthRequest),
    /// A login for Portico's own account page: it ends at `/account`.
    Account(AccountLogin),
}

/// A login started by the account page (`oidc::account`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum AccountLogin {
    /// A signed-out visitor signs in, then sees their account.
    SignIn,
    /// The session's user signs in again at `provider_id` (forced), then `then` is done.
    StepUp {
        user_id: String,
        session_id: String,
        provider_id: String,
        then: AccountAction,
    },
    /// The identity that comes back from `provider_id` (and only from there: the login's
    /// provider is pinned, whatever `/login?provider=` says) is offered to `user_id`, whose
    /// session is `session_id`, for confirmation (`Confirm`).
    Link {
        user_id: String,
        session_id: String,
        #[serde(default)]
        provider_id: String,
    },
    /// Not a login: an identity that came back from a `Link` login at `provider_id`, kept
    /// (sealed, in `completed_identity`) until the user confirms connecting it. Bound to the
    /// browser like a login, single use, and only for the same user and session.
    Confirm {
        user_id: String,
        session_id: String,
        provider_id: String,
    },
}

/// What a step-up was asked for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "action")]
pub enum AccountAction {
    Connect { provider_id: String },
    Disconnect { identity_id: String },
}

impl AccountLogin {
    /// Whether the provider must authenticate the user again (not answer from its session).
    /// A step-up proves the user is still there; a connect must not link whichever account
    /// the provider's session happens to hold (GitHub, Google: the account chooser).
    pub fn force_login(&self) -> bool {
        matches!(
            self,
            AccountLogin::StepUp { .. } | AccountLogin::Link { .. }
        )
    }

    /// The `max_age` to send: 0 for a step-up, so that an OIDC provider authenticates again
    /// and states when (`auth_time`, OIDC Core 3.1.2.1) even where it ignores `prompt=login`.
    pub fn max_age(&self) -> Option<u64> {
        matches!(self, AccountLogin::StepUp { .. }).then_some(0)
    }
}

/// How a purpose is stored in the `request` column: an account login under `account`; a
/// client's request as itself.
#[derive(Serialize, Deserialize)]
struct StoredAccount {
    account: AccountLogin,
}

impl Purpose {
    fn to_json(&self) -> String {
        match self {
            Purpose::Authorize(r) => serde_json::to_string(r),
            Purpose::Account(a) => serde_json::to_string(&StoredAccount { account: a.clone() }),
        }
        .expect("a pending login serialises")
    }

    fn from_json(raw: &str) -> Result<Self, serde_json::Error> {
        match serde_json::from_str::<StoredAccount>(raw) {
            Ok(stored) => Ok(Purpose::Account(stored.account)),
            Err(_) => serde_json::from_str(raw).map(Purpose::Authorize),
        }
    }

    /// The client's request, for a client's login.
    pub fn auth_request(&self) -> Option<&AuthRequest> {
        match self {
            Purpose::Authorize(r) => Some(r),
            Purpose::Account(_) => None,
        }
    }

    /// The client the login is for (`None`: the account page).
    pub fn client_id(&self) -> Option<&str> {
        self.auth_request().map(|r| r.client_id.as_str())
    }
}

/// How many pending logins one browser's login cookie binds at once.
pub const MAX_BINDINGS: usize = 4;

/// The bindings in a login cookie's value: `.`-separated random tokens (43 base64url
/// characters each); anything else is ignored.
pub fn bindings(cookie: &str) -> impl Iterator<Item = &str> {
    cookie
        .split('.')
        .filter(|t| {
            t.len() == 43
                && t.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        })
        .take(MAX_BINDINGS)
}

#[derive(Debug, Clone)]
pub struct Pending {
    pub id: String,
    pub purpose: Purpose,
    browser_digest: Vec<u8>,
    pub provider_id: Option<String>,
    /// When `/authorize` saved it: a forced re-authentication must be newer.
    pub created_at: i64,
    pub expires_at: i64,
}

impl Pending {
    /// Whether the browser presenting `login_cookie` is the one that started this request.
    pub fn belongs_to(&self, login_cookie: Option<&str>) -> bool {
        match (login_cookie, TokenDigest::from_slice(&self.browser_digest)) {
            (Some(c), Some(d)) => bindings(c).any(|b| d.matches(b)),
            _ => false,
        }
    }

    pub fn is_live(&self) -> bool {
        self.expires_at > store::now()
    }
}

const COLUMNS: &str = "id, request, browser_digest, provider_id, created_at, expires_at";

fn from_row(row: &sqlx::any::AnyRow) -> Result<Pending, StoreError> {
    let request: String = row.try_get("request")?;
    Ok(Pending {
        id: row.try_get("id")?,
        purpose: Purpose::from_json(&request)
            .map_err(|_| StoreError::Corrupt("pending authorization request".into()))?,
        browser_digest: row.try_get("browser_digest")?,
        provider_id: row.try_get("provider_id")?,
        created_at: row.try_get("created_at")?,
        expires_at: row.try_get("expires_at")?,
    })
}

/// Saves a login for `purpose`, bound to the browser holding `browser_token`; returns its id.
pub async fn create(
    store: &Store,
    purpose: &Purpose,
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
    .bind(purpose.client_id().unwrap_or_default())
    .bind(purpose.to_json())
    .bind(TokenDigest::of(browser_token).as_bytes().to_vec())
    .bind(now)
    .bind(now + ttl_secs as i64)
    .execute(&mut *store.write_conn().await?)
    .await?;
    Ok(id)
}

/// The pending login `id`.
pub async fn find(store: &Store, id: &str) -> Result<Option<Pending>, StoreError> {
    let row = sqlx::query(&format!(
        "SELECT {COLUMNS} FROM pending_authorizations WHERE id = $1"
    ))
    .bind(id)
    .fetch_optional(store.pool())
    .await?;
    row.as_ref().map(from_row).transpose()
}

/// Those of `bindings` (a login cookie's) that bind a login still pending.
pub async fn live_bindings<'a>(
    store: &Store,
    bindings: &[&'a str],
) -> Result<Vec<&'a str>, StoreError> {
    if bindings.is_empty() {
        return Ok(Vec::new());
    }
    let sql = format!(
        "SELECT browser_digest FROM pending_authorizations WHERE expires_at > $1 \
         AND browser_digest IN ({})",
        store::placeholders(2, bindings.len())
    );
    let query = sqlx::query_scalar::<_, Vec<u8>>(&sql).bind(store::now());
    let query =
        (bindings.iter()).fold(query, |q, b| q.bind(TokenDigest::of(b).as_bytes().to_vec()));
    let live = query.fetch_all(store.pool()).await?;
    Ok(bindings
        .iter()
        .copied()
        .filter(|b| {
            let digest = TokenDigest::of(b);
            live.iter().any(|d| d.as_slice() == digest.as_bytes())
        })
        .collect())
}

/// Records the upstream login just started: the provider, its `state` (by digest) and
/// the connector's secret values, sealed to this row.
pub async fn started(
    store: &Store,
    sealer: &Sealer,
    id: &str,
    provider_id: &str,
    upstream_state: &SecretString,
    secret: &SecretString,
) -> Result<(), StoreError> {
    let sealed = sealer.seal_str(
        secret.expose_secret(),
        sealed::PENDING_UPSTREAM_SECRET.target(id),
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
    .execute(&mut *store.write_conn().await?)
    .await?;
    Ok(())
}

/// Takes (deletes and returns) the pending authorization whose upstream login sent back
/// `state`, with its opened secret. Single use: a replayed callback finds nothing.
pub async fn take_by_state(
    store: &Store,
    sealer: &Sealer,
    state: &str,
) -> Result<Option<(Pending, SecretString)>, StoreError> {
    let sql = format!(
        "DELETE FROM pending_authorizations WHERE upstream_state_digest = $1 \
         RETURNING {COLUMNS}, upstream_secret"
    );
    let query = sqlx::query(&sql).bind(TokenDigest::of(state).as_bytes().to_vec());
    returning(store, sealer, query, sealed::PENDING_UPSTREAM_SECRET).await
}

/// As [`take_by_state`], but the row stays (without its `state`, so the same answer cannot
/// come twice) for [`complete`]: the SAML ACS, which the IdP's cross-site POST reaches without
/// the login cookie, hands the login on to a same-site step that can check it.
pub async fn claim_by_state(
    store: &Store,
    sealer: &Sealer,
    state: &str,
) -> Result<Option<(Pending, SecretString)>, StoreError> {
    let sql = format!(
        "UPDATE pending_authorizations SET upstream_state_digest = NULL \
         WHERE upstream_state_digest = $1 RETURNING {COLUMNS}, upstream_secret"
    );
    let query = sqlx::query(&sql).bind(TokenDigest::of(state).as_bytes().to_vec());
    returning(store, sealer, query, sealed::PENDING_UPSTREAM_SECRET).await
}

/// The row `query` returns (`COLUMNS` and the sealed `column`), with `column` opened.
async fn returning<'q>(
    store: &Store,
    sealer: &Sealer,
    query: sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments<'q>>,
    column: sealed::SealedColumn,
) -> Result<Option<(Pending, SecretString)>, StoreError> {
    let Some(row) = query
        .fetch_optional(&mut *store.write_conn().await?)
        .await?
    else {
        return Ok(None);
    };
    let pending = from_row(&row)?;
    let sealed: Vec<u8> = row.try_get(column.column)?;
    let opened = sealer.open_string(&sealed, column.target(&pending.id))?;
    Ok(Some((pending, opened)))
}

/// Keeps a claimed login's verified identity (`identity`, JSON), sealed to the row, until
/// the browser that started it comes for it.
pub async fn complete(
    store: &Store,
    sealer: &Sealer,
    id: &str,
    identity: &str,
) -> Result<(), StoreError> {
    sqlx::query("UPDATE pending_authorizations SET completed_identity = $1 WHERE id = $2")
        .bind(sealer.seal_str(identity, sealed::PENDING_IDENTITY.target(id)))
        .bind(id)
        .execute(&mut *store.write_conn().await?)
        .await?;
    Ok(())
}

/// The identity JSON of completed row `id`, left in place (to show before it is taken).
pub async fn completed(
    store: &Store,
    sealer: &Sealer,
    id: &str,
) -> Result<Option<SecretString>, StoreError> {
    let sealed: Option<Option<Vec<u8>>> =
        sqlx::query_scalar("SELECT completed_identity FROM pending_authorizations WHERE id = $1")
            .bind(id)
            .fetch_optional(store.pool())
            .await?;
    sealed
        .flatten()
        .map(|s| sealer.open_string(&s, sealed::PENDING_IDENTITY.target(id)))
        .transpose()
        .map_err(StoreError::from)
}

/// Takes (deletes and returns) a completed login and its identity JSON. Single use: of
/// two requests from the right browser, one gets it.
pub async fn take_completed(
    store: &Store,
    sealer: &Sealer,
    id: &str,
) -> Result<Option<(Pending, SecretString)>, StoreError> {
    let sql = format!(
        "DELETE FROM pending_authorizations WHERE id = $1 \
         AND completed_identity IS NOT NULL RETURNING {COLUMNS}, completed_identity"
    );
    returning(
        store,
        sealer,
        sqlx::query(&sql).bind(id),
        sealed::PENDING_IDENTITY,
    )
    .await
}

/// Drops the logins waiting at `provider_id` (the provider is being deleted).
pub async fn delete_of_provider_in(
    conn: &mut sqlx::AnyConnection,
    provider_id: &str,
) -> Result<(), StoreError> {
    sqlx::query("DELETE FROM pending_authorizations WHERE provider_id = $1")
        .bind(provider_id)
        .execute(&mut *conn)
        .await?;
    Ok(())
}

/// Drops a pending login whose upstream answer was refused.
pub async fn delete(store: &Store, id: &str) -> Result<(), StoreError> {
    sqlx::query("DELETE FROM pending_authorizations WHERE id = $1")
        .bind(id)
        .execute(&mut *store.write_conn().await?)
        .await?;
    Ok(())
}

/// Logins that were never finished.
pub const JANITOR: crate::store::janitor::Rule =
    crate::store::janitor::Rule::expired("pending_authorizations", "id");
