//! Account pre-claim: a provider that is not trusted for e-mail (or any SAML IdP, which used
//! to be taken at its word) logs in the victim's address first; the victim's later login
//! through a trusted provider must not land in that account.

use crate::helpers::TestDb;
use crate::oidc_support::*;
use crate::on_both_backends;
use crate::saml_idp::{self, KeyPair};
use crate::saml_support::*;
use crate::upstream_idp::{UpUser, Upstream};

use super::{browser, login_through, verified_by};

on_both_backends!(
    an_untrusted_oidc_provider_cannot_pre_claim_a_verified_address,
    withdrawing_trust_unverifies_the_providers_users,
    a_saml_idp_cannot_pre_claim_a_verified_address,
    a_saml_provider_vouches_for_addresses_only_when_told_to,
);

async fn an_untrusted_oidc_provider_cannot_pre_claim_a_verified_address(db: &TestDb) {
    let upstream = Upstream::start().await;
    let issuer = upstream.issuer.clone();
    let app = spawn_portico(db, &upstream, move |s| {
        s.providers = vec![
            provider("open", &issuer, false),
            provider("corp", &issuer, true),
            provider("corp2", &issuer, true),
        ];
    })
    .await;
    let rp = relying_party(&app, CLIENT_ID, Some(CLIENT_SECRET), REDIRECT).await;

    // The attacker signs up at `open` (trust_email = false) with the victim's address, which
    // that provider calls verified.
    upstream.login_as(UpUser::new("attacker-sub", "victim@corp.test"));
    let attacker = login_through(&app, &rp, &browser(), "open").await;
    assert_eq!(
        attacker["email_verified"], false,
        "an untrusted provider's word made a downstream email_verified"
    );

    // The victim's first login, through the trusted `corp`: a user of their own.
    upstream.login_as(UpUser::new("victim-sub", "victim@corp.test"));
    let victim = login_through(&app, &rp, &browser(), "corp").await;
    assert_ne!(
        victim["sub"], attacker["sub"],
        "the victim was linked into the attacker's account"
    );
    assert_eq!(victim["email_verified"], true);
    assert!(events(&app, "identity.linked").await.is_empty());

    // Where each verification came from is recorded.
    let victim_id = victim["sub"].as_str().unwrap();
    let attacker_id = attacker["sub"].as_str().unwrap();
    assert_eq!(verified_by(&app, victim_id).await.as_deref(), Some("corp"));
    assert_eq!(verified_by(&app, attacker_id).await, None);

    // A second trusted provider vouching for the address joins the victim, never the attacker.
    upstream.login_as(UpUser::new("victim-at-2", "victim@corp.test"));
    let again = login_through(&app, &rp, &browser(), "corp2").await;
    assert_eq!(again["sub"], victim["sub"]);
    let links = events(&app, "identity.linked").await;
    assert_eq!(links.len(), 1);
    assert_eq!(links[0]["user_id"], victim_id);

    // The attacker logging in again changes nothing for the victim.
    upstream.login_as(UpUser::new("attacker-sub", "victim@corp.test"));
    let back = login_through(&app, &rp, &browser(), "open").await;
    assert_eq!(back["sub"], attacker["sub"]);
    assert_eq!(back["email_verified"], false);
    app.stop();
}

