//! Connecting and disconnecting a user's identities on purpose: by the user on the account page
//! (`oidc::account`) and by admins (unlink, and moving an identity from one user to another,
//! `admin::users`). All go through here, so the rules hold whoever asks:
//!
//! - an identity that belongs to another user is never moved or merged silently: linking it is
//!   refused ([`LinkError::BelongsToAnother`]) and both users stay as they were; only an admin
//!   moves it, on purpose ([`move_in`]), and the user it leaves loses what it carried;
//! - a user has at most one identity per provider ([`LinkError::SameProvider`]);
//! - a user's last identity is never removed ([`LinkError::LastIdentity`]): without one, the
//!   user could never sign in again;
//! - unlinking takes with it what the identity still carried: its upstream tokens (sealed in
//!   the identity row, so deleting the row removes them from the vault), the refresh tokens
//!   and unredeemed codes issued from it, the SSO sessions that came through it, and the
//!   address verification its provider gave.
//!
//! Each change, its audit entry and its `identity.linked` / `identity.unlinked` event commit
//! in the caller's transaction. The user's row is locked first, so two concurrent unlinks of a
//! two-identity user cannot both pass the last-identity check.

use serde_json::json;
use sqlx::AnyConnection;

use crate::audit::Caller;
use crate::crypto::Sealer;
use crate::grants::{codes, refresh, sessions};
use crate::store::StoreError;
use crate::upstream::UpstreamIdentity;
use crate::webhooks::events::{self, EventType};

use super::{identities, repo};

/// The `session.ended` reason when an identity's sessions end with it.
pub const REASON_UNLINKED: &str = "identity unlinked";

/// Who asked for a link or an unlink, as the event's `via` says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Via {
    /// The user, on the account page.
    Account,
    /// An admin (UI or API).
    Admin,
}

