//! `portico admin create` and `portico admin token`.

use std::io::BufRead;
use std::path::Path;

use anyhow::Context;
use secrecy::{ExposeSecret, SecretString};

use super::AdminCommand;
use crate::admin::Caller;
use crate::admin::auth::accounts::{self, AdminEmail, MIN_PASSWORD_CHARS};
use crate::admin::tokens::service::{self as api_tokens, NewToken};
use crate::config::{DatabaseUrl, Settings};
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
            let url = settings.database_url();
            // A new SQLite file is most often the wrong directory, not a new instance.
            let missing = url.sqlite_file().filter(|file| !file.exists());
            let relative = missing.is_some_and(Path::is_relative);
            let missing = missing.is_some();
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
            let database = shown(&url);
            if missing {
                let question = match relative {
                    true => "is this the directory the server runs in?",
                    false => "is this the database the server uses?",
                };
                eprintln!(
                    "warning: no database existed at {database}; created a new one — {question} \
                     (If not, run this command where the server runs, or give it the server's \
                     PORTICO_DATA_DIR or PORTICO_DATABASE_URL.)"
                );
            }
            let admin = result?;
            println!("created admin {} in the database {database}", admin.email);
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

/// The database as a person looks for it: the SQLite file's absolute path, or the URL
/// without its password.
fn shown(url: &DatabaseUrl) -> String {
    match url.sqlite_file() {
        Some(file) => std::fs::canonicalize(file)
            .or_else(|_| std::path::absolute(file))
            .unwrap_or_else(|_| file.to_owned())
            .display()
            .to_string(),
        None => url.without_password(),
    }
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

/// The first prompt states the rule before the password is typed.
fn password_prompt() -> String {
    format!("Password (at least {MIN_PASSWORD_CHARS} characters): ")
}

/// Asks twice on the terminal, without echo.
fn prompt_password() -> anyhow::Result<SecretString> {
    let first = rpassword::prompt_password(password_prompt())
        .context("cannot prompt for a password (use --password-stdin without a terminal)")?;
    let second = rpassword::prompt_password("Repeat the password: ")
        .context("cannot prompt for a password")?;
    if first != second {
        anyhow::bail!("the passwords differ");
    }
    Ok(SecretString::from(first))
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_prompt_states_the_minimum_length() {
        assert_eq!(
            super::password_prompt(),
            "Password (at least 12 characters): "
        );
    }
}
