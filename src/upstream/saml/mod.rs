//! SAML 2.0 service provider: Portico as the SP of an upstream SAML IdP.
//!
//! The login flow uses it in three steps:
//! 1. [`redirect_request`] builds the HTTP-Redirect AuthnRequest; store its ID with
//!    [`DbOutstandingRequests::remember`] and send the browser to its URL.
//! 2. The IdP posts `SAMLResponse` (and our `RelayState`) to `/saml/{provider}/acs`.
//! 3. [`verify_response`] checks it against the pinned [`IdpMetadata`] and our [`SpConfig`]
//!    and returns the [`VerifiedAssertion`], or a [`SamlError`] whose `reason()` goes into
//!    `login.failed`.
//!
//! [`sp_metadata_xml`] serves `/saml/{provider}/metadata`. [`SamlConnector`] puts all of this
//! behind the upstream interface's `SamlLogin` capability.

mod authn_request;
mod config;
mod connector;
mod error;
mod idp_metadata;
mod provider_settings;
pub mod replay;
pub mod requests;
mod response;
mod signature;
mod sp_metadata;
mod xml;

pub use authn_request::{
    RedirectRequest, SIG_ALG_ECDSA_SHA256, SIG_ALG_RSA_SHA256, redirect_request,
};
pub use config::{
    AttributeMapping, NAMEID_EMAIL, NAMEID_PERSISTENT, NAMEID_UNSPECIFIED, SpConfig, SpSigningKey,
};
pub use connector::{SamlConnector, SamlContext};
pub use error::SamlError;
pub use idp_metadata::IdpMetadata;
pub use provider_settings::{AttributeOverrides, Saml, SamlOptions, SamlProviderSettings};
pub use replay::{DbReplayCache, ReplayCache};
pub use requests::{DbOutstandingRequests, OutstandingRequests, REQUEST_LIFETIME_SECS};
pub use response::{
    MAX_RESPONSE_BYTES, MappedAttributes, VerifiedAssertion, VerifyContext, verify_response,
};
pub use sp_metadata::sp_metadata_xml;
