//! The `users` table: the only place its SQL lives. Logins, refreshes, the admin UI and the
//! token checks read and change users through these functions, on the caller's transaction
//! where a change must commit with others (`*_in`).

use sqlx::any::AnyRow;
use sqlx::{AnyConnection, Row};

use crate::store::{self, Store, StoreError, flag, json_list, json_object};
use crate::upstream::UpstreamIdentity;

/// A user: the claims Portico serves for it, and its state.
#[derive(Debug, Clone)]
pub struct User {
    pub id: String,
    pub email: Option<String>,
    pub email_verified: bool,
    /// The provider whose assertion verified `email` (trusted for e-mail when it did).
    pub email_verified_by: Option<String>,
    pub name: Option<String>,
    pub picture: Option<String>,
    pub groups: Vec<String>,
    /// Claims its provider adds (`static_claims`, `extra_claims`), by name.
    pub extra_claims: serde_json::Map<String, serde_json::Value>,
    pub disabled: bool,
    /// Access tokens minted before this moment (Unix ms) are dead ("sign out everywhere").
    pub tokens_revoked_at_ms: Option<i64>,
    pub created_at: i64,
    pub updated_at: i64,
    pub last_login_at: Option<i64>,
}

const COLUMNS: &str = "id, email, email_verified, email_verified_by, name, picture, groups, \
     extra_claims, disabled, tokens_revoked_at_ms, created_at, updated_at, last_login_at";

fn from_row(r: &AnyRow) -> Result<User, StoreError> {
    Ok(User {
        id: r.try_get("id")?,
        email: r.try_get("email")?,
        email_verified: flag(r, "email_verified")?,
        email_verified_by: r.try_get("email_verified_by")?,
        name: r.try_get("name")?,
        picture: r.try_get("picture")?,
        groups: json_list(r, "groups")?,
        extra_claims: json_object(r, "extra_claims")?,
        disabled: flag(r, "disabled")?,
        tokens_revoked_at_ms: r.try_get("tokens_revoked_at_ms")?,
        created_at: r.try_get("created_at")?,
        updated_at: r.try_get("updated_at")?,
        last_login_at: r.try_get("last_login_at")?,
    })
}

/// The user `id`, on `conn` (a transaction's, or a pooled one).
pub async fn find_in(conn: &mut AnyConnection, id: &str) -> Result<Option<User>, StoreError> {
    let row = sqlx::query(&format!("SELECT {COLUMNS} FROM users WHERE id = $1"))
        .bind(id)
        .fetch_optional(&mut *conn)
        .await?;
    row.as_ref().map(from_row).transpose()
}

/// The user `id`.
pub async fn find(store: &Store, id: &str) -> Result<Option<User>, StoreError> {
    let mut conn = store.pool().acquire().await?;
    find_in(&mut conn, id).await
}

/// The oldest user holding `email` as verified by a provider (see `users::vouched`): the one a
/// new identity may join. Returns its id and whether it is disabled.
pub async fn verified_holder_in(
    conn: &mut AnyConnection,
    email: &str,
) -> Result<Option<(String, bool)>, StoreError> {
    let row = sqlx::query(
        "SELECT id, disabled FROM users WHERE email = $1 AND email_verified = 1 \
         AND email_verified_by IS NOT NULL ORDER BY created_at LIMIT 1",
    )
    .bind(email)
    .fetch_optional(&mut *conn)
    .await?;
    row.map(|r| -> Result<(String, bool), StoreError> {
        Ok((r.try_get("id")?, flag(&r, "disabled")?))
    })
    .transpose()
}

/// Creates user `id`, enabled; its claims follow (`set_claims_in`).
pub async fn insert_in(conn: &mut AnyConnection, id: &str) -> Result<(), StoreError> {
    sqlx::query("INSERT INTO users (id, created_at, updated_at) VALUES ($1, $2, $2)")
        .bind(id)
        .bind(store::now())
        .execute(&mut *conn)
        .await?;
    Ok(())
}

