//! The refresh of SAML providers' IdP metadata fetched from a URL.

/// Every minute, refreshes the URL metadata of the enabled providers that is due (only SAML
/// rows name one; the janitor deletes expired SAML request and replay rows).
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
                    for p in &providers {
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
