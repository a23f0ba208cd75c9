//! Typed settings: defaults, then `portico.toml`, then `PORTICO_*` environment variables.
//!
//! Parsing happens once, at start, into types that cannot hold a bad value: a listen address is a
//! `SocketAddr`, the issuer an absolute http(s) URL without a trailing slash, the database URL one
//! of the two back ends we support. A bad value stops the start with one line naming the key.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use figment::Figment;
use figment::providers::{Env, Format, Toml};
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use url::Url;

use crate::keys::{KeySettings, SigningAlg};
pub use crate::store::DatabaseUrl;

/// Sections an environment variable may name as `PORTICO_<SECTION>_<KEY>`.
const SECTIONS: &[&str] = &[
    "server",
    "database",
    "secrets",
    "bootstrap",
    "log",
    "keys",
    "oidc",
    "webhooks",
    "admin",
    "janitor",
    "branding",
    "metrics",
    "upstream",
];

/// Short forms from the contract that do not follow `PORTICO_<SECTION>_<KEY>`.
const SHORT_FORMS: &[(&str, &str)] = &[
    ("listen", "server.listen"),
    ("issuer", "server.issuer"),
    ("data_dir", "server.data_dir"),
    ("master_key", "secrets.master_key"),
    ("master_key_file", "secrets.master_key_file"),
    ("log", "log.filter"),
];

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("configuration: {0}")]
    Invalid(String),
    #[error("configuration file {path}: {source}")]
    Unreadable {
        path: PathBuf,
        source: std::io::Error,
    },
}

impl From<figment::Error> for ConfigError {
    fn from(err: figment::Error) -> Self {
        // figment names the key and the source (file or variable); keep it on one line.
        let line = err
            .into_iter()
            .map(|e| e.to_string())
            .collect::<Vec<_>>()
            .join("; ");
        ConfigError::Invalid(line)
    }
}

#[derive(Debug, Clone, Deserialize, Serialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct Settings {
    pub server: ServerSettings,
    pub database: DatabaseSettings,
    pub secrets: SecretsSettings,
    pub bootstrap: BootstrapSettings,
    pub log: LogSettings,
    pub keys: KeySettings,
    pub oidc: OidcSettings,
    /// `[[clients]]`: downstream applications kept in the config file.
    pub clients: Vec<crate::clients::ClientConfig>,
    /// `[[providers]]`: upstream providers kept in the config file.
    pub providers: Vec<crate::providers::ProviderConfig>,
    pub webhooks: crate::webhooks::WebhookSettings,
    pub admin: AdminSettings,
    pub janitor: crate::store::janitor::JanitorSettings,
    pub branding: BrandingSettings,
    pub metrics: MetricsSettings,
    /// `[upstream]`: timeouts, retries, bulkheads and circuit breakers of upstream requests.
    pub upstream: crate::upstream::settings::UpstreamSettings,
}

/// The `[oidc]` section: lifetimes and limits of the OpenID Connect provider.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct OidcSettings {
    /// Authorization codes live at most this long (RFC 6749 recommends 10 minutes at most;
    /// one minute is plenty for a redirect).
    pub code_ttl_secs: u64,
    /// Defaults for clients that set no lifetimes of their own.
    pub access_token_ttl_secs: u64,
    pub id_token_ttl_secs: u64,
    pub refresh_token_ttl_secs: u64,
    /// A rotated refresh token presented again within this many seconds is a concurrent
    /// refresh by the same client, not a theft: it gets fresh tokens and no family revocation.
    pub refresh_grace_secs: u64,
    /// How long a user has to finish the upstream login.
    pub pending_login_ttl_secs: u64,
    /// SSO session: ends after this long without use...
    pub session_idle_secs: u64,
    /// ...and at the latest this long after the login.
    pub session_absolute_secs: u64,
    /// The algorithm of RFC 9068 access tokens.
    pub access_token_alg: SigningAlg,
    /// A downstream refresh asks the provider for fresh claims when the stored ones are at
    /// least this old. 0 (the default): on every refresh, as Dex does, so that group changes
    /// reach apps at their next refresh. Raise it to spare a busy provider.
    pub upstream_refresh_interval_secs: u64,
    pub rate_limit: crate::ops::ratelimit::RateLimitSettings,
}