impl Via {
    pub fn as_str(self) -> &'static str {
        match self {
            Via::Account => "account",
            Via::Admin => "admin",
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum LinkError {
    #[error("no such user `{0}`")]
    UserNotFound(String),
    #[error("the user has no identity `{0}`")]
    IdentityNotFound(String),
    #[error("the last identity of a user cannot be removed")]
    LastIdentity,
    #[error("this identity belongs to another user")]
    BelongsToAnother { other_user_id: String },
    #[error("the user already has an identity at this provider")]
    SameProvider,
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// What linking did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Linked {
    /// A new identity was attached to the user.
    New { identity_id: String },
    /// The identity was the user's already: nothing changed.
    Already { identity_id: String },
}

/// What unlinking took with it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Unlinked {
    pub provider_id: String,
    pub sessions_ended: u64,
    pub refresh_tokens_revoked: u64,
}

/// The audit caller for a user's own change on the account page.
pub fn self_service(user_id: &str, ip: Option<String>) -> Caller {
    Caller {
        actor: format!("user:{user_id}"),
        ip,
    }
}

/// Attaches `identity` (just verified by an upstream login) to `user_id`, in the caller's
/// transaction. An identity that is another user's is refused, and nothing changes.
pub async fn link_in(
    conn: &mut AnyConnection,
    sealer: &Sealer,
    user_id: &str,
    identity: &UpstreamIdentity,
    caller: &Caller,
    via: Via,
) -> Result<Linked, LinkError> {
    if !repo::lock_in(conn, user_id).await? {
        return Err(LinkError::UserNotFound(user_id.to_owned()));
    }
    let provider = identity.provider.as_str();
    match identities::find_by_subject_in(conn, provider, &identity.subject).await? {
        Some((identity_id, owner)) if owner == user_id => {
            return Ok(Linked::Already { identity_id });
        }
        Some((_, other_user_id)) => return Err(LinkError::BelongsToAnother { other_user_id }),
        None => {}
    }
    // One account per provider and user: a second one would be a second way in that the
    // account page never offered (it lists providers, not accounts).
    if identities::user_has_at_in(conn, user_id, provider).await? {
        return Err(LinkError::SameProvider);
    }
    let identity_id = uuid::Uuid::new_v4().to_string();
    identities::insert_in(conn, &identity_id, user_id, provider, &identity.subject).await?;
    // The identity keeps what its provider said; the user's own claims stay those of the
    // identity it signs in with.
    let identity = &super::without_foreign(conn, identity).await?;
    identities::set_claims_in(conn, &identity_id, identity).await?;
    if let Some(tokens) = &identity.tokens {
        let sealed = identities::SealedTokens::seal(sealer, &identity_id, tokens);
        identities::store_tokens_in(conn, &identity_id, &sealed).await?;
    }
    let data = json!({
        "user_id": user_id,
        "provider": provider,
        "identity_id": identity_id,
        "via": via.as_str(),
    });
    events::record(&mut *conn, EventType::IdentityLinked, data.clone()).await?;
    let target = format!("user:{user_id}");
    crate::audit::record(
        conn,
        &caller.actor,
        "identity.linked",
        &target,
        data,
        caller.ip(),
    )
    .await?;
    Ok(Linked::New { identity_id })
}

/// Records, in its own statement on `conn`, that linking an identity of `provider` to
/// `user_id` was refused because it is `other_user_id`'s.
pub async fn record_refusal_in(
    conn: &mut AnyConnection,
    caller: &Caller,
    user_id: &str,
    provider: &str,
    other_user_id: &str,
) -> Result<(), StoreError> {
    let details = json!({
        "provider": provider,
        "reason": "the identity belongs to another user",
        "other_user_id": other_user_id,
    });
    let target = format!("user:{user_id}");
    crate::audit::record(
        conn,
        &caller.actor,
        "identity.link_refused",
        &target,
        details,
        caller.ip(),
    )
    .await
}

/// Ends what `identity` carried for its user, as it leaves that user: the refresh tokens and
/// unredeemed codes issued from it, the SSO sessions that came through it, and the user's
/// address verification its provider gave. Its upstream tokens go with the row change.
async fn end_what_it_carried_in(
    conn: &mut AnyConnection,
    identity: &identities::IdentityRow,
) -> Result<Unlinked, StoreError> {
    let ids = [identity.id.clone()];
    let unlinked = Unlinked {
        refresh_tokens_revoked: refresh::revoke_of_identities_in(conn, &ids).await?,
        sessions_ended: sessions::end_identity_sessions_in(conn, &identity.id, REASON_UNLINKED)
            .await?,
        provider_id: identity.provider_id.clone(),
    };
    codes::delete_unredeemed_of_identities_in(conn, &ids).await?;
    repo::withdraw_user_verification_in(conn, &identity.user_id, &identity.provider_id).await?;
    Ok(unlinked)
}

/// Removes identity `identity_id` from `user_id`, in the caller's transaction, with what it
/// carried (see the module doc). The user's last identity is refused.
pub async fn unlink_in(
    conn: &mut AnyConnection,
    user_id: &str,
    identity_id: &str,
    caller: &Caller,
    via: Via,
) -> Result<Unlinked, LinkError> {
    if !repo::lock_in(conn, user_id).await? {
        return Err(LinkError::UserNotFound(user_id.to_owned()));
    }
    let identity = identities::find_in(conn, identity_id)
        .await?
        .filter(|i| i.user_id == user_id)
        .ok_or_else(|| LinkError::IdentityNotFound(identity_id.to_owned()))?;
    if identities::count_of_user_in(conn, user_id).await? <= 1 {
        return Err(LinkError::LastIdentity);
    }
    let unlinked = end_what_it_carried_in(conn, &identity).await?;
    identities::delete_in(conn, identity_id, user_id).await?;
    let data = json!({
        "user_id": user_id,
        "provider": identity.provider_id,
        "identity_id": identity_id,
        "via": via.as_str(),
    });
    events::record(&mut *conn, EventType::IdentityUnlinked, data.clone()).await?;
    let mut details = data;
    details["sessions_ended"] = json!(unlinked.sessions_ended);
    details["refresh_tokens_revoked"] = json!(unlinked.refresh_tokens_revoked);
    let target = format!("user:{user_id}");
    crate::audit::record(
        conn,
        &caller.actor,
        "identity.unlinked",
        &target,
        details,
        caller.ip(),
    )
    .await?;
    Ok(unlinked)
}

/// Why an admin's move of an identity was refused.
#[derive(Debug, thiserror::Error)]
pub enum MoveError {
    #[error("no such user `{0}`")]
    UserNotFound(String),
    #[error("no such identity `{0}`")]
    IdentityNotFound(String),
    #[error("the identity is this user's already")]
    AlreadyTheUsers,
    #[error(
        "this is the only identity of user {owner}: without it that user could never sign in; \
         first give that user another identity, or delete that user"
    )]
    LastIdentityOfOwner { owner: String },
    #[error("the user already has an identity at this provider (one identity per provider)")]
    SameProvider,
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// What moving an identity did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Moved {
    /// The user the identity left.
    pub from_user_id: String,
    pub unlinked: Unlinked,
}

