//! The OpenID Connect provider that downstream apps talk to.

pub mod discovery;
pub mod jwks;
