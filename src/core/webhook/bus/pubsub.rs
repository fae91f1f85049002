//! Google Cloud Pub/Sub: `POST {topic}:publish` with one message, authorized by the service
//! account's access token (the JWT grant, held by the destination's `OauthTokens` object). The
//! envelope is the message's `data` (base64 of the exact bytes signed), the signature and the
//! event's type its attributes; an `ordered` destination sets `orderingKey` from the event's
//! ordering key (Pub/Sub keeps that order per region: publish to one regional endpoint).

use super::{bounded_ordering_key, delivered_with, refused, too_large, Message};
use crate::core::cloud::google::{self, check_service_account, valid_project, ServiceAccount};
use crate::core::cloud::USER_AGENT;
use crate::core::http::url_path;
use crate::core::integration::config::Auth;
use crate::core::upstream::{OutboundRequest, UpstreamAnswer};
use crate::core::webhook::delivery::DeliveryOutcome;
use crate::core::webhook::destination::{DestinationConfig, DestinationKind};
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use serde_json::{json, Map, Value};

pub const SERVICE: &str = "pubsub";
/// The scope a publisher's tokens are asked for: Pub/Sub only, not all of Google Cloud.
pub const SCOPE: &str = "https://www.googleapis.com/auth/pubsub";

/// How the service account's access tokens are fetched: its JWT grant, for `SCOPE`.
pub fn token_auth(sa: &ServiceAccount) -> Auth {
    google::token_auth(sa, SCOPE)
}

/// The `publish` of `msg` to the topic `cfg.url` with the access token `token`.
pub fn request(
    cfg: &DestinationConfig,
    token: &str,
    msg: &Message,
) -> Result<OutboundRequest, String> {
    let mut attributes = Map::new();
    for (name, value) in msg.attributes() {
        attributes.insert(name.into(), json!(value));
    }
    let mut message = json!({
        "data": STANDARD.encode(msg.body()),
        "attributes": attributes,
    });
    // Only an `ordered` destination sends its events of one key one at a time, in order: an
    // unordered one's deliveries and retries overlap, so a key would promise an order they do
    // not keep (and Pub/Sub caps a key's publish rate).
    if cfg.ordered {
        if let Some(key) = &msg.event.ordering_key {
            message["orderingKey"] = json!(bounded_ordering_key(key));
        }
    }
    let body = json!({"messages": [message]}).to_string();
    too_large(DestinationKind::Pubsub, body.len())?;
    let url = format!("{}:publish", cfg.url);
    Ok(OutboundRequest::post(url, "application/json", body)
        .header("authorization", format!("Bearer {token}"))
        .header("user-agent", USER_AGENT))
}

/// What Pub/Sub's answer means: a 2xx published it; an error by its status and Google's
/// `error.status` (`PERMISSION_DENIED`, `NOT_FOUND`: refusals; `RESOURCE_EXHAUSTED`,
/// `UNAVAILABLE`, `ABORTED`, `CANCELLED` and the 5xx: later, as Google's publishers retry). A
/// 401 reaching here was answered to a renewed token already.
pub fn classify(a: &UpstreamAnswer, now_s: u64) -> DeliveryOutcome {
    if (200..300).contains(&a.status) {
        return delivered_with(SERVICE, a, "/messageIds/0", "publish");
    }
    let code = serde_json::from_slice::<Value>(&a.body)
        .ok()
        .and_then(|v| v.pointer("/error/status")?.as_str().map(str::to_string));
    refused(
        SERVICE,
        a.status,
        code.as_deref(),
        a.header("retry-after"),
        now_s,
    )
}

/// The checks of a `pubsub` destination: `url` is a topic, `…/v1/projects/{project}/topics/
/// {topic}`, and the service account's key file has what the token request needs.
pub fn check(cfg: &DestinationConfig, p: &mut Vec<String>) {
    let parts: Vec<&str> = url_path(&cfg.url)
        .trim_start_matches('/')
        .split('/')
        .collect();
    let ok = matches!(parts.as_slice(), ["v1", "projects", project, "topics", topic]
        if valid_project(project) && valid_topic(topic));
    if !ok {
        p.push("`url` must be a Pub/Sub topic: https://pubsub.googleapis.com/v1/projects/{project}/topics/{topic}".into());
    }
    if let Some(g) = &cfg.google {
        check_service_account(&|f| format!("google.{f}"), &g.service_account, p);
    }
}

/// A topic name: 3 to 255 characters, starting with a letter, of letters, digits and `-_.~+%`,
/// not starting with `goog`.
fn valid_topic(t: &str) -> bool {
    (3..=255).contains(&t.len())
        && t.starts_with(|c: char| c.is_ascii_alphabetic())
        && !t.to_ascii_lowercase().starts_with("goog")
        && t.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.~+%".contains(&b))
}
