//! A link's single use, kept in the tenant's `EventLog` object (one per tenant, erased with the
//! tenant): each spent nonce until its link expires. A spend inserts the nonce, or finds it spent;
//! a link already expired is never spent (its nonce may have been forgotten). Rows of expired
//! links are dropped at each spend, so the table holds only links still alive.

use crate::core::objects::store::{Store, StoreError};
use serde::{Deserialize, Serialize};

pub const TABLE: &str =
    "CREATE TABLE IF NOT EXISTS portal_links (nonce TEXT PRIMARY KEY, until_ms INTEGER NOT NULL)";

/// Spend the link of `nonce`, valid until `until_ms`: answers whether this was its first spend.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SpendLink {
    pub nonce: String,
    pub until_ms: u64,
}

pub fn spend<S: Store>(sql: &S, cmd: &SpendLink, now_ms: u64) -> Result<bool, StoreError> {
    sql.run(
        "DELETE FROM portal_links WHERE until_ms <= ?",
        vec![now_ms.into()],
    )?;
    if cmd.until_ms <= now_ms {
        return Ok(false);
    }
    let written = sql.run(
        "INSERT OR IGNORE INTO portal_links (nonce, until_ms) VALUES (?, ?)",
        vec![cmd.nonce.as_str().into(), cmd.until_ms.into()],
    )?;
    Ok(written > 0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::objects::store::{create, Sqlite};

    fn count(sql: &Sqlite) -> u64 {
        #[derive(Deserialize)]
        struct N {
            n: u64,
        }
        let rows: Vec<N> = sql
            .rows("SELECT COUNT(*) AS n FROM portal_links", vec![])
            .unwrap();
        rows[0].n
    }

    #[test]
    fn a_link_is_spent_once_and_forgotten_only_after_it_expired() {
        let sql = Sqlite::default();
        create(&sql, &[TABLE]).unwrap();
        let link = |n: &str, until_ms| SpendLink {
            nonce: n.into(),
            until_ms,
        };
        assert_eq!(spend(&sql, &link("a", 10_000), 1_000), Ok(true));
        assert_eq!(
            spend(&sql, &link("a", 10_000), 1_001),
            Ok(false),
            "replayed"
        );
        assert_eq!(spend(&sql, &link("b", 20_000), 9_999), Ok(true));
        assert_eq!(spend(&sql, &link("a", 10_000), 9_999), Ok(false));
        assert_eq!(count(&sql), 2);
        // At a's expiry its row goes, and a itself is refused as expired, not spent anew.
        assert_eq!(spend(&sql, &link("a", 10_000), 10_000), Ok(false));
        assert_eq!(count(&sql), 1, "only b's row is left");
        assert_eq!(spend(&sql, &link("b", 20_000), 10_001), Ok(false));
    }
}
