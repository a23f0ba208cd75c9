//! Growing delays and lockouts for failed admin sign-ins, per account and per IP address, and
//! a per-instance ceiling on sign-ins of any kind.
//!
//! State lives in the database so every instance enforces the same limits. Every attempt is
//! counted *before* its password is verified, in the same statement that checks the key is
//! not blocked, so concurrent attempts cannot all pass the check. After the n-th attempt in a
//! row a key must wait `delay_base * 2^(n-1)` (capped) before its next one; at the lockout
//! threshold it is blocked for `lockout_secs`. An attempt older than `lockout_secs` is
//! forgotten. A successful sign-in clears its account's count and takes its own attempt back
//! off its address's count.

use sqlx::AnyConnection;

use crate::config::AdminSettings;
use crate::store::StoreError;

/// What a throttled key may do now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Allowed,
    /// Too soon after the last failure: wait this many seconds (rounded up).
    Wait(u64),
    /// Locked out for this many more seconds.
    Locked(u64),
}

pub fn account_key(email: &str) -> String {
    format!("account:{}", email.trim().to_lowercase())
}

pub fn ip_key(ip: &str) -> String {
    format!("ip:{ip}")
}

fn ceil_secs(ms: i64) -> u64 {
    (ms.max(0) as u64).div_ceil(1000)
}

/// The strictest verdict over `keys` (each `(key, lockout threshold)`).
pub async fn check(
    conn: &mut AnyConnection,
    keys: &[(String, u32)],
    now: i64,
) -> Result<Verdict, StoreError> {
    let mut verdict = Verdict::Allowed;
    for (key, threshold) in keys {
        let row: Option<(i64, i64)> = sqlx::query_as(
            "SELECT failures, blocked_until_ms FROM admin_sign_in_throttle WHERE key = $1",
        )
        .bind(key)
        .fetch_optional(&mut *conn)
        .await?;
        let Some((failures, blocked_until)) = row else {
            continue;
        };
        if blocked_until <= now {
            continue;
        }
        let remaining = ceil_secs(blocked_until - now);
        let this = if failures >= i64::from(*threshold) {
            Verdict::Locked(remaining)
        } else {
            Verdict::Wait(remaining)
        };
        verdict = match (verdict, this) {
            (Verdict::Locked(a), Verdict::Locked(b)) => Verdict::Locked(a.max(b)),
            (Verdict::Locked(a), _) | (_, Verdict::Locked(a)) => Verdict::Locked(a),
            (Verdict::Wait(a), Verdict::Wait(b)) => Verdict::Wait(a.max(b)),
            (Verdict::Wait(a), _) | (_, Verdict::Wait(a)) => Verdict::Wait(a),
            _ => Verdict::Allowed,
        };
    }
    Ok(verdict)
}

/// What counting an attempt found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Attempt {
    /// Counted against every key; `locked` when this attempt reached a lockout threshold.
    Counted { locked: bool },
    /// A key is blocked: nothing should be verified, and the caller rolls the transaction back.
    Refused(Verdict),
}

