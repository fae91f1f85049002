//! `GET /v1/event-types`: every type of event the gateway delivers, each with the JSON Schema
//! (2020-12) of the whole delivered body and an example. The document is `event_types.json`, which
//! this module's tests make: the envelope's and the message's schemas from their types
//! (`EventEnvelope`, `ChannelMessage`, through schemars), each entry's `data` schema as written
//! in `specs`, and each example from a source kind's signed sample run through verify,
//! normalize and ingress. `event_types_json_is_current` fails when the code would make another document
//! (`make event-types` rewrites it); a hand-written `data` schema is checked
//! against the samples only.
//!
//! Entries are listed most specific first: an event is described by the first entry whose
//! `type` pattern matches its type (`*` is any run of characters, as in a destination's
//! `filter.types`) and whose `source_kinds` hold its source's kind.

use crate::core::http::HttpResponse;

/// The event types document as served.
pub const JSON: &str = include_str!("event_types.json");

/// The public answer: the same for everyone, so caches may keep it a while.
pub fn answer() -> HttpResponse {
    let mut r = HttpResponse::bytes(200, "application/json", JSON.as_bytes().to_vec());
    r.headers
        .push(("cache-control", "public, max-age=300".to_string()));
    r
}

#[cfg(test)]
mod tests;