impl Default for OidcSettings {
    fn default() -> Self {
        Self {
            code_ttl_secs: 60,
            access_token_ttl_secs: 900,
            id_token_ttl_secs: 3600,
            refresh_token_ttl_secs: 30 * 86_400,
            refresh_grace_secs: 10,
            pending_login_ttl_secs: 900,
            session_idle_secs: 8 * 3600,
            session_absolute_secs: 7 * 86_400,
            access_token_alg: SigningAlg::RS256,
            upstream_refresh_interval_secs: 0,
            rate_limit: crate::ops::ratelimit::RateLimitSettings::default(),
        }
    }
}

impl OidcSettings {
    /// The lifetimes a client gets when it sets none of its own.
    pub fn client_lifetimes(&self) -> crate::clients::Lifetimes {
        crate::clients::Lifetimes {
            access_token_secs: self.access_token_ttl_secs,
            id_token_secs: self.id_token_ttl_secs,
            refresh_token_secs: self.refresh_token_ttl_secs,
        }
    }

    pub fn validate(&self, max_token_lifetime_secs: u64) -> Result<(), String> {
        if self.code_ttl_secs == 0 || self.code_ttl_secs > 60 {
            return Err("oidc.code_ttl_secs must be between 1 and 60".into());
        }
        for (name, v) in [
            ("oidc.access_token_ttl_secs", self.access_token_ttl_secs),
            ("oidc.id_token_ttl_secs", self.id_token_ttl_secs),
        ] {
            if v == 0 || v > max_token_lifetime_secs {
                return Err(format!(
                    "{name} must be between 1 and keys.max_token_lifetime_secs ({max_token_lifetime_secs})"
                ));
            }
        }
        if self.session_idle_secs == 0 || self.session_absolute_secs < self.session_idle_secs {
            return Err(
                "oidc.session_idle_secs must be at least 1 and at most oidc.session_absolute_secs"
                    .into(),
            );
        }
        let r = &self.rate_limit;
        if r.enabled
            && [
                r.per_ip_per_sec,
                r.per_ip_burst,
                r.per_client_per_sec,
                r.per_client_burst,
            ]
            .contains(&0)
        {
            return Err(
                "oidc.rate_limit values must be at least 1 (or set enabled = false)".into(),
            );
        }
        Ok(())
    }
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServerSettings {
    pub listen: SocketAddr,
    pub issuer: Issuer,
    /// Where the generated master key and the default SQLite database live.
    pub data_dir: PathBuf,
    /// Actix worker threads; 0 means one per core.
    pub workers: usize,
    /// Seconds that in-flight requests get to finish on shutdown.
    pub shutdown_grace_secs: u64,
    /// Proxies whose `X-Forwarded-For` is believed (IPs or CIDRs); empty: the TCP peer is the
    /// client.
    pub trusted_proxies: crate::ops::client_ip::TrustedProxies,
}

impl Default for ServerSettings {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            issuer: Issuer::parse("http://127.0.0.1:8080").expect("valid default issuer"),
            data_dir: PathBuf::from("data"),
            workers: 0,
            shutdown_grace_secs: 30,
            trusted_proxies: Default::default(),
        }
    }
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct DatabaseSettings {
    /// `sqlite://…` or `postgres://…`; unset means `sqlite://<data_dir>/portico.db`.
    pub url: Option<DatabaseUrl>,
    /// Pool size; 0 picks a default that suits the back end.
    pub max_connections: u32,
    /// Milliseconds a request waits for a database connection (connecting included) before it
    /// is answered 503: what an unreachable database costs each request.
    pub acquire_timeout_ms: u64,
    /// SQLite: milliseconds a write waits for a lock another process holds before it is
    /// answered 503.
    pub busy_timeout_ms: u64,
}

