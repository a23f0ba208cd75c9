//! Persistence on SQLite or PostgreSQL, chosen at run time from the URL.
//!
//! One API serves both: queries go through sqlx's `Any` driver with `$n` placeholders and a
//! portable SQL subset (`ON CONFLICT`, `RETURNING`), and use only the types every back end
//! maps alike (`i64`, `String`, `Vec<u8>`). Times are Unix seconds. Each back end has its own
//! migrations directory, because column types differ (`BLOB`/`BYTEA`).

pub mod janitor;
mod keyset;
mod master_key_check;
mod migrations;
mod rotate_master;
mod row;
pub mod sealed;

use std::path::Path;
use std::str::FromStr;
use std::sync::Once;
use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use sqlx::any::{AnyConnectOptions, AnyPoolOptions};
use sqlx::{AnyPool, Executor};
use url::Url;

pub use keyset::{Conditions, Keyset, NewestFirst};
pub use master_key_check::{KeyCheck, MasterKeyMismatch};
pub use row::{flag, json_list, json_object, to_json_list, to_json_object};
pub use sealed::{ALL as SEALED_COLUMNS, SealedColumn};

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database: {0}")]
    Database(#[from] sqlx::Error),
    #[error("database migrations: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("database directory {path}: {source}")]
    Directory {
        path: String,
        source: std::io::Error,
    },
    #[error(transparent)]
    Seal(#[from] crate::crypto::SealError),
    #[error("stored data is inconsistent: {0}")]
    Corrupt(String),
    #[error("an event body of {0} bytes is over the 20 KB webhook limit")]
    EventTooLarge(usize),
}

impl StoreError {
    /// The database cannot be reached or is busy, rather than the request or the data being at
    /// fault: worth answering 503 (try again) instead of 500.
    pub fn is_unavailable(&self) -> bool {
        matches!(self, StoreError::Database(e) if sqlx_unavailable(e))
    }
}

/// Whether `err`, or an error it was caused by, is a [`StoreError`] or `sqlx::Error` that says
/// the database is unreachable or busy (see [`StoreError::is_unavailable`]).
pub fn caused_by_unavailable(err: &(dyn std::error::Error + 'static)) -> bool {
    let mut next = Some(err);
    while let Some(e) = next {
        if let Some(store) = e.downcast_ref::<StoreError>() {
            return store.is_unavailable();
        }
        if let Some(sqlx) = e.downcast_ref::<sqlx::Error>() {
            return sqlx_unavailable(sqlx);
        }
        next = e.source();
    }
    false
}

/// No connection in time, a connection that broke, or a database that says it cannot serve:
/// PostgreSQL's SQLSTATE class 08 (connection exception), 57P01-57P03 (shutting down,
/// starting up) and 53300 (too many connections); SQLite's BUSY and LOCKED (a lock held past
/// `busy_timeout`), with their extended codes.
fn sqlx_unavailable(err: &sqlx::Error) -> bool {
    match err {
        sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::WorkerCrashed => true,
        sqlx::Error::Database(db) => {
            let Some(code) = db.code() else {
                return false;
            };
            // A PostgreSQL SQLSTATE is always five characters; SQLite's (extended) result
            // codes, as numbers, have at most four digits. Some SQLSTATEs are all digits, so
            // the SQLite test must not see them (22021, bad UTF-8, ends in SQLite's BUSY byte).
            if code.len() == 5 {
                code.starts_with("08") || matches!(&*code, "57P01" | "57P02" | "57P03" | "53300")
            } else {
                code.parse::<u32>()
                    .is_ok_and(|c| matches!(c & 0xff, SQLITE_BUSY | SQLITE_LOCKED))
            }
        }
        _ => false,
    }
}

const SQLITE_BUSY: u32 = 5;
const SQLITE_LOCKED: u32 = 6;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

#[derive(Clone, Debug)]
pub struct Store {
    pool: AnyPool,
    backend: Backend,
    /// SQLite has one writer per database: this process's writes go through a pool of one
    /// connection, where they queue in order, instead of meeting at `BEGIN IMMEDIATE`, where a
    /// loser polls the lock in SQLite's busy handler, sleeping 1 ms, 2 ms, 5 ms… between tries
    /// (measured: under load that cost refreshes their p99, docs/BENCHMARKS.md). Readers keep
    /// `pool` (WAL lets them run beside the writer). `None` on PostgreSQL, whose writers do not
    /// exclude each other, and for an in-memory SQLite database, which a second pool would not
    /// share.
    writer: Option<AnyPool>,
}

/// A write transaction from [`Store::begin_write`].
pub type WriteTx = sqlx::Transaction<'static, sqlx::Any>;

/// A connection for one-statement writes from [`Store::write_conn`].
pub type WriteConn = sqlx::pool::PoolConnection<sqlx::Any>;

static DRIVERS: Once = Once::new();

/// How long the store waits before it gives up and the request is answered 503.
///
/// An unreachable database must fail requests fast rather than hold them (and their clients)
/// until a proxy or the client gives up: a connection is waited for at most `acquire` (which
/// bounds connecting too: a database behind a dropped network answers nothing at all), and on
/// SQLite a write lock held by another process (the CLI, a backup) at most `busy`.
#[derive(Debug, Clone, Copy)]
pub struct Timeouts {
    pub acquire: Duration,
    pub busy: Duration,
}

impl Default for Timeouts {
    fn default() -> Self {
        Self {
            acquire: Duration::from_millis(DEFAULT_ACQUIRE_TIMEOUT_MS),
            busy: Duration::from_millis(DEFAULT_BUSY_TIMEOUT_MS),
        }
    }
}

pub const DEFAULT_ACQUIRE_TIMEOUT_MS: u64 = 3000;
pub const DEFAULT_BUSY_TIMEOUT_MS: u64 = 5000;

/// How long `/readyz` waits for the database: a probe must answer well within its own period.
const READY_WITHIN: Duration = Duration::from_secs(1);

/// A pool of up to `max` connections; on SQLite each in WAL mode with the settings below.
async fn open_pool(
    options: AnyConnectOptions,
    backend: Backend,
    max: u32,
    timeouts: Timeouts,
) -> Result<AnyPool, StoreError> {
    let busy_ms = timeouts.busy.as_millis();
    Ok(AnyPoolOptions::new()
        .max_connections(max)
        .acquire_timeout(timeouts.acquire)
        .after_connect(move |conn, _meta| {
            Box::pin(async move {
                if backend == Backend::Sqlite {
                    // WAL lets readers run beside the one writer; NORMAL sync is safe with WAL.
                    conn.execute("PRAGMA journal_mode = WAL").await?;
                    conn.execute("PRAGMA synchronous = NORMAL").await?;
                    conn.execute(format!("PRAGMA busy_timeout = {busy_ms}").as_str())
                        .await?;
                    conn.execute("PRAGMA foreign_keys = ON").await?;
                }
                Ok(())
            })
        })
        .connect_with(options)
        .await?)
}

impl Store {
    /// Connects (creating the SQLite file and its directory if needed). Does not migrate.
    pub async fn connect(url: &DatabaseUrl, max_connections: u32) -> Result<Self, StoreError> {
        Self::connect_with(url, max_connections, Timeouts::default()).await
    }

    /// As [`Self::connect`], with these timeouts.
    pub async fn connect_with(
        url: &DatabaseUrl,
        max_connections: u32,
        timeouts: Timeouts,
    ) -> Result<Self, StoreError> {
        DRIVERS.call_once(sqlx::any::install_default_drivers);
        let backend = if url.is_sqlite() {
            Backend::Sqlite
        } else {
            Backend::Postgres
        };
        let raw = match backend {
            Backend::Sqlite => prepare_sqlite_url(url.expose())?,
            Backend::Postgres => url.expose().to_owned(),
        };
        let options = AnyConnectOptions::from_str(&raw)?;
        let max = match (max_connections, backend) {
            (0, Backend::Sqlite) => 8,
            (0, Backend::Postgres) => 16,
            (n, _) => n,
        };
        let pool = open_pool(options.clone(), backend, max, timeouts).await?;
        let on_disk = sqlite_parts(&raw).0.is_some();
        let writer = match backend {
            Backend::Sqlite if on_disk => Some(open_pool(options, backend, 1, timeouts).await?),
            _ => None,
        };
        Ok(Self {
            pool,
            backend,
            writer,
        })
    }

    pub fn pool(&self) -> &AnyPool {
        &self.pool
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// A transaction that will write. On SQLite it runs on the writer connection (see
    /// `writer`) and takes the write lock at `BEGIN` (`BEGIN IMMEDIATE`; another process, such
    /// as the CLI, is waited out under `busy_timeout`): a deferred transaction that reads first
    /// would instead fail with "database is locked" when it tries to write after another
    /// connection has committed.
    pub async fn begin_write(&self) -> Result<WriteTx, StoreError> {
        Ok(match self.backend {
            Backend::Sqlite => self.write_pool().begin_with("BEGIN IMMEDIATE").await?,
            Backend::Postgres => self.pool.begin().await?,
        })
    }

    /// A connection for a write of one statement (autocommit) on a hot path: on SQLite the
    /// writer connection, so that it queues with [`Self::begin_write`]'s transactions rather
    /// than meeting them in SQLite's busy handler.
    pub async fn write_conn(&self) -> Result<WriteConn, StoreError> {
        Ok(self.write_pool().acquire().await?)
    }

    fn write_pool(&self) -> &AnyPool {
        self.writer.as_ref().unwrap_or(&self.pool)
    }

    /// Applies pending migrations; safe to run on every start and from several instances at once
    /// (PostgreSQL takes an advisory lock).
    pub async fn migrate(&self) -> Result<(), StoreError> {
        migrations::migrator(self.backend).run(&self.pool).await?;
        Ok(())
    }

    /// Ready when the database answers within a second and every migration this binary knows
    /// is applied.
    pub async fn is_ready(&self) -> bool {
        let latest = migrations::latest_version(self.backend);
        let applied = tokio::time::timeout(
            READY_WITHIN,
            sqlx::query_scalar::<_, Option<i64>>(
                "SELECT MAX(version) FROM _sqlx_migrations WHERE success = $1",
            )
            .bind(true)
            .fetch_one(&self.pool),
        )
        .await;
        matches!(applied, Ok(Ok(Some(v))) if v >= latest)
    }

    pub async fn close(&self) {
        if let Some(writer) = &self.writer {
            writer.close().await;
        }
        self.pool.close().await;
    }
}

/// The file of a `sqlite:` URL and its query; no file for an in-memory database.
fn sqlite_parts(raw: &str) -> (Option<&Path>, &str) {
    let rest = raw.trim_start_matches("sqlite:").trim_start_matches("//");
    let (path, query) = rest.split_once('?').unwrap_or((rest, ""));
    let file = (!path.is_empty() && path != ":memory:").then(|| Path::new(path));
    (file, query)
}

/// Ensures the SQLite file's directory exists and asks sqlx to create the file.
fn prepare_sqlite_url(raw: &str) -> Result<String, StoreError> {
    let (file, query) = sqlite_parts(raw);
    if let Some(parent) = file
        .and_then(Path::parent)
        .filter(|p| !p.as_os_str().is_empty())
    {
        std::fs::create_dir_all(parent).map_err(|source| StoreError::Directory {
            path: parent.display().to_string(),
            source,
        })?;
    }
    if query.split('&').any(|kv| kv.starts_with("mode=")) {
        Ok(raw.to_owned())
    } else if query.is_empty() {
        Ok(format!("{raw}?mode=rwc"))
    } else {
        Ok(format!("{raw}&mode=rwc"))
    }
}

/// Seconds since the Unix epoch.
pub fn now() -> i64 {
    now_ms() / 1000
}

/// Unix milliseconds.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

/// A database URL for one of the supported back ends. Its password is a secret.
#[derive(Clone)]
pub struct DatabaseUrl(SecretString);

impl DatabaseUrl {
    pub fn parse(raw: &str) -> Result<Self, String> {
        let scheme = raw.split(':').next().unwrap_or_default();
        match scheme {
            "sqlite" | "postgres" | "postgresql" => Ok(Self(SecretString::from(raw.to_owned()))),
            _ => Err("the database URL must start with sqlite:// or postgres://".to_owned()),
        }
    }

    pub fn sqlite_in(data_dir: &Path) -> Self {
        Self(SecretString::from(format!(
            "sqlite://{}",
            data_dir.join("portico.db").display()
        )))
    }

    pub fn expose(&self) -> &str {
        self.0.expose_secret()
    }

    pub fn is_sqlite(&self) -> bool {
        self.expose().starts_with("sqlite:")
    }

    /// The SQLite database file this URL names (relative to the working directory unless
    /// absolute); `None` for PostgreSQL and in-memory SQLite.
    pub fn sqlite_file(&self) -> Option<&Path> {
        if !self.is_sqlite() {
            return None;
        }
        sqlite_parts(self.expose()).0
    }

    /// The URL with no password at all: what may be shown to a person (who supplies the
    /// password themselves).
    pub fn without_password(&self) -> String {
        self.with_password(None)
    }

    /// The URL with any password replaced, for logs and `config check`.
    pub fn redacted(&self) -> String {
        self.with_password(Some("redacted"))
    }

    /// The URL with every password it carries, in the user part or as a `password` or
    /// `sslpassword` query parameter (libpq's), replaced by `with`, or removed. A URL with
    /// none is `without_password`'s as written, `redacted`'s as `Url` prints it.
    fn with_password(&self, with: Option<&str>) -> String {
        const SECRET_PARAMS: [&str; 2] = ["password", "sslpassword"];
        let Ok(mut url) = Url::parse(self.expose()) else {
            return "<unparseable>".to_owned();
        };
        let pairs: Vec<(String, String)> = url.query_pairs().into_owned().collect();
        let in_query = pairs
            .iter()
            .any(|(k, _)| SECRET_PARAMS.contains(&k.as_str()));
        if url.password().is_none() && !in_query {
            return match with {
                None => self.expose().to_owned(),
                Some(_) => url.to_string(),
            };
        }
        if url.password().is_some() {
            let _ = url.set_password(with);
        }
        if in_query {
            let mut query = url.query_pairs_mut();
            query.clear();
            for (k, v) in &pairs {
                match (SECRET_PARAMS.contains(&k.as_str()), with) {
                    (false, _) => query.append_pair(k, v),
                    (true, Some(w)) => query.append_pair(k, w),
                    (true, None) => &mut query,
                };
            }
        }
        url.to_string()
    }
}

impl std::fmt::Debug for DatabaseUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.redacted())
    }
}

