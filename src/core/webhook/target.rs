//! How a delivery reaches its destination, by the destination's kind: the request it goes out
//! as (a Standard Webhooks POST, or a message to a queue or bus, `webhook::bus`), the upstream
//! that caps it, and what the answer means. Filters, transforms, rate limits, retries, dead
//! letters and the event log are the same for every kind (`jobs::events`).

use crate::core::config::document::{open_secret, RecordRef, Secret};
use crate::core::config::seal::Sealer;
use crate::core::error::{ApiError, ErrorKind};
use crate::core::flow::Co;
use crate::core::integration::oauth::Holder;
use crate::core::integration::tokens::{access_token, OauthSecrets, TokenFor};
use crate::core::platform::RecordKind;
use crate::core::sign::AwsCredentials;
use crate::core::upstream::{FetchError, OutboundRequest, Trail, Upstream, UpstreamAnswer};
use crate::core::webhook::bus::{self, Credentials, Message};
use crate::core::webhook::delivery::{delivery_request, DeliveryOutcome, EventEnvelope};
use crate::core::webhook::destination::DestinationKind;
use crate::core::webhook::endpoints::Endpoint;

/// How long an attempt may take unless the destination says (`timeout_ms`).
pub const DEFAULT_TIMEOUT_MS: u32 = 10_000;

/// One attempt: the destination's answer (none when nothing was sent), and what it means.
#[derive(Debug)]
pub struct Sent {
    pub answer: Option<Result<UpstreamAnswer, FetchError>>,
    pub outcome: DeliveryOutcome,
}

impl Sent {
    fn unsent(outcome: DeliveryOutcome) -> Self {
        Sent {
            answer: None,
            outcome,
        }
    }
}

/// Attempts the delivery `id` of `event` to `ep` at `now_s`. A message that cannot be made
/// (over its bus's size, unsignable) is refused for good without being sent; a Pub/Sub token
/// the bus refused (401) is renewed once and the message sent again.
#[allow(clippy::too_many_arguments)]
pub async fn send(
    co: &Co,
    sealer: &Sealer,
    tenant: &str,
    ep: &Endpoint,
    id: &str,
    event: &EventEnvelope,
    trail: &Trail,
    now_s: u64,
) -> Result<Sent, ApiError> {
    let keys = ep.signing_keys(sealer, tenant, now_s)?;
    let timeout = u64::from(ep.cfg.timeout_ms.unwrap_or(DEFAULT_TIMEOUT_MS));
    let mut creds = match credentials(co, sealer, tenant, ep, trail, None).await? {
        Ok(c) => c,
        Err(outcome) => return Ok(Sent::unsent(outcome)),
    };
    let mut renewed = false;
    loop {
        let req = match request(ep, &keys, &creds, id, event, now_s) {
            Ok(r) => r,
            Err(reason) => return Ok(Sent::unsent(DeliveryOutcome::Permanent { reason })),
        };
        let answer = co.exchange(req, trail, upstream(ep), timeout).await;
        let refused_token = match (&answer, &creds) {
            (Ok(a), Credentials::AccessToken(token)) if a.status == 401 && !renewed => {
                token.clone()
            }
            _ => {
                let outcome = outcome(ep, &answer, now_s);
                return Ok(Sent {
                    answer: Some(answer),
                    outcome,
                });
            }
        };
        renewed = true;
        let line = serde_json::json!({"tenant": tenant, "destination": ep.name, "delivery": id, "token_rejected": true});
        co.log(line).await;
        creds = match credentials(co, sealer, tenant, ep, trail, Some(&refused_token)).await? {
            Ok(c) => c,
            Err(outcome) => return Ok(Sent::unsent(outcome)),
        };
    }
}

/// The request delivering `event` to `ep` as the delivery `id`, signed by `keys` (and by
/// `creds` for a bus) at `now_s`, or why it cannot be made (a reason to dead-letter it).
pub fn request(
    ep: &Endpoint,
    keys: &[Vec<u8>],
    creds: &Credentials,
    id: &str,
    event: &EventEnvelope,
    now_s: u64,
) -> Result<OutboundRequest, String> {
    let cfg = &ep.cfg;
    if cfg.kind == DestinationKind::Https {
        return Ok(delivery_request(&cfg.url, keys, id, event, now_s));
    }
    let msg = Message::new(keys, id, event, now_s);
    let region = cfg
        .aws
        .as_ref()
        .map(|a| a.region.as_str())
        .unwrap_or_default();
    match (cfg.kind, creds) {
        (DestinationKind::Sqs, Credentials::Aws(c)) => {
            bus::sqs::request(cfg, region, c, &msg, now_s)
        }
        (DestinationKind::Eventbridge, Credentials::Aws(c)) => {
            bus::eventbridge::request(cfg, region, c, &msg, now_s)
        }
        (DestinationKind::Pubsub, Credentials::AccessToken(token)) => {
            bus::pubsub::request(cfg, token, &msg)
        }
        (DestinationKind::Kafka, creds) => bus::kafka::request(cfg, creds, &msg),
        (kind, _) => Err(format!(
            "a {} destination without its credentials",
            kind.as_str()
        )),
    }
}

