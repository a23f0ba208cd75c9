//! Resource indicators (RFC 8707): the `resource` a client names at `/authorize` or `/token`
//! becomes the access token's `aud`, so it is a grant of its own. A client may name only the
//! resources an admin allowed it (`allowed_resources`, exact match); anything else, a
//! malformed value or more than one, is `invalid_target`. One rule for every grant.

use super::error::{ErrorCode, OAuthError};
use crate::clients::{Client, ResourceUri};

/// Why a requested resource was refused (the `error_description`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refused(pub String);

impl From<Refused> for OAuthError {
    fn from(r: Refused) -> Self {
        OAuthError::new(ErrorCode::InvalidTarget, r.0)
    }
}

/// The resource of a request that sent `values` (every `resource` parameter, in order):
/// `None` when there is none, the allowed resource when there is exactly one that `client`
/// may name.
pub fn requested(client: &Client, values: &[&str]) -> Result<Option<ResourceUri>, Refused> {
    let values: Vec<&str> = values.iter().copied().filter(|v| !v.is_empty()).collect();
    match values.as_slice() {
        [] => Ok(None),
        [one] => allowed(client, one).map(Some),
        _ => Err(Refused("only one resource per request is supported".into())),
    }
}

/// `value` if `client` may name it now (an admin may have withdrawn it since it was granted).
pub fn allowed(client: &Client, value: &str) -> Result<ResourceUri, Refused> {
    ResourceUri::parse(value).map_err(Refused)?;
    client
        .allowed_resource(value)
        .cloned()
        .ok_or_else(|| Refused("this client may not request tokens for that resource".into()))
}

/// The resource of a token request that redeems a grant (a code or a refresh token) made for
/// `granted`: the client may narrow nothing and widen nothing, so a `resource` parameter must
/// name the granted resource; and that resource must still be allowed.
pub fn for_grant(
    client: &Client,
    granted: Option<&str>,
    asked: Option<&str>,
) -> Result<Option<ResourceUri>, Refused> {
    let asked = asked.filter(|a| !a.is_empty());
    if let Some(a) = asked
        && Some(a) != granted
    {
        return Err(Refused(
            "resource differs from the one this grant was made for".into(),
        ));
    }
    granted.map(|g| allowed(client, g)).transpose()
}
