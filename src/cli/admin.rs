//! `portico admin create` and `portico admin token`.

use std::io::BufRead;

use anyhow::Context;
use secrecy::{ExposeSecret, SecretString};

use super::AdminCommand;
use crate::admin::Caller;
use crate::admin::auth::accounts::{self, AdminEmail};
use crate::admin::tokens::service::{self as api_tokens, NewToken};
use crate::config::Settings;
use crate::crypto::PasswordHasher;
use crate::startup;

pub async fn run(settings: &Settings, command: AdminCommand) -> anyhow::Result<()> {
    match command {
        AdminCommand::Create {
            email,
            password_stdin,
        } => {
            let email = AdminEmail::parse(&email).map_err(anyhow::Error::msg)?;
            let password = if password_stdin {
                read_stdin_password()?
            } else {
                prompt_password()?
            };
            accounts::check_password(&password).map_err(anyhow::Error::msg)?;
            let store = startup::open_store(settings).await?;
            let result = accounts::create(
                &store,
                &PasswordHasher::default(),
                &email,
                password,
                &Caller::cli(),
            )
            .await;
            store.close().await;
            let admin = result?;
            println!("created admin {}", admin.email);
        }
        AdminCommand::Token { name } => {
            let name = NewToken { name }.validate().map_err(|errors| {
                anyhow::anyhow!("--name {}", errors.get("name").unwrap_or("is invalid"))
            })?;
            let store = startup::open_store(settings).await?;
            let result = api_tokens::mint(&store, &Caller::cli(), &name).await;
            store.close().await;
            let (_info, token) = result?;
            println!("{}", token.expose_secret());
        }
    }
    Ok(())
}

/// The first line of stdin, without its line ending.
fn read_stdin_password() -> anyhow::Result<SecretString> {
    let mut line = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut line)
        .context("cannot read the password from stdin")?;
    let password = line.trim_end_matches(['\n', '\r']).to_owned();
    if password.is_empty() {
        anyhow::bail!("no password on stdin");
    }
    Ok(SecretString::from(password))
}

/// Asks twice on the terminal, without echo.
fn prompt_password() -> anyhow::Result<SecretString> {
    let first = rpassword::prompt_password("Password: ")
        .context("cannot prompt for a password (use --password-stdin without a terminal)")?;
    let second = rpassword::prompt_password("Repeat the password: ")
        .context("cannot prompt for a password")?;
    if first != second {
        anyhow::bail!("the passwords differ");
    }
    Ok(SecretString::from(first))
}
