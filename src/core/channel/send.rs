//! A send to a tenant's channel, decided: the rendered request, what a failed fetch means, the
//! gate's refusals, the answer (sent, refused, or queued for the `deliveries` queue to retry)
//! with what the channel's breaker hears, and the delivery record of a queued send.

use super::outbound::OutboundMessage;
use super::render::{self, ChannelTarget, Rendered};
use super::response::{parse, refusal, SendOutcome};
use crate::core::channel::config::{ChannelConfig, ChannelKind};
use crate::core::config::document::{open_secret, RecordRef};
use crate::core::config::seal::Sealer;
use crate::core::error::{ApiError, ErrorKind};
use crate::core::flow::Co;
use crate::core::jobs::{retry_or_dead_letter, Job, JobStep, QueueMessage};
use crate::core::limits::breaker::BreakerPolicy;
use crate::core::limits::gate::{Begin, DeliveryRecord, DeliveryStatus, Limits};
use crate::core::platform::RecordKind;
use crate::core::upstream::Trail;
use crate::core::upstream::{FetchError, Upstream};
use serde_json::{json, Value};

const DEFAULT_PER_MINUTE: u64 = 600;
pub const DEFAULT_TIMEOUT_MS: u32 = 10_000;

/// The provider request for `m` on this channel, with its opened credential.
pub fn render(cfg: &ChannelConfig, token: &str, m: &OutboundMessage) -> Result<Rendered, ApiError> {
    let t = ChannelTarget {
        base_url: cfg.base_url.as_deref().unwrap_or(match cfg.kind {
            ChannelKind::Whatsapp => render::whatsapp::DEFAULT_BASE,
            ChannelKind::Slack => render::slack::DEFAULT_BASE,
            ChannelKind::Telegram => render::telegram::DEFAULT_BASE,
            ChannelKind::Twilio => render::twilio::DEFAULT_BASE,
        }),
        token,
        phone_number_id: cfg.phone_number_id.as_deref(),
        account_sid: cfg.account_sid.as_deref(),
        from: cfg.from.as_deref(),
        messaging_service_sid: cfg.messaging_service_sid.as_deref(),
        api_version: cfg.api_version.as_deref(),
    };
    match cfg.kind {
        ChannelKind::Whatsapp => render::whatsapp::render(m, &t),
        ChannelKind::Slack => render::slack::render(m, &t),
        ChannelKind::Telegram => render::telegram::render(m, &t),
        ChannelKind::Twilio => render::twilio::render(m, &t),
    }
}

/// The limits the channel's gate admits a send under (600 a minute unless it says).
pub fn limits(cfg: &ChannelConfig) -> Limits {
    Limits {
        per_second: None,
        per_minute: cfg
            .rate_limit_per_minute
            .map_or(DEFAULT_PER_MINUTE, u64::from),
        per_day: None,
        breaker: BreakerPolicy::policy(cfg.circuit_breaker.as_ref()),
    }
}

/// The `Idempotency-Key` header, if it is a usable one.
pub fn idempotency_key(header: Option<String>) -> Result<Option<String>, ApiError> {
    match header {
        Some(k) if k.is_empty() || k.len() > 255 || k.chars().any(char::is_control) => Err(
            ApiError::bad_request("Idempotency-Key must be 1-255 printable characters"),
        ),
        other => Ok(other),
    }
}

/// The channel's credential, opened.
pub fn open_token(
    sealer: &Sealer,
    tenant: &str,
    channel: &str,
    cfg: &ChannelConfig,
) -> Result<String, ApiError> {
    let field = cfg.kind.credential();
    let secret = cfg
        .credentials
        .get(field)
        .ok_or_else(|| ApiError::internal(format!("channel has no {field}")))?;
    let record = RecordKind::Channel.seal_record(Some(channel));
    let at = RecordRef {
        tenant,
        record: &record,
    };
    open_secret(sealer, &at, &format!("/credentials/{field}"), secret)
}

