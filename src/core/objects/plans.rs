//! Every statement the `Dedupe` and `Sequencer` machines run (commands and alarms), checked with
//! SQLite's query planner: none reads a whole table. Their tables grow with traffic (ids, keys,
//! held deliveries), and both objects run on the ingress and delivery hot paths.

use super::machine::{Ctx, Heard, Machine, Woken};
use super::protocol::{Dedupe, DedupeCmd, SeqCmd, Sequencer};
use super::store::{create, Arg, Sqlite, Store, StoreError};
use crate::core::jobs::order::{Done, Entry, Offer, OrderedAgain, Replay, Skip};
use crate::core::jobs::{OpenWork, Pending};
use crate::core::webhook::dedupe::{Forget, SeenMany};
use serde::de::DeserializeOwned;
use std::cell::RefCell;

/// Runs statements on SQLite and keeps each one with its arguments.
#[derive(Default)]
struct Recorded {
    sql: Sqlite,
    ran: RefCell<Vec<(String, Vec<Arg>)>>,
}

impl Store for Recorded {
    fn run(&self, sql: &str, args: Vec<Arg>) -> Result<u64, StoreError> {
        self.ran.borrow_mut().push((sql.into(), args.clone()));
        self.sql.run(sql, args)
    }
    fn rows<T: DeserializeOwned>(&self, sql: &str, args: Vec<Arg>) -> Result<Vec<T>, StoreError> {
        self.ran.borrow_mut().push((sql.into(), args.clone()));
        self.sql.rows(sql, args)
    }
}

#[derive(serde::Deserialize)]
struct Plan {
    detail: String,
}

/// The statements (after the schema) whose plan reads a whole table, with that plan line.
fn full_scans(store: &Recorded) -> Vec<String> {
    let mut out = vec![];
    for (sql, args) in store.ran.borrow().iter() {
        if sql.starts_with("CREATE") {
            continue;
        }
        let plan: Vec<Plan> = store
            .sql
            .rows(&format!("EXPLAIN QUERY PLAN {sql}"), args.clone())
            .unwrap();
        for p in plan {
            // `SEARCH t` with no index is an aggregate (`MIN`) reading every row.
            let scan = p.detail.starts_with("SCAN") && p.detail != "SCAN CONSTANT ROW";
            if scan || (p.detail.starts_with("SEARCH") && !p.detail.contains(" USING ")) {
                out.push(format!("{sql}\n    -> {}", p.detail));
            }
        }
    }
    out.sort();
    out.dedup();
    out
}

const T: u64 = 1_700_000_000_000;
const DAY: u64 = 86_400_000;

