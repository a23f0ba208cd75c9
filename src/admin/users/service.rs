//! Users as admins see and control them: search, a user with its identities (never a token),
//! disable/enable, ending a user's sessions, unlinking an identity, and moving an identity from
//! the user that has it to another (`users::links`; admins attach no new identity: a user
//! connects another account from `/account`). Each change,
//! its `session.ended` events and its audit entry commit in one transaction.
//!
//! Ending sessions also revokes the user's refresh tokens, and the access tokens issued so far
//! (refused from then on at `/userinfo`, `/introspect` and the broker): an application holding
//! one could otherwise keep the user signed in after the admin ended everything.

use serde::{Deserialize, Serialize};
use serde_json::json;
use utoipa::{IntoParams, ToSchema};

use crate::admin::http::error::{Classify, Fault};
use crate::admin::http::pagination::{Page, PageRequest};
use crate::admin::http::validation::FieldErrors;
use crate::admin::{Caller, http::time};
use crate::grants::refresh::{self, Owner};
use crate::grants::sessions;
use crate::state::AppState;
use crate::store::StoreError;
use crate::users::identities::{self, IdentityRow};
use crate::users::links::{self, LinkError, MoveError, Via};
use crate::users::repo::{self, User as UserRow};

/// The `session.ended` reasons an admin action records.
pub const REASON_DISABLED: &str = "user disabled";
pub const REASON_ADMIN: &str = "ended by an admin";

#[derive(Debug, thiserror::Error)]
pub enum UserAdminError {
    #[error("no such user `{0}`")]
    NotFound(String),
    #[error("the user is already disabled")]
    AlreadyDisabled,
    #[error("the user is not disabled")]
    NotDisabled,
    #[error("the user has no identity `{0}`")]
    IdentityNotFound(String),
    #[error(
        "this is the user's only identity: without it the user could never sign in; \
         the user can connect another one from /account first"
    )]
    LastIdentity,
    /// A move refused by the rules of `users::links::move_in`.
    #[error(transparent)]
    MoveRefused(MoveError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<LinkError> for UserAdminError {
    fn from(e: LinkError) -> Self {
        match e {
            LinkError::UserNotFound(id) => UserAdminError::NotFound(id),
            LinkError::IdentityNotFound(id) => UserAdminError::IdentityNotFound(id),
            // Never another user's id in an answer about this one.
            LinkError::BelongsToAnother { .. } | LinkError::SameProvider => {
                UserAdminError::IdentityNotFound("(not this user's)".to_owned())
            }
            LinkError::LastIdentity => UserAdminError::LastIdentity,
            LinkError::Store(e) => UserAdminError::Store(e),
        }
    }
}

impl From<MoveError> for UserAdminError {
    fn from(e: MoveError) -> Self {
        match e {
            MoveError::UserNotFound(id) => UserAdminError::NotFound(id),
            MoveError::IdentityNotFound(id) => UserAdminError::IdentityNotFound(id),
            MoveError::Store(e) => UserAdminError::Store(e),
            refused => UserAdminError::MoveRefused(refused),
        }
    }
}

impl From<sqlx::Error> for UserAdminError {
    fn from(e: sqlx::Error) -> Self {
        UserAdminError::Store(e.into())
    }
}

impl Classify for UserAdminError {
    fn fault(self) -> Fault {
        match self {
            UserAdminError::NotFound(_) | UserAdminError::IdentityNotFound(_) => Fault::NotFound,
            UserAdminError::AlreadyDisabled
            | UserAdminError::NotDisabled
            | UserAdminError::LastIdentity
            | UserAdminError::MoveRefused(_) => Fault::Conflict,
            UserAdminError::Store(e) => Fault::Store(e),
        }
    }
}

/// A user as the admin API lists it.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct UserView {
    pub id: String,
    pub email: Option<String>,
    pub email_verified: bool,
    pub name: Option<String>,
    /// A disabled user cannot log in, refresh, or use `/userinfo`.
    pub disabled: bool,
    /// RFC 3339.
    pub created_at: String,
    /// RFC 3339.
    pub updated_at: String,
    /// RFC 3339.
    pub last_login_at: Option<String>,
    #[serde(skip)]
    pub created_at_secs: i64,
}

impl From<UserRow> for UserView {
    fn from(u: UserRow) -> Self {
        Self {
            created_at: time::rfc3339(u.created_at),
            updated_at: time::rfc3339(u.updated_at),
            last_login_at: u.last_login_at.map(time::rfc3339),
            created_at_secs: u.created_at,
            id: u.id,
            email: u.email,
            email_verified: u.email_verified,
            name: u.name,
            disabled: u.disabled,
        }
    }
}

/// A linked upstream identity. Its sealed tokens are never shown.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct IdentityView {
    pub id: String,
    /// The provider's id.
    pub provider: String,
    /// The user's id at the provider.
    pub subject: String,
    pub email: Option<String>,
    pub email_verified: bool,
    pub name: Option<String>,
    /// The upstream grant is gone (`invalid_grant`): the user must log in through this
    /// provider again before the broker can serve its tokens.
    pub needs_login: bool,
    /// RFC 3339.
    pub created_at: String,
    /// RFC 3339.
    pub updated_at: String,
}

