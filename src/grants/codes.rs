//! Authorization codes, stored by digest. A code is claimed by one conditional UPDATE ...
//! RETURNING, so single use is the database's doing and two instances cannot both redeem it;
//! the claim records the access token and refresh family it issues, so that a code presented
//! again can take them back. The claim runs in the redemption's write transaction, which also
//! stores the refresh token: a replay racing the redemption waits for that transaction, and
//! finds the refresh token to revoke. This module owns `auth_codes`.

use sqlx::any::AnyRow;
use sqlx::{AnyConnection, Row};

use super::pending::AuthRequest;
use crate::clients::RedirectUri;
use crate::crypto::TokenDigest;
use crate::store::{self, StoreError};

/// What a new code stands for: the request, and the session that answered it.
pub struct NewCode<'a> {
    pub request: &'a AuthRequest,
    pub user_id: &'a str,
    pub identity_id: &'a str,
    pub session_id: &'a str,
    pub auth_time: i64,
    pub expires_at: i64,
}

/// Stores `code` (by digest) in the caller's transaction or on a pooled connection.
pub async fn insert_in(
    conn: &mut AnyConnection,
    code: &str,
    new: &NewCode<'_>,
) -> Result<(), StoreError> {
    let request = new.request;
    sqlx::query(
        "INSERT INTO auth_codes (code_digest, client_id, redirect_uri, user_id, identity_id, \
         session_id, scope, nonce, code_challenge, resource, auth_time, expires_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)",
    )
    .bind(TokenDigest::of(code).as_bytes().to_vec())
    .bind(&request.client_id)
    .bind(request.redirect_uri.as_str())
    .bind(new.user_id)
    .bind(new.identity_id)
    .bind(new.session_id)
    .bind(&request.scope)
    .bind(&request.nonce)
    .bind(&request.code_challenge)
    .bind(&request.resource)
    .bind(new.auth_time)
    .bind(new.expires_at)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// A code as its claim returned it.
#[derive(Debug)]
pub struct Claimed {
    pub client_id: String,
    /// The URI the authorization request named, which the token request must repeat exactly.
    pub redirect_uri: RedirectUri,
    pub user_id: String,
    pub identity_id: String,
    pub session_id: String,
    pub scope: String,
    pub nonce: Option<String>,
    pub code_challenge: Option<String>,
    pub resource: Option<String>,
    pub auth_time: i64,
    pub expires_at: i64,
}

fn claimed(r: &AnyRow) -> Result<Claimed, StoreError> {
    Ok(Claimed {
        client_id: r.try_get("client_id")?,
        redirect_uri: RedirectUri::parse(&r.try_get::<String, _>("redirect_uri")?)
            .map_err(|_| StoreError::Corrupt("code redirect_uri".into()))?,
        user_id: r.try_get("user_id")?,
        identity_id: r.try_get("identity_id")?,
        session_id: r.try_get("session_id")?,
        scope: r.try_get("scope")?,
        nonce: r.try_get("nonce")?,
        code_challenge: r.try_get("code_challenge")?,
        resource: r.try_get("resource")?,
        auth_time: r.try_get("auth_time")?,
        expires_at: r.try_get("expires_at")?,
    })
}

/// What a redemption issues, recorded with the claim.
pub struct Issued<'a> {
    pub access_jti: &'a str,
    pub access_exp: i64,
    pub family_id: &'a str,
}

/// Claims the code with `digest` in the caller's write transaction: the first redemption wins
/// and records what it issues; `None` for an unknown or already used code. Until that
/// transaction ends, a concurrent claim of the same code waits (PostgreSQL's row lock,
/// SQLite's one writer), so what the winner stores with its claim (the refresh token) is
/// there for a replay to revoke.
pub async fn claim_in(
    conn: &mut AnyConnection,
    digest: &TokenDigest,
    issued: &Issued<'_>,
) -> Result<Option<Claimed>, StoreError> {
    let row = sqlx::query(
        "UPDATE auth_codes SET used_at = $1, access_jti = $2, access_exp = $3, family_id = $4 \
         WHERE code_digest = $5 AND used_at IS NULL RETURNING client_id, redirect_uri, user_id, \
         identity_id, session_id, scope, nonce, code_challenge, resource, auth_time, expires_at",
    )
    .bind(store::now())
    .bind(issued.access_jti)
    .bind(issued.access_exp)
    .bind(issued.family_id)
    .bind(digest.as_bytes().to_vec())
    .fetch_optional(&mut *conn)
    .await?;
    row.as_ref().map(claimed).transpose()
}

/// What the first redemption of a used code issued: its access token's `jti` and expiry, and
/// its refresh family.
pub struct Spent {
    pub access: Option<(String, i64)>,
    pub family_id: Option<String>,
}

/// The used code with `digest`, read in the caller's transaction; `None` when unknown.
pub async fn spent_in(
    conn: &mut AnyConnection,
    digest: &TokenDigest,
) -> Result<Option<Spent>, StoreError> {
    let row = sqlx::query(
        "SELECT access_jti, access_exp, family_id FROM auth_codes \
         WHERE code_digest = $1 AND used_at IS NOT NULL",
    )
    .bind(digest.as_bytes().to_vec())
    .fetch_optional(&mut *conn)
    .await?;
    row.map(|r| -> Result<Spent, StoreError> {
        let jti: Option<String> = r.try_get("access_jti")?;
        let exp: Option<i64> = r.try_get("access_exp")?;
        Ok(Spent {
            access: jti.zip(exp),
            family_id: r.try_get("family_id")?,
        })
    })
    .transpose()
}

/// Deletes the unredeemed, unexpired codes of these identities (their provider is being
/// deleted).
pub async fn delete_unredeemed_of_identities_in(
    conn: &mut AnyConnection,
    identity_ids: &[String],
) -> Result<(), StoreError> {
    for chunk in identity_ids.chunks(store::MAX_IN_LIST) {
        let sql = format!(
            "DELETE FROM auth_codes WHERE used_at IS NULL AND expires_at >= $1 \
             AND identity_id IN ({})",
            store::placeholders(2, chunk.len())
        );
        let query = sqlx::query(&sql).bind(store::now());
        let query = chunk.iter().fold(query, |q, id| q.bind(id));
        query.execute(&mut *conn).await?;
    }
    Ok(())
}

/// Used and expired codes are kept `code_grace_secs` more, so that a late replay of a code is
/// still recognised as a reuse.
pub const JANITOR: crate::store::janitor::Rule = crate::store::janitor::Rule {
    table: "auth_codes",
    key: "code_digest",
    condition: "expires_at < $1",
    cutoff: |now, s| now - s.code_grace_secs,
};
