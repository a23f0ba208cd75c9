//! Every sealed column in the schema, declared once. A value is sealed to its table, column and
//! row (the AEAD's associated data), and every seal and open takes its target from here, so
//! that a value copied to another row or column does not open, and `secrets rotate-master`
//! re-seals exactly these columns. A migration that adds a sealed column adds it here (a test
//! opens every sealed value of a database through [`ALL`]).

use crate::crypto::SealTarget;

/// A column holding sealed values, and the column that identifies its row.
#[derive(Debug, Clone, Copy)]
pub struct SealedColumn {
    pub table: &'static str,
    pub id_column: &'static str,
    pub column: &'static str,
}

impl SealedColumn {
    /// Where a value of this column, in row `row`, is sealed to.
    pub const fn target<'a>(&self, row: &'a str) -> SealTarget<'a> {
        SealTarget::new(self.table, self.column, row)
    }
}

const fn column(
    table: &'static str,
    id_column: &'static str,
    column: &'static str,
) -> SealedColumn {
    SealedColumn {
        table,
        id_column,
        column,
    }
}

/// The database's key-check value.
pub const META_VALUE: SealedColumn = column("meta", "key", "value");
/// A signing key's PKCS#8 private key.
pub const SIGNING_KEY: SealedColumn = column("signing_keys", "kid", "private_key");
/// A provider's client secret.
pub const PROVIDER_SECRET: SealedColumn = column("providers", "id", "client_secret");
/// A SAML provider's SP private key (PEM).
pub const PROVIDER_SAML_KEY: SealedColumn = column("providers", "id", "saml_sp_key");
/// An identity's upstream tokens, and their expiry and scope (JSON).
pub const IDENTITY_REFRESH_TOKEN: SealedColumn = column("identities", "id", "refresh_token");
pub const IDENTITY_ACCESS_TOKEN: SealedColumn = column("identities", "id", "access_token");
pub const IDENTITY_ID_TOKEN: SealedColumn = column("identities", "id", "id_token");
pub const IDENTITY_TOKEN_META: SealedColumn = column("identities", "id", "token_meta");
/// A pending login's connector secrets (nonce, PKCE verifier, AuthnRequest id)...
pub const PENDING_UPSTREAM_SECRET: SealedColumn =
    column("pending_authorizations", "id", "upstream_secret");
/// ...and the identity a SAML ACS verified, until the browser completes the login.
pub const PENDING_IDENTITY: SealedColumn =
    column("pending_authorizations", "id", "completed_identity");
/// A broker upgrade's upstream login secrets (nonce, PKCE verifier), until its callback.
pub const BROKER_UPGRADE_SECRET: SealedColumn = column("broker_upgrades", "id", "upstream_secret");
/// A rotated refresh token's successor, during the grace window.
pub const REFRESH_SUCCESSOR: SealedColumn = column("refresh_successors", "id", "successor");
/// A webhook endpoint's signing secret, and the previous one during a rotation.
pub const WEBHOOK_SECRET: SealedColumn = column("webhook_endpoints", "id", "secret");
pub const WEBHOOK_PREVIOUS_SECRET: SealedColumn =
    column("webhook_endpoints", "id", "previous_secret");

/// Every sealed column.
pub const ALL: &[SealedColumn] = &[
    META_VALUE,
    SIGNING_KEY,
    PROVIDER_SECRET,
    PROVIDER_SAML_KEY,
    IDENTITY_REFRESH_TOKEN,
    IDENTITY_ACCESS_TOKEN,
    IDENTITY_ID_TOKEN,
    IDENTITY_TOKEN_META,
    PENDING_UPSTREAM_SECRET,
    PENDING_IDENTITY,
    BROKER_UPGRADE_SECRET,
    REFRESH_SUCCESSOR,
    WEBHOOK_SECRET,
    WEBHOOK_PREVIOUS_SECRET,
];
