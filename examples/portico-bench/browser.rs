//! One connection's user agent for the Portico workloads: it follows the login redirects by
//! hand (to stop at the client's redirect URI and read the code), carries Portico's cookies
//! (the login CSRF cookie and the SSO session), and speaks to the token, userinfo and
//! introspection endpoints as the confidential client.

use std::collections::BTreeMap;
use std::sync::Arc;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::Deserialize;
use serde_json::Value;

/// Endpoints and client settings, shared by every connection.
pub struct Shared {
    pub issuer_origin: String,
    pub authorization_endpoint: String,
    pub token_endpoint: String,
    pub userinfo_endpoint: String,
    pub introspection_endpoint: String,
    pub client_id: String,
    pub client_secret: String,
    pub redirect_uri: String,
    pub scope: String,
    pub provider: String,
}

/// An authorization code and what its exchange needs.
pub struct Authorized {
    pub code: String,
    nonce: String,
    verifier: String,
}

#[derive(Deserialize)]
pub struct Tokens {
    pub access_token: String,
    pub refresh_token: Option<String>,
    pub id_token: Option<String>,
}

/// An authorization request about to be sent.
struct Started {
    url: String,
    state: String,
    nonce: String,
    verifier: String,
}

pub struct Browser {
    http: reqwest::Client,
    shared: Arc<Shared>,
    /// Portico's cookies (name -> value); only ever sent to Portico.
    cookies: BTreeMap<String, String>,
}

fn random() -> String {
    let mut b = [0u8; 32];
    portico::crypto::random_bytes(&mut b);
    URL_SAFE_NO_PAD.encode(b)
}

fn snippet(text: &str) -> String {
    text.chars().take(200).collect()
}

/// The JSON body of a 2xx answer, or the status and the start of the body as the error.
async fn json_body<T: serde::de::DeserializeOwned>(
    sent: Result<reqwest::Response, reqwest::Error>,
) -> Result<T, String> {
    let res = sent.map_err(|e| e.to_string())?;
    let status = res.status();
    let text = res.text().await.map_err(|e| e.to_string())?;
    if !status.is_success() {
        return Err(format!("{status}: {}", snippet(&text)));
    }
    serde_json::from_str(&text).map_err(|e| format!("{e} in {}", snippet(&text)))
}

impl Browser {
    pub fn new(shared: Arc<Shared>) -> Self {
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .pool_max_idle_per_host(1)
            .build()
            .expect("HTTP client");
        Self {
            http,
            shared,
            cookies: BTreeMap::new(),
        }
    }

    fn start(&self) -> Started {
        let (state, nonce, verifier) = (random(), random(), random());
        let challenge = URL_SAFE_NO_PAD
            .encode(ring::digest::digest(&ring::digest::SHA256, verifier.as_bytes()).as_ref());
        let s = &self.shared;
        let url = url::Url::parse_with_params(
            &s.authorization_endpoint,
            [
                ("response_type", "code"),
                ("client_id", s.client_id.as_str()),
                ("redirect_uri", s.redirect_uri.as_str()),
                ("scope", s.scope.as_str()),
                ("state", state.as_str()),
                ("nonce", nonce.as_str()),
                ("code_challenge", challenge.as_str()),
                ("code_challenge_method", "S256"),
                ("provider", s.provider.as_str()),
            ],
        )
        .expect("the authorization endpoint is a URL");
        Started {
            url: url.into(),
            state,
            nonce,
            verifier,
        }
    }

    fn is_portico(&self, url: &str) -> bool {
        url.starts_with(&self.shared.issuer_origin)
    }

    async fn get(&mut self, url: &str) -> Result<reqwest::Response, String> {
        let mut req = self.http.get(url);
        let to_portico = self.is_portico(url);
        if to_portico && !self.cookies.is_empty() {
            let header = self
                .cookies
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect::<Vec<_>>()
                .join("; ");
            req = req.header(reqwest::header::COOKIE, header);
        }
        let res = req.send().await.map_err(|e| format!("GET {url}: {e}"))?;
        if to_portico {
            for set in res.headers().get_all(reqwest::header::SET_COOKIE) {
                let Ok(set) = set.to_str() else { continue };
                let pair = set.split(';').next().unwrap_or_default();
                let Some((name, value)) = pair.split_once('=') else {
                    continue;
                };
                let expired = set.to_ascii_lowercase().contains("max-age=0");
                if value.is_empty() || expired {
                    self.cookies.remove(name.trim());
                } else {
                    self.cookies
                        .insert(name.trim().to_owned(), value.trim().to_owned());
                }
            }
        }
        Ok(res)
    }