/// One provider call: the rendered request, sent with the channel's timeout, its answer parsed.
pub async fn attempt(
    co: &Co,
    rendered: &Rendered,
    cfg: &ChannelConfig,
    token: &str,
    trail: &Trail,
) -> SendOutcome {
    let timeout = u64::from(cfg.timeout_ms.unwrap_or(DEFAULT_TIMEOUT_MS));
    let req = rendered.request();
    match co.exchange(req, trail, Upstream::Channel, timeout).await {
        Ok(a) => parse(
            cfg.kind,
            a.status,
            a.header("retry-after"),
            &a.text(),
            co.now() / 1000,
        ),
        Err(e) => fetch_failed(&e, token),
    }
}

/// A send that got no answer to read.
pub fn fetch_failed(e: &FetchError, token: &str) -> SendOutcome {
    match e {
        // The provider answered, but more than a receipt: sending again could send twice.
        FetchError::TooLarge(_) => SendOutcome::Permanent {
            status: 502,
            error: e.describe(),
        },
        // Nothing was sent, and nothing would be on a retry.
        FetchError::Invalid(_) => SendOutcome::Permanent {
            status: 500,
            error: e.describe(),
        },
        // Never echo the raw error: Telegram's token is part of the URL.
        FetchError::Timeout(_) | FetchError::Network(_) => SendOutcome::Transient {
            retry_after_s: None,
            error: e.describe().replace(token, "[redacted]"),
        },
    }
}

/// The client's error when the gate stops a send before it is made.
pub fn stopped(begin: Begin, channel: &str) -> ApiError {
    match begin {
        Begin::InProgress => ApiError::new(
            ErrorKind::Conflict,
            "a request with this Idempotency-Key is still in progress",
        )
        .with_retry_after(1),
        Begin::RateLimited {
            retry_after_s,
            limit,
        } => ApiError::new(
            ErrorKind::RateLimited,
            format!("channel `{channel}` allows {limit} sends per minute"),
        )
        .with_retry_after(retry_after_s),
        Begin::BreakerOpen { retry_after_s } => ApiError::new(
            ErrorKind::Unavailable,
            format!("circuit breaker for channel `{channel}` is open after repeated provider failures; it lets a probe through in {retry_after_s} s"),
        )
        .with_retry_after(retry_after_s),
        Begin::Go { .. } | Begin::Replay { .. } => ApiError::internal("the gate let the send go"),
    }
}

/// A queued send's id names its channel, so its record is looked up in that channel's gate.
pub fn delivery_id(random: [u8; 8], channel: &str) -> String {
    format!("dlv_{}_{channel}", hex::encode(random))
}

pub fn channel_of_delivery(id: &str) -> Option<&str> {
    id.strip_prefix("dlv_")
        .and_then(|rest| rest.get(17..))
        .filter(|c| !c.is_empty())
}

/// The answer to a send, and what follows from it.
#[derive(Debug, Clone, PartialEq)]
pub struct Answer {
    pub status: u16,
    pub body: Value,
    /// Whether the provider was healthy, for the channel's breaker.
    pub provider_ok: bool,
    /// A transient failure: the message to queue, its delay, and its first record.
    pub queued: Option<(QueueMessage, u32, DeliveryRecord)>,
}

/// Who is sending what: the context of an answer.
pub struct Send<'a> {
    pub tenant: &'a str,
    pub channel: &'a str,
    pub kind: ChannelKind,
    pub message: &'a OutboundMessage,
    pub degraded: &'a [String],
    pub request_id: &'a str,
    pub trail: Trail,
}