/// Replaces a user's claims with those of the identity it last logged in through; its address
/// is verified when `verified_by` (a provider trusted for e-mail) vouches for it.
pub async fn set_claims_in(
    conn: &mut AnyConnection,
    id: &str,
    claims: &UpstreamIdentity,
    verified_by: Option<&str>,
) -> Result<(), StoreError> {
    sqlx::query(
        "UPDATE users SET email = $1, email_verified = $2, email_verified_by = $3, name = $4, \
         picture = $5, groups = $6, extra_claims = $7, updated_at = $8 WHERE id = $9",
    )
    .bind(claims.email.as_deref())
    .bind(i64::from(verified_by.is_some()))
    .bind(verified_by)
    .bind(claims.name.as_deref())
    .bind(claims.picture.as_deref())
    .bind(store::to_json_list(&claims.groups))
    .bind(store::to_json_object(&claims.extra_claims))
    .bind(store::now())
    .bind(id)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// Records a login.
pub async fn logged_in_in(conn: &mut AnyConnection, id: &str) -> Result<(), StoreError> {
    sqlx::query("UPDATE users SET last_login_at = $1 WHERE id = $2")
        .bind(store::now())
        .bind(id)
        .execute(&mut *conn)
        .await?;
    Ok(())
}

/// Whether any user has ever logged in (through any provider, for any client).
pub async fn anyone_logged_in(store: &Store) -> Result<bool, StoreError> {
    let found: Option<i64> =
        sqlx::query_scalar("SELECT 1 FROM users WHERE last_login_at IS NOT NULL LIMIT 1")
            .fetch_optional(store.pool())
            .await?;
    Ok(found.is_some())
}

/// Whether user `id` exists and is not disabled.
pub async fn is_active(store: &Store, id: &str) -> Result<bool, StoreError> {
    let disabled: Option<i64> = sqlx::query_scalar("SELECT disabled FROM users WHERE id = $1")
        .bind(id)
        .fetch_optional(store.pool())
        .await?;
    Ok(disabled == Some(0))
}

/// Withdraws the verification that `provider_id` gave (it is no longer trusted for e-mail, or
/// gone): its users' addresses are unverified until a provider that vouches signs them in, and
/// no login links into them. Returns how many users it touched.
pub async fn withdraw_verification_in(
    conn: &mut AnyConnection,
    provider_id: &str,
) -> Result<u64, StoreError> {
    Ok(sqlx::query(
        "UPDATE users SET email_verified = 0, email_verified_by = NULL, updated_at = $1 \
         WHERE email_verified_by = $2",
    )
    .bind(store::now())
    .bind(provider_id)
    .execute(&mut *conn)
    .await?
    .rows_affected())
}

/// Locks user `id`'s row for the rest of the caller's transaction (an UPDATE that changes
/// nothing: PostgreSQL holds the row lock until commit; SQLite writes one at a time), so that
/// concurrent changes to its identities are serialised. False if there is no such user.
pub async fn lock_in(conn: &mut AnyConnection, id: &str) -> Result<bool, StoreError> {
    Ok(
        sqlx::query("UPDATE users SET updated_at = updated_at WHERE id = $1")
            .bind(id)
            .execute(&mut *conn)
            .await?
            .rows_affected()
            == 1,
    )
}

/// Withdraws user `id`'s address verification when `provider_id` gave it (the user's last
/// identity at that provider is being unlinked).
pub async fn withdraw_user_verification_in(
    conn: &mut AnyConnection,
    id: &str,
    provider_id: &str,
) -> Result<(), StoreError> {
    sqlx::query(
        "UPDATE users SET email_verified = 0, email_verified_by = NULL, updated_at = $1 \
         WHERE id = $2 AND email_verified_by = $3",
    )
    .bind(store::now())
    .bind(id)
    .bind(provider_id)
    .execute(&mut *conn)
    .await?;
    Ok(())
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
    sqlx::query("UPDATE users SET tokens_revoked_at_ms = $1 WHERE id = $2")
        .bind(store::now_ms())
        .bind(user_id)
        .execute(&mut *conn)
        .await?;
    Ok(())
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

/// Up to `limit` users newest first, below `before` when given, whose e-mail or name contains
/// `q` (any case) or whose id is `q`.
pub async fn search(
    store: &Store,
    q: Option<&str>,
    before: Option<&store::Keyset>,
    limit: i64,
) -> Result<Vec<User>, StoreError> {
    let mut conditions = store::Conditions::default();
    if let Some(q) = q {
        let email = conditions.text(contains_pattern(q));
        let name = conditions.text(contains_pattern(q));
        let id = conditions.text(q);
        conditions.push(format!(
            "(LOWER(COALESCE(email, '')) LIKE {email} ESCAPE '\\' \
             OR LOWER(COALESCE(name, '')) LIKE {name} ESCAPE '\\' OR id = {id})"
        ));
    }
    let select = format!("SELECT {COLUMNS} FROM users");
    let list = store::NewestFirst::by_created(&select, "id");
    let rows = list
        .fetch_where(store.pool(), conditions, before, limit)
        .await?;
    rows.iter().map(from_row).collect()
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
