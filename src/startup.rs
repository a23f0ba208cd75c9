//! Wiring: from settings to a running server.

use std::net::TcpListener;
use std::sync::Arc;
use std::time::Duration;

use actix_web::dev::{Server, Service};
use actix_web::http::header;
use actix_web::middleware::from_fn;
use actix_web::{App, HttpResponse, HttpServer, web};
use anyhow::Context;
use tracing_actix_web::TracingLogger;

use crate::config::Settings;
use crate::crypto::{MasterKey, MasterKeySource, PasswordHasher, Sealer};
use crate::keys::KeyRing;
use crate::oidc::discovery::ProviderMetadata;
use crate::state::AppState;
use crate::store::{KeyCheck, Store};
use crate::{admin, oidc, ops, webhooks};

/// Connects to the configured database and applies pending migrations.
pub async fn open_store(settings: &Settings) -> anyhow::Result<Store> {
    let url = settings.database_url();
    let store = Store::connect_with(
        &url,
        settings.database.max_connections,
        settings.database.timeouts(),
    )
    .await
    .with_context(|| format!("cannot open the database {}", url.redacted()))?;
    store.migrate().await?;
    Ok(store)
}

/// Loads the master key (generating one on a first zero-config run) and checks it against
/// the database.
pub async fn unlock(settings: &Settings, store: &Store) -> anyhow::Result<(MasterKey, Sealer)> {
    let (key, source) = MasterKey::load(
        settings.secrets.master_key.as_ref(),
        settings.secrets.master_key_file.as_deref(),
        &settings.server.data_dir,
    )?;
    if let MasterKeySource::Generated(path) = &source {
        tracing::warn!(
            path = %path.display(),
            "GENERATED A NEW MASTER KEY. Every stored secret is sealed with it: back it up, and in \
             production set PORTICO_MASTER_KEY_FILE instead of relying on this file"
        );
    }
    let sealer = Sealer::new(&key);
    match store.check_master_key(&sealer, &key.id_hex()).await? {
        KeyCheck::Initialised => {
            tracing::info!(key_id = %key.id_hex(), "sealed a new database with the master key")
        }
        KeyCheck::Matched => {
            tracing::debug!(key_id = %key.id_hex(), "master key matches the database")
        }
    }
    Ok((key, sealer))
}

/// The database and master key for a command that only reads (`config diff`): no migration,
/// no database file or key file created, no key check value written. A database behind this
/// binary's migrations is refused (the start would migrate it first).
pub async fn open_read_only(settings: &Settings) -> anyhow::Result<(Store, Sealer)> {
    let url = settings.database_url();
    if let Some(file) = url.sqlite_file()
        && !file.exists()
    {
        anyhow::bail!(
            "there is no database at {}: the first start creates it",
            file.display()
        );
    }
    let default_key = settings.server.data_dir.join("master.key");
    if settings.secrets.master_key.is_none()
        && settings.secrets.master_key_file.is_none()
        && !default_key.exists()
    {
        anyhow::bail!(
            "no master key: set PORTICO_MASTER_KEY or PORTICO_MASTER_KEY_FILE (there is no {})",
            default_key.display()
        );
    }
    let store = Store::connect_with(&url, 2, settings.database.timeouts())
        .await
        .with_context(|| format!("cannot open the database {}", url.redacted()))?;
    if !store.is_ready().await {
        store.close().await;
        anyhow::bail!(
            "the database is not migrated to this version of Portico: run `portico migrate` first"
        );
    }
    let (key, _) = MasterKey::load(
        settings.secrets.master_key.as_ref(),
        settings.secrets.master_key_file.as_deref(),
        &settings.server.data_dir,
    )?;
    let sealer = Sealer::new(&key);
    store.verify_master_key(&sealer, &key.id_hex()).await?;
    Ok((store, sealer))
}

/// What the janitor deletes, each rule declared by its table's owner.
pub const JANITOR_RULES: &[&crate::store::janitor::Rule] = &[
    &crate::grants::pending::JANITOR,
    &crate::vault::upgrades::JANITOR,
    &crate::grants::codes::JANITOR,
    &crate::grants::refresh::JANITOR,
    &crate::grants::refresh::JANITOR_SUCCESSORS,
    &crate::grants::revocations::JANITOR,
    &crate::grants::sessions::JANITOR,
    &crate::upstream::saml::requests::JANITOR,
    &crate::upstream::saml::replay::JANITOR,
    &crate::webhooks::events::JANITOR,
];