    /// Follows redirects from `url` until one leads to the client's redirect URI; returns its
    /// code and the number of requests it took.
    async fn follow(&mut self, started: &Started) -> Result<(String, usize), String> {
        let mut url = started.url.clone();
        for hop in 1..=8 {
            let res = self.get(&url).await?;
            let status = res.status();
            if !status.is_redirection() {
                let body = res.text().await.unwrap_or_default();
                return Err(format!("GET {url} answered {status}: {}", snippet(&body)));
            }
            let location = res
                .headers()
                .get(reqwest::header::LOCATION)
                .and_then(|l| l.to_str().ok())
                .ok_or_else(|| format!("GET {url}: a redirect without Location"))?;
            let next = url::Url::parse(&url)
                .and_then(|base| base.join(location))
                .map_err(|e| format!("bad Location {location}: {e}"))?;
            if next.as_str().starts_with(&self.shared.redirect_uri) {
                let q: BTreeMap<String, String> = next.query_pairs().into_owned().collect();
                if let Some(error) = q.get("error") {
                    let text = q.get("error_description").map_or("", String::as_str);
                    return Err(format!("back at the client with {error}: {text}"));
                }
                if q.get("state") != Some(&started.state) {
                    return Err("the state came back changed".into());
                }
                let code = q.get("code").ok_or("back at the client without a code")?;
                return Ok((code.clone(), hop));
            }
            url = next.into();
        }
        Err("more than 8 redirects".into())
    }

    /// A complete login as a new browser: Portico, the upstream, the callback, the code
    /// exchange. Keeps the SSO session cookie it ends with.
    pub async fn login(&mut self) -> Result<Tokens, String> {
        self.cookies.clear();
        let started = self.start();
        let (code, _) = self.follow(&started).await?;
        self.exchange(&Authorized {
            code,
            nonce: started.nonce,
            verifier: started.verifier,
        })
        .await
    }

    /// A code from `/authorize` answered at once by the SSO session of an earlier login.
    pub async fn sso_code(&mut self) -> Result<Authorized, String> {
        let started = self.start();
        let (code, hops) = self.follow(&started).await?;
        if hops != 1 {
            return Err(format!(
                "/authorize took {hops} requests: the SSO session did not answer it"
            ));
        }
        Ok(Authorized {
            code,
            nonce: started.nonce,
            verifier: started.verifier,
        })
    }

    fn token_request(&self, form: &[(&str, &str)]) -> reqwest::RequestBuilder {
        let s = &self.shared;
        self.http
            .post(&s.token_endpoint)
            .basic_auth(&s.client_id, Some(&s.client_secret))
            .form(form)
    }

    /// The ID token must be there (when `openid` was asked for) and carry `nonce`.
    fn check_id_token(&self, tokens: &Tokens, nonce: Option<&str>) -> Result<(), String> {
        if !self.shared.scope.split(' ').any(|s| s == "openid") {
            return Ok(());
        }
        let id_token = tokens.id_token.as_deref().ok_or("no ID token")?;
        let Some(nonce) = nonce else { return Ok(()) };
        let claims: Value = id_token
            .split('.')
            .nth(1)
            .and_then(|p| URL_SAFE_NO_PAD.decode(p).ok())
            .and_then(|b| serde_json::from_slice(&b).ok())
            .ok_or("the ID token is not a JWT")?;
        if claims["nonce"].as_str() != Some(nonce) {
            return Err("the ID token's nonce is not the request's".into());
        }
        Ok(())
    }

    pub async fn exchange(&self, a: &Authorized) -> Result<Tokens, String> {
        let form = [
            ("grant_type", "authorization_code"),
            ("code", a.code.as_str()),
            ("redirect_uri", self.shared.redirect_uri.as_str()),
            ("code_verifier", a.verifier.as_str()),
        ];
        let tokens: Tokens = json_body(self.token_request(&form).send().await).await?;
        self.check_id_token(&tokens, Some(&a.nonce))?;
        Ok(tokens)
    }

    /// One rotation: the new refresh token replaces the presented one.
    pub async fn refresh(&self, refresh_token: &str) -> Result<Tokens, String> {
        let form = [
            ("grant_type", "refresh_token"),
            ("refresh_token", refresh_token),
        ];
        let tokens: Tokens = json_body(self.token_request(&form).send().await).await?;
        self.check_id_token(&tokens, None)?;
        match &tokens.refresh_token {
            Some(t) if t != refresh_token => Ok(tokens),
            _ => Err("the refresh token was not rotated".into()),
        }
    }

    pub async fn userinfo(&self, access_token: &str) -> Result<(), String> {
        let sent = self
            .http
            .get(&self.shared.userinfo_endpoint)
            .bearer_auth(access_token)
            .send()
            .await;
        let claims: Value = json_body(sent).await?;
        if claims["sub"].is_string() {
            Ok(())
        } else {
            Err("userinfo without sub".into())
        }
    }

    pub async fn introspect(&self, token: &str) -> Result<(), String> {
        let s = &self.shared;
        let sent = self
            .http
            .post(&s.introspection_endpoint)
            .basic_auth(&s.client_id, Some(&s.client_secret))
            .form(&[("token", token)])
            .send()
            .await;
        let answer: Value = json_body(sent).await?;
        if answer["active"] == Value::Bool(true) {
            Ok(())
        } else {
            Err(format!("introspection answered {answer}"))
        }
    }
}
