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
use crate::core::jobs::order::{Order, SourceOrderingKey, KEY_IDLE_MS};
use crate::core::jobs::OpenWork;
use crate::core::limits::rate::Window;
use crate::core::webhook::dedupe::{Positions, SeenResult};
use crate::core::webhook::handshake::{self, Verdict};

impl Machine for Dedupe {
    /// Meta's handshake: failed guesses of the verify token, counted per source.
    type Doc = Window;
    const DOC_KEYS: &'static [&'static str] = &["handshake"];
    const TABLES: &'static [&'static str] = &[
        "CREATE TABLE IF NOT EXISTS seen (id TEXT PRIMARY KEY, expires_at INTEGER NOT NULL)",
        "CREATE INDEX IF NOT EXISTS seen_expiry ON seen (expires_at)",
        pending::TABLE,
        pending::INDEX,
        // Each key's next position (idle rows go after `KEY_IDLE_MS`), and the position of each
        // id a `Forget` unmarked, so the provider's redelivery takes it again and leaves no gap
        // (until the id's dedupe window ends: a redelivery after it is a new event anyway). The
        // alarm finds expired rows by the time indexes, a batch at a time.
        "CREATE TABLE IF NOT EXISTS order_keys (key TEXT PRIMARY KEY, next INTEGER NOT NULL, last_at INTEGER NOT NULL, since INTEGER NOT NULL DEFAULT 0)",
        "CREATE INDEX IF NOT EXISTS order_keys_idle ON order_keys (last_at)",
        "CREATE TABLE IF NOT EXISTS forgotten_positions (id TEXT PRIMARY KEY, n INTEGER NOT NULL, since INTEGER NOT NULL, expires_at INTEGER NOT NULL)",
        "CREATE INDEX IF NOT EXISTS forgotten_positions_expiry ON forgotten_positions (expires_at)",
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
                // Each id's key (the first given for it), looked up once per new id.
                let mut keyed: std::collections::HashMap<String, SourceOrderingKey> =
                    Default::default();
                for (id, key) in cmd.ids.iter().zip(std::mem::take(&mut cmd.keys)) {
                    if let Some(key) = key {
                        keyed.entry(id.clone()).or_insert(key);
                    }
                }
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
                let mut order = Vec::new();
                for id in &new_ids {
                    if let Some(key) = keyed.remove(id.as_str()) {
                        order.push((id.clone(), position(sql, id, key, now)?));
                    }
                }
                let positions = Positions::of(&order);
                for p in cmd.pending.iter_mut() {
                    p.body = positions.stamp(&p.id, std::mem::take(&mut p.body));
                }
                let answer = SeenResult {
                    new_ids,
                    duplicates,
                    order,
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
                    remember_position(sql, id)?;
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

    /// The earliest of: the next expiry, the next pending event's due time, an idle key or an
    /// old position to forget.
    fn next_wake<S: Store>(_: &Window, sql: &S) -> Result<Option<u64>, StoreError> {
        let expiry = pending::earliest(sql, "SELECT MIN(expires_at) AS next FROM seen")?;
        let key = pending::earliest(sql, "SELECT MIN(last_at) AS next FROM order_keys")?;
        let forgotten = pending::earliest(
            sql,
            "SELECT MIN(expires_at) AS next FROM forgotten_positions",
        )?;
        Ok([
            expiry,
            pending::next_due(sql)?,
            key.map(|t| t + KEY_IDLE_MS),
            forgotten,
        ]
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
            let now = at.now_ms;
            // A batch per table: what is left makes `next_wake` due, so the next alarm goes on.
            sql.run(
                "DELETE FROM seen WHERE id IN (SELECT id FROM seen WHERE expires_at <= ? LIMIT ?)",
                vec![now.into(), CLEANUP_BATCH.into()],
            )?;
            let idle = now.saturating_sub(KEY_IDLE_MS);
            sql.run(
                "DELETE FROM order_keys WHERE key IN (SELECT key FROM order_keys WHERE last_at <= ? LIMIT ?)",
                vec![idle.into(), CLEANUP_BATCH.into()],
            )?;
            sql.run(
                "DELETE FROM forgotten_positions WHERE id IN (SELECT id FROM forgotten_positions WHERE expires_at <= ? LIMIT ?)",
                vec![now.into(), CLEANUP_BATCH.into()],
            )?;
        }
        pending::sweep(sql, heard, at)
    }
}

/// Expired rows deleted per table per alarm, so one alarm stays short however many expired.
const CLEANUP_BATCH: u32 = 500;

#[derive(serde::Deserialize)]
struct Position {
    n: u64,
    since: u64,
}

/// The position in `key`'s order of the new id `id`: the one it took before (it was forgotten and
/// sent again within its window), else the key's next; with the generation of the key's numbering
/// (when this object started it: a key forgotten and started again is numbered from 1 anew).
/// One statement for almost every id: the key's next position taken and moved on in one upsert,
/// which leaves the key alone when the id has a remembered position (the key's row outlives it:
/// `KEY_IDLE_MS` is longer than any dedupe window); that position is then taken instead.
fn position<S: Store>(
    sql: &S,
    id: &str,
    key: SourceOrderingKey,
    now: u64,
) -> Result<Order, StoreError> {
    let next = || -> Result<Option<Position>, StoreError> {
        let taken: Vec<Position> = sql.rows(
            "INSERT INTO order_keys (key, next, last_at, since) VALUES (?, 2, ?, ?) \
             ON CONFLICT(key) DO UPDATE SET next = next + 1, last_at = excluded.last_at \
             WHERE NOT EXISTS (SELECT 1 FROM forgotten_positions WHERE id = ?) \
             RETURNING next - 1 AS n, since",
            vec![key.as_str().into(), now.into(), now.into(), id.into()],
        )?;
        Ok(taken.into_iter().next())
    };
    let p = match next()? {
        Some(p) => p,
        None => {
            #[derive(serde::Deserialize)]
            struct Kept {
                n: u64,
                since: u64,
                expires_at: u64,
            }
            let kept: Vec<Kept> = sql.rows(
                "DELETE FROM forgotten_positions WHERE id = ? RETURNING n, since, expires_at",
                vec![id.into()],
            )?;
            match kept.into_iter().next() {
                Some(k) if k.expires_at > now => Position {
                    n: k.n,
                    since: k.since,
                },
                // Its window is over (the alarm has not deleted it yet): a new event.
                _ => next()?.ok_or_else(|| StoreError("no position for the key".into()))?,
            }
        }
    };
    let mut order = Order::new(key, p.n);
    order.since = p.since;
    Ok(order)
}

/// What a recorded body says of its position (the rest of it is skipped, not kept).
#[derive(serde::Deserialize)]
struct Stamped {
    order: Option<Order>,
}

/// Keeps the position `id` took (read from its recorded body, which ingress's copy matches) until
/// its dedupe window ends, before a `Forget` unmarks it. Rare: only when an enqueue failed.
fn remember_position<S: Store>(sql: &S, id: &str) -> Result<(), StoreError> {
    #[derive(serde::Deserialize)]
    struct Row {
        body: String,
        expires_at: u64,
    }
    let rows: Vec<Row> = sql.rows(
        "SELECT p.body, s.expires_at FROM pending p JOIN seen s ON s.id = p.id WHERE p.id = ?",
        vec![id.into()],
    )?;
    for row in rows {
        let Ok(Stamped { order: Some(o) }) = serde_json::from_str(&row.body) else {
            continue;
        };
        sql.run(
            "INSERT OR REPLACE INTO forgotten_positions (id, n, since, expires_at) VALUES (?, ?, ?, ?)",
            vec![id.into(), o.n.into(), o.since.into(), row.expires_at.into()],
        )?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::jobs::Pending;
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
            keys: vec![],
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

    /// `(id, key)` pairs seen at `now`; the positions in order answered, and the bodies recorded.
    fn ordered(sql: &Sqlite, ids: &[(&str, Option<&str>)], now: u64) -> Vec<(String, u64)> {
        let cmd = SeenMany {
            ids: ids.iter().map(|(i, _)| i.to_string()).collect(),
            ttl_ms: DAY,
            pending: ids
                .iter()
                .map(|(i, _)| Pending {
                    body: format!(r#"{{"id":"{i}"}}"#),
                    ..pending(i, 60_000)
                })
                .collect(),
            keys: ids
                .iter()
                .map(|(_, k)| k.map(SourceOrderingKey::from))
                .collect(),
        };
        let step = apply(sql, DedupeCmd::SeenMany(cmd), now);
        serde_json::from_str::<SeenResult>(&step.answer)
            .unwrap()
            .order
            .into_iter()
            .map(|(id, o)| (id, o.n))
            .collect()
    }

    fn recorded(sql: &Sqlite, id: &str) -> String {
        #[derive(serde::Deserialize)]
        struct Row {
            body: String,
        }
        let rows: Vec<Row> = sql
            .rows("SELECT body FROM pending WHERE id = ?", vec![id.into()])
            .unwrap();
        rows[0].body.clone()
    }

    #[test]
    fn each_key_numbers_its_new_events_in_arrival_order_and_a_resent_id_keeps_its_position() {
        let sql = source();
        let n = |v: &[(&str, u64)]| -> Vec<(String, u64)> {
            v.iter().map(|(i, n)| (i.to_string(), *n)).collect()
        };
        let first = [
            ("a", Some("s/k1")),
            ("b", Some("s/k2")),
            ("c", Some("s/k1")),
            ("x", None),
        ];
        assert_eq!(ordered(&sql, &first, T), n(&[("a", 1), ("b", 1), ("c", 2)]));
        // A duplicate takes no position; the key goes on across calls.
        let more = [("a", Some("s/k1")), ("d", Some("s/k1"))];
        assert_eq!(ordered(&sql, &more, T + 1), n(&[("d", 3)]));
        // The key's numbering carries when it started: its generation.
        let d = format!(r#"{{"order":{{"key":"s/k1","n":3,"since":{T}}},"id":"d"}}"#);
        assert_eq!(recorded(&sql, "d"), d);
        assert_eq!(recorded(&sql, "x"), r#"{"id":"x"}"#, "no key: no order");
        // `c`'s enqueue failed: forgotten, then sent again by the provider, it keeps its position.
        let forget = Forget {
            ids: vec!["c".into()],
        };
        apply(&sql, DedupeCmd::Forget(forget), T + 2);
        assert_eq!(ordered(&sql, &[("c", Some("s/k1"))], T + 3), n(&[("c", 2)]));
        // A key idle for 30 days starts again.
        let at = Ctx::at(T + 31 * DAY);
        Dedupe::alarm(&mut Window::default(), &sql, Heard::Woke, &at).unwrap();
        let e = [("e", Some("s/k1"))];
        assert_eq!(ordered(&sql, &e, T + 31 * DAY), n(&[("e", 1)]));
        let since = format!(r#""n":1,"since":{}}}"#, T + 31 * DAY);
        assert!(recorded(&sql, "e").contains(&since), "a new generation");
    }

    /// Rows of tables other than `seen`, `pending` and `order_keys`: what else an id costs.
    fn rows_per_id(sql: &Sqlite) -> u64 {
        #[derive(serde::Deserialize)]
        struct Name {
            name: String,
        }
        #[derive(serde::Deserialize)]
        struct Count {
            n: u64,
        }
        let tables: Vec<Name> = sql
            .rows("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT IN ('seen', 'pending', 'order_keys')", vec![])
            .unwrap();
        let count = |t: &Name| {
            let c: Vec<Count> = sql
                .rows(&format!("SELECT COUNT(*) AS n FROM {}", t.name), vec![])
                .unwrap();
            c[0].n
        };
        tables.iter().map(count).sum()
    }

    /// Numbering keeps a row per key, not per id: an id's position is remembered only when it
    /// is forgotten (its enqueue failed), and only for the source's dedupe window (sec42-final-1
    /// finding 6: every keyed id was kept 7 days).
    #[test]
    fn a_position_is_remembered_only_for_a_forgotten_id_and_only_for_the_dedupe_window() {
        let sql = source();
        let ids = [
            ("a", Some("s/k1")),
            ("b", Some("s/k1")),
            ("c", Some("s/k2")),
        ];
        ordered(&sql, &ids, T);
        assert_eq!(rows_per_id(&sql), 0, "no row per numbered id");
        let forget = Forget {
            ids: vec!["b".into()],
        };
        apply(&sql, DedupeCmd::Forget(forget), T + 1);
        assert_eq!(rows_per_id(&sql), 1, "b's position, remembered");
        let alarm = |now| {
            let at = Ctx::at(now);
            Dedupe::alarm(&mut Window::default(), &sql, Heard::Woke, &at).unwrap();
        };
        alarm(T + DAY - 1);
        assert_eq!(rows_per_id(&sql), 1, "kept within the window");
        // Sent again after the window, `b` is a new event: it takes the key's next position.
        let late = ordered(&sql, &[("b", Some("s/k1"))], T + DAY + 1);
        assert_eq!(late, vec![("b".to_string(), 3)]);
        let forget = Forget {
            ids: vec!["b".into()],
        };
        apply(&sql, DedupeCmd::Forget(forget), T + DAY + 2);
        alarm(T + 2 * DAY + 1);
        assert_eq!(rows_per_id(&sql), 0, "forgotten with the window");
    }

    #[test]
    fn numbering_is_forgotten_on_time_an_alarm_set_for_it() {
        let sql = source();
        ordered(&sql, &[("a", Some("s/k1"))], T);
        let done = OpenWork {
            track: vec![],
            done: vec!["a".into()],
        };
        apply(&sql, DedupeCmd::Update(done), T);
        let wake = |now| {
            Dedupe::alarm(&mut Window::default(), &sql, Heard::Woke, &Ctx::at(now)).unwrap();
            Dedupe::next_wake(&Window::default(), &sql).unwrap()
        };
        // `a`'s id expires after a day; its key's numbering after 30 days.
        assert_eq!(wake(T + DAY), Some(T + KEY_IDLE_MS));
        assert_eq!(wake(T + KEY_IDLE_MS), None, "nothing kept");
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