pub struct Application {
    port: u16,
    server: Server,
    /// `/metrics` on its own listener (`metrics.listen`), when configured.
    metrics_server: Option<Server>,
    state: web::Data<AppState>,
    tasks: BackgroundTasks,
    dispatcher: Option<webhooks::DispatcherHandle>,
}

impl Application {
    /// Everything `portico serve` does before accepting connections.
    pub async fn build(settings: Settings) -> anyhow::Result<Self> {
        let listener = TcpListener::bind(settings.server.listen)
            .with_context(|| format!("cannot listen on {}", settings.server.listen))?;
        Self::build_on(settings, listener).await
    }

    /// As `build`, on a listener the caller bound (tests bind port 0 first to learn the issuer).
    pub async fn build_on(settings: Settings, listener: TcpListener) -> anyhow::Result<Self> {
        crate::keys::ring_verify::install();
        if !crate::keys::ring_verify::is_installed() {
            anyhow::bail!("jsonwebtoken's crypto provider is not Portico's ring provider");
        }
        let branding = Arc::new(
            crate::oidc::branding::Branding::load(&settings.branding)
                .context("cannot prepare [branding]")?,
        );
        let store = open_store(&settings).await?;
        let (_key, sealer) = unlock(&settings, &store).await?;
        let keys = KeyRing::load(store.clone(), sealer.clone(), settings.keys.clone()).await?;
        let passwords = PasswordHasher::default();
        admin::auth::accounts::bootstrap(&store, &passwords, &settings.bootstrap).await?;

        let port = listener.local_addr()?.port();
        crate::declared::apply(&store, &sealer, &settings)
            .await
            .context("cannot apply the resources declared in the configuration")?;
        withdraw_untrusted_verifications(&store, &settings.providers).await?;
        let stored = crate::providers::repo::all(&store).await?;
        crate::providers::namespace_clash(&stored)
            .map_err(anyhow::Error::msg)
            .context("the group namespaces of the providers clash")?;
        if let Some(warning) = crate::providers::namespace_warning(&stored) {
            tracing::warn!("{warning}");
        }
        let (webhook_service, dispatcher) = start_webhooks(&settings, &store, &sealer)?;
        let limits = ops::ratelimit::RateLimits::new(&settings.oidc.rate_limit);
        let http = upstream_http_client(&settings.upstream)?;
        let saml = crate::upstream::saml::SamlContext::new(
            store.clone(),
            settings.server.issuer.as_str(),
            http.client().clone(),
        );
        let connectors = Arc::new(
            crate::providers::Connectors::new(sealer.clone(), http).with_saml(saml.clone()),
        );

        let sign_in_gate = Arc::new(ops::ratelimit::Gate::new(
            settings.admin.sign_in_per_sec,
            settings.admin.sign_in_burst,
        ));
        let state = web::Data::new(AppState {
            discovery: ProviderMetadata::new(&settings.server.issuer).to_bytes(),
            settings: Arc::new(settings),
            store,
            sealer,
            keys: keys.clone(),
            connectors,
            limits: limits.clone(),
            webhooks: webhook_service,
            passwords,
            sign_in_gate,
        });
        let shared = Shared {
            store: web::Data::new(state.store.clone()),
            branding: web::Data::from(branding),
            metrics: web::Data::new(ops::metrics::MetricsEndpoint {
                handle: ops::metrics::handle(),
                bearer_token: state.settings.metrics.bearer_token.clone(),
            }),
        };
        let mut tasks = vec![
            keys.spawn_maintenance(),
            limits.spawn_maintenance(),
            crate::providers::spawn_metadata_refresh(state.store.clone(), saml),
            ops::metrics::spawn_upkeep(
                shared.metrics.handle.clone(),
                Duration::from_secs(state.settings.metrics.upkeep_secs),
            ),
        ];
        tasks.extend(
            state
                .store
                .spawn_janitor(state.settings.janitor.clone(), JANITOR_RULES),
        );
        let metrics_server = match state.settings.metrics.listen {
            Some(addr) => {
                let listener = TcpListener::bind(addr)
                    .with_context(|| format!("cannot listen on {addr} (metrics.listen)"))?;
                Some(build_metrics_server(listener, shared.metrics.clone())?)
            }
            None => None,
        };
        let server = build_server(listener, state.clone(), shared)?;
        Ok(Self {
            port,
            server,
            metrics_server,
            state,
            tasks: BackgroundTasks(tasks),
            dispatcher,
        })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn state(&self) -> web::Data<AppState> {
        self.state.clone()
    }

    /// Serves until SIGTERM or ctrl-c, then stops within `server.shutdown_grace_secs`: the
    /// listener closes at once (no new connections), requests in flight finish, and the webhook
    /// dispatcher stops claiming at the same moment, lets its attempts finish and gives back
    /// the leases of those it has to cut off (see `DispatcherHandle::shutdown_within`).
    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        self.run_until(shutdown_signal()).await
    }