impl Send<'_> {
    /// The client's answer to the first attempt. `delivery_id` names the send if it is queued.
    pub fn answer(&self, outcome: SendOutcome, delivery_id: String, now: u64) -> Answer {
        let (channel, degraded) = (self.channel, self.degraded);
        match outcome {
            SendOutcome::Sent { message_id } => Answer {
                status: 200,
                body: json!({"status": "sent", "channel": channel, "provider_message_id": message_id, "degraded": degraded}),
                provider_ok: true,
                queued: None,
            },
            SendOutcome::Permanent { status, error } => {
                let e = refusal(self.kind.name(), status, &error);
                Answer {
                    status: e.status(),
                    body: serde_json::from_str(&e.body(self.request_id)).unwrap_or(Value::Null),
                    // A refusal of this message says nothing about the provider's health.
                    provider_ok: status < 500 && status != 401 && status != 403,
                    queued: None,
                }
            }
            SendOutcome::Transient {
                retry_after_s,
                error,
            } => {
                let job = QueueMessage {
                    tenant: self.tenant.to_string(),
                    id: delivery_id.clone(),
                    attempt: 2,
                    last_error: Some(error.clone()),
                    incarnation: None,
                    trail: self.trail.clone(),
                    order: None,
                    job: Job::SendMessage {
                        channel: channel.to_string(),
                        delivery_id: delivery_id.clone(),
                        message: Box::new(self.message.clone()),
                    },
                };
                let delay_s = retry_after_s.unwrap_or(1).clamp(1, 3600) as u32;
                let record = DeliveryRecord {
                    id: delivery_id.clone(),
                    status: DeliveryStatus::Queued,
                    provider_message_id: None,
                    last_error: Some(error),
                    attempts: 1,
                    updated_at: now,
                };
                Answer {
                    status: 202,
                    body: json!({"status": "queued", "channel": channel, "delivery_id": delivery_id, "degraded": degraded}),
                    provider_ok: false,
                    queued: Some((job, delay_s, record)),
                }
            }
        }
    }
}

/// A queued send's attempt: what the consumer does next, and the delivery's new record.
pub fn queued_attempt(
    outcome: SendOutcome,
    kind: ChannelKind,
    delivery_id: &str,
    attempt: u32,
    max_attempts: u32,
    now: u64,
) -> (JobStep, DeliveryRecord) {
    let (step, status, message_id, error) = match outcome {
        SendOutcome::Sent { message_id } => (
            JobStep::Finish,
            DeliveryStatus::Sent,
            Some(message_id),
            None,
        ),
        SendOutcome::Permanent { status, error } => {
            let error = format!("{} {status}: {error}", kind.name());
            (JobStep::Finish, DeliveryStatus::Failed, None, Some(error))
        }
        SendOutcome::Transient {
            retry_after_s,
            error,
        } => {
            let step = retry_or_dead_letter(attempt, max_attempts, retry_after_s, error.clone());
            let status = match step {
                JobStep::DeadLetter { .. } => DeliveryStatus::DeadLettered,
                _ => DeliveryStatus::Queued,
            };
            (step, status, None, Some(error))
        }
    };
    let record = DeliveryRecord {
        id: delivery_id.to_string(),
        status,
        provider_message_id: message_id,
        last_error: error,
        attempts: attempt,
        updated_at: now,
    };
    (step, record)
}

