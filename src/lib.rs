//! Portico: a self-hosted identity broker.
//!
//! Layout by domain: `oidc` is the provider apps talk to; `keys` its signing keys and JWTs;
//! `crypto` the master key, sealing and hashing; `store` persistence; `ops` health, metrics
//! and response hardening; `startup` wires them into an actix-web server; `cli` is the binary.

pub mod admin;
pub mod audit;
pub mod cli;
pub mod clients;
pub mod config;
pub mod crypto;
#[doc(hidden)]
pub mod fuzzing;
pub mod grants;
pub mod keys;
pub mod net;
pub mod oidc;
pub mod ops;
pub mod providers;
pub mod startup;
pub mod state;
pub mod store;
pub mod telemetry;
pub mod upstream;
pub mod users;
pub mod vault;
pub mod webhooks;
