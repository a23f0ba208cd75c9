//! GitHub's OAuth web flow: the authorize URL, the code exchange and the refresh of GitHub App
//! user tokens, all at `{web_base}/login/oauth/*`.
//!
//! GitHub answers token requests with status 200 even when they fail
//! (`{"error":"bad_verification_code",...}`), so the body decides, never the status alone.
//! GitHub App user tokens expire after 8 hours and come with a refresh token that rotates on
//! every use; OAuth App tokens do not expire and have no refresh token.

use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use url::Url;

use super::config::BaseUrl;
use super::ratelimit;
use crate::net::error_chain;
use crate::upstream::http::UpstreamHttp;
use crate::upstream::{UpstreamError, UpstreamTokens};

/// What the authorize URL carries besides the client.
pub(super) struct AuthorizeParams<'a> {
    pub redirect_uri: &'a str,
    pub scopes: &'a [String],
    pub state: &'a str,
    pub code_challenge: &'a str,
    pub login_hint: Option<&'a str>,
    pub force_login: bool,
}

pub(super) fn authorize_url(web_base: &BaseUrl, client_id: &str, p: &AuthorizeParams<'_>) -> Url {
    let mut url = web_base.join("login/oauth/authorize");
    {
        let mut q = url.query_pairs_mut();
        q.append_pair("client_id", client_id)
            .append_pair("redirect_uri", p.redirect_uri)
            .append_pair("scope", &p.scopes.join(" "))
            .append_pair("state", p.state)
            .append_pair("code_challenge", p.code_challenge)
            .append_pair("code_challenge_method", "S256");
        if let Some(hint) = p.login_hint {
            // GitHub's `login` suggests the account to sign in with.
            q.append_pair("login", hint);
        }
        if p.force_login {
            q.append_pair("prompt", "select_account");
        }
    }
    url
}

/// The token endpoint's answer, success and error shapes in one.
#[derive(Deserialize)]
struct TokenBody {
    access_token: Option<String>,
    scope: Option<String>,
    expires_in: Option<i64>,
    refresh_token: Option<String>,
    error: Option<String>,
    error_description: Option<String>,
}

/// A token GitHub issued, with the scopes it granted.
pub(super) struct Grant {
    pub tokens: UpstreamTokens,
    pub scopes: Vec<String>,
}

impl Grant {
    /// A grant rebuilt from stored tokens.
    pub fn from_tokens(tokens: UpstreamTokens) -> Self {
        let scopes = tokens
            .scope
            .as_deref()
            .map(split_scopes)
            .unwrap_or_default();
        Self { tokens, scopes }
    }
}

/// Whether a token request exchanges a code or refreshes: their errors mean different things.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Purpose {
    Exchange,
    Refresh,
}

pub(super) struct TokenClient<'a> {
    pub http: &'a UpstreamHttp,
    pub web_base: &'a BaseUrl,
    pub client_id: &'a str,
    pub client_secret: &'a SecretString,
}

