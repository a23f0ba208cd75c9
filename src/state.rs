//! What every request handler can reach.

use std::sync::Arc;

use actix_web::web::Bytes;
use metrics_exporter_prometheus::PrometheusHandle;

use crate::config::Settings;
use crate::crypto::{PasswordHasher, Sealer};
use crate::keys::KeyRing;
use crate::store::Store;

pub struct AppState {
    pub settings: Arc<Settings>,
    pub store: Store,
    pub sealer: Sealer,
    pub keys: Arc<KeyRing>,
    pub metrics: PrometheusHandle,
    /// The discovery document, serialised once at start.
    pub discovery: Bytes,
    /// argon2id for admin passwords, bounded so sign-in bursts queue.
    pub passwords: PasswordHasher,
}
