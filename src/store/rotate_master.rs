//! Re-sealing every stored secret under a new master key, in one transaction.

use sqlx::Row;

use super::sealed::ALL;
use super::{Store, StoreError};
use crate::crypto::Sealer;
use secrecy::ExposeSecret;

impl Store {
    /// Opens each sealed value with `old` and seals it with `new`; all or nothing.
    /// Returns how many values were re-sealed.
    pub async fn rotate_master_key(&self, old: &Sealer, new: &Sealer) -> Result<u64, StoreError> {
        let mut tx = self.begin_write().await?;
        let mut count = 0;
        for col in ALL {
            let select = format!(
                "SELECT {id} AS id, {c} AS sealed FROM {t} WHERE {c} IS NOT NULL",
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
                let id: String = row.try_get("id")?;
                let sealed: Vec<u8> = row.try_get("sealed")?;
                let target = col.target(&id);
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
