//! What every request handler can reach.

use std::sync::Arc;

use actix_web::web::Bytes;
use metrics_exporter_prometheus::PrometheusHandle;

use crate::config::Settings;
use crate::crypto::Sealer;
use crate::keys::KeyRing;
use crate::store::Store;
use crate::webhooks::WebhookService;

pub struct AppState {
    pub settings: Arc<Settings>,
    pub store: Store,
    pub sealer: Sealer,
    pub keys: Arc<KeyRing>,
    pub metrics: PrometheusHandle,
    /// The discovery document, serialised once at start.
    pub discovery: Bytes,
    /// Webhook endpoints, deliveries and replay (the admin UI and API call this).
    pub webhooks: WebhookService,
}