impl From<IdentityRow> for IdentityView {
    fn from(i: IdentityRow) -> Self {
        Self {
            created_at: time::rfc3339(i.created_at),
            updated_at: time::rfc3339(i.updated_at),
            id: i.id,
            provider: i.provider_id,
            subject: i.subject,
            email: i.email,
            email_verified: i.email_verified,
            name: i.name,
            needs_login: i.needs_login,
        }
    }
}

/// A user with its identities and what is live for it.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct UserDetail {
    #[serde(flatten)]
    pub user: UserView,
    pub identities: Vec<IdentityView>,
    /// SSO sessions not ended nor expired.
    pub active_sessions: i64,
    /// Refresh tokens not revoked, rotated nor expired.
    pub active_refresh_tokens: i64,
}

/// What ending a user's sessions did.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct SessionsEnded {
    pub user_id: String,
    /// SSO sessions ended (each recorded as a `session.ended` event).
    pub sessions_ended: u64,
    /// Refresh tokens revoked.
    pub refresh_tokens_revoked: u64,
}

/// What unlinking an identity took with it.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct IdentityUnlinked {
    pub user_id: String,
    pub identity_id: String,
    /// The provider the identity was at.
    pub provider: String,
    /// SSO sessions that came through the identity, ended (each a `session.ended` event).
    pub sessions_ended: u64,
    /// Refresh tokens issued from the identity, revoked.
    pub refresh_tokens_revoked: u64,
}

/// Which identity to move to the user.
#[derive(Debug, Clone, Deserialize, ToSchema)]
pub struct MoveIdentity {
    /// The identity's id (from the other user's `identities`).
    pub identity_id: String,
}

/// `?q=&limit=&cursor=` for the user list.
#[derive(Debug, Clone, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct UserParams {
    /// Part of an e-mail address or name (any case), or a whole user id.
    pub q: Option<String>,
    /// 1 to 200; default 50.
    pub limit: Option<String>,
    /// `next_cursor` from the previous page.
    pub cursor: Option<String>,
}

/// Checked user-list filters.
#[derive(Debug, Clone)]
pub struct UserQuery {
    pub q: Option<String>,
    pub page: PageRequest,
}

impl UserParams {
    pub fn parse(&self) -> Result<UserQuery, FieldErrors> {
        let mut errors = FieldErrors::new();
        let q = self.q.as_deref().map(str::trim).filter(|q| !q.is_empty());
        if q.is_some_and(|q| q.chars().count() > 200) {
            errors.add("q", "must be at most 200 characters");
        }
        let page = PageRequest::parse(self.limit.as_deref(), self.cursor.as_deref(), &mut errors);
        errors.or_ok(UserQuery {
            q: q.map(str::to_owned),
            page,
        })
    }
}

/// Users newest first, filtered by `q`.
pub async fn search(state: &AppState, query: &UserQuery) -> Result<Page<UserView>, StoreError> {
    let rows = repo::search(
        &state.store,
        query.q.as_deref(),
        query.page.cursor.as_ref(),
        query.page.limit + 1,
    )
    .await?;
    let users: Vec<UserView> = rows.into_iter().map(UserView::from).collect();
    Ok(query.page.of(users, |u| (u.created_at_secs, u.id.clone())))
}

pub async fn get(state: &AppState, id: &str) -> Result<UserDetail, UserAdminError> {
    let user = repo::find(&state.store, id)
        .await?
        .ok_or_else(|| UserAdminError::NotFound(id.to_owned()))?;
    let identities = identities::of_user(&state.store, id).await?;
    let active_sessions = sessions::live_count(&state.store, id).await?;
    let active_refresh_tokens = refresh::live_count(&state.store, id).await?;
    Ok(UserDetail {
        user: user.into(),
        identities: identities.into_iter().map(IdentityView::from).collect(),
        active_sessions,
        active_refresh_tokens,
    })
}

/// Ends the user's SSO sessions (a `session.ended` event each) and revokes its refresh
/// tokens and the access tokens issued so far, on the caller's transaction.
async fn end_everything(
    conn: &mut sqlx::AnyConnection,
    user_id: &str,
    reason: &str,
) -> Result<SessionsEnded, UserAdminError> {
    let sessions_ended = sessions::end_user_sessions_in(conn, user_id, reason).await?;
    let refresh_tokens_revoked = refresh::revoke_all_in(conn, Owner::User(user_id)).await?;
    repo::revoke_access_tokens_in(conn, user_id).await?;
    Ok(SessionsEnded {
        user_id: user_id.to_owned(),
        sessions_ended,
        refresh_tokens_revoked,
    })
}

