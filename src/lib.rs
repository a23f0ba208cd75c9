//! Portico: a self-hosted identity broker.
//!
//! Layout by domain, in layers; a module imports only from the layers below it
//! (docs/ARCHITECTURE.md has the rules, the owner of every table and a login's path):
//!
//! - `crypto` (master key, sealing, hashing) and `net` (URL rules) use nothing else;
//! - `store`: persistence (SQLite or PostgreSQL), row helpers, keyset pagination;
//! - `audit` the audit log, `keys` signing keys and JWTs, `ops` health, metrics and limits,
//!   `upstream` the connectors to upstream IdPs and their kind registry;
//! - `clients`, `providers`, `webhooks`: the apps, the upstream providers, the event outbox;
//! - `grants` (pending logins, sessions, codes, refresh tokens), `users`, `config`;
//! - `vault` (upstream tokens kept fresh), `telemetry`; `state` (what handlers get);
//! - `oidc` the provider apps talk to, `admin` the admin UI and API;
//! - `startup` wires them into an actix-web server; `cli` is the binary.

pub mod admin;
pub mod audit;
pub mod claims;
pub mod cli;
pub mod clients;
pub mod config;
pub mod crypto;
pub mod declared;
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