impl Default for DatabaseSettings {
    fn default() -> Self {
        Self {
            url: None,
            max_connections: 0,
            acquire_timeout_ms: crate::store::DEFAULT_ACQUIRE_TIMEOUT_MS,
            busy_timeout_ms: crate::store::DEFAULT_BUSY_TIMEOUT_MS,
        }
    }
}

impl DatabaseSettings {
    pub fn timeouts(&self) -> crate::store::Timeouts {
        crate::store::Timeouts {
            acquire: std::time::Duration::from_millis(self.acquire_timeout_ms),
            busy: std::time::Duration::from_millis(self.busy_timeout_ms),
        }
    }
}

#[derive(Debug, Clone, Deserialize, Serialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct SecretsSettings {
    #[serde(
        deserialize_with = "crate::crypto::secret_serde::optional",
        serialize_with = "crate::crypto::secret_serde::redacted"
    )]
    pub master_key: Option<SecretString>,
    pub master_key_file: Option<PathBuf>,
}

#[derive(Debug, Clone, Deserialize, Serialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct BootstrapSettings {
    pub admin_email: Option<String>,
    #[serde(
        deserialize_with = "crate::crypto::secret_serde::optional",
        serialize_with = "crate::crypto::secret_serde::redacted"
    )]
    pub admin_password: Option<SecretString>,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct LogSettings {
    /// A `tracing` filter such as `info` or `portico=debug,sqlx=warn`.
    pub filter: String,
    pub format: LogFormat,
}

impl Default for LogSettings {
    fn default() -> Self {
        Self {
            filter: "info".into(),
            format: LogFormat::Text,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Text,
    Json,
}

/// Admin sign-in and sessions.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct AdminSettings {
    /// A session unused this long is over.
    pub session_idle_secs: u64,
    /// A session ends this long after sign-in, however active.
    pub session_max_secs: u64,
    /// Failures in a row on one account before it is locked.
    pub account_lockout_failures: u32,
    /// Failures in a row from one IP address before it is locked out.
    pub ip_lockout_failures: u32,
    /// How long a lockout lasts; also how long a failure is remembered.
    pub lockout_secs: u64,
    /// The wait after the first failure; it doubles with each further one.
    pub delay_base_ms: u64,
    /// The longest wait between two attempts before the lockout.
    pub delay_max_ms: u64,
    /// Sign-ins per second this instance verifies, whoever asks (a token bucket in front of
    /// password hashing); more answer "try again" without hashing.
    pub sign_in_per_sec: u32,
    /// How many sign-ins may arrive at once before the per-second rate applies.
    pub sign_in_burst: u32,
}

impl Default for AdminSettings {
    fn default() -> Self {
        Self {
            session_idle_secs: 30 * 60,
            session_max_secs: 12 * 3600,
            account_lockout_failures: 5,
            ip_lockout_failures: 20,
            lockout_secs: 15 * 60,
            delay_base_ms: 1000,
            delay_max_ms: 30_000,
            sign_in_per_sec: 5,
            sign_in_burst: 20,
        }
    }
}

/// `[metrics]`: where `/metrics` is served and who may read it.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct MetricsSettings {
    /// Serve `/metrics` on this address only (the main listener then answers 404 for it).
    pub listen: Option<SocketAddr>,
    /// Require `Authorization: Bearer <token>` on `/metrics`.
    #[serde(
        deserialize_with = "crate::crypto::secret_serde::optional",
        serialize_with = "crate::crypto::secret_serde::redacted"
    )]
    pub bearer_token: Option<SecretString>,
    /// How often histogram samples are folded into their buckets when nobody scrapes.
    pub upkeep_secs: u64,
}

impl Default for MetricsSettings {
    fn default() -> Self {
        Self {
            listen: None,
            bearer_token: None,
            upkeep_secs: 5,
        }
    }
}

