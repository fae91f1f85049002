//! The words of ordered delivery, as data (no I/O). Three things carry the word "ordering key":
//! a source's *expression* (`SourceConfig.ordering_key_expr`, JMESPath), the *ordering key* it
//! gives an event (`EventEnvelope.ordering_key`), and that key scoped to its source,
//! `SourceOrderingKey` (`{source}/{key}`), which a source's `Dedupe` numbers and a destination's
//! `Sequencer` orders by. Each event with a key gets its *position n* on it at ingress (`Order`,
//! stamped on its queue body).
//!
//! This module is that vocabulary as data (no I/O): the key, the position, and what a
//! `Sequencer` is told and answers. What an ordered destination does with them is `jobs::sequencing`.

use serde::{Deserialize, Serialize};

/// An event's ordering key scoped to its source, `{source}/{key}`: order is kept per source.
/// Serialized as that string (in queue bodies and in the objects' SQLite rows).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct SourceOrderingKey(String);

impl SourceOrderingKey {
    /// The one place such a key is made.
    pub fn of(source: &str, ordering_key: &str) -> Self {
        SourceOrderingKey(format!("{source}/{ordering_key}"))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Tests name keys directly.
#[cfg(test)]
impl From<&str> for SourceOrderingKey {
    fn from(s: &str) -> Self {
        SourceOrderingKey(s.to_string())
    }
}

/// An event's place in its key's order: the key and the event's position n on it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Order {
    pub key: SourceOrderingKey,
    /// The position: 1, 2, 3… per key, in the order ingress accepted the events.
    pub n: u64,
    /// When its source's `Dedupe` started numbering the key (ms). Numbering that starts again
    /// (the key forgotten when idle, its source deleted) is a new generation: the key's
    /// sequencer starts it again from 1 instead of taking its positions for late ones.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub since: u64,
    /// Set on a delivery to an ordered destination once it goes through that destination's
    /// `Sequencer` (offered at fan-out, released later): its open work is there, and it tells the
    /// sequencer when it is finished. Unset, the message is either the event from ingress (no
    /// destination yet) or a dead letter replayed from the admin API, which must go back through
    /// the sequencer first (the queue refuses it otherwise).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub sequenced: bool,
}

impl Order {
    pub fn new(key: SourceOrderingKey, n: u64) -> Order {
        Order {
            key,
            n,
            since: 0,
            sequenced: false,
        }
    }
}

pub(crate) fn is_zero(v: &u64) -> bool {
    *v == 0
}

/// A queue body with its position in its key's order, spliced in as text after the opening
/// brace: the body's numbers stay exact, and a kept-aside message's key (`{"spilled_to"}`)
/// carries it without reading the message back. Ingress and its source's `Dedupe` stamp their
/// copies alike.
pub fn stamp(body: &str, order: &Order) -> String {
    let o = serde_json::to_string(order).unwrap_or_default();
    match body.strip_prefix('{') {
        // Stamped already: one order only.
        Some(rest) if rest.trim_start().starts_with("\"order\":") => body.to_string(),
        Some(rest) if rest.trim_start().starts_with('}') => format!("{{\"order\":{o}{rest}"),
        Some(rest) => format!("{{\"order\":{o},{rest}"),
        None => body.to_string(),
    }
}

/// How long an idle key is kept: the one constant for a source's `Dedupe` (its numbering, in
/// `order_keys`) and its destinations' sequencers (`keys`) alike, so both forget a key together
/// and its next event starts it again on both sides (a new generation, `Order.since`).
pub const KEY_IDLE_MS: u64 = 30 * 86_400_000;

/// One delivery in a key's line at its sequencer: its position n, its id, and its queue body (the
/// delivery's message as JSON, kept inline).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Entry {
    pub n: u64,
    pub delivery: String,
    pub body: String,
}

/// A new delivery of `key`, at its position.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Offer {
    pub key: SourceOrderingKey,
    pub item: Entry,
    /// The generation of the key's numbering (`Order.since`).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub since: u64,
}

/// The destination does not take the event at position `n` of `key`: no gap waits for it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Skip {
    pub key: SourceOrderingKey,
    pub n: u64,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub since: u64,
}

/// The delivery is finished (delivered, dead-lettered or dropped): the next of its key goes.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Done {
    pub key: SourceOrderingKey,
    pub delivery: String,
}

/// Deliveries sent again (a replay or a retry from the admin API), in the order given.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Replay {
    pub key: SourceOrderingKey,
    pub items: Vec<Entry>,
    /// The newest generation of the items' numbering (`Order.since`).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub since: u64,
}

/// The destination turned ordered again (saved with `ordered: true` over `ordered: false`): the
/// events of the unordered time were neither offered nor skipped, so a key holding nothing starts
/// again at its next offer, as a new key does, instead of waiting the gap limit for them.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct OrderedAgain {}

/// What a command released: `go`, the offered delivery itself may be attempted now; `send`, the
/// bodies of other deliveries whose turn came, to queue now.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Released {
    #[serde(default)]
    pub go: bool,
    /// The offered delivery was known already (in flight, waiting or finished). Nothing reads it
    /// but tests and a reader of the answer: a duplicate, like a held delivery, is simply not
    /// attempted (`go` false); it says why.
    #[serde(default)]
    pub duplicate: bool,
    #[serde(default)]
    pub send: Vec<String>,
}

impl Released {
    /// Only other deliveries' bodies, whose turn came.
    pub fn sending(send: Vec<String>) -> Self {
        Released {
            send,
            ..Released::default()
        }
    }

    /// The offered delivery goes now (its turn came as it was offered: nothing else did).
    pub fn go() -> Self {
        Released {
            go: true,
            ..Released::default()
        }
    }

    /// The offered delivery was known already: nothing goes.
    pub fn duplicate() -> Self {
        Released {
            duplicate: true,
            ..Released::default()
        }
    }
}
