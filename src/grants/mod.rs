//! What the OpenID Connect provider grants and keeps track of: logins waiting at a provider
//! (`pending`), SSO sessions (`sessions`), authorization codes (`codes`), refresh tokens and
//! the successors kept for their grace window (`refresh`), and revoked access tokens
//! (`revocations`). Each submodule owns its tables and is the only place their SQL lives; the
//! oidc handlers and the admin services call them, passing their transaction where a change
//! must commit together with others (`*_in`).

pub mod codes;
pub mod pending;
pub mod refresh;
pub mod revocations;
pub mod sessions;
