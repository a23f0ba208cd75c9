//! Admin API tokens: `pat_…` bearer tokens, shown once, stored as SHA-256 digests, revocable.

use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use serde_json::json;
use sqlx::any::AnyRow;
use sqlx::{AnyConnection, Row};
use utoipa::ToSchema;

use crate::admin::http::error::{Classify, Fault};
use crate::admin::http::pagination::{Page, PageRequest};
use crate::admin::http::validation::{self, FieldErrors};
use crate::admin::{Caller, http::time};
use crate::crypto::{TokenDigest, random_token};
use crate::store::{self, Store, StoreError};

pub const PREFIX: &str = "pat_";
/// Last-used times are kept to the minute: a busy token should not write on every request.
const TOUCH_EVERY_SECS: i64 = 60;

#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    #[error("there is no admin API token {0}")]
    NotFound(String),
    #[error("the admin API token {0} is already revoked")]
    AlreadyRevoked(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<sqlx::Error> for TokenError {
    fn from(err: sqlx::Error) -> Self {
        TokenError::Store(err.into())
    }
}

impl Classify for TokenError {
    fn fault(self) -> Fault {
        match self {
            TokenError::NotFound(_) => Fault::NotFound,
            TokenError::AlreadyRevoked(_) => Fault::Conflict,
            TokenError::Store(e) => Fault::Store(e),
        }
    }
}

/// What authentication found for a presented token.
#[derive(Debug)]
pub enum Authenticated {
    Valid(ApiToken),
    Unknown,
    Revoked,
}

/// A token as lists show it: never the token itself.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ApiToken {
    pub id: String,
    pub name: String,
    /// The token's first characters, to tell tokens apart.
    pub hint: String,
    pub created_by: String,
    /// RFC 3339.
    pub created_at: String,
    pub last_used_at: Option<String>,
    pub revoked_at: Option<String>,
    #[serde(skip)]
    pub created_at_secs: i64,
}

impl ApiToken {
    fn from_row(row: &AnyRow) -> Result<Self, sqlx::Error> {
        let created_at: i64 = row.try_get("created_at")?;
        Ok(Self {
            id: row.try_get("id")?,
            name: row.try_get("name")?,
            hint: row.try_get("hint")?,
            created_by: row.try_get("created_by")?,
            created_at: time::rfc3339(created_at),
            last_used_at: row
                .try_get::<Option<i64>, _>("last_used_at")?
                .map(time::rfc3339),
            revoked_at: row
                .try_get::<Option<i64>, _>("revoked_at")?
                .map(time::rfc3339),
            created_at_secs: created_at,
        })
    }

    pub fn is_revoked(&self) -> bool {
        self.revoked_at.is_some()
    }

    /// How the audit log names a caller using this token.
    pub fn actor(&self) -> String {
        format!("api_token:{} ({})", self.name, self.id)
    }

    pub fn display_created(&self) -> String {
        time::display(self.created_at_secs)
    }
}

/// The body of `POST /tokens`.
#[derive(Debug, Deserialize, ToSchema)]
pub struct NewToken {
    /// What the token is for, 1 to 64 characters.
    #[serde(default)]
    pub name: String,
}

impl NewToken {
    pub fn validate(&self) -> Result<String, FieldErrors> {
        let mut errors = FieldErrors::new();
        let name = validation::label(&mut errors, "name", &self.name, 64);
        errors.or_ok(name)
    }
}

/// A token just minted: the only time its value is shown.
#[derive(Debug, Serialize, ToSchema)]
pub struct MintedToken {
    #[serde(flatten)]
    pub info: ApiToken,
    /// The bearer token. Store it now: Portico keeps only its digest.
    pub token: String,
}

const COLUMNS: &str = "id, name, hint, created_by, created_at, last_used_at, revoked_at";