    /// Serves until `stop` completes, then stops as `run_until_stopped` does. Embedders and
    /// tests stop an instance this way; dropping the future instead also ends its background
    /// tasks (they are aborted with it), but cuts requests and webhook attempts off unfinished.
    pub async fn run_until(self, stop: impl Future<Output = ()>) -> std::io::Result<()> {
        let (port, server, state, dispatcher) =
            (self.port, self.server, self.state, self.dispatcher);
        let issuer = &state.settings.server.issuer;
        tracing::info!(
            port,
            issuer = %issuer.as_str(),
            admin = %issuer.url("/admin/"),
            "portico is serving"
        );
        let metrics = self.metrics_server.map(|server| {
            let listen = state.settings.metrics.listen;
            tracing::info!(?listen, "serving /metrics on its own listener");
            let handle = server.handle();
            (handle, tokio::spawn(server))
        });
        let grace_secs = state.settings.server.shutdown_grace_secs;
        let handle = server.handle();
        let mut server = tokio::spawn(server);
        let ended_early = tokio::select! {
            ended = &mut server => Some(ended),
            () = stop => None,
        };
        let stopping = std::time::Instant::now();
        tracing::info!(
            grace_secs,
            "shutting down: no new connections; requests and webhook attempts in flight have \
             the grace period to finish"
        );
        let http = async {
            let ended = match ended_early {
                Some(ended) => ended,
                None => {
                    handle.stop(true).await;
                    server.await
                }
            };
            ended.unwrap_or_else(|e| Err(std::io::Error::other(e)))
        };
        let webhooks = async {
            if let Some(dispatcher) = dispatcher {
                dispatcher
                    .shutdown_within(Duration::from_secs(grace_secs))
                    .await;
            }
        };
        let (result, ()) = tokio::join!(http, webhooks);
        if let Some((handle, task)) = metrics {
            handle.stop(true).await;
            let _ = task.await;
        }
        drop(self.tasks);
        state.store.close().await;
        tracing::info!(
            took_ms = stopping.elapsed().as_millis() as u64,
            "portico stopped"
        );
        result
    }
}

/// The maintenance tasks of one instance (key rotation, rate-limit upkeep, metadata refresh,
/// metrics upkeep, the janitor): aborted when the instance's run ends or its future is dropped,
/// so a stopped instance never goes on writing to the database.
struct BackgroundTasks(Vec<tokio::task::JoinHandle<()>>);

impl Drop for BackgroundTasks {
    fn drop(&mut self) {
        for task in &self.0 {
            task.abort();
        }
    }
}

/// SIGTERM (what orchestrators send) or ctrl-c.
async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = term.recv() => {}
                    _ = tokio::signal::ctrl_c() => {}
                }
                return;
            }
            Err(e) => tracing::warn!(error = %e, "cannot listen for SIGTERM; only ctrl-c stops"),
        }
    }
    let _ = tokio::signal::ctrl_c().await;
}

/// A provider of portico.toml that no longer vouches for e-mail (its `trust_email`, or a SAML
/// provider's `email_verified`, turned off) withdraws the verifications it gave.
async fn withdraw_untrusted_verifications(
    store: &Store,
    providers: &[crate::providers::ProviderConfig],
) -> anyhow::Result<()> {
    let mut conn = store.pool().acquire().await?;
    for p in providers {
        let kind = p.checked_kind().map_err(anyhow::Error::msg)?;
        let settings = p.options.to_value();
        if !crate::providers::vouches_for_email(kind, p.trust_email, &settings) {
            crate::users::repo::withdraw_verification_in(&mut conn, p.id.as_str()).await?;
        }
    }
    Ok(())
}

/// Starts this instance's webhook dispatcher (the declared endpoints are `declared::apply`'s).
fn start_webhooks(
    settings: &Settings,
    store: &Store,
    sealer: &Sealer,
) -> anyhow::Result<(webhooks::WebhookService, Option<webhooks::DispatcherHandle>)> {
    let config = Arc::new(settings.webhooks.clone());
    if config.allow_private_targets {
        tracing::warn!(
            "webhooks.allow_private_targets is on: webhooks may reach loopback and private \
             addresses over plain http. Use this only for development and tests"
        );
    }
    let dispatcher = match config.dispatcher {
        true => {
            Some(webhooks::Dispatcher::new(store.clone(), sealer.clone(), config.clone())?.spawn())
        }
        false => None,
    };
    let service = webhooks::WebhookService::new(store.clone(), sealer.clone(), config);
    Ok((service, dispatcher))
}

