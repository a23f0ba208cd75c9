//! Re-sealing every stored secret under a new master key, in one transaction.

use sqlx::Row;

use super::{Store, StoreError};
use crate::crypto::{SealTarget, Sealer};
use secrecy::ExposeSecret;

/// A column holding sealed values, and the column that identifies its row.
#[derive(Debug, Clone, Copy)]
pub struct SealedColumn {
    pub table: &'static str,
    pub id_column: &'static str,
    pub column: &'static str,
}

/// Every sealed column in the schema. A migration that adds one must add it here too, or
/// `secrets rotate-master` would leave it sealed under the old key (a test checks the list
/// against the schema's naming rule).
pub const SEALED_COLUMNS: &[SealedColumn] = &[
    SealedColumn {
        table: "meta",
        id_column: "key",
        column: "value",
    },
    SealedColumn {
        table: "signing_keys",
        id_column: "kid",
        column: "private_key",
    },
    SealedColumn {
        table: "providers",
        id_column: "id",
        column: "client_secret",
    },
    SealedColumn {
        table: "providers",
        id_column: "id",
        column: "saml_sp_key",
    },
    SealedColumn {
        table: "identities",
        id_column: "id",
        column: "refresh_token",
    },
    SealedColumn {
        table: "identities",
        id_column: "id",
        column: "access_token",
    },
    SealedColumn {
        table: "identities",
        id_column: "id",
        column: "id_token",
    },
    SealedColumn {
        table: "identities",
        id_column: "id",
        column: "token_meta",
    },
    SealedColumn {
        table: "pending_authorizations",
        id_column: "id",
        column: "upstream_secret",
    },
    SealedColumn {
        table: "pending_authorizations",
        id_column: "id",
        column: "completed_identity",
    },
    SealedColumn {
        table: "refresh_successors",
        id_column: "id",
        column: "successor",
    },
    SealedColumn {
        table: "webhook_endpoints",
        id_column: "id",
        column: "secret",
    },
    SealedColumn {
        table: "webhook_endpoints",
        id_column: "id",
        column: "previous_secret",
    },
];

impl Store {
    /// Opens each sealed value with `old` and seals it with `new`; all or nothing.
    /// Returns how many values were re-sealed.
    pub async fn rotate_master_key(&self, old: &Sealer, new: &Sealer) -> Result<u64, StoreError> {
        let mut tx = self.begin_write().await?;
        let mut count = 0;
        for col in SEALED_COLUMNS {
            let select = format!(
                "SELECT {id}, {c} FROM {t} WHERE {c} IS NOT NULL",
                id = col.id_column,
                c = col.column,
                t = col.table
            );
            let update = format!(
                "UPDATE {t} SET {c} = $1 WHERE {id} = $2",
                id = col.id_column,
                c = col.column,
                t = col.table
            );
            let rows = sqlx::query(&select).fetch_all(&mut *tx).await?;
            for row in rows {
                let id: String = row.try_get(0)?;
                let sealed: Vec<u8> = row.try_get(1)?;
                let target = SealTarget::new(col.table, col.column, &id);
                let plain = old.open(&sealed, target)?;
                let resealed = new.seal(plain.expose_secret(), target);
                sqlx::query(&update)
                    .bind(resealed)
                    .bind(&id)
                    .execute(&mut *tx)
                    .await?;
                count += 1;
            }
        }
        tx.commit().await?;
        Ok(count)
    }
}