fn pending(id: &str) -> Pending {
    Pending {
        id: id.into(),
        binding: "EVENTS".into(),
        body: format!(r#"{{"id":"{id}"}}"#),
        due_in_ms: 60_000,
    }
}

#[test]
fn no_statement_of_dedupe_reads_a_whole_table() {
    let store = Recorded::default();
    create(&store, Dedupe::TABLES).unwrap();
    let mut doc = Default::default();
    let mut apply = |cmd, now| Dedupe::apply(&mut doc, &store, cmd, &Ctx::at(now)).unwrap();
    let ids = ["a", "b", "c"];
    let seen = SeenMany {
        ids: ids.iter().map(|i| i.to_string()).collect(),
        ttl_ms: DAY,
        pending: ids.iter().map(|i| pending(i)).collect(),
        keys: vec![Some("s/k".into()), None, Some("s/k".into())],
    };
    apply(DedupeCmd::SeenMany(seen), T);
    let forget = Forget {
        ids: vec!["c".into()],
    };
    apply(DedupeCmd::Forget(forget), T);
    // `c` sent again takes its remembered position.
    let again = SeenMany {
        ids: vec!["c".into()],
        ttl_ms: DAY,
        pending: vec![pending("c")],
        keys: vec![Some("s/k".into())],
    };
    apply(DedupeCmd::SeenMany(again), T + 1);
    let ran = |start: &str| store.ran.borrow().iter().any(|(s, _)| s.starts_with(start));
    assert!(
        ran("DELETE FROM forgotten_positions WHERE id = ?"),
        "the remembered position's path ran"
    );
    let done = OpenWork {
        track: vec![],
        done: vec!["a".into()],
    };
    apply(DedupeCmd::Update(done), T);
    Dedupe::next_wake(&doc, &store).unwrap();
    for now in [T + 2 * DAY, T + 40 * DAY] {
        let at = Ctx::at(now);
        let woken = Dedupe::alarm(&mut doc, &store, Heard::Woke, &at).unwrap();
        if let Woken::Resend(r) = woken {
            let ids = r.into_iter().map(|r| r.id).collect();
            Dedupe::alarm(&mut doc, &store, Heard::Resent(ids), &at).unwrap();
        }
        Dedupe::next_wake(&doc, &store).unwrap();
    }
    let scans = full_scans(&store);
    assert!(scans.is_empty(), "full scans:\n{}", scans.join("\n"));
}

#[test]
fn no_statement_of_the_sequencer_reads_a_whole_table() {
    let store = Recorded::default();
    create(&store, Sequencer::TABLES).unwrap();
    let held = |n: u64| Entry {
        n,
        delivery: format!("k-{n}"),
        body: format!("body of k-{n}"),
    };
    let apply = |cmd, now| Sequencer::apply(&mut (), &store, cmd, &Ctx::at(now)).unwrap();
    let offer = |n| {
        SeqCmd::Offer(Offer {
            key: "k".into(),
            item: held(n),
            since: 0,
        })
    };
    apply(offer(1), T);
    apply(offer(3), T);
    apply(offer(1), T);
    let skip = |n| {
        SeqCmd::Skip(Skip {
            key: "k".into(),
            n,
            since: 0,
        })
    };
    apply(skip(5), T);
    apply(skip(9), T);
    let retry = OpenWork {
        track: vec![pending("k-1")],
        done: vec![],
    };
    apply(SeqCmd::Update(retry), T);
    let done = |n: u64| {
        SeqCmd::Done(Done {
            key: "k".into(),
            delivery: format!("k-{n}"),
        })
    };
    apply(done(1), T);
    let replay = Replay {
        key: "k".into(),
        items: vec![held(1)],
        since: 0,
    };
    apply(SeqCmd::Replay(replay.clone()), T);
    let fresh = Replay {
        key: "other".into(),
        ..replay
    };
    apply(SeqCmd::Replay(fresh), T);
    // Ordered again: a key holding nothing starts again at its next offer.
    apply(SeqCmd::OrderedAgain(OrderedAgain {}), T + 1);
    apply(done(1), T + 2);
    let idle = |n| {
        SeqCmd::Offer(Offer {
            key: "idle".into(),
            item: Entry {
                delivery: format!("idle-{n}"),
                ..held(n)
            },
            since: 0,
        })
    };
    apply(idle(1), T);
    let delivery = "idle-1".into();
    apply(
        SeqCmd::Done(Done {
            key: "idle".into(),
            delivery,
        }),
        T,
    );
    apply(SeqCmd::OrderedAgain(OrderedAgain {}), T + 1);
    apply(idle(3), T + 2);
    let ran = |start: &str| store.ran.borrow().iter().any(|(s, _)| s.starts_with(start));
    assert!(
        ran("SELECT COUNT(*) AS c FROM keys WHERE key = ? AND"),
        "a key started again"
    );
    Sequencer::next_wake(&(), &store).unwrap();
    for now in [T + 2 * 3_600_000, T + 2 * DAY, T + 40 * DAY] {
        let at = Ctx::at(now);
        let woken = Sequencer::alarm(&mut (), &store, Heard::Woke, &at).unwrap();
        if let Woken::Resend(r) = woken {
            let ids = r.into_iter().map(|r| r.id).collect();
            Sequencer::alarm(&mut (), &store, Heard::Resent(ids), &at).unwrap();
        }
        Sequencer::next_wake(&(), &store).unwrap();
    }
    let scans = full_scans(&store);
    assert!(scans.is_empty(), "full scans:\n{}", scans.join("\n"));
}

/// Ingress's one `Dedupe` round trip for an event with a key: its seen row, its key's position
/// and its open-work row, one statement each (it was six: the position took four).
#[test]
fn a_new_keyed_event_costs_dedupe_three_statements() {
    let store = Recorded::default();
    create(&store, Dedupe::TABLES).unwrap();
    let seen = |id: &str| SeenMany {
        ids: vec![id.into()],
        ttl_ms: DAY,
        pending: vec![pending(id)],
        keys: vec![Some("s/k".into())],
    };
    let mut doc = Default::default();
    for (id, now) in [("a", T), ("b", T + 1)] {
        store.ran.borrow_mut().clear();
        Dedupe::apply(
            &mut doc,
            &store,
            DedupeCmd::SeenMany(seen(id)),
            &Ctx::at(now),
        )
        .unwrap();
        let ran: Vec<String> = store.ran.borrow().iter().map(|(s, _)| s.clone()).collect();
        assert_eq!(ran.len(), 3, "{id}: {ran:#?}");
    }
}
