//! Integration tests: Portico spawned on port 0 and driven over HTTP, on SQLite always and on
//! PostgreSQL when `PORTICO_TEST_POSTGRES_URL` names a server (CI sets it).
//!
//! One test binary (this file's modules) keeps link time down.

mod helpers;

mod account;
mod admin;
mod allowed_providers;
mod branding;
mod broker;
mod broker_scopes;
mod claims;
mod cli;
mod client_claims;
mod client_ip;
mod declared;
mod faults;
mod first_run;
mod janitor;
mod keys;
mod oidc;
mod oidc_extra;
mod oidc_support;
mod oidc_upstream;
mod ops;
mod saml;
mod saml_flow;
mod saml_idp;
mod saml_support;
mod scale_out;
mod secrets;
mod store;
mod trust;
mod upstream_idp;
mod upstream_outage;
mod webhooks;

// Upstream connectors against stand-in providers served over HTTP.
mod federation_flow;
mod github_connector;
mod google_connector;
mod standins;
