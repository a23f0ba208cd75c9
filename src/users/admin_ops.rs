//! Users as the admin UI and API read and change them. Changes run on the connection of the
//! caller's transaction, so they commit together with the audit entry or not at all.
//! Identity reads name their columns: the sealed upstream tokens are never selected.

use sqlx::any::AnyRow;
use sqlx::{AnyConnection, Row};

use crate::store::{self, Store, StoreError};

/// A user row without its claims' details (groups, picture).
#[derive(Debug, Clone)]
pub struct UserRow {
    pub id: String,
    pub email: Option<String>,
    pub email_verified: bool,
    pub name: Option<String>,
    pub disabled: bool,
    pub created_at: i64,
    pub updated_at: i64,
    pub last_login_at: Option<i64>,
}

/// An identity without any token.
#[derive(Debug, Clone)]
pub struct IdentityRow {
    pub id: String,
    pub provider: String,
    pub subject: String,
    pub email: Option<String>,
    pub email_verified: bool,
    pub name: Option<String>,
    pub needs_login: bool,
    pub created_at: i64,
    pub updated_at: i64,
}

const USER_COLUMNS: &str =
    "id, email, email_verified, name, disabled, created_at, updated_at, last_login_at";

fn user_row(r: &AnyRow) -> Result<UserRow, sqlx::Error> {
    Ok(UserRow {
        id: r.try_get("id")?,
        email: r.try_get("email")?,
        email_verified: r.try_get::<i64, _>("email_verified")? != 0,
        name: r.try_get("name")?,
        disabled: r.try_get::<i64, _>("disabled")? != 0,
        created_at: r.try_get("created_at")?,
        updated_at: r.try_get("updated_at")?,
        last_login_at: r.try_get("last_login_at")?,
    })
}

/// `%text%` for `LIKE … ESCAPE '\'`, lowercased, with the wildcards in `text` taken literally.
fn contains_pattern(text: &str) -> String {
    let mut out = String::from("%");
    for c in text.to_lowercase().chars() {
        if matches!(c, '%' | '_' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('%');
    out
}

enum Bind {
    Int(i64),
    Text(String),
}

/// Up to `limit` users newest first, below `before` (created_at, id) when given, whose e-mail
/// or name contains `q` (any case) or whose id is `q`.
pub async fn search(
    store: &Store,
    q: Option<&str>,
    before: Option<(i64, &str)>,
    limit: i64,
) -> Result<Vec<UserRow>, StoreError> {
    let mut conditions: Vec<String> = Vec::new();
    let mut binds: Vec<Bind> = Vec::new();
    // Each placeholder is bound once: SQLite and PostgreSQL differ on reusing one.
    let mut param = |bind: Bind| {
        binds.push(bind);
        format!("${}", binds.len())
    };
    if let Some(q) = q {
        let email = param(Bind::Text(contains_pattern(q)));
        let name = param(Bind::Text(contains_pattern(q)));
        let id = param(Bind::Text(q.to_owned()));
        conditions.push(format!(
            "(LOWER(COALESCE(email, '')) LIKE {email} ESCAPE '\\' \
             OR LOWER(COALESCE(name, '')) LIKE {name} ESCAPE '\\' OR id = {id})"
        ));
    }
    if let Some((at, id)) = before {
        let older = param(Bind::Int(at));
        let same = param(Bind::Int(at));
        let id = param(Bind::Text(id.to_owned()));
        conditions.push(format!(
            "(created_at < {older} OR (created_at = {same} AND id < {id}))"
        ));
    }
    let limit = param(Bind::Int(limit));
    let filter = if conditions.is_empty() {
        String::new()
    } else {
        format!("WHERE {}", conditions.join(" AND "))
    };
    let sql = format!(
        "SELECT {USER_COLUMNS} FROM users {filter} ORDER BY created_at DESC, id DESC LIMIT {limit}"
    );
    let mut query = sqlx::query(&sql);
    for bind in binds {
        query = match bind {
            Bind::Int(v) => query.bind(v),
            Bind::Text(v) => query.bind(v),
        };
    }
    let rows = query.fetch_all(store.pool()).await?;
    Ok(rows.iter().map(user_row).collect::<Result<_, _>>()?)
}

/// The user `id`, read on `conn` (a transaction's, or a pooled one).
pub async fn fetch_in(conn: &mut AnyConnection, id: &str) -> Result<Option<UserRow>, StoreError> {
    let row = sqlx::query(&format!("SELECT {USER_COLUMNS} FROM users WHERE id = $1"))
        .bind(id)
        .fetch_optional(&mut *conn)
        .await?;
    Ok(row.as_ref().map(user_row).transpose()?)
}

/// A user's identities, oldest first; never a token column.
pub async fn identities(store: &Store, user_id: &str) -> Result<Vec<IdentityRow>, StoreError> {
    let rows = sqlx::query(
        "SELECT id, provider_id, subject, email, email_verified, name, needs_login, created_at, \
         updated_at FROM identities WHERE user_id = $1 ORDER BY created_at, id",
    )
    .bind(user_id)
    .fetch_all(store.pool())
    .await?;
    rows.iter()
        .map(|r| -> Result<IdentityRow, StoreError> {
            Ok(IdentityRow {
                id: r.try_get("id")?,
                provider: r.try_get("provider_id")?,
                subject: r.try_get("subject")?,
                email: r.try_get("email")?,
                email_verified: r.try_get::<i64, _>("email_verified")? != 0,
                name: r.try_get("name")?,
                needs_login: r.try_get::<i64, _>("needs_login")? != 0,
                created_at: r.try_get("created_at")?,
                updated_at: r.try_get("updated_at")?,
            })
        })
        .collect()
}

/// Live SSO sessions and usable refresh tokens of a user.
pub async fn live_counts(store: &Store, user_id: &str) -> Result<(i64, i64), StoreError> {
    let now = store::now();
    let sessions: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM sso_sessions WHERE user_id = $1 AND ended_at IS NULL \
         AND expires_at > $2",
    )
    .bind(user_id)
    .bind(now)
    .fetch_one(store.pool())
    .await?;
    let refresh: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM refresh_tokens WHERE user_id = $1 AND revoked_at IS NULL \
         AND rotated_at IS NULL AND expires_at > $2",
    )
    .bind(user_id)
    .bind(now)
    .fetch_one(store.pool())
    .await?;
    Ok((sessions, refresh))
}

