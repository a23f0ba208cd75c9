//! The SAML test harness: Portico with a SAML provider whose IdP is a test key pair, an
//! `openidconnect` relying party, and the user's browser. Shared by the SAML flow tests and
//! the trust tests.

#![allow(dead_code)]

use std::io::Read;
use std::sync::Arc;

use openidconnect::core::{CoreAuthPrompt, CoreAuthenticationFlow};
use openidconnect::{CsrfToken, Nonce, PkceCodeChallenge, PkceCodeVerifier, Scope};
use portico::crypto::MasterKey;
use portico::providers::ProviderConfig;
use reqwest::cookie::Jar;
use serde_json::Value;

use crate::helpers::{TestApp, TestDb, spawn_app_with};
use crate::oidc_support::*;
use crate::saml_idp::{self, Claims, KeyPair, SSO_URL, assertion, b64, response};

pub const PROVIDER: &str = "acme";
pub const IDP_ENTITY: &str = "https://idp.test/entity";
pub const SCOPES: &[&str] = &["email", "profile", "groups", "offline_access"];

pub fn saml_provider(metadata_xml: Option<String>, metadata_url: Option<String>) -> ProviderConfig {
    let mut p: ProviderConfig = toml::from_str(&format!(
        "id = \"{PROVIDER}\"\nkind = \"saml\"\ndisplay_name = \"Acme SSO\"\n"
    ))
    .unwrap();
    p.options["saml_idp_metadata_xml"] = metadata_xml.into();
    p.options["saml_idp_metadata_url"] = metadata_url.into();
    p
}

pub struct Saml {
    pub app: TestApp,
    pub idp: KeyPair,
    pub rp: Rp,
    /// The user's browser: keeps cookies, but (as for any cross-site POST) sends none of
    /// Portico's SameSite=Lax cookies with the IdP's form post to the ACS.
    pub cookies: Arc<Jar>,
    pub browser: reqwest::Client,
}

impl Saml {
    pub async fn start(db: &TestDb, customize: impl FnOnce(&mut ProviderConfig)) -> Self {
        let idp = KeyPair::generate("test idp");
        let mut provider = saml_provider(Some(saml_idp::metadata_xml(IDP_ENTITY, &[&idp])), None);
        customize(&mut provider);
        Self::with_provider(db, idp, provider).await
    }

    pub async fn with_provider(db: &TestDb, idp: KeyPair, provider: ProviderConfig) -> Self {
        Self::with_settings(db, idp, provider, |_| {}).await
    }

    /// As `with_provider`, with `customize` applied to the settings last (other providers…).
    pub async fn with_settings(
        db: &TestDb,
        idp: KeyPair,
        provider: ProviderConfig,
        customize: impl FnOnce(&mut portico::config::Settings),
    ) -> Self {
        let app = spawn_app_with(db, MasterKey::generate(), move |s| {
            s.providers = vec![provider];
            s.clients = clients();
            customize(s);
        })
        .await;
        let rp = relying_party(&app, CLIENT_ID, Some(CLIENT_SECRET), REDIRECT).await;
        let cookies = Arc::new(Jar::default());
        let browser = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .cookie_provider(cookies.clone())
            .build()
            .unwrap();
        Self {
            app,
            idp,
            rp,
            cookies,
            browser,
        }
    }

    pub fn acs(&self) -> String {
        self.app.url(&format!("/saml/{PROVIDER}/acs"))
    }

    pub fn entity_id(&self) -> String {
        self.app.url(&format!("/saml/{PROVIDER}/metadata"))
    }

    /// A Response to `request_id` that passes every check, signed by the IdP.
    pub fn claims(&self, request_id: Option<&str>) -> Claims {
        Claims::valid(
            IDP_ENTITY,
            &self.acs(),
            &self.entity_id(),
            request_id,
            portico::store::now(),
        )
    }

    pub fn signed(&self, c: &Claims) -> String {
        b64(&response(c, &assertion(c, None), Some(&self.idp)))
    }

    /// The app's authorization request: its URL, state, nonce and PKCE verifier. With
    /// `force_login`, `prompt=login`: past any SSO session, to the IdP.
    pub fn authorization(
        &self,
        force_login: bool,
    ) -> (url::Url, CsrfToken, Nonce, PkceCodeVerifier) {
        self.authorization_with(force_login, &[])
    }

    /// As `authorization`, with `extra` parameters (`max_age`…).
    pub fn authorization_with(
        &self,
        force_login: bool,
        extra: &[(&str, &str)],
    ) -> (url::Url, CsrfToken, Nonce, PkceCodeVerifier) {
        let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
        let mut request = self
            .rp
            .authorize_url(
                CoreAuthenticationFlow::AuthorizationCode,
                CsrfToken::new_random,
                Nonce::new_random,
            )
            .set_pkce_challenge(challenge);
        if force_login {
            request = request.add_prompt(CoreAuthPrompt::Login);
        }
        // Straight to this provider, whatever else is configured.
        request = request.add_extra_param("provider", PROVIDER);
        for (k, v) in extra {
            request = request.add_extra_param(*k, *v);
        }
        for s in SCOPES {
            request = request.add_scope(Scope::new((*s).to_owned()));
        }
        let (url, csrf, nonce) = request.url();
        (url, csrf, nonce, verifier)
    }

    /// The app sends the user to Portico, which sends them on to the IdP.
    pub async fn begin(&self) -> Started {
        self.begin_with(true, &[]).await
    }