/// Mints a token named `name` (already validated), audited in the same transaction.
pub async fn mint(
    store: &Store,
    caller: &Caller,
    name: &str,
) -> Result<(ApiToken, SecretString), TokenError> {
    let token = random_token(PREFIX);
    let id = format!("tok_{}", uuid::Uuid::new_v4().simple());
    let hint: String = token
        .expose_secret()
        .chars()
        .take(PREFIX.len() + 4)
        .collect();
    let now = store::now();
    let mut tx = store.begin_write().await?;
    sqlx::query(
        "INSERT INTO admin_api_tokens (id, name, token_digest, hint, created_by, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(&id)
    .bind(name)
    .bind(TokenDigest::of(token.expose_secret()).as_bytes().to_vec())
    .bind(&hint)
    .bind(&caller.actor)
    .bind(now)
    .execute(&mut *tx)
    .await?;
    let info = find_in(&mut tx, &id)
        .await?
        .ok_or(TokenError::NotFound(id.clone()))?;
    let (target, details) = (format!("api_token:{id}"), json!({ "name": name }));
    crate::audit::commit_with(tx, caller, "api_token.created", &target, details).await?;
    Ok((info, token))
}

/// The token `id`, read on the caller's connection.
async fn find_in(conn: &mut AnyConnection, id: &str) -> Result<Option<ApiToken>, TokenError> {
    let select = format!("SELECT {COLUMNS} FROM admin_api_tokens WHERE id = $1");
    let row = sqlx::query(&select).bind(id).fetch_optional(conn).await?;
    Ok(row.as_ref().map(ApiToken::from_row).transpose()?)
}

/// The token `id`.
pub async fn get(store: &Store, id: &str) -> Result<ApiToken, TokenError> {
    let mut conn = store.pool().acquire().await?;
    find_in(&mut conn, id)
        .await?
        .ok_or_else(|| TokenError::NotFound(id.to_owned()))
}

/// Tokens newest first, one page.
pub async fn list(store: &Store, page: &PageRequest) -> Result<Page<ApiToken>, StoreError> {
    let select = format!("SELECT {COLUMNS} FROM admin_api_tokens");
    let list = crate::store::NewestFirst {
        select: &select,
        filter: None,
        time_col: "created_at",
        id_col: "id",
    };
    let rows = list
        .fetch(store.pool(), page.cursor.as_ref(), page.limit + 1)
        .await?;
    let tokens = rows
        .iter()
        .map(ApiToken::from_row)
        .collect::<Result<Vec<_>, _>>()?;
    Ok(page.of(tokens, |t| (t.created_at_secs, t.id.clone())))
}

/// Revokes a token; later requests with it get 403.
pub async fn revoke(store: &Store, caller: &Caller, id: &str) -> Result<ApiToken, TokenError> {
    let mut tx = store.begin_write().await?;
    let found = find_in(&mut tx, id).await?;
    let not_found = || TokenError::NotFound(id.to_owned());
    if found.ok_or_else(not_found)?.is_revoked() {
        return Err(TokenError::AlreadyRevoked(id.to_owned()));
    }
    let now = store::now();
    let changed = sqlx::query(
        "UPDATE admin_api_tokens SET revoked_at = $1 WHERE id = $2 AND revoked_at IS NULL",
    )
    .bind(now)
    .bind(id)
    .execute(&mut *tx)
    .await?
    .rows_affected();
    if changed == 0 {
        return Err(TokenError::AlreadyRevoked(id.to_owned()));
    }
    let token = find_in(&mut tx, id).await?.ok_or_else(not_found)?;
    let (target, details) = (format!("api_token:{id}"), json!({ "name": token.name }));
    crate::audit::commit_with(tx, caller, "api_token.revoked", &target, details).await?;
    Ok(token)
}

/// Looks a presented bearer token up by its digest (one indexed query).
pub async fn authenticate(store: &Store, presented: &str) -> Result<Authenticated, StoreError> {
    if !presented.starts_with(PREFIX) {
        return Ok(Authenticated::Unknown);
    }
    let row = sqlx::query(&format!(
        "SELECT {COLUMNS} FROM admin_api_tokens WHERE token_digest = $1"
    ))
    .bind(TokenDigest::of(presented).as_bytes().to_vec())
    .fetch_optional(store.pool())
    .await?;
    let Some(row) = row else {
        return Ok(Authenticated::Unknown);
    };
    let token = ApiToken::from_row(&row)?;
    if token.is_revoked() {
        return Ok(Authenticated::Revoked);
    }
    let now = store::now();
    let last_used: Option<i64> = row.try_get("last_used_at")?;
    if last_used.is_none_or(|t| now - t >= TOUCH_EVERY_SECS) {
        sqlx::query("UPDATE admin_api_tokens SET last_used_at = $1 WHERE id = $2")
            .bind(now)
            .bind(&token.id)
            .execute(store.pool())
            .await?;
    }
    Ok(Authenticated::Valid(token))
}