/// Sets the user's `disabled` flag.
pub async fn set_disabled_in(
    conn: &mut AnyConnection,
    id: &str,
    disabled: bool,
) -> Result<(), StoreError> {
    sqlx::query("UPDATE users SET disabled = $1, updated_at = $2 WHERE id = $3")
        .bind(i64::from(disabled))
        .bind(store::now())
        .bind(id)
        .execute(&mut *conn)
        .await?;
    Ok(())
}

/// Ends every access token issued to the user so far: `/userinfo`, `/introspect` and the
/// broker refuse a token minted before this millisecond (`oidc::liveness`).
pub async fn revoke_access_tokens_in(
    conn: &mut AnyConnection,
    user_id: &str,
) -> Result<(), StoreError> {
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64);
    sqlx::query("UPDATE users SET tokens_revoked_at_ms = $1 WHERE id = $2")
        .bind(now_ms)
        .bind(user_id)
        .execute(&mut *conn)
        .await?;
    Ok(())
}

/// Revokes every refresh token issued to the user (each family, rotated or not). Returns how
/// many were still unrevoked.
pub async fn revoke_refresh_tokens_in(
    conn: &mut AnyConnection,
    user_id: &str,
) -> Result<u64, StoreError> {
    Ok(sqlx::query(
        "UPDATE refresh_tokens SET revoked_at = $1 WHERE user_id = $2 AND revoked_at IS NULL",
    )
    .bind(store::now())
    .bind(user_id)
    .execute(&mut *conn)
    .await?
    .rows_affected())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn search_patterns_take_wildcards_literally() {
        assert_eq!(contains_pattern("Ada"), "%ada%");
        assert_eq!(contains_pattern("a_b%c\\"), "%a\\_b\\%c\\\\%");
    }
}
