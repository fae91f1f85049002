//! `Outbox`, one per channel: its queued sends until each is sent, refused or dead-lettered (the
//! table and why it exists: `pending`). Events have theirs in their source's `Dedupe` object
//! instead, so recording them costs no extra round trip at ingress.

use super::machine::{Ctx, Heard, Machine, Step, Wake, Woken};
use super::pending;
use super::protocol::{Outbox, OutboxCmd};
use super::store::{Store, StoreError};

impl Machine for Outbox {
    type Doc = ();
    const TABLES: &'static [&'static str] = &[pending::TABLE, pending::INDEX];

    fn apply<S: Store>(_: &mut (), sql: &S, cmd: OutboxCmd, at: &Ctx) -> Result<Step, StoreError> {
        Ok(match cmd {
            OutboxCmd::Purge => Step::erase(),
            OutboxCmd::Update(cmd) => {
                pending::apply(sql, &cmd, at.now_ms)?;
                Step::reply::<Self, _>(&cmd, &()).waking(Some(Wake::Next { unless_by: None }))
            }
        })
    }

    fn next_wake<S: Store>(_: &(), sql: &S) -> Result<Option<u64>, StoreError> {
        pending::next_due(sql)
    }

    fn alarm<S: Store>(_: &mut (), sql: &S, heard: Heard, at: &Ctx) -> Result<Woken, StoreError> {
        pending::sweep(sql, heard, at)
    }
}