impl TokenClient<'_> {
    pub async fn exchange_code(
        &self,
        code: &str,
        redirect_uri: &str,
        code_verifier: &str,
    ) -> Result<Grant, UpstreamError> {
        self.request(
            &[
                ("code", code),
                ("redirect_uri", redirect_uri),
                ("code_verifier", code_verifier),
            ],
            Purpose::Exchange,
            None,
        )
        .await
    }

    /// Uses (and so spends) `refresh_token`; the grant carries its rotated successor.
    pub async fn refresh(&self, refresh_token: &SecretString) -> Result<Grant, UpstreamError> {
        self.request(
            &[
                ("grant_type", "refresh_token"),
                ("refresh_token", refresh_token.expose_secret()),
            ],
            Purpose::Refresh,
            Some(refresh_token),
        )
        .await
    }

    async fn request(
        &self,
        params: &[(&str, &str)],
        purpose: Purpose,
        previous_refresh: Option<&SecretString>,
    ) -> Result<Grant, UpstreamError> {
        let mut form = vec![
            ("client_id", self.client_id),
            ("client_secret", self.client_secret.expose_secret()),
        ];
        form.extend_from_slice(params);
        let request = self
            .http
            .client()
            .post(self.web_base.join("login/oauth/access_token"))
            .header("accept", "application/json")
            .form(&form)
            .build()
            .map_err(|e| UpstreamError::Misconfigured(format!("token request: {e}")))?;
        let response = self.http.send(request).await.map_err(|e| {
            UpstreamError::Unavailable(format!("GitHub's token endpoint: {}", error_chain(&e)))
        })?;
        let status = response.status();
        if let Some(limited) = ratelimit::limited(&response, "the token endpoint") {
            return Err(limited);
        }
        if status.is_server_error() {
            return Err(UpstreamError::Unavailable(format!(
                "GitHub's token endpoint answered {status}"
            )));
        }
        let body: TokenBody = response.json().await.map_err(|_| {
            UpstreamError::TokenExchange(format!(
                "GitHub's token endpoint answered {status} without a JSON token response"
            ))
        })?;
        if let Some(error) = body.error {
            return Err(token_error(
                &error,
                body.error_description.as_deref(),
                purpose,
            ));
        }
        let access_token = body.access_token.filter(|t| !t.is_empty()).ok_or_else(|| {
            UpstreamError::TokenExchange(format!(
                "GitHub's token endpoint answered {status} without an access token"
            ))
        })?;
        let scopes = body.scope.as_deref().map(split_scopes).unwrap_or_default();
        Ok(Grant {
            tokens: UpstreamTokens {
                access_token: SecretString::from(access_token),
                // A rotated token replaces the spent one; without one, the old one stays.
                refresh_token: body
                    .refresh_token
                    .filter(|t| !t.is_empty())
                    .map(SecretString::from)
                    .or_else(|| previous_refresh.cloned()),
                id_token: None,
                expires_at: body
                    .expires_in
                    .filter(|s| *s > 0)
                    .map(|s| crate::store::now() + s),
                scope: Some(scopes.join(" ")),
            },
            scopes,
        })
    }
}

/// Maps an error of GitHub's token endpoint (documented codes) onto the upstream errors.
fn token_error(error: &str, description: Option<&str>, purpose: Purpose) -> UpstreamError {
    let error: String = error.chars().take(100).collect();
    let mut text = error.clone();
    if let Some(d) = description {
        text.push_str(": ");
        text.extend(d.chars().take(300));
    }
    match error.as_str() {
        "bad_refresh_token" if purpose == Purpose::Refresh => UpstreamError::InvalidGrant,
        "incorrect_client_credentials" | "redirect_uri_mismatch" | "unsupported_grant_type" => {
            UpstreamError::Misconfigured(text)
        }
        _ => UpstreamError::TokenExchange(text),
    }
}

/// GitHub lists granted scopes comma-separated (`read:org,user:email`).
fn split_scopes(raw: &str) -> Vec<String> {
    raw.split([',', ' '])
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scopes_split_on_commas_and_spaces() {
        assert_eq!(
            split_scopes("read:org,user:email"),
            ["read:org", "user:email"]
        );
        assert_eq!(
            split_scopes("read:user user:email"),
            ["read:user", "user:email"]
        );
        assert!(split_scopes("").is_empty());
    }

    #[test]
    fn token_errors_map_by_code_and_purpose() {
        assert_eq!(
            token_error("bad_refresh_token", None, Purpose::Refresh),
            UpstreamError::InvalidGrant
        );
        assert!(matches!(
            token_error("bad_verification_code", Some("expired"), Purpose::Exchange),
            UpstreamError::TokenExchange(t) if t == "bad_verification_code: expired"
        ));
        assert!(matches!(
            token_error("incorrect_client_credentials", None, Purpose::Exchange),
            UpstreamError::Misconfigured(_)
        ));
    }
}