/// What handlers other than the OIDC and admin ones reach, each as its own app data, so that
/// `ops` and the branding pages need no `AppState`.
#[derive(Clone)]
struct Shared {
    store: web::Data<Store>,
    branding: web::Data<crate::oidc::branding::Branding>,
    metrics: web::Data<ops::metrics::MetricsEndpoint>,
}

fn build_server(
    listener: TcpListener,
    state: web::Data<AppState>,
    shared: Shared,
) -> anyhow::Result<Server> {
    let settings = state.settings.clone();
    let https = settings.server.issuer.is_https();
    let trusted = Arc::new(settings.server.trusted_proxies.clone());
    // `/metrics` moves off the main listener when it has its own.
    let metrics_here = settings.metrics.listen.is_none();
    // Outermost first: client address, log span, metrics, headers, size limits, branding.
    let mut server = HttpServer::new(move || {
        let trusted = trusted.clone();
        App::new()
            .app_data(state.clone())
            .app_data(shared.store.clone())
            .app_data(shared.branding.clone())
            .app_data(shared.metrics.clone())
            .wrap_fn({
                // Pages read the branding from the request's task (see oidc::branding).
                let branding = shared.branding.clone().into_inner();
                move |req, srv| branding.clone().scope(srv.call(req))
            })
            .wrap(from_fn(ops::limits::enforce))
            .wrap(ops::headers::security_headers(https))
            .wrap(from_fn(ops::metrics::track))
            .wrap(TracingLogger::<ops::root_span::PorticoRootSpan>::new())
            .wrap_fn(move |req, srv| {
                ops::client_ip::attach(&req, &trusted);
                srv.call(req)
            })
            .configure(|cfg| {
                if metrics_here {
                    ops::metrics::routes(cfg);
                }
                routes(cfg)
            })
            .default_service(web::to(oidc::web::not_found))
    })
    .shutdown_timeout(settings.server.shutdown_grace_secs)
    // `Application::run_until_stopped` handles the signals, to stop the webhook dispatcher in
    // the same grace period.
    .disable_signals()
    .client_request_timeout(Duration::from_secs(10))
    .listen(listener)?;
    if settings.server.workers > 0 {
        server = server.workers(settings.server.workers);
    }
    Ok(server.run())
}

/// The listener of `metrics.listen`: `/metrics` and nothing else, one worker.
fn build_metrics_server(
    listener: TcpListener,
    metrics: web::Data<ops::metrics::MetricsEndpoint>,
) -> anyhow::Result<Server> {
    let server = HttpServer::new(move || {
        App::new()
            .app_data(metrics.clone())
            .wrap(from_fn(ops::limits::enforce))
            .configure(ops::metrics::routes)
    })
    .workers(1)
    .disable_signals()
    .shutdown_timeout(1)
    .client_request_timeout(Duration::from_secs(10))
    .listen(listener)?;
    Ok(server.run())
}

/// The client for calls to upstream providers: no redirects followed (an upstream must not
/// bounce Portico elsewhere), bounded connect, read and total times, and per-provider
/// bulkheads and breakers (`[upstream]`).
fn upstream_http_client(
    settings: &crate::upstream::settings::UpstreamSettings,
) -> anyhow::Result<crate::upstream::http::UpstreamHttp> {
    crate::upstream::http::UpstreamHttp::new(settings.http())
        .context("cannot build the HTTP client")
}

/// `/`: Portico has no home page; whoever opens its address is looking for the admin UI.
async fn home() -> HttpResponse {
    HttpResponse::SeeOther()
        .insert_header((header::LOCATION, "/admin/"))
        .finish()
}

fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/", web::get().to(home))
        .service(ops::health::healthz)
        .service(ops::health::readyz)
        .service(oidc::jwks::jwks)
        .route(
            "/.well-known/openid-configuration",
            web::get().to(oidc::discovery::document),
        )
        .route(
            "/.well-known/oauth-authorization-server",
            web::get().to(oidc::discovery::document),
        )
        .configure(oidc::routes)
        .service(oidc::broker::broker_token)
        .service(oidc::connect::connect)
        .service(oidc::connect::decide)
        .configure(admin::routes);
}