impl MetricsSettings {
    pub fn validate(&self, server: &ServerSettings) -> Result<(), String> {
        if self.upkeep_secs == 0 {
            return Err("metrics.upkeep_secs must be at least 1".into());
        }
        if self
            .listen
            .is_some_and(|l| l == server.listen && l.port() != 0)
        {
            return Err("metrics.listen must differ from server.listen".into());
        }
        if let Some(token) = &self.bearer_token {
            let token = token.expose_secret();
            if token.len() < 16 || token.chars().any(|c| c.is_whitespace() || c.is_control()) {
                return Err(
                    "metrics.bearer_token must be at least 16 characters without spaces".into(),
                );
            }
        }
        Ok(())
    }
}

/// `[branding]`: what the pages users see (sign-in chooser, errors, signed out) are called and
/// look like. The admin UI stays Portico.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct BrandingSettings {
    /// The name in page titles and headers.
    pub product_name: String,
    /// A logo file (PNG, SVG, JPEG or WebP, at most 256 KiB), read at start and served at
    /// `/branding/logo`.
    pub logo_file: Option<PathBuf>,
    /// Or a logo at an https URL.
    pub logo_url: Option<String>,
    /// The accent colour of buttons and links, `#rrggbb`.
    pub accent_color: String,
}

impl Default for BrandingSettings {
    fn default() -> Self {
        Self {
            product_name: "Portico".into(),
            logo_file: None,
            logo_url: None,
            accent_color: "#2f5bd3".into(),
        }
    }
}

impl BrandingSettings {
    pub fn validate(&self) -> Result<(), String> {
        let name = self.product_name.trim();
        if name.is_empty() || name.chars().count() > 60 || name.chars().any(char::is_control) {
            return Err("branding.product_name must be 1 to 60 printable characters".into());
        }
        let hex = self.accent_color.strip_prefix('#').unwrap_or("");
        if hex.len() != 6 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err("branding.accent_color must be a colour like #2f5bd3".into());
        }
        if self.logo_file.is_some() && self.logo_url.is_some() {
            return Err("set only one of branding.logo_file and branding.logo_url".into());
        }
        if let Some(url) = &self.logo_url {
            let parsed = url::Url::parse(url).map_err(|e| format!("branding.logo_url: {e}"))?;
            if parsed.scheme() != "https" {
                return Err("branding.logo_url must be an https URL".into());
            }
        }
        Ok(())
    }
}

/// The public base URL: absolute, http or https, no query or fragment, no trailing slash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Issuer(String);

impl Issuer {
    pub fn parse(raw: &str) -> Result<Self, String> {
        let url = Url::parse(raw).map_err(|e| format!("`{raw}` is not a URL ({e})"))?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(format!("`{raw}` must use http or https"));
        }
        if url.query().is_some() || url.fragment().is_some() {
            return Err(format!("`{raw}` must not have a query or fragment"));
        }
        if url.host_str().is_none() {
            return Err(format!("`{raw}` has no host"));
        }
        Ok(Self(url.as_str().trim_end_matches('/').to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn is_https(&self) -> bool {
        self.0.starts_with("https://")
    }

    /// An absolute URL under the issuer; `path` starts with `/`.
    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.0, path)
    }

    /// Where `provider` sends the browser back after an OAuth2/OIDC login.
    pub fn callback(&self, provider: impl std::fmt::Display) -> String {
        format!("{}/callback/{provider}", self.0)
    }
}

impl<'de> Deserialize<'de> for Issuer {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let raw = String::deserialize(d)?;
        Issuer::parse(&raw).map_err(serde::de::Error::custom)
    }
}

