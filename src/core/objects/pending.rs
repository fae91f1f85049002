//! The table of accepted work that is not finished yet, kept by the object that already sees
//! that work: `Dedupe` for a source's events (written in the same round trip as the dedupe check),
//! `Outbox` for a channel's queued sends. Each row holds the exact queue body that was sent.
//! Queues keep messages durably on Cloudflare; this is the gateway's own record besides, so an
//! accepted message survives the loss of its queue copy (Miniflare's queues live in memory: a
//! local restart drops them). A row still open at its due time (the retry delay plus
//! `REDELIVERY_GRACE_SECONDS`) is sent again by the object's alarm; deliveries carry stable ids,
//! so a second copy is at worst a duplicate the receiver recognises.

use super::machine::{Ctx, Heard, Resend, Step, Wake, Woken};
use super::store::{Store, StoreError};
use crate::core::jobs::wire::QueueSettings;
use crate::core::jobs::OpenWork;
use serde::Deserialize;

pub const TABLE: &str = "CREATE TABLE IF NOT EXISTS pending (id TEXT PRIMARY KEY, binding TEXT NOT NULL, body TEXT NOT NULL, due_at INTEGER NOT NULL)";
/// The alarm reads the earliest due rows: without it, every alarm reads the whole table.
pub const INDEX: &str = "CREATE INDEX IF NOT EXISTS pending_due ON pending (due_at)";

/// Rows sent again per alarm; the rest wait for the next one.
const SWEEP_BATCH: u32 = 100;

/// Closes the finished entries and opens (or moves on) the tracked ones.
pub fn apply<S: Store>(sql: &S, cmd: &OpenWork, now: u64) -> Result<(), StoreError> {
    for id in &cmd.done {
        sql.run("DELETE FROM pending WHERE id = ?", vec![id.as_str().into()])?;
    }
    for p in &cmd.track {
        sql.run(
            "INSERT OR REPLACE INTO pending (id, binding, body, due_at) VALUES (?, ?, ?, ?)",
            vec![
                p.id.as_str().into(),
                p.binding.as_str().into(),
                p.body.as_str().into(),
                (now + p.due_in_ms).into(),
            ],
        )?;
    }
    Ok(())
}

#[derive(Deserialize)]
struct Next {
    next: Option<i64>,
}

/// The smallest value of a `SELECT MIN(..) AS next` query.
pub fn earliest<S: Store>(sql: &S, query: &str) -> Result<Option<u64>, StoreError> {
    let next: Vec<Next> = sql.rows(query, vec![])?;
    Ok(next.first().and_then(|n| n.next).map(|t| t as u64))
}

/// When the earliest open row is due.
pub fn next_due<S: Store>(sql: &S) -> Result<Option<u64>, StoreError> {
    earliest(sql, "SELECT MIN(due_at) AS next FROM pending")
}

/// The alarm's part: the rows that are due are sent again (`Woken::Resend`), and those sent are
/// due again a grace period on; then the object wakes at its next due time.
pub fn sweep<S: Store>(sql: &S, heard: Heard, at: &Ctx) -> Result<Woken, StoreError> {
    let now = at.now_ms;
    match heard {
        Heard::Woke => {
            let due: Vec<Resend> = sql.rows(
                "SELECT id, binding, body FROM pending WHERE due_at <= ? ORDER BY due_at LIMIT ?",
                vec![now.into(), SWEEP_BATCH.into()],
            )?;
            if !due.is_empty() {
                return Ok(Woken::Resend(due));
            }
        }
        Heard::Resent(ids) => {
            let again = now + QueueSettings::from_vars(at.var).grace_ms;
            for id in ids {
                sql.run(
                    "UPDATE pending SET due_at = ? WHERE id = ?",
                    vec![again.into(), id.into()],
                )?;
            }
        }
        Heard::Config(_) => {}
    }
    let next = Wake::Next { unless_by: None };
    Ok(Woken::Done(Step::default().waking(Some(next))))
}

#[cfg(test)]
pub mod tests {
    use super::*;
    use crate::core::jobs::Pending;
    use crate::core::objects::store::{create, Sqlite};

    pub fn pending(id: &str, due_in_ms: u64) -> Pending {
        Pending {
            id: id.into(),
            binding: "EVENTS".into(),
            body: format!("body of {id}"),
            due_in_ms,
        }
    }

    pub fn resend(id: &str) -> Resend {
        Resend {
            id: id.into(),
            binding: "EVENTS".into(),
            body: format!("body of {id}"),
        }
    }

    #[test]
    fn due_rows_are_sent_again_and_only_those_sent_wait_a_grace_period() {
        let sql = Sqlite::default();
        create(&sql, &[TABLE]).unwrap();
        let track = vec![pending("a", 10), pending("b", 20), pending("c", 5_000)];
        apply(
            &sql,
            &OpenWork {
                track,
                done: vec![],
            },
            1_000,
        )
        .unwrap();
        assert_eq!(next_due(&sql).unwrap(), Some(1_010));
        let done = OpenWork {
            track: vec![],
            done: vec!["zz".into()],
        };
        apply(&sql, &done, 1_000).unwrap();
        let at = Ctx::at(2_000);
        let woken = sweep(&sql, Heard::Woke, &at).unwrap();
        assert_eq!(woken, Woken::Resend(vec![resend("a"), resend("b")]));
        // Only `a` went out: it is due again 15 minutes on, `b` stays due.
        let heard = Heard::Resent(vec!["a".into()]);
        let woken = sweep(&sql, heard, &at).unwrap();
        let next = Step::default().waking(Some(Wake::Next { unless_by: None }));
        assert_eq!(woken, Woken::Done(next));
        let woken = sweep(&sql, Heard::Woke, &at).unwrap();
        assert_eq!(woken, Woken::Resend(vec![resend("b")]));
        let later = Ctx::at(2_000 + 900_000);
        let woken = sweep(&sql, Heard::Woke, &later).unwrap();
        assert_eq!(
            woken,
            Woken::Resend(vec![resend("b"), resend("c"), resend("a")])
        );
    }
}
