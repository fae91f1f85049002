//! What a source's `Dedupe` object is asked: mark a batch of event ids as seen (recording the
//! new ones as open work in the same round trip), unmark ids whose enqueue failed, and count a
//! subscription handshake.

use crate::core::jobs::order::{stamp, Order, SourceOrderingKey};
use crate::core::jobs::Pending;
use serde::{Deserialize, Serialize};
use std::collections::{HashMap, HashSet};

/// Marks `ids` as seen for `ttl_ms`; the answer says which were new.
#[derive(Debug, Default, Serialize, Deserialize)]
pub struct SeenMany {
    pub ids: Vec<String>,
    pub ttl_ms: u64,
    /// The queue bodies of `ids`, recorded for the ones that are new.
    #[serde(default)]
    pub pending: Vec<Pending>,
    /// Each id's key (aligned with `ids`): a new id with a key takes the key's next position,
    /// and its recorded body carries it.
    #[serde(default)]
    pub keys: Vec<Option<SourceOrderingKey>>,
}

#[derive(Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SeenResult {
    pub new_ids: Vec<String>,
    pub duplicates: usize,
    /// The position of each new id with a key.
    #[serde(default)]
    pub order: Vec<(String, Order)>,
}

/// Unmarks ids whose enqueue failed, so the sender's retry is not taken for a duplicate.
#[derive(Debug, Serialize, Deserialize)]
pub struct Forget {
    pub ids: Vec<String>,
}

/// One Meta subscription handshake, whose verify token did or did not match.
#[derive(Debug, Serialize, Deserialize)]
pub struct HandshakeAttempt {
    pub matched: bool,
}

impl SeenResult {
    /// Of `(id, queue body)`, the bodies of the events found new: the ones to enqueue, each
    /// stamped with its position in its key's order.
    pub fn new_bodies(&self, bodies: Vec<(String, String)>) -> Vec<String> {
        let new: HashSet<&str> = self.new_ids.iter().map(String::as_str).collect();
        let positions = Positions::of(&self.order);
        bodies
            .into_iter()
            .filter(|(id, _)| new.contains(id.as_str()))
            .map(|(id, body)| positions.stamp(&id, body))
            .collect()
    }
}

/// The positions new ids took, by id: stamps their bodies, ingress's copies and the copies its
/// source's `Dedupe` records alike (each body looked up once).
pub struct Positions<'a>(HashMap<&'a str, &'a Order>);

impl<'a> Positions<'a> {
    pub fn of(order: &'a [(String, Order)]) -> Self {
        Positions(order.iter().map(|(id, o)| (id.as_str(), o)).collect())
    }

    /// `body`, the queue body of `id`, with its position when it took one.
    pub fn stamp(&self, id: &str, body: String) -> String {
        match self.0.get(id) {
            Some(order) => stamp(&body, order),
            None => body,
        }
    }
}

impl SeenMany {
    /// Once the store has said which ids are new: the open work to record (theirs only), and
    /// the time by which the object's alarm must go off (the earliest new expiry or due time).
    pub fn track(self, new_ids: &[String], now: u64) -> (Vec<Pending>, Option<u64>) {
        let track: Vec<Pending> = self
            .pending
            .into_iter()
            .filter(|p| new_ids.contains(&p.id))
            .collect();
        let expiry = (!new_ids.is_empty()).then_some(now + self.ttl_ms);
        let due = track.iter().map(|p| now + p.due_in_ms).chain(expiry).min();
        (track, due)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pending(id: &str, due_in_ms: u64) -> Pending {
        Pending {
            id: id.into(),
            binding: "EVENTS".into(),
            body: "{}".into(),
            due_in_ms,
        }
    }

    #[test]
    fn only_new_events_are_enqueued() {
        let seen = SeenResult {
            new_ids: vec!["b".into(), "c".into()],
            duplicates: 1,
            order: vec![("c".into(), Order::new("s/k".into(), 4))],
        };
        let bodies = vec![
            ("a".into(), "{}".into()),
            ("b".into(), r#"{"id":"b"}"#.into()),
            ("c".into(), r#"{"id":"c"}"#.into()),
        ];
        let c = r#"{"order":{"key":"s/k","n":4},"id":"c"}"#;
        assert_eq!(seen.new_bodies(bodies), vec![r#"{"id":"b"}"#, c]);
    }

    #[test]
    fn only_new_events_become_open_work_and_the_alarm_follows_the_earliest() {
        let seen = SeenMany {
            ids: vec!["a".into(), "b".into()],
            ttl_ms: 86_400_000,
            pending: vec![pending("a", 900_000), pending("b", 1_000)],
            keys: vec![],
        };
        let (track, due) = seen.track(&["a".to_string()], 10);
        assert_eq!(track, vec![pending("a", 900_000)]);
        assert_eq!(due, Some(900_010));
        let none = SeenMany {
            ids: vec!["a".into()],
            ttl_ms: 5,
            pending: vec![pending("a", 1)],
            keys: vec![],
        };
        assert_eq!(none.track(&[], 10), (vec![], None));
    }
}
