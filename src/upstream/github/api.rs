//! The few REST API calls a login needs: `/user`, `/user/emails`, `/user/orgs`, `/user/teams`.

use reqwest::StatusCode;
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use url::Url;

use super::config::BaseUrl;
use super::ratelimit;
use crate::net::error_chain;
use crate::upstream::UpstreamError;
use crate::upstream::http::UpstreamHttp;

/// Lists are read 100 items a page, at most this many pages (users in more than a thousand
/// organisations or teams get the first thousand).
const MAX_PAGES: usize = 10;

#[derive(Debug, Deserialize)]
pub(super) struct User {
    pub id: i64,
    pub login: String,
    pub name: Option<String>,
    pub email: Option<String>,
    pub avatar_url: Option<String>,
}

#[derive(Debug, Deserialize)]
pub(super) struct Email {
    pub email: String,
    pub primary: bool,
    pub verified: bool,
}

#[derive(Debug, Deserialize)]
pub(super) struct Org {
    pub login: String,
}

#[derive(Debug, Deserialize)]
pub(super) struct Team {
    pub slug: String,
    pub organization: Org,
}

/// Why an API call failed. `Unauthorized` is told apart because on a refresh it means the
/// grant is gone; `Forbidden`/`NotFound` because an optional call may fall back.
#[derive(Debug)]
pub(super) enum ApiError {
    Unauthorized(&'static str),
    Forbidden(&'static str),
    NotFound(&'static str),
    Failed(UpstreamError),
}

impl ApiError {
    /// The error of a call that is required for the login.
    pub fn into_upstream(self) -> UpstreamError {
        match self {
            ApiError::Unauthorized(path) => {
                UpstreamError::UserInfo(format!("GitHub rejected the access token at {path}"))
            }
            ApiError::Forbidden(path) => UpstreamError::UserInfo(format!(
                "GitHub refused {path} (403): the token lacks a scope or permission"
            )),
            ApiError::NotFound(path) => UpstreamError::UserInfo(format!(
                "GitHub answered 404 at {path}: check github_api_base"
            )),
            ApiError::Failed(e) => e,
        }
    }
}

pub(super) struct Api<'a> {
    pub http: &'a UpstreamHttp,
    pub base: &'a BaseUrl,
    pub token: &'a SecretString,
}

impl Api<'_> {
    pub async fn user(&self) -> Result<User, ApiError> {
        Ok(self.get::<User>(self.base.join("user"), "/user").await?.0)
    }

    pub async fn emails(&self) -> Result<Vec<Email>, ApiError> {
        self.list("user/emails", "/user/emails").await
    }

    pub async fn orgs(&self) -> Result<Vec<Org>, ApiError> {
        self.list("user/orgs", "/user/orgs").await
    }

    pub async fn teams(&self) -> Result<Vec<Team>, ApiError> {
        self.list("user/teams", "/user/teams").await
    }

    /// All pages of a list, following `Link: rel="next"` while it stays under the API base.
    async fn list<T: DeserializeOwned>(
        &self,
        path: &str,
        name: &'static str,
    ) -> Result<Vec<T>, ApiError> {
        let mut url = self.base.join(&format!("{path}?per_page=100"));
        let mut items = Vec::new();
        for _ in 0..MAX_PAGES {
            let (page, next) = self.get::<Vec<T>>(url, name).await?;
            items.extend(page);
            match next.filter(|n| self.base.contains(n)) {
                Some(n) => url = n,
                None => break,
            }
        }
        Ok(items)
    }

    async fn get<T: DeserializeOwned>(
        &self,
        url: Url,
        name: &'static str,
    ) -> Result<(T, Option<Url>), ApiError> {
        let request = self
            .http
            .client()
            .get(url)
            .bearer_auth(self.token.expose_secret())
            .header("accept", "application/vnd.github+json")
            .header("x-github-api-version", "2022-11-28")
            .build()
            .map_err(|e| ApiError::Failed(UpstreamError::Misconfigured(e.to_string())))?;
        let response = self.http.send(request).await.map_err(|e| {
            ApiError::Failed(UpstreamError::Unavailable(format!(
                "GitHub API {name}: {}",
                error_chain(&e)
            )))
        })?;
        if let Some(limited) = ratelimit::limited(&response, name) {
            return Err(ApiError::Failed(limited));
        }
        let status = response.status();
        match status {
            s if s.is_success() => {}
            StatusCode::UNAUTHORIZED => return Err(ApiError::Unauthorized(name)),
            StatusCode::FORBIDDEN => return Err(ApiError::Forbidden(name)),
            StatusCode::NOT_FOUND => return Err(ApiError::NotFound(name)),
            s if s.is_server_error() => {
                return Err(ApiError::Failed(UpstreamError::Unavailable(format!(
                    "GitHub API {name} answered {s}"
                ))));
            }
            s => {
                return Err(ApiError::Failed(UpstreamError::UserInfo(format!(
                    "GitHub API {name} answered {s}"
                ))));
            }
        }
        let next = next_link(response.headers());
        let body = response.json::<T>().await.map_err(|_| {
            ApiError::Failed(UpstreamError::UserInfo(format!(
                "GitHub API {name} returned an unexpected body"
            )))
        })?;
        Ok((body, next))
    }
}

/// The `rel="next"` target of a `Link` header.
fn next_link(headers: &reqwest::header::HeaderMap) -> Option<Url> {
    let link = headers.get(reqwest::header::LINK)?.to_str().ok()?;
    link.split(',').find_map(|part| {
        let (target, params) = part.split_once(';')?;
        let is_next = params
            .split(';')
            .any(|p| p.trim().replace(' ', "") == "rel=\"next\"");
        let target = target.trim().strip_prefix('<')?.strip_suffix('>')?;
        is_next.then(|| Url::parse(target).ok()).flatten()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_next_link_is_found_among_others() {
        let mut headers = reqwest::header::HeaderMap::new();
        headers.insert(
            reqwest::header::LINK,
            r#"<https://api.github.com/user/orgs?page=1>; rel="prev", <https://api.github.com/user/orgs?page=3>; rel="next", <https://api.github.com/user/orgs?page=5>; rel="last""#
                .parse()
                .unwrap(),
        );
        assert_eq!(
            next_link(&headers).unwrap().as_str(),
            "https://api.github.com/user/orgs?page=3"
        );
        headers.insert(
            reqwest::header::LINK,
            r#"<https://api.github.com/user/orgs?page=1>; rel="first""#
                .parse()
                .unwrap(),
        );
        assert!(next_link(&headers).is_none());
    }
}
