//! `Dedupe`, one per webhook source: event ids seen within the source's window (24 h by
//! default), the source's events not yet delivered (`pending`), and its failed handshakes (a
//! window, kept as the document). `SeenMany` marks a batch of ids, says which were new and
//! records those as pending, atomically (the object is single-threaded), so ingress makes one
//! round trip for both. `Forget` unmarks ids whose enqueue failed; `Update` moves pending events
//! on (a retry) or closes them (delivered, dead-lettered). The alarm forgets expired ids and sends
//! due events again.

use super::machine::{Ctx, Heard, Machine, Step, Wake, Woken};
use super::pending;
use super::protocol::{Dedupe, DedupeCmd};
use super::store::{Store, StoreError};
use crate::core::jobs::OpenWork;
use crate::core::limits::rate::Window;
use crate::core::webhook::dedupe::SeenResult;
use crate::core::webhook::handshake::{self, Verdict};

impl Machine for Dedupe {
    /// Meta's handshake: failed guesses of the verify token, counted per source.
    type Doc = Window;
    const DOC_KEYS: &'static [&'static str] = &["handshake"];
    const TABLES: &'static [&'static str] = &[
        "CREATE TABLE IF NOT EXISTS seen (id TEXT PRIMARY KEY, expires_at INTEGER NOT NULL)",
        pending::TABLE,
    ];

    fn apply<S: Store>(
        w: &mut Window,
        sql: &S,
        cmd: DedupeCmd,
        at: &Ctx,
    ) -> Result<Step, StoreError> {
        let now = at.now_ms;
        Ok(match cmd {
            DedupeCmd::Purge => Step::erase(),
            DedupeCmd::Handshake(h) => {
                let verdict = handshake::attempt(w, now, h.matched);
                Step::reply(&h, &verdict).saving(verdict == Verdict::Refused)
            }
            DedupeCmd::Update(cmd) => {
                pending::apply(sql, &cmd, now)?;
                Step::reply::<Self, _>(&cmd, &()).waking(Some(Wake::Next { unless_by: None }))
            }
            DedupeCmd::SeenMany(mut cmd) => {
                let mut new_ids = Vec::new();
                let mut duplicates = 0;
                for id in std::mem::take(&mut cmd.ids) {
                    if new_ids.contains(&id) {
                        duplicates += 1;
                        continue;
                    }
                    // One statement: insert, or revive an expired row; a live row is left
                    // alone, so nothing written means the id was seen within the window.
                    let written = sql.run(
                        "INSERT INTO seen (id, expires_at) VALUES (?, ?) \
                         ON CONFLICT(id) DO UPDATE SET expires_at = excluded.expires_at WHERE seen.expires_at <= ?",
                        vec![id.as_str().into(), (now + cmd.ttl_ms).into(), now.into()],
                    )?;
                    match written > 0 {
                        true => new_ids.push(id),
                        false => duplicates += 1,
                    }
                }
                let answer = SeenResult {
                    new_ids,
                    duplicates,
                };
                let reply = Step::reply(&cmd, &answer);
                let (track, due) = cmd.track(&answer.new_ids, now);
                if !track.is_empty() {
                    let open = OpenWork {
                        track,
                        done: vec![],
                    };
                    pending::apply(sql, &open, now)?;
                }
                reply.waking(due.map(|d| Wake::Next { unless_by: Some(d) }))
            }
            DedupeCmd::Forget(cmd) => {
                for id in &cmd.ids {
                    sql.run("DELETE FROM seen WHERE id = ?", vec![id.as_str().into()])?;
                }
                let reply = Step::reply(&cmd, &());
                let done = OpenWork {
                    track: vec![],
                    done: cmd.ids,
                };
                pending::apply(sql, &done, now)?;
                reply
            }
        })
    }

    /// The earlier of the next expiry and the next pending event's due time.
    fn next_wake<S: Store>(_: &Window, sql: &S) -> Result<Option<u64>, StoreError> {
        let expiry = pending::earliest(sql, "SELECT MIN(expires_at) AS next FROM seen")?;
        Ok([expiry, pending::next_due(sql)?]
            .into_iter()
            .flatten()
            .min())
    }

    fn alarm<S: Store>(
        _: &mut Window,
        sql: &S,
        heard: Heard,
        at: &Ctx,
    ) -> Result<Woken, StoreError> {
        if heard == Heard::Woke {
            sql.run(
                "DELETE FROM seen WHERE expires_at <= ?",
                vec![at.now_ms.into()],
            )?;
        }
        pending::sweep(sql, heard, at)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::objects::pending::tests::{pending, resend};
    use crate::core::objects::store::{create, Sqlite};
    use crate::core::webhook::dedupe::{Forget, HandshakeAttempt, SeenMany};

    const T: u64 = 1_700_000_000_000;
    const DAY: u64 = 86_400_000;

    fn source() -> Sqlite {
        let sql = Sqlite::default();
        create(&sql, Dedupe::TABLES).unwrap();
        sql
    }

    fn seen(sql: &Sqlite, ids: &[&str], now: u64) -> (SeenResult, Option<Wake>) {
        let cmd = SeenMany {
            ids: ids.iter().map(|i| i.to_string()).collect(),
            ttl_ms: DAY,
            pending: ids.iter().map(|i| pending(i, 60_000)).collect(),
        };
        let step = apply(sql, DedupeCmd::SeenMany(cmd), now);
        (serde_json::from_str(&step.answer).unwrap(), step.wake)
    }

    fn apply(sql: &Sqlite, cmd: DedupeCmd, now: u64) -> Step {
        Dedupe::apply(&mut Window::default(), sql, cmd, &Ctx::at(now)).unwrap()
    }

    fn new_ids(r: &SeenResult) -> Vec<&str> {
        r.new_ids.iter().map(String::as_str).collect()
    }

    #[test]
    fn an_id_is_new_once_within_its_window_and_new_again_after_it() {
        let sql = source();
        let (r, wake) = seen(&sql, &["a", "b", "a"], T);
        assert_eq!((new_ids(&r), r.duplicates), (vec!["a", "b"], 1));
        let by = Some(T + 60_000);
        assert_eq!(
            wake,
            Some(Wake::Next { unless_by: by }),
            "the first due event"
        );
        let (r, wake) = seen(&sql, &["a", "c"], T + 1);
        assert_eq!((new_ids(&r), r.duplicates), (vec!["c"], 1));
        assert!(wake.is_some());
        let (r, wake) = seen(&sql, &["a"], T + 2);
        assert_eq!((new_ids(&r), wake), (vec![], None), "nothing new: no alarm");
        let (r, _) = seen(&sql, &["a"], T + DAY);
        assert_eq!(new_ids(&r), vec!["a"], "its window is over");
        // An id forgotten (its enqueue failed) is new again, and no longer pending.
        let forget = Forget {
            ids: vec!["b".into()],
        };
        apply(&sql, DedupeCmd::Forget(forget), T + 3);
        let (r, _) = seen(&sql, &["b"], T + 4);
        assert_eq!(new_ids(&r), vec!["b"]);
    }

    #[test]
    fn the_alarm_forgets_expired_ids_resends_due_events_and_wakes_at_the_next() {
        let sql = source();
        seen(&sql, &["a"], T);
        seen(&sql, &["b"], T + DAY / 2);
        let next = Dedupe::next_wake(&Window::default(), &sql).unwrap();
        assert_eq!(next, Some(T + 60_000));
        // `a` delivered: closed.
        let done = OpenWork {
            track: vec![],
            done: vec!["a".into()],
        };
        apply(&sql, DedupeCmd::Update(done), T + 1);
        let at = Ctx::at(T + DAY);
        let woken = Dedupe::alarm(&mut Window::default(), &sql, Heard::Woke, &at).unwrap();
        assert_eq!(woken, Woken::Resend(vec![resend("b")]));
        let next = Dedupe::next_wake(&Window::default(), &sql).unwrap();
        assert_eq!(
            next,
            Some(T + DAY / 2 + 60_000),
            "b is still due; a was forgotten"
        );
        let (r, _) = seen(&sql, &["a", "b"], T + DAY);
        assert_eq!(new_ids(&r), vec!["a"]);
    }

    #[test]
    fn a_failed_handshake_is_counted_and_saved_a_matching_one_is_not() {
        let sql = source();
        let mut w = Window::default();
        let mut ask = |matched| {
            let cmd = DedupeCmd::Handshake(HandshakeAttempt { matched });
            let step = Dedupe::apply(&mut w, &sql, cmd, &Ctx::at(T)).unwrap();
            (
                serde_json::from_str::<Verdict>(&step.answer).unwrap(),
                step.save,
            )
        };
        assert_eq!(ask(true), (Verdict::Accepted, false));
        assert_eq!(ask(false), (Verdict::Refused, true));
    }
}
