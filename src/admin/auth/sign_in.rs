//! Admin sign-in: a per-instance rate in front of everything, then throttled per account and
//! per IP (each attempt counted before its password is checked), every failure audited, a fresh
//! session on success.

use secrecy::SecretString;
use serde_json::json;

use crate::admin::auth::accounts::{self, Admin, AdminEmail};
use crate::admin::auth::session;
use crate::admin::auth::throttle::{self, Attempt, Verdict};
use crate::audit::{Caller, commit_with};
use crate::state::AppState;

#[derive(Debug, thiserror::Error)]
pub enum SignInError {
    #[error("the e-mail or password is wrong")]
    Invalid,
    #[error("too many failed attempts; try again in {0} s")]
    Wait(u64),
    #[error("too many failed attempts: sign-in is locked for {} more minutes", .0.div_ceil(60))]
    Locked(u64),
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

impl From<crate::store::StoreError> for SignInError {
    fn from(err: crate::store::StoreError) -> Self {
        SignInError::Internal(err.into())
    }
}

impl From<sqlx::Error> for SignInError {
    fn from(err: sqlx::Error) -> Self {
        SignInError::Internal(err.into())
    }
}

/// Checks the credentials and opens a session; returns the admin and the cookie value.
#[tracing::instrument(skip(state, password), fields(ip = ip.unwrap_or("-")))]
pub async fn sign_in(
    state: &AppState,
    email_raw: &str,
    password: SecretString,
    ip: Option<&str>,
) -> Result<(Admin, SecretString), SignInError> {
    let settings = &state.settings.admin;
    // Over the instance's sign-in rate: answered like the throttle, with no hashing and no
    // database work (an audit row per refused request would be a write amplifier).
    if let Err(secs) = state.sign_in_gate.admit() {
        metrics::counter!("portico_admin_sign_in_rate_limited_total").increment(1);
        return Err(SignInError::Wait(secs));
    }
    let attempted = email_raw.trim().to_lowercase();
    let account_key = throttle::account_key(&attempted);
    let mut keys = vec![(account_key.clone(), settings.account_lockout_failures)];
    if let Some(ip) = ip {
        keys.push((throttle::ip_key(ip), settings.ip_lockout_failures));
    }
    // The attempted e-mail is what an unknown actor claims to be; keep it short in the log.
    let claimed = Caller {
        actor: attempted.chars().take(254).collect(),
        ip: ip.map(str::to_owned),
    };
    let account = format!("account:{}", claimed.actor);

    let attempt = {
        let mut tx = state.store.begin_write().await?;
        let attempt =
            throttle::count_attempt(&mut tx, &keys, settings, crate::store::now_ms()).await?;
        match attempt {
            Attempt::Counted { .. } => tx.commit().await?,
            Attempt::Refused(_) => tx.rollback().await?,
        }
        attempt
    };
    let locked = match attempt {
        Attempt::Counted { locked } => locked,
        Attempt::Refused(verdict) => {
            let tx = state.store.begin_write().await?;
            let reason = json!({ "reason": match verdict { Verdict::Locked(_) => "locked", _ => "too_soon" } });
            commit_with(tx, &claimed, "admin.sign_in_refused", &account, reason).await?;
            return Err(match verdict {
                Verdict::Locked(secs) => SignInError::Locked(secs),
                Verdict::Wait(secs) => SignInError::Wait(secs),
                Verdict::Allowed => unreachable!("a refusal has a verdict"),
            });
        }
    };

    let found = match AdminEmail::parse(email_raw) {
        Ok(email) => accounts::find_for_sign_in(&state.store, &email).await?,
        Err(_) => None,
    };
    let verified = match found {
        Some((admin, hash)) => state
            .passwords
            .verify(password, hash)
            .await
            .map_err(anyhow::Error::from)?
            .then_some(admin),
        None => {
            // Unknown accounts cost as much as known ones: no timing oracle for e-mails.
            state
                .passwords
                .burn(password)
                .await
                .map_err(anyhow::Error::from)?;
            None
        }
    };

    let mut tx = state.store.begin_write().await?;
    let Some(admin) = verified else {
        // The attempt is already counted; only the audit entry is left.
        let details = json!({ "reason": "bad_credentials", "locked": locked });
        commit_with(tx, &claimed, "admin.sign_in_failed", &account, details).await?;
        return Err(if locked {
            SignInError::Locked(settings.lockout_secs)
        } else {
            SignInError::Invalid
        });
    };
    throttle::clear(&mut tx, &account_key).await?;
    for (key, threshold) in keys.iter().skip(1) {
        throttle::undo_attempt(&mut tx, key, *threshold, settings, crate::store::now_ms()).await?;
    }
    session::purge_expired(&mut tx, settings).await?;
    let token = session::create(&mut tx, &admin, ip).await?;
    let caller = Caller {
        actor: admin.actor(),
        ip: claimed.ip,
    };
    let target = format!("admin:{}", admin.id);
    commit_with(tx, &caller, "admin.signed_in", &target, json!({})).await?;
    Ok((admin, token))
}
