//! What a destination that delivers in order (`DestinationConfig.ordered`) asks its `Sequencer`
//! (one per tenant and destination, `objects::sequencer`): events with one ordering key go one
//! at a time, in the order ingress accepted them (`Order.n`); a failing event holds the events
//! behind it on its key only, until it is delivered or dead-lettered. Each command answers the
//! delivery bodies it released, which the consumer sends at once.

use serde::{Deserialize, Serialize};

/// One delivery the sequencer holds: its place in its key's order, its id, and its queue body
/// (the delivery's message as JSON, kept inline).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Held {
    pub n: u64,
    pub delivery: String,
    pub body: String,
}

/// A new delivery of `key`, in its place.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Offer {
    pub key: String,
    pub item: Held,
}

/// The destination does not take the event at `n` of `key`: no gap waits for it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Skip {
    pub key: String,
    pub n: u64,
}

/// The delivery is finished (delivered, dead-lettered or dropped): the next of its key goes.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Done {
    pub key: String,
    pub delivery: String,
}

/// Deliveries sent again (a replay or a retry from the admin API), in the order given.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Replay {
    pub key: String,
    pub items: Vec<Held>,
}

/// What a command released: `go`, the offered delivery itself may be attempted now; `send`, the
/// bodies of other deliveries whose turn came, to queue now.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Released {
    #[serde(default)]
    pub go: bool,
    #[serde(default)]
    pub duplicate: bool,
    #[serde(default)]
    pub send: Vec<String>,
}