/// Moves identity `identity_id` from the user that has it (B) to `user_id` (A), in the
/// caller's transaction: what the admin does when a user's connect was refused because the
/// identity is another user's. Both user rows are locked, in id order so two crossed moves
/// cannot deadlock. Refused when the identity is B's last (B could never sign in again), when A
/// already has an identity at its provider, or when it is A's already. Otherwise what it
/// carried for B ends as on an unlink (refresh tokens, codes, sessions, the verification its
/// provider gave B, its upstream tokens), it becomes A's, and `identity.unlinked` (B),
/// `identity.linked` (A) and the audit entry `identity.moved` naming both are written.
pub async fn move_in(
    conn: &mut AnyConnection,
    user_id: &str,
    identity_id: &str,
    caller: &Caller,
) -> Result<Moved, MoveError> {
    let not_found = || MoveError::IdentityNotFound(identity_id.to_owned());
    let owner = identities::find_in(conn, identity_id)
        .await?
        .ok_or_else(not_found)?
        .user_id;
    let mut order = [user_id, owner.as_str()];
    order.sort_unstable();
    for id in order {
        if !repo::lock_in(conn, id).await? && id == user_id {
            return Err(MoveError::UserNotFound(user_id.to_owned()));
        }
    }
    // Read again under the locks: an identity that changed hands meanwhile is not the one the
    // admin asked about.
    let identity = identities::find_in(conn, identity_id)
        .await?
        .filter(|i| i.user_id == owner)
        .ok_or_else(not_found)?;
    if owner == user_id {
        return Err(MoveError::AlreadyTheUsers);
    }
    if identities::count_of_user_in(conn, &owner).await? <= 1 {
        return Err(MoveError::LastIdentityOfOwner { owner });
    }
    if identities::user_has_at_in(conn, user_id, &identity.provider_id).await? {
        return Err(MoveError::SameProvider);
    }
    let unlinked = end_what_it_carried_in(conn, &identity).await?;
    identities::reassign_in(conn, identity_id, &owner, user_id).await?;
    let event = |user: &str| {
        json!({
            "user_id": user,
            "provider": identity.provider_id,
            "identity_id": identity_id,
            "via": Via::Admin.as_str(),
        })
    };
    events::record(&mut *conn, EventType::IdentityUnlinked, event(&owner)).await?;
    events::record(&mut *conn, EventType::IdentityLinked, event(user_id)).await?;
    let details = json!({
        "identity_id": identity_id,
        "provider": identity.provider_id,
        "from_user_id": owner,
        "to_user_id": user_id,
        "sessions_ended": unlinked.sessions_ended,
        "refresh_tokens_revoked": unlinked.refresh_tokens_revoked,
    });
    let target = format!("user:{user_id}");
    crate::audit::record(
        conn,
        &caller.actor,
        "identity.moved",
        &target,
        details,
        caller.ip(),
    )
    .await?;
    Ok(Moved {
        from_user_id: owner,
        unlinked,
    })
}
