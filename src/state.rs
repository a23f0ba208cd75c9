//! What every request handler can reach.

use std::sync::Arc;

use actix_web::web::Bytes;

use crate::config::Settings;
use crate::crypto::{PasswordHasher, Sealer};
use crate::keys::KeyRing;
use crate::ops::ratelimit::{Gate, RateLimits};
use crate::providers::Connectors;
use crate::store::Store;
use crate::webhooks::WebhookService;

pub struct AppState {
    pub settings: Arc<Settings>,
    pub store: Store,
    pub sealer: Sealer,
    pub keys: Arc<KeyRing>,
    /// The discovery document, serialised once at start.
    pub discovery: Bytes,
    /// Upstream connectors, built from the providers table and cached.
    pub connectors: Arc<Connectors>,
    /// Rate limits of /token, /authorize and /userinfo.
    pub limits: Arc<RateLimits>,
    /// Webhook endpoints, deliveries and replay (the admin UI and API call this).
    pub webhooks: WebhookService,
    /// argon2id for admin passwords, bounded so sign-in bursts queue.
    pub passwords: PasswordHasher,
    /// The per-instance sign-in rate (`[admin] sign_in_per_sec`), checked before any hashing.
    pub sign_in_gate: Arc<Gate>,
}

impl AppState {
    /// What the token vault's refreshes work with.
    pub fn vault(&self) -> crate::vault::refresh::Context<'_> {
        crate::vault::refresh::Context {
            store: &self.store,
            sealer: &self.sealer,
            connectors: &self.connectors,
        }
    }
}