/// Commits what [`end_everything`] did with the audit entry of `action`, which counts it.
async fn commit_ended(
    tx: crate::store::WriteTx,
    caller: &Caller,
    action: &str,
    ended: SessionsEnded,
) -> Result<SessionsEnded, UserAdminError> {
    let details = json!({
        "sessions_ended": ended.sessions_ended,
        "refresh_tokens_revoked": ended.refresh_tokens_revoked,
    });
    let target = format!("user:{}", ended.user_id);
    crate::audit::commit_with(tx, caller, action, &target, details).await?;
    Ok(ended)
}

/// The user, read in the transaction, or `NotFound`.
async fn existing(conn: &mut sqlx::AnyConnection, id: &str) -> Result<UserRow, UserAdminError> {
    repo::find_in(conn, id)
        .await?
        .ok_or_else(|| UserAdminError::NotFound(id.to_owned()))
}

/// Disables the user: no login, refresh or `/userinfo` from now on; its sessions end and its
/// refresh tokens are revoked in the same transaction.
pub async fn disable(
    state: &AppState,
    caller: &Caller,
    id: &str,
) -> Result<SessionsEnded, UserAdminError> {
    let mut tx = state.store.begin_write().await?;
    if existing(&mut tx, id).await?.disabled {
        return Err(UserAdminError::AlreadyDisabled);
    }
    repo::set_disabled_in(&mut tx, id, true).await?;
    let ended = end_everything(&mut tx, id, REASON_DISABLED).await?;
    commit_ended(tx, caller, "user.disabled", ended).await
}

/// Lets a disabled user log in again (nothing that was ended comes back).
pub async fn enable(state: &AppState, caller: &Caller, id: &str) -> Result<(), UserAdminError> {
    let mut tx = state.store.begin_write().await?;
    if !existing(&mut tx, id).await?.disabled {
        return Err(UserAdminError::NotDisabled);
    }
    repo::set_disabled_in(&mut tx, id, false).await?;
    let target = format!("user:{id}");
    Ok(crate::audit::commit_with(tx, caller, "user.enabled", &target, json!({})).await?)
}

/// Ends the user's SSO sessions and revokes its refresh tokens ("sign out everywhere").
pub async fn end_sessions(
    state: &AppState,
    caller: &Caller,
    id: &str,
) -> Result<SessionsEnded, UserAdminError> {
    let mut tx = state.store.begin_write().await?;
    existing(&mut tx, id).await?;
    let ended = end_everything(&mut tx, id, REASON_ADMIN).await?;
    commit_ended(tx, caller, "user.sessions_ended", ended).await
}

/// The user that identity `identity_id` belongs to, or `IdentityNotFound`.
pub async fn owner_of_identity(
    state: &AppState,
    identity_id: &str,
) -> Result<String, UserAdminError> {
    identities::with_tokens(&state.store, identities::Which::Id(identity_id))
        .await?
        .map(|(row, _)| row.user_id)
        .ok_or_else(|| UserAdminError::IdentityNotFound(identity_id.to_owned()))
}

/// Unlinks identity `identity_id` from user `id` (`users::links::unlink_in`): refused for the
/// user's last identity; its upstream tokens leave the vault with it, and the refresh tokens,
/// codes and sessions that came through it end, with `identity.unlinked` and the audit entry
/// in the same transaction.
pub async fn unlink_identity(
    state: &AppState,
    caller: &Caller,
    id: &str,
    identity_id: &str,
) -> Result<IdentityUnlinked, UserAdminError> {
    let mut tx = state.store.begin_write().await?;
    let unlinked = links::unlink_in(&mut tx, id, identity_id, caller, Via::Admin).await?;
    tx.commit().await?;
    Ok(IdentityUnlinked {
        user_id: id.to_owned(),
        identity_id: identity_id.to_owned(),
        provider: unlinked.provider_id,
        sessions_ended: unlinked.sessions_ended,
        refresh_tokens_revoked: unlinked.refresh_tokens_revoked,
    })
}

/// Moves identity `identity_id` from the user that has it to user `id`
/// (`users::links::move_in`): refused (409) when it is that user's last identity, when user
/// `id` already has one at its provider, or when it is user `id`'s already. Returns the
/// identity as it is now, user `id`'s.
pub async fn move_identity(
    state: &AppState,
    caller: &Caller,
    id: &str,
    identity_id: &str,
) -> Result<IdentityView, UserAdminError> {
    // An id no identity could have is not worth a transaction (and is bounded before SQL).
    if identity_id.is_empty() || identity_id.len() > 64 {
        return Err(UserAdminError::IdentityNotFound(identity_id.to_owned()));
    }
    let mut tx = state.store.begin_write().await?;
    links::move_in(&mut tx, id, identity_id, caller).await?;
    let moved = identities::find_in(&mut tx, identity_id).await?;
    tx.commit().await?;
    moved
        .map(IdentityView::from)
        .ok_or_else(|| UserAdminError::IdentityNotFound(identity_id.to_owned()))
}