impl<'de> Deserialize<'de> for DatabaseUrl {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let raw = String::deserialize(d)?;
        DatabaseUrl::parse(&raw).map_err(serde::de::Error::custom)
    }
}

impl Serialize for DatabaseUrl {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.redacted())
    }
}

/// The most values one `IN (...)` list binds; longer lists go in chunks.
pub const MAX_IN_LIST: usize = 500;

/// `$first, $first+1, ...` for `count` values.
pub fn placeholders(first: usize, count: usize) -> String {
    (first..first + count)
        .map(|i| format!("${i}"))
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A database error with only a code, as a driver reports it.
    #[derive(Debug)]
    struct Coded(&'static str);

    impl std::fmt::Display for Coded {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            write!(f, "code {}", self.0)
        }
    }

    impl std::error::Error for Coded {}

    impl sqlx::error::DatabaseError for Coded {
        fn message(&self) -> &str {
            self.0
        }
        fn code(&self) -> Option<std::borrow::Cow<'_, str>> {
            Some(self.0.into())
        }
        fn as_error(&self) -> &(dyn std::error::Error + Send + Sync + 'static) {
            self
        }
        fn as_error_mut(&mut self) -> &mut (dyn std::error::Error + Send + Sync + 'static) {
            self
        }
        fn into_error(self: Box<Self>) -> Box<dyn std::error::Error + Send + Sync + 'static> {
            self
        }
        fn kind(&self) -> sqlx::error::ErrorKind {
            sqlx::error::ErrorKind::Other
        }
    }

    #[test]
    fn only_codes_that_mean_unavailable_are_unavailable() {
        let unavailable = |code| sqlx_unavailable(&sqlx::Error::Database(Box::new(Coded(code))));
        // SQLite's BUSY and LOCKED with extended codes; PostgreSQL's connection exceptions,
        // shutdown and too many connections.
        for code in ["5", "517", "773", "6", "262", "08006", "57P01", "53300"] {
            assert!(unavailable(code), "{code}");
        }
        // Errors of the request, not of availability: SQLite constraint violations, and
        // PostgreSQL's unique violation, serialization failure, unknown table, and bad UTF-8
        // (22021, whose number's low byte is SQLite's BUSY).
        for code in ["19", "2067", "23505", "22021", "40001", "42P01"] {
            assert!(!unavailable(code), "{code}");
        }
    }

    #[test]
    fn passwords_in_the_user_part_or_the_query_are_never_shown() {
        for raw in [
            "postgres://portico:hunter2@db/portico",
            "postgres://portico@db/portico?password=hunter2&sslmode=require",
            "postgres://portico@db/portico?sslmode=verify-full&sslpassword=hunter2",
        ] {
            let url = DatabaseUrl::parse(raw).unwrap();
            for shown in [url.without_password(), url.redacted(), format!("{url:?}")] {
                assert!(!shown.contains("hunter2"), "{raw} shown as {shown}");
                assert!(shown.contains("db/portico"), "{shown}");
            }
            assert!(!url.without_password().contains("password"), "{raw}");
        }
        let kept = DatabaseUrl::parse("postgres://portico@db/portico?sslmode=require").unwrap();
        assert_eq!(kept.without_password(), kept.expose());
        assert!(kept.redacted().contains("sslmode=require"));
    }
}
