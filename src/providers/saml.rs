//! Providers of kind `saml`: their row settings, their sealed SP key, their connector.

use std::sync::Arc;

use super::ProviderConfig;
use super::{Connectors, Provider};
use crate::store::StoreError;
use crate::upstream::Connector;
use crate::upstream::saml::{SamlConnector, StoredSaml};

/// The `settings` JSON of a `[[providers]]` entry of kind saml.
pub(super) fn settings_json(p: &ProviderConfig) -> serde_json::Value {
    StoredSaml::to_json(
        &p.saml,
        p.saml_idp_metadata_xml.as_deref(),
        p.saml_idp_metadata_url.as_deref(),
    )
}

impl Connectors {
    pub(super) fn build_saml(&self, provider: &Provider) -> Result<Arc<dyn Connector>, StoreError> {
        let Some(ctx) = &self.saml else {
            return Err(StoreError::Corrupt(format!(
                "provider `{}` is of kind saml, but SAML is not enabled in this process",
                provider.id
            )));
        };
        let key = provider
            .sealed_saml_key
            .as_deref()
            .map(|sealed| {
                self.sealer.open_string(
                    sealed,
                    crate::store::sealed::PROVIDER_SAML_KEY.target(provider.id.as_str()),
                )
            })
            .transpose()?;
        let connector = SamlConnector::new(
            provider.id.clone(),
            provider.display_name.clone(),
            &provider.settings,
            key,
            ctx.clone(),
        )
        .map_err(|e| StoreError::Corrupt(format!("provider `{}`: {e}", provider.id)))?;
        Ok(Arc::new(connector))
    }
}

/// Every minute, refreshes the URL metadata of the enabled saml providers that is due (the
/// janitor deletes expired SAML request and replay rows).
pub fn spawn_metadata_refresh(
    store: crate::store::Store,
    ctx: crate::upstream::saml::SamlContext,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut interval = tokio::time::interval(std::time::Duration::from_secs(60));
        interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            interval.tick().await;
            match super::repo::enabled(&store).await {
                Ok(providers) => {
                    for p in providers
                        .iter()
                        .filter(|p| p.kind == crate::upstream::ProviderKind::Saml)
                    {
                        ctx.refresh_due(&p.id, &p.settings).await;
                    }
                }
                Err(e) => {
                    tracing::warn!(error = %e, "listing providers for the SAML metadata refresh failed")
                }
            }
        }
    })
}
