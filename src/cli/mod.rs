//! The `portico` command line.

mod admin;

use std::path::PathBuf;

use anyhow::Context;
use clap::{Parser, Subcommand};

use crate::config::Settings;
use crate::crypto::{MasterKey, Sealer};
use crate::keys::KeyRing;
use crate::startup::{self, Application};

#[derive(Debug, Parser)]
#[command(
    name = "portico",
    version,
    about = "A self-hosted identity broker",
    propagate_version = true
)]
pub struct Cli {
    /// Configuration file (default: ./portico.toml when it exists).
    #[arg(long, env = "PORTICO_CONFIG", global = true)]
    pub config: Option<PathBuf>,

    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Load config, run pending migrations and serve until SIGTERM or ctrl-c (the default).
    Serve,
    /// Run pending database migrations and exit.
    Migrate,
    /// Manage admin accounts and admin API tokens.
    Admin {
        #[command(subcommand)]
        command: AdminCommand,
    },
    /// Manage JWT signing keys.
    Keys {
        #[command(subcommand)]
        command: KeysCommand,
    },
    /// Manage the master key that seals stored secrets.
    Secrets {
        #[command(subcommand)]
        command: SecretsCommand,
    },
    /// Inspect the configuration.
    Config {
        #[command(subcommand)]
        command: ConfigCommand,
    },
}

#[derive(Debug, Subcommand)]
pub enum AdminCommand {
    /// Create an admin account; the password is prompted for, or read from stdin.
    Create {
        /// The admin's e-mail address (their sign-in name).
        #[arg(long)]
        email: String,
        /// Read the password from the first line of standard input instead of prompting.
        #[arg(long)]
        password_stdin: bool,
    },
    /// Print a new admin API token (shown once; Portico stores only its digest).
    Token {
        /// What the token is for.
        #[arg(long)]
        name: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum KeysCommand {
    /// Add a new active signing key per algorithm; old keys stay in the JWKS until the tokens
    /// they signed have expired.
    Rotate,
}

#[derive(Debug, Subcommand)]
pub enum SecretsCommand {
    /// Re-seal every stored secret under a new master key, in one transaction.
    RotateMaster {
        /// File holding the new key (32 bytes as base64 or hex, or raw).
        #[arg(long)]
        new_key_file: PathBuf,
    },
}

#[derive(Debug, Subcommand)]
pub enum ConfigCommand {
    /// Validate the configuration and print the effective settings, secrets redacted.
    Check,
    /// Print what the next start would change in the database to match the declared
    /// `[[clients]]`, `[[providers]]` and `[[webhooks.endpoints]]` (create, update, delete,
    /// disable), without changing anything.
    Diff,
}

pub async fn run(cli: Cli) -> anyhow::Result<()> {
    let settings = Settings::load(cli.config.as_deref())?;
    crate::telemetry::init(&settings.log)?;
    match cli.command.unwrap_or(Command::Serve) {
        Command::Serve => {
            Application::build(settings)
                .await?
                .run_until_stopped()
                .await?
        }
        Command::Migrate => {
            let store = startup::open_store(&settings).await?;
            store.close().await;
            println!("migrations applied");
        }
        Command::Admin { command } => admin::run(&settings, command).await?,
        Command::Keys {
            command: KeysCommand::Rotate,
        } => {
            let store = startup::open_store(&settings).await?;
            let (_key, sealer) = startup::unlock(&settings, &store).await?;
            let ring = KeyRing::load(store.clone(), sealer, settings.keys.clone()).await?;
            let caller = crate::admin::Caller::cli();
            let rotated = crate::admin::keys::service::rotate(&ring, &store, &caller).await?;
            for key in rotated.created {
                println!("{}\t{}", key.alg, key.kid);
            }
            store.close().await;
        }
        Command::Secrets {
            command: SecretsCommand::RotateMaster { new_key_file },
        } => {
            let new_key = MasterKey::read_file(&new_key_file)?;
            let store = startup::open_store(&settings).await?;
            let (old_key, old_sealer) = startup::unlock(&settings, &store).await?;
            if old_key.id() == new_key.id() {
                anyhow::bail!("the new master key is the key already in use");
            }
            let count = store
                .rotate_master_key(&old_sealer, &Sealer::new(&new_key))
                .await
                .context("re-sealing failed; nothing was changed")?;
            store.close().await;
            println!(
                "re-sealed {count} secrets under master key {}; now point PORTICO_MASTER_KEY_FILE at {} \
                 (or replace the old key file) before starting Portico again",
                new_key.id_hex(),
                new_key_file.display()
            );
        }
        Command::Config {
            command: ConfigCommand::Check,
        } => {
            if let Some(text) = &settings.secrets.master_key {
                use secrecy::ExposeSecret;
                MasterKey::parse(text.expose_secret()).context("secrets.master_key")?;
            }
            if let Some(path) = &settings.secrets.master_key_file {
                MasterKey::read_file(path)?;
            }
            print!("{}", settings.redacted_toml());
        }
        Command::Config {
            command: ConfigCommand::Diff,
        } => {
            let (store, sealer) = startup::open_read_only(&settings).await?;
            let plan = crate::declared::diff(&store, &sealer, &settings).await;
            store.close().await;
            print!("{}", plan?);
        }
    }
    Ok(())
}
