//! `portico-bench setup`: a `portico.toml` for the Portico workloads, so that an operator can
//! reproduce a run: the upstream provider is this driver's stand-in, and a confidential client
//! may use every grant the workloads exercise.

use std::path::PathBuf;

use anyhow::Context;

pub const PROVIDER_ID: &str = "bench";
pub const UPSTREAM_LISTEN: &str = "127.0.0.1:18090";
/// Never contacted: the driver stops at the redirect to the client and reads the code.
pub const REDIRECT_URI: &str = "http://127.0.0.1:18099/cb";
/// How Portico authenticates to the stand-in.
pub const UPSTREAM_CLIENT_ID: &str = "portico-at-bench";
pub const UPSTREAM_CLIENT_SECRET: &str = "bench-upstream-secret-0123456789abcdef";
pub const CLIENT_ID: &str = "bench";
pub const CLIENT_SECRET: &str = "bench-secret-0123456789abcdef0123456789";

#[derive(Debug, clap::Args)]
pub struct SetupArgs {
    /// Directory for portico.toml and Portico's data (master key, SQLite database).
    #[arg(long)]
    dir: PathBuf,
    /// Portico's listen address (its issuer is http:// this address).
    #[arg(long, default_value = "127.0.0.1:18081")]
    listen: std::net::SocketAddr,
    /// Where the driver's upstream stand-in will listen.
    #[arg(long, default_value = UPSTREAM_LISTEN)]
    upstream_listen: std::net::SocketAddr,
    /// `postgres://…` to use PostgreSQL; SQLite in `--dir` otherwise.
    #[arg(long)]
    database_url: Option<String>,
    /// Algorithm of Portico's access tokens (`oidc.access_token_alg`).
    #[arg(long, default_value = "ES256")]
    access_token_alg: String,
    /// Algorithm of the bench client's ID tokens (`id_token_signed_response_alg`).
    #[arg(long, default_value = "RS256")]
    id_token_alg: String,
    /// Declare a webhook endpoint for `login.succeeded` at this URL (the soak's receiver,
    /// `--webhook-listen`); loopback targets are allowed for it.
    #[arg(long)]
    webhook_url: Option<String>,
}

pub fn config_toml(args: &SetupArgs) -> String {
    let data_dir = args.dir.join("data");
    let database = args
        .database_url
        .as_deref()
        .map(|url| format!("\n[database]\nurl = {}\n", toml_str(url)))
        .unwrap_or_default();
    let webhooks = args
        .webhook_url
        .as_deref()
        .map(|url| {
            format!(
                "\n[webhooks]\n# The soak's receiver listens on loopback.\nallow_private_targets = true\n\n\
                 [[webhooks.endpoints]]\nid = \"soak\"\nurl = {}\nevents = [\"login.succeeded\"]\n\
                 secret = \"whsec_c29hay1yZWNlaXZlci1zZWNyZXQtMDEyMzQ1Njc4OQ==\"\n",
                toml_str(url)
            )
        })
        .unwrap_or_default();
    format!(
        r#"# Written by `portico-bench setup`: Portico for the load driver's workloads.
[server]
listen = "{listen}"
issuer = "http://{listen}"
data_dir = {data_dir}
{database}
[log]
filter = "warn"

[oidc]
access_token_alg = "{access_alg}"

# The driver serves this provider itself (discovery, JWKS, authorize, token, userinfo).
[[providers]]
id = "{PROVIDER_ID}"
kind = "oidc"
display_name = "Bench upstream"
client_id = "{UPSTREAM_CLIENT_ID}"
client_secret = "{UPSTREAM_CLIENT_SECRET}"
issuer = "http://{upstream}"
scopes = ["openid", "email", "profile"]

[[clients]]
client_id = "{CLIENT_ID}"
type = "confidential"
client_secret = "{CLIENT_SECRET}"
redirect_uris = ["{REDIRECT_URI}"]
grant_types = ["authorization_code", "refresh_token", "client_credentials"]
scopes = ["openid", "profile", "email", "offline_access", "api:read"]
id_token_signed_response_alg = "{id_alg}"
{webhooks}"#,
        listen = args.listen,
        data_dir = toml_str(&data_dir.display().to_string()),
        access_alg = args.access_token_alg,
        upstream = args.upstream_listen,
        id_alg = args.id_token_alg,
    )
}

/// A TOML basic string (paths and URLs may hold quotes or backslashes).
fn toml_str(raw: &str) -> String {
    toml::Value::String(raw.to_owned()).to_string()
}

pub fn run(args: &SetupArgs) -> anyhow::Result<()> {
    std::fs::create_dir_all(&args.dir)
        .with_context(|| format!("creating {}", args.dir.display()))?;
    let path = args.dir.join("portico.toml");
    std::fs::write(&path, config_toml(args))
        .with_context(|| format!("writing {}", path.display()))?;
    let dir = args.dir.display();
    println!("wrote {}", path.display());
    println!();
    println!("start Portico:");
    println!("  PORTICO_CONFIG={dir}/portico.toml portico serve");
    println!(
        "then drive it (the driver serves the upstream at {}):",
        args.upstream_listen
    );
    println!(
        "  portico-bench --issuer http://{} --workload login --client-id {CLIENT_ID} \\\n    \
         --client-secret {CLIENT_SECRET} --upstream-listen {} --connections 16 -d 10",
        args.listen, args.upstream_listen
    );
    println!("seed users for the growth measurements:");
    let url = args
        .database_url
        .clone()
        .unwrap_or_else(|| format!("sqlite://{dir}/data/portico.db"));
    println!("  portico-bench seed --database-url {url} --users 1000000");
    Ok(())
}