impl Serialize for Issuer {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

/// Maps `PORTICO_<SECTION>_<KEY>` (already stripped of `PORTICO_`) to `section.key`.
fn env_key(key: &str) -> Option<String> {
    let key = key.to_ascii_lowercase();
    if let Some((_, mapped)) = SHORT_FORMS.iter().find(|(short, _)| *short == key) {
        return Some((*mapped).to_owned());
    }
    let (section, rest) = key.split_once('_')?;
    SECTIONS
        .contains(&section)
        .then(|| format!("{section}.{rest}"))
}

impl Settings {
    /// Loads defaults, then the file (if any), then the environment.
    ///
    /// `config_path` comes from `--config` or `PORTICO_CONFIG`; without one, `portico.toml` in the
    /// working directory is read if it exists.
    pub fn load(config_path: Option<&Path>) -> Result<Self, ConfigError> {
        let mut figment = Figment::new();
        match config_path {
            Some(path) => {
                if let Err(source) = std::fs::metadata(path) {
                    return Err(ConfigError::Unreadable {
                        path: path.to_owned(),
                        source,
                    });
                }
                figment = figment.merge(Toml::file_exact(path));
            }
            // The implicit `portico.toml` in the working directory is optional.
            None if Path::new("portico.toml").exists() => {
                figment = figment.merge(Toml::file_exact("portico.toml"));
            }
            None => {}
        }
        let env = Env::prefixed("PORTICO_").filter_map(|k| env_key(k.as_str()).map(Into::into));
        Self::from_figment(figment.merge(env))
    }

    pub fn from_figment(figment: Figment) -> Result<Self, ConfigError> {
        let settings: Settings = figment.extract()?;
        settings.validate().map_err(ConfigError::Invalid)?;
        Ok(settings)
    }

    fn validate(&self) -> Result<(), String> {
        if self.keys.refresh_secs == 0 {
            return Err("keys.refresh_secs must be at least 1".into());
        }
        if self.keys.max_token_lifetime_secs == 0 {
            return Err("keys.max_token_lifetime_secs must be at least 1".into());
        }
        self.webhooks.validate()?;
        if self.database.acquire_timeout_ms == 0 {
            return Err("database.acquire_timeout_ms must be at least 1".into());
        }
        if self.bootstrap.admin_email.is_some() != self.bootstrap.admin_password.is_some() {
            return Err(
                "bootstrap.admin_email and bootstrap.admin_password must be set together".into(),
            );
        }
        if self.admin.session_idle_secs == 0 || self.admin.account_lockout_failures == 0 {
            return Err(
                "admin.session_idle_secs and admin.account_lockout_failures must be at least 1"
                    .into(),
            );
        }
        if self.admin.sign_in_per_sec == 0 || self.admin.sign_in_burst == 0 {
            return Err("admin.sign_in_per_sec and admin.sign_in_burst must be at least 1".into());
        }
        self.metrics.validate(&self.server)?;
        self.upstream.validate()?;
        if self.secrets.master_key.is_some() && self.secrets.master_key_file.is_some() {
            return Err(
                "set only one of secrets.master_key (PORTICO_MASTER_KEY) and \
                 secrets.master_key_file (PORTICO_MASTER_KEY_FILE)"
                    .into(),
            );
        }
        self.oidc.validate(self.keys.max_token_lifetime_secs)?;
        crate::providers::validate_config(&self.providers)?;
        crate::clients::validate_config(&self.clients)?;
        self.branding.validate()
    }

    /// The database URL in force: the configured one or the SQLite file in the data directory.
    pub fn database_url(&self) -> DatabaseUrl {
        self.database
            .url
            .clone()
            .unwrap_or_else(|| DatabaseUrl::sqlite_in(&self.server.data_dir))
    }

    /// How to point another `portico` command (run elsewhere, without this configuration) at
    /// the database in force: the variable and its value, or `None` for the default
    /// `./data/portico.db`. Paths are made absolute; a password is left out, never shown.
    pub fn database_env(&self) -> Option<(&'static str, String)> {
        let default_dir = ServerSettings::default().data_dir;
        let url = self.database_url();
        if url.expose() == DatabaseUrl::sqlite_in(&default_dir).expose() {
            return None;
        }
        if self.database.url.is_none() {
            let dir = std::path::absolute(&self.server.data_dir)
                .unwrap_or_else(|_| self.server.data_dir.clone());
            return Some(("PORTICO_DATA_DIR", dir.display().to_string()));
        }
        let shown = match url.sqlite_file() {
            Some(file) if file.is_relative() => match std::path::absolute(file) {
                Ok(file) => format!("sqlite://{}", file.display()),
                Err(_) => url.without_password(),
            },
            _ => url.without_password(),
        };
        Some(("PORTICO_DATABASE_URL", shown))
    }

