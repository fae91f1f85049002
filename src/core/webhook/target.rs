//! How a delivery reaches its destination, by the destination's kind: the request it goes out
//! as, the upstream that caps it, and what the answer means. Filters, transforms, rate limits,
//! retries, dead letters and the event log are the same for every kind (`jobs::events`).

use crate::core::config::seal::Sealer;
use crate::core::error::ApiError;
use crate::core::flow::Co;
use crate::core::upstream::{FetchError, OutboundRequest, Upstream, UpstreamAnswer};
use crate::core::webhook::delivery::{classify, delivery_request, DeliveryOutcome, EventEnvelope};
use crate::core::webhook::endpoints::Endpoint;

/// How long an attempt may take unless the destination says (`timeout_ms`).
pub const DEFAULT_TIMEOUT_MS: u32 = 10_000;

/// The request delivering `event` to `ep` as the delivery `id` at `now_s`, or why it cannot be
/// made (a reason to dead-letter it: trying again would not help).
pub async fn request(
    _co: &Co,
    sealer: &Sealer,
    tenant: &str,
    ep: &Endpoint,
    id: &str,
    event: &EventEnvelope,
    now_s: u64,
) -> Result<Result<OutboundRequest, String>, ApiError> {
    let keys = ep.signing_keys(sealer, tenant, now_s)?;
    Ok(Ok(delivery_request(&ep.cfg.url, &keys, id, event, now_s)))
}

/// What caps and names the exchange with `ep`.
pub fn upstream(_ep: &Endpoint) -> Upstream {
    Upstream::Destination
}

/// What the answer (or its absence) from `ep` means.
pub fn outcome(
    _ep: &Endpoint,
    answer: &Result<UpstreamAnswer, FetchError>,
    now_s: u64,
) -> DeliveryOutcome {
    match answer {
        Ok(a) => classify(Some(a.status), a.header("retry-after"), None, now_s),
        Err(e) => classify(None, None, Some(&e.describe()), now_s),
    }
}