/// A queued send that cannot be attempted (its channel is gone, or no longer renders it).
pub fn unsendable(delivery_id: &str, attempt: u32, why: String, now: u64) -> DeliveryRecord {
    DeliveryRecord {
        id: delivery_id.to_string(),
        status: DeliveryStatus::Failed,
        provider_message_id: None,
        last_error: Some(why),
        attempts: attempt,
        updated_at: now,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message() -> OutboundMessage {
        serde_json::from_value(
            json!({"conversation_id": "16505551234", "type": "text", "text": "hi"}),
        )
        .unwrap()
    }

    fn send<'a>(m: &'a OutboundMessage, degraded: &'a [String]) -> Send<'a> {
        Send {
            tenant: "acme",
            channel: "wa",
            kind: ChannelKind::Whatsapp,
            message: m,
            degraded,
            request_id: "req_1",
            trail: Trail {
                hops: 1,
                trace: None,
            },
        }
    }

    #[test]
    fn a_sent_message_answers_its_provider_id() {
        let m = message();
        let a = send(&m, &[]).answer(
            SendOutcome::Sent {
                message_id: "wamid.1".into(),
            },
            "dlv".into(),
            5,
        );
        assert_eq!((a.status, a.provider_ok), (200, true));
        assert_eq!(a.body["provider_message_id"], "wamid.1");
        assert!(a.queued.is_none());
    }

    #[test]
    fn a_refused_message_is_the_clients_problem_and_not_the_providers_health() {
        let m = message();
        let refused = SendOutcome::Permanent {
            status: 400,
            error: "bad number".into(),
        };
        let a = send(&m, &[]).answer(refused, "dlv".into(), 5);
        assert_eq!((a.status, a.provider_ok), (422, true));
        assert_eq!(a.body["error"]["request_id"], "req_1");
        let creds = SendOutcome::Permanent {
            status: 401,
            error: "token expired".into(),
        };
        let a = send(&m, &[]).answer(creds, "dlv".into(), 5);
        assert_eq!((a.status, a.provider_ok), (502, false));
    }

    #[test]
    fn a_transient_failure_is_queued_as_the_second_attempt() {
        let m = message();
        let degraded = vec!["quick_replies as a numbered list".to_string()];
        let id = delivery_id([7; 8], "wa");
        let later = SendOutcome::Transient {
            retry_after_s: Some(9_000),
            error: "503".into(),
        };
        let a = send(&m, &degraded).answer(later, id.clone(), 5);
        assert_eq!((a.status, a.provider_ok), (202, false));
        assert_eq!(a.body["delivery_id"], id.as_str());
        assert_eq!(a.body["degraded"][0], "quick_replies as a numbered list");
        let (job, delay, record) = a.queued.unwrap();
        assert_eq!((job.attempt, job.trail.hops, delay), (2, 1, 3600));
        assert_eq!(
            (record.status, record.attempts),
            (DeliveryStatus::Queued, 1)
        );
        assert_eq!(channel_of_delivery(&id), Some("wa"));
    }

    #[test]
    fn a_queued_send_retries_until_its_last_attempt_then_is_dead_lettered() {
        let later = || SendOutcome::Transient {
            retry_after_s: None,
            error: "timed out".into(),
        };
        let (step, record) = queued_attempt(later(), ChannelKind::Slack, "d", 3, 8, 1);
        assert!(matches!(step, JobStep::Requeue { .. }));
        assert_eq!(record.status, DeliveryStatus::Queued);
        let (step, record) = queued_attempt(later(), ChannelKind::Slack, "d", 8, 8, 1);
        assert!(
            matches!(step, JobStep::DeadLetter { ref reason } if reason == "timed out (attempt 8 of 8)")
        );
        assert_eq!(record.status, DeliveryStatus::DeadLettered);
        let refused = SendOutcome::Permanent {
            status: 404,
            error: "channel_not_found".into(),
        };
        let (step, record) = queued_attempt(refused, ChannelKind::Slack, "d", 2, 8, 1);
        assert_eq!(step, JobStep::Finish);
        assert_eq!(
            record.last_error.as_deref(),
            Some("slack 404: channel_not_found")
        );
    }

    #[test]
    fn failed_fetches_never_show_the_token_and_never_risk_a_second_send() {
        let e = FetchError::Network(
            "https://api.telegram.org/bot123:SECRET/sendMessage refused".into(),
        );
        let SendOutcome::Transient { error, .. } = fetch_failed(&e, "123:SECRET") else {
            panic!()
        };
        assert!(!error.contains("SECRET"));
        assert!(matches!(
            fetch_failed(&FetchError::TooLarge(1), "t"),
            SendOutcome::Permanent { .. }
        ));
    }

    #[test]
    fn a_channel_sends_600_a_minute_unless_it_says() {
        let mut cfg: ChannelConfig =
            serde_json::from_value(json!({"kind": "telegram", "credentials": {}})).unwrap();
        assert_eq!((limits(&cfg).per_minute, limits(&cfg).per_day), (600, None));
        cfg.rate_limit_per_minute = Some(5);
        assert_eq!(limits(&cfg).per_minute, 5);
    }

    #[test]
    fn keys_must_be_printable_and_bounded() {
        assert_eq!(
            idempotency_key(Some("order-1".into())).unwrap().as_deref(),
            Some("order-1")
        );
        assert!(idempotency_key(Some(String::new())).is_err());
        assert!(idempotency_key(Some("a\nb".into())).is_err());
        assert!(idempotency_key(Some("k".repeat(256))).is_err());
        assert_eq!(idempotency_key(None).unwrap(), None);
    }
}