async fn withdrawing_trust_unverifies_the_providers_users(db: &TestDb) {
    use portico::crypto::MasterKey;
    let upstream = Upstream::start().await;
    let key = MasterKey::generate();
    let issuer = upstream.issuer.clone();
    let trusted = |trust: bool| {
        let issuer = issuer.clone();
        move |s: &mut portico::config::Settings| {
            s.providers = vec![
                provider("corp", &issuer, trust),
                provider("corp2", &issuer, true),
            ];
            s.clients = clients();
        }
    };
    let app = crate::helpers::spawn_app_with(db, key.clone(), trusted(true)).await;
    let rp = relying_party(&app, CLIENT_ID, Some(CLIENT_SECRET), REDIRECT).await;
    upstream.login_as(UpUser::new("ada-sub", "ada@corp.test"));
    let ada = login_through(&app, &rp, &browser(), "corp").await;
    assert_eq!(ada["email_verified"], true);
    app.stop();

    // The admin stops trusting `corp` for e-mail: what it verified is verified no more, and
    // nothing links into its users by that address.
    let app = crate::helpers::spawn_app_with(db, key, trusted(false)).await;
    let ada_id = ada["sub"].as_str().unwrap();
    assert_eq!(verified_by(&app, ada_id).await, None);
    let verified: i64 = sqlx::query_scalar("SELECT email_verified FROM users WHERE id = $1")
        .bind(ada_id)
        .fetch_one(app.state.store.pool())
        .await
        .unwrap();
    assert_eq!(verified, 0);
    let rp = relying_party(&app, CLIENT_ID, Some(CLIENT_SECRET), REDIRECT).await;
    upstream.login_as(UpUser::new("ada-at-2", "ada@corp.test"));
    let other = login_through(&app, &rp, &browser(), "corp2").await;
    assert_ne!(other["sub"], ada["sub"]);
    app.stop();
}

/// Portico with the SAML provider `acme` (its IdP claims `ada@example.com`) and the trusted
/// OIDC provider `corp`.
async fn saml_and_corp(
    db: &TestDb,
    upstream: &Upstream,
    customize: impl FnOnce(&mut portico::providers::ProviderConfig),
) -> Saml {
    let idp = KeyPair::generate("test idp");
    let mut acme = saml_provider(Some(saml_idp::metadata_xml(IDP_ENTITY, &[&idp])), None);
    customize(&mut acme);
    let issuer = upstream.issuer.clone();
    Saml::with_settings(db, idp, acme, move |s| {
        s.providers.push(provider("corp", &issuer, true));
    })
    .await
}

async fn saml_login_claims(saml: &Saml) -> serde_json::Value {
    use openidconnect::TokenResponse;
    let (started, _) = log_in(saml).await;
    let (tokens, _) = exchange(&saml.rp, started.auth).await;
    jwt_claims(&tokens.id_token().unwrap().to_string())
}

async fn a_saml_idp_cannot_pre_claim_a_verified_address(db: &TestDb) {
    let upstream = Upstream::start().await;
    // Even trusted for e-mail, a SAML provider's address is unverified unless the admin says
    // its IdP verifies addresses.
    let saml = saml_and_corp(db, &upstream, |p| p.trust_email = true).await;
    let attacker = saml_login_claims(&saml).await;
    assert_eq!(attacker["email"], "ada@example.com");
    assert_eq!(attacker["email_verified"], false);

    upstream.login_as(UpUser::new("ada-sub", "ada@example.com"));
    let victim = login_through(&saml.app, &saml.rp, &browser(), "corp").await;
    assert_ne!(
        victim["sub"], attacker["sub"],
        "a SAML assertion pre-claimed the victim's account"
    );
    assert_eq!(victim["email_verified"], true);
    assert!(events(&saml.app, "identity.linked").await.is_empty());

    // Nor does a SAML login link into the victim's account afterwards.
    let later = saml_login_claims(&saml).await;
    assert_eq!(later["sub"], attacker["sub"]);
    assert!(events(&saml.app, "identity.linked").await.is_empty());
    saml.app.stop();
}

async fn a_saml_provider_vouches_for_addresses_only_when_told_to(db: &TestDb) {
    let upstream = Upstream::start().await;
    let saml = saml_and_corp(db, &upstream, |p| {
        p.trust_email = true;
        p.options["saml"]["email_verified"] = true.into();
    })
    .await;
    upstream.login_as(UpUser::new("ada-sub", "ada@example.com"));
    let first = login_through(&saml.app, &saml.rp, &browser(), "corp").await;
    // Told that its IdP verifies addresses, and trusted for e-mail: it links.
    let through_saml = saml_login_claims(&saml).await;
    assert_eq!(through_saml["sub"], first["sub"]);
    assert_eq!(through_saml["email_verified"], true);
    assert_eq!(events(&saml.app, "identity.linked").await.len(), 1);
    assert_eq!(
        verified_by(&saml.app, first["sub"].as_str().unwrap())
            .await
            .as_deref(),
        Some(PROVIDER)
    );
    saml.app.stop();
}