    /// As `begin`, with or without `prompt=login` and with `extra` parameters.
    pub async fn begin_with(&self, force_login: bool, extra: &[(&str, &str)]) -> Started {
        let (url, csrf, nonce, verifier) = self.authorization_with(force_login, extra);
        let at_idp = browse_with(&self.browser, &self.app, url.as_str(), SSO_URL)
            .await
            .url();
        let relay_state = param(&at_idp, "RelayState").expect("RelayState");
        assert!(
            !relay_state.contains("://"),
            "RelayState is an opaque handle, not a URL"
        );
        let saml_request = param(&at_idp, "SAMLRequest").expect("SAMLRequest");
        Started {
            request_id: authn_request_id(&saml_request),
            request_xml: inflate(&saml_request),
            relay_state,
            csrf: csrf.secret().clone(),
            auth: Authorized {
                code: String::new(),
                nonce,
                verifier,
            },
            idp_url: at_idp,
        }
    }

    /// The browser's auto-submitted form from the IdP: a cross-site POST, so without
    /// Portico's cookies (a fresh client).
    pub async fn post_acs(
        &self,
        saml_response: &str,
        relay_state: Option<&str>,
    ) -> reqwest::Response {
        let mut form = vec![("SAMLResponse", saml_response)];
        if let Some(r) = relay_state {
            form.push(("RelayState", r));
        }
        let res = rp_http().post(self.acs()).form(&form).send().await.unwrap();
        // The cookies the ACS sets do reach the browser.
        let acs = url::Url::parse(&self.acs()).unwrap();
        for set in res.headers().get_all("set-cookie") {
            self.cookies.add_cookie_str(set.to_str().unwrap(), &acs);
        }
        res
    }

    /// The browser goes on from the ACS's answer (a redirect to Portico's own completion
    /// step, a same-site GET that carries the login cookie) until it leaves for the app.
    pub async fn follow(&self, res: reqwest::Response) -> Arrival {
        let next = location(&res);
        if next.as_str().starts_with(REDIRECT) {
            return Arrival::At(next);
        }
        browse_with(&self.browser, &self.app, next.as_str(), REDIRECT).await
    }
}

pub struct Started {
    pub request_id: String,
    /// The AuthnRequest as the IdP received it.
    pub request_xml: String,
    pub relay_state: String,
    pub csrf: String,
    pub auth: Authorized,
    pub idp_url: url::Url,
}

/// The XML of an HTTP-Redirect `SAMLRequest` (base64 of raw DEFLATE).
pub fn inflate(saml_request: &str) -> String {
    use base64::Engine;
    let deflated = base64::engine::general_purpose::STANDARD
        .decode(saml_request)
        .unwrap();
    let mut xml = String::new();
    flate2::read::DeflateDecoder::new(deflated.as_slice())
        .read_to_string(&mut xml)
        .unwrap();
    xml
}

/// The ID of the AuthnRequest in an HTTP-Redirect `SAMLRequest`.
pub fn authn_request_id(saml_request: &str) -> String {
    let xml = inflate(saml_request);
    let start = xml.find(" ID=\"").expect("AuthnRequest ID") + 5;
    let end = start + xml[start..].find('"').unwrap();
    xml[start..end].to_owned()
}

pub fn location(res: &reqwest::Response) -> url::Url {
    assert!(
        res.status().is_redirection(),
        "expected a redirect, got {}",
        res.status()
    );
    url::Url::parse(res.headers()["location"].to_str().unwrap()).unwrap()
}

/// Posts to the ACS and checks the refusal: Portico's HTML error page naming `reason`, and
/// one more `login.failed` event saying why.
pub async fn assert_refused(
    saml: &Saml,
    posted: &str,
    relay_state: Option<&str>,
    reason: &str,
    client: Option<&str>,
) {
    let before = events(&saml.app, "login.failed").await.len();
    let res = saml.post_acs(posted, relay_state).await;
    assert_eq!(res.status().as_u16(), 400);
    assert!(
        res.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/html")
    );
    let page = res.text().await.unwrap();
    assert!(
        page.contains(reason),
        "page does not name `{reason}`: {page}"
    );
    assert!(!page.contains("<saml"), "the page never shows the XML");
    let failed = events(&saml.app, "login.failed").await;
    assert_eq!(failed.len(), before + 1, "one login.failed per refusal");
    // Events of one second have no order among them: look for this one.
    let expected = client.map_or(Value::Null, Value::from);
    let found = failed
        .iter()
        .find(|e| e["reason"] == reason && e["client_id"] == expected)
        .unwrap_or_else(|| panic!("no login.failed with `{reason}` for {expected}: {failed:?}"));
    assert_eq!(found["provider"], PROVIDER);
    assert!(found["ip"].is_string());
}

/// Completes a login at the IdP and returns the code's arrival at the app.
pub async fn log_in(saml: &Saml) -> (Started, String) {
    let mut started = saml.begin().await;
    let c = saml.claims(Some(&started.request_id));
    let posted = saml.signed(&c);
    let res = saml.post_acs(&posted, Some(&started.relay_state)).await;
    let arrived = saml.follow(res).await.url();
    assert!(arrived.as_str().starts_with(REDIRECT), "{arrived}");
    assert_eq!(
        param(&arrived, "state").as_deref(),
        Some(started.csrf.as_str())
    );
    started.auth.code = param(&arrived, "code").expect("a code");
    (started, posted)
}