/// Counts an attempt against every key (each `(key, lockout threshold)`) unless one of them is
/// blocked. Run it in a write transaction, commit on `Counted`, roll back on `Refused`.
pub async fn count_attempt(
    conn: &mut AnyConnection,
    keys: &[(String, u32)],
    settings: &AdminSettings,
    now: i64,
) -> Result<Attempt, StoreError> {
    let forget_before = now - (settings.lockout_secs as i64) * 1000;
    // Keys whose attempts are forgotten and whose block is over carry no information.
    sqlx::query(
        "DELETE FROM admin_sign_in_throttle WHERE last_failure_ms < $1 AND blocked_until_ms <= $2",
    )
    .bind(forget_before)
    .bind(now)
    .execute(&mut *conn)
    .await?;
    let mut locked = false;
    for (key, threshold) in keys {
        // One statement checks and counts: a blocked key's row is not updated and returns
        // nothing. PostgreSQL re-checks the condition on the locked row, SQLite runs one writer.
        let failures: Option<i64> = sqlx::query_scalar(
            "INSERT INTO admin_sign_in_throttle (key, failures, last_failure_ms, blocked_until_ms) \
             VALUES ($1, 1, $2, 0) \
             ON CONFLICT (key) DO UPDATE SET \
               failures = CASE WHEN admin_sign_in_throttle.last_failure_ms < $3 THEN 1 \
                               ELSE admin_sign_in_throttle.failures + 1 END, \
               last_failure_ms = $4 \
             WHERE admin_sign_in_throttle.blocked_until_ms <= $5 \
             RETURNING failures",
        )
        .bind(key)
        .bind(now)
        .bind(forget_before)
        .bind(now)
        .bind(now)
        .fetch_optional(&mut *conn)
        .await?;
        let Some(failures) = failures else {
            let verdict = match check(conn, keys, now).await? {
                Verdict::Allowed => Verdict::Wait(1),
                blocked => blocked,
            };
            return Ok(Attempt::Refused(verdict));
        };
        let reached = failures >= i64::from(*threshold);
        locked |= reached;
        set_blocked_until(conn, key, blocked_until(settings, failures, reached, now)).await?;
    }
    Ok(Attempt::Counted { locked })
}

/// Takes a successful attempt back off `key`'s count, lifting a lockout that attempt caused.
pub async fn undo_attempt(
    conn: &mut AnyConnection,
    key: &str,
    threshold: u32,
    settings: &AdminSettings,
    now: i64,
) -> Result<(), StoreError> {
    let row: Option<(i64, i64)> = sqlx::query_as(
        "UPDATE admin_sign_in_throttle SET failures = failures - 1 WHERE key = $1 \
         RETURNING failures, blocked_until_ms",
    )
    .bind(key)
    .fetch_optional(&mut *conn)
    .await?;
    match row {
        Some((failures, _)) if failures <= 0 => clear(conn, key).await,
        Some((failures, until)) => {
            let reached = failures >= i64::from(threshold);
            let until = until.min(blocked_until(settings, failures, reached, now));
            set_blocked_until(conn, key, until).await
        }
        None => Ok(()),
    }
}

fn blocked_until(settings: &AdminSettings, failures: i64, locked: bool, now: i64) -> i64 {
    if locked {
        now + (settings.lockout_secs as i64) * 1000
    } else {
        now + delay_ms(settings, failures) as i64
    }
}

async fn set_blocked_until(
    conn: &mut AnyConnection,
    key: &str,
    until: i64,
) -> Result<(), StoreError> {
    sqlx::query("UPDATE admin_sign_in_throttle SET blocked_until_ms = $1 WHERE key = $2")
        .bind(until)
        .bind(key)
        .execute(&mut *conn)
        .await?;
    Ok(())
}

/// The wait after `failures` failures in a row: doubling from the base, capped.
pub fn delay_ms(settings: &AdminSettings, failures: i64) -> u64 {
    let doublings = (failures.max(1) - 1).min(32) as u32;
    settings
        .delay_base_ms
        .saturating_mul(1u64 << doublings)
        .min(settings.delay_max_ms)
}

pub async fn clear(conn: &mut AnyConnection, key: &str) -> Result<(), StoreError> {
    sqlx::query("DELETE FROM admin_sign_in_throttle WHERE key = $1")
        .bind(key)
        .execute(&mut *conn)
        .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_double_up_to_the_cap() {
        let settings = AdminSettings {
            delay_base_ms: 1000,
            delay_max_ms: 5000,
            ..AdminSettings::default()
        };
        let delays: Vec<u64> = (1..=5).map(|n| delay_ms(&settings, n)).collect();
        assert_eq!(delays, vec![1000, 2000, 4000, 5000, 5000]);
    }
}