    /// The effective settings as TOML, secrets redacted: what `portico config check` prints.
    pub fn redacted_toml(&self) -> String {
        let mut effective = self.clone();
        effective.database.url = Some(self.database_url());
        toml::to_string_pretty(&effective).unwrap_or_else(|e| format!("# cannot render: {e}\n"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use figment::providers::Serialized;

    fn from_pairs(pairs: &[(&str, &str)]) -> Result<Settings, ConfigError> {
        let mut figment = Figment::new();
        for (key, value) in pairs {
            let mapped = env_key(key).expect("known key");
            figment = figment.merge(Serialized::default(&mapped, *value));
        }
        Settings::from_figment(figment)
    }

    #[test]
    fn zero_config_has_the_contract_defaults() {
        let s = Settings::from_figment(Figment::new()).unwrap();
        assert_eq!(s.server.listen.to_string(), "127.0.0.1:8080");
        assert_eq!(s.server.issuer.as_str(), "http://127.0.0.1:8080");
        assert_eq!(s.database_url().expose(), "sqlite://data/portico.db");
        assert_eq!(s.log.filter, "info");
    }

    #[test]
    fn env_keys_map_to_sections_and_short_forms() {
        assert_eq!(env_key("LISTEN").as_deref(), Some("server.listen"));
        assert_eq!(env_key("DATABASE_URL").as_deref(), Some("database.url"));
        assert_eq!(
            env_key("MASTER_KEY_FILE").as_deref(),
            Some("secrets.master_key_file")
        );
        assert_eq!(
            env_key("BOOTSTRAP_ADMIN_EMAIL").as_deref(),
            Some("bootstrap.admin_email")
        );
        assert_eq!(env_key("LOG_FORMAT").as_deref(), Some("log.format"));
        assert_eq!(env_key("LOG").as_deref(), Some("log.filter"));
        assert_eq!(env_key("CONFIG"), None);
        assert_eq!(env_key("TEST_POSTGRES_URL"), None);
    }

    #[test]
    fn bad_values_name_the_key() {
        let err = from_pairs(&[("ISSUER", "ftp://example.com")]).unwrap_err();
        assert!(err.to_string().contains("http or https"), "{err}");
        let err = from_pairs(&[("DATABASE_URL", "mysql://x")]).unwrap_err();
        assert!(
            err.to_string().contains("sqlite:// or postgres://"),
            "{err}"
        );
        let err = from_pairs(&[("LISTEN", "not-an-address")]).unwrap_err();
        assert!(err.to_string().contains("listen"), "{err}");
        let err = from_pairs(&[("LOG_FORMAT", "xml")]).unwrap_err();
        assert!(err.to_string().contains("format"), "{err}");
        let err = from_pairs(&[("BRANDING_ACCENT_COLOR", "red")]).unwrap_err();
        assert!(err.to_string().contains("branding.accent_color"), "{err}");
        let err = from_pairs(&[("BRANDING_LOGO_URL", "http://cdn.example/logo.png")]).unwrap_err();
        assert!(err.to_string().contains("https"), "{err}");
        for (key, value, named) in [
            (
                "SERVER_TRUSTED_PROXIES",
                "10.0.0.0/99",
                "server.trusted_proxies",
            ),
            ("METRICS_LISTEN", "nowhere", "listen"),
            ("METRICS_BEARER_TOKEN", "short", "metrics.bearer_token"),
        ] {
            let err = from_pairs(&[(key, value)]).unwrap_err();
            assert!(err.to_string().contains(named), "{key}: {err}");
        }
        for (key, named) in [
            ("metrics.upkeep_secs", "metrics.upkeep_secs"),
            ("keys.refresh_secs", "keys.refresh_secs"),
            ("admin.sign_in_per_sec", "admin.sign_in_per_sec"),
        ] {
            let err = Settings::from_figment(Figment::new().merge(Serialized::default(key, 0)))
                .unwrap_err();
            assert!(err.to_string().contains(named), "{key}: {err}");
        }
    }

    #[test]
    fn other_commands_are_pointed_at_a_database_that_is_not_the_default() {
        let s = from_pairs(&[]).unwrap();
        assert_eq!(s.database_env(), None);
        let s = from_pairs(&[("DATABASE_URL", "sqlite://data/portico.db")]).unwrap();
        assert_eq!(s.database_env(), None);

        let s = from_pairs(&[("DATA_DIR", "/var/lib/portico")]).unwrap();
        let expected = ("PORTICO_DATA_DIR", "/var/lib/portico".to_owned());
        assert_eq!(s.database_env(), Some(expected));
        let s = from_pairs(&[("DATA_DIR", "state")]).unwrap();
        let (var, dir) = s.database_env().unwrap();
        assert_eq!(var, "PORTICO_DATA_DIR");
        assert!(
            Path::new(&dir).is_absolute() && dir.ends_with("state"),
            "{dir}"
        );

        let s = from_pairs(&[("DATABASE_URL", "sqlite://db/p.db?mode=rwc")]).unwrap();
        let (var, url) = s.database_env().unwrap();
        assert_eq!(var, "PORTICO_DATABASE_URL");
        assert!(
            url.starts_with("sqlite:///") && url.ends_with("db/p.db"),
            "{url}"
        );

        let s =
            from_pairs(&[("DATABASE_URL", "postgres://portico:hunter2@db:5432/portico")]).unwrap();
        let expected = (
            "PORTICO_DATABASE_URL",
            "postgres://portico@db:5432/portico".into(),
        );
        assert_eq!(s.database_env(), Some(expected));
    }

    #[test]
    fn upstream_limits_come_from_the_environment_and_are_checked() {
        let s = from_pairs(&[]).unwrap();
        let http = s.upstream.http();
        assert_eq!(http.connect_timeout, std::time::Duration::from_secs(5));
        assert_eq!(http.timeout, std::time::Duration::from_secs(15));
        assert_eq!(http.read_timeout, std::time::Duration::from_secs(10));
        assert_eq!(http.guard.max_concurrent, 32);
        assert_eq!(http.guard.breaker_failures, 5);
        assert_eq!(
            env_key("UPSTREAM_READ_TIMEOUT_MS").as_deref(),
            Some("upstream.read_timeout_ms")
        );
        let toml = |text: &str| Settings::from_figment(Figment::from(Toml::string(text)));
        let s = toml(
            "[upstream]\nread_timeout_ms = 2500\nmax_concurrent_per_provider = 4\nbreaker_failures = 0",
        )
        .unwrap();
        assert_eq!(s.upstream.read_timeout_ms, 2500);
        assert_eq!(s.upstream.max_concurrent_per_provider, 4);
        assert_eq!(s.upstream.breaker_failures, 0);
        for (line, says) in [
            ("request_timeout_ms = 0", "upstream.request_timeout_ms"),
            (
                "max_concurrent_per_provider = 0",
                "max_concurrent_per_provider",
            ),
            ("retries = 50", "upstream.retries"),
            ("read_timeout = 5", "unknown field"),
        ] {
            let err = toml(&format!("[upstream]\n{line}")).unwrap_err();
            assert!(err.to_string().contains(says), "{line}: {err}");
        }
    }

    #[test]
    fn issuer_loses_its_trailing_slash() {
        let s = from_pairs(&[("ISSUER", "https://id.example.com/")]).unwrap();
        assert_eq!(s.server.issuer.as_str(), "https://id.example.com");
        assert!(s.server.issuer.is_https());
    }

    #[test]
    fn redacted_output_hides_secrets() {
        let s = from_pairs(&[
            ("MASTER_KEY", "c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0MTI="),
            ("DATABASE_URL", "postgres://portico:hunter2@db/portico"),
            ("BOOTSTRAP_ADMIN_EMAIL", "admin@example.com"),
            ("BOOTSTRAP_ADMIN_PASSWORD", "12345678"),
        ])
        .unwrap();
        let out = s.redacted_toml();
        assert!(!out.contains("hunter2"), "{out}");
        assert!(!out.contains("c2VjcmV0"), "{out}");
        assert!(!out.contains("12345678"), "{out}");
        assert!(out.contains("<redacted>"), "{out}");
    }

    #[test]
    fn trusted_proxies_take_a_list_or_a_comma_separated_string() {
        let s = from_pairs(&[("SERVER_TRUSTED_PROXIES", "10.0.0.0/8, 192.0.2.7")]).unwrap();
        let out = s.redacted_toml();
        let parsed: toml::Value = toml::from_str(&out).unwrap();
        let listed = parsed["server"]["trusted_proxies"].as_array().unwrap();
        assert_eq!(listed.len(), 2, "{out}");
        assert_eq!(listed[1].as_str(), Some("192.0.2.7/32"), "{out}");
        let s = Settings::from_figment(Figment::new().merge(Serialized::default(
            "server.trusted_proxies",
            vec!["::1", "127.0.0.0/8"],
        )))
        .unwrap();
        assert_eq!(s.server.trusted_proxies.len(), 2);
    }

    #[test]
    fn code_lifetime_is_capped_at_sixty_seconds() {
        let s = OidcSettings {
            code_ttl_secs: 61,
            ..OidcSettings::default()
        };
        assert!(s.validate(86_400).is_err());
        assert!(OidcSettings::default().validate(86_400).is_ok());
    }

    #[test]
    fn config_check_shows_clients_and_providers_with_secrets_redacted() {
        use figment::Figment;
        use figment::providers::{Format, Toml};
        let settings = Settings::from_figment(Figment::new().merge(Toml::string(
            r#"
[oidc]
refresh_grace_secs = 3

[[clients]]
client_id = "app"
type = "confidential"
client_secret = "a-client-secret-that-is-long-enough-123"
redirect_uris = ["https://app.example/cb"]

[[providers]]
id = "corp"
kind = "oidc"
client_id = "portico"
client_secret = "upstream-client-secret"
issuer = "https://idp.example"
[providers.claims]
groups = "roles"
"#,
        )))
        .unwrap();
        assert_eq!(settings.oidc.refresh_grace_secs, 3);
        assert_eq!(settings.providers[0].options["claims"]["groups"], "roles");
        let out = settings.redacted_toml();
        assert!(!out.contains("a-client-secret"), "{out}");
        assert!(!out.contains("upstream-client-secret"), "{out}");
        assert!(
            out.contains("[[clients]]") && out.contains("[[providers]]"),
            "{out}"
        );
    }

    #[test]
    fn the_webhooks_section_and_declared_endpoints_parse_from_toml() {
        use figment::Figment;
        use figment::providers::{Format, Toml};
        let toml = r#"
            [webhooks]
            retry_schedule = ["1s", "30s", 60]
            attempt_timeout = "5s"
            allow_private_targets = true

            [[webhooks.endpoints]]
            id = "crm"
            url = "https://crm.example.com/hooks/portico"
            events = ["login.succeeded", "user.created"]
            secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
        "#;
        let s = Settings::from_figment(Figment::from(Toml::string(toml))).unwrap();
        let schedule: Vec<i64> = s
            .webhooks
            .retry_schedule
            .iter()
            .map(|d| d.as_millis())
            .collect();
        assert_eq!(schedule, [1_000, 30_000, 60_000]);
        assert_eq!(s.webhooks.endpoints[0].id, "crm");
        assert!(s.webhooks.endpoints[0].enabled);
        let shown = s.redacted_toml();
        assert!(!shown.contains("MfKQ9r8"), "{shown}");

        let bad = r#"
            [[webhooks.endpoints]]
            id = "crm"
            url = "https://crm.example.com/"
            events = ["login.nope"]
        "#;
        let err = Settings::from_figment(Figment::from(Toml::string(bad)))
            .unwrap_err()
            .to_string();
        assert!(err.contains("login.nope"), "{err}");
        let short_lease = "[webhooks]\nlease = \"10s\"\n";
        assert!(Settings::from_figment(Figment::from(Toml::string(short_lease))).is_err());
    }
}
