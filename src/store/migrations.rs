//! Migrations are embedded in the binary, one list per back end, kept in step by version.

use std::borrow::Cow;

use sqlx::migrate::{Migration, MigrationType, Migrator};

use super::Backend;

type Source = (i64, &'static str, &'static str);

const SQLITE: &[Source] = &[
    (
        1,
        "foundation",
        include_str!("../../migrations/sqlite/0001_foundation.sql"),
    ),
    (
        2,
        "oidc",
        include_str!("../../migrations/sqlite/0002_oidc.sql"),
    ),
    (
        3,
        "webhooks",
        include_str!("../../migrations/sqlite/0003_webhooks.sql"),
    ),
    (
        4,
        "admin",
        include_str!("../../migrations/sqlite/0004_admin.sql"),
    ),
    (
        5,
        "saml",
        include_str!("../../migrations/sqlite/0005_saml.sql"),
    ),
    (
        6,
        "saml_providers",
        include_str!("../../migrations/sqlite/0006_saml_providers.sql"),
    ),
    (
        7,
        "janitor",
        include_str!("../../migrations/sqlite/0007_janitor.sql"),
    ),
    (
        8,
        "token_vault",
        include_str!("../../migrations/sqlite/0008_token_vault.sql"),
    ),
    (
        9,
        "dashboard",
        include_str!("../../migrations/sqlite/0009_dashboard.sql"),
    ),
    (
        10,
        "trust",
        include_str!("../../migrations/sqlite/0010_trust.sql"),
    ),
    (
        11,
        "lists",
        include_str!("../../migrations/sqlite/0011_lists.sql"),
    ),
    (
        12,
        "client_development",
        include_str!("../../migrations/sqlite/0012_client_development.sql"),
    ),
    (
        13,
        "claims",
        include_str!("../../migrations/sqlite/0013_claims.sql"),
    ),
    (
        14,
        "client_claims",
        include_str!("../../migrations/sqlite/0014_client_claims.sql"),
    ),
    (
        16,
        "broker_scopes",
        include_str!("../../migrations/sqlite/0016_broker_scopes.sql"),
    ),
    (
        17,
        "broker_upgrade_order",
        include_str!("../../migrations/sqlite/0017_broker_upgrade_order.sql"),
    ),
    (
        18,
        "stated_auth_time",
        include_str!("../../migrations/sqlite/0018_stated_auth_time.sql"),
    ),
];

const POSTGRES: &[Source] = &[
    (
        1,
        "foundation",
        include_str!("../../migrations/postgres/0001_foundation.sql"),
    ),
    (
        2,
        "oidc",
        include_str!("../../migrations/postgres/0002_oidc.sql"),
    ),
    (
        3,
        "webhooks",
        include_str!("../../migrations/postgres/0003_webhooks.sql"),
    ),
    (
        4,
        "admin",
        include_str!("../../migrations/postgres/0004_admin.sql"),
    ),
    (
        5,
        "saml",
        include_str!("../../migrations/postgres/0005_saml.sql"),
    ),
    (
        6,
        "saml_providers",
        include_str!("../../migrations/postgres/0006_saml_providers.sql"),
    ),
    (
        7,
        "janitor",
        include_str!("../../migrations/postgres/0007_janitor.sql"),
    ),
    (
        8,
        "token_vault",
        include_str!("../../migrations/postgres/0008_token_vault.sql"),
    ),
    (
        9,
        "dashboard",
        include_str!("../../migrations/postgres/0009_dashboard.sql"),
    ),
    (
        10,
        "trust",
        include_str!("../../migrations/postgres/0010_trust.sql"),
    ),
    (
        11,
        "lists",
        include_str!("../../migrations/postgres/0011_lists.sql"),
    ),
    (
        12,
        "client_development",
        include_str!("../../migrations/postgres/0012_client_development.sql"),
    ),
    (
        13,
        "claims",
        include_str!("../../migrations/postgres/0013_claims.sql"),
    ),
    (
        14,
        "client_claims",
        include_str!("../../migrations/postgres/0014_client_claims.sql"),
    ),
    (
        16,
        "broker_scopes",
        include_str!("../../migrations/postgres/0016_broker_scopes.sql"),
    ),
    (
        17,
        "broker_upgrade_order",
        include_str!("../../migrations/postgres/0017_broker_upgrade_order.sql"),
    ),
    (
        18,
        "stated_auth_time",
        include_str!("../../migrations/postgres/0018_stated_auth_time.sql"),
    ),
];

fn sources(backend: Backend) -> &'static [Source] {
    match backend {
        Backend::Sqlite => SQLITE,
        Backend::Postgres => POSTGRES,
    }
}

pub(super) fn migrator(backend: Backend) -> Migrator {
    let migrations = sources(backend)
        .iter()
        .map(|(version, description, sql)| {
            Migration::new(
                *version,
                Cow::Borrowed(*description),
                MigrationType::Simple,
                Cow::Borrowed(*sql),
                false,
            )
        })
        .collect::<Vec<_>>();
    Migrator {
        migrations: Cow::Owned(migrations),
        ignore_missing: false,
        locking: true,
        no_tx: false,
    }
}

pub(super) fn latest_version(backend: Backend) -> i64 {
    sources(backend)
        .iter()
        .map(|(v, _, _)| *v)
        .max()
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_back_ends_have_the_same_versions() {
        let versions = |b| {
            sources(b)
                .iter()
                .map(|(v, d, _)| (*v, *d))
                .collect::<Vec<_>>()
        };
        assert_eq!(versions(Backend::Sqlite), versions(Backend::Postgres));
    }
}