/// The opened credentials of `ep`'s bus: its AWS key, its Kafka proxy's, or an access token for
/// its service account (the destination's `OauthTokens` object fetches one when none is held;
/// `rejected` is one the bus just refused). A token that cannot be had is an attempt that
/// failed, tried again later.
async fn credentials(
    co: &Co,
    sealer: &Sealer,
    tenant: &str,
    ep: &Endpoint,
    trail: &Trail,
    rejected: Option<&str>,
) -> Result<Result<Credentials, DeliveryOutcome>, ApiError> {
    let cfg = &ep.cfg;
    let record = RecordKind::Destination.seal_record(Some(&ep.name));
    let at = RecordRef {
        tenant,
        record: &record,
    };
    let open = |field: &str, s: &Secret| open_secret(sealer, &at, field, s);
    if let (DestinationKind::Sqs | DestinationKind::Eventbridge, Some(aws)) = (cfg.kind, &cfg.aws) {
        return Ok(Ok(Credentials::Aws(AwsCredentials {
            access_key_id: aws.access_key_id.clone(),
            secret_access_key: open("/aws/secret_access_key", &aws.secret_access_key)?,
            session_token: match &aws.session_token {
                Some(t) => Some(open("/aws/session_token", t)?),
                None => None,
            },
        })));
    }
    if let (DestinationKind::Kafka, Some(auth)) =
        (cfg.kind, cfg.kafka.as_ref().and_then(|k| k.auth.as_ref()))
    {
        return Ok(Ok(match (&auth.username, &auth.password, &auth.token) {
            (Some(u), Some(p), _) => Credentials::Basic {
                username: u.clone(),
                password: open("/kafka/auth/password", p)?,
            },
            (_, _, Some(t)) => Credentials::Bearer(open("/kafka/auth/token", t)?),
            _ => Credentials::None,
        }));
    }
    let (DestinationKind::Pubsub, Some(g)) = (cfg.kind, &cfg.google) else {
        return Ok(Ok(Credentials::None));
    };
    let sa = &g.service_account;
    let key = sa
        .private_key
        .as_ref()
        .ok_or_else(|| ApiError::internal("a stored service account has no private key"))?;
    let secrets = OauthSecrets {
        client_secret: open("/google/service_account/private_key", key)?,
        refresh_token: None,
    };
    let auth = bus::pubsub::token_auth(sa);
    let token_for = TokenFor {
        sealer,
        tenant,
        holder: Holder::Destination {
            name: &ep.name,
            url: &cfg.url,
            auth: &auth,
        },
        secrets: &secrets,
        trail: trail.clone(),
    };
    match access_token(co, &token_for, rejected).await {
        Ok(token) => Ok(Ok(Credentials::AccessToken(token))),
        // The token object's own words (an endpoint's status, a key it cannot sign with) name
        // no secret and quote nothing of the endpoint's answer.
        Err(e) if e.kind == ErrorKind::Upstream => Ok(Err(DeliveryOutcome::Retry {
            retry_after_s: None,
            reason: format!("no access token for the service account ({})", e.message),
        })),
        Err(e) => Err(e),
    }
}

/// What caps and names the exchange with `ep`: a webhook's answer is only previewed; a bus's
/// is read (its result says whether the message was taken), up to `Upstream::Bus`'s cap.
pub fn upstream(ep: &Endpoint) -> Upstream {
    match ep.cfg.kind {
        DestinationKind::Https => Upstream::Destination,
        _ => Upstream::Bus,
    }
}

/// What the answer (or its absence) from `ep` means.
pub fn outcome(
    ep: &Endpoint,
    answer: &Result<UpstreamAnswer, FetchError>,
    now_s: u64,
) -> DeliveryOutcome {
    match answer {
        Ok(a) => bus::classify(ep.cfg.kind, a, now_s),
        Err(e) => bus::unanswered(e, now_s),
    }
}

#[cfg(test)]
mod tests;
