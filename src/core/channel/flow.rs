//! The channel routes' flows: `POST /v1/channels/{channel}/messages` and `GET /v1/deliveries/{id}`.
//!
//! A send renders the message (a 422 costs nothing), passes the channel's gate (idempotency, rate
//! limit, breaker: one Durable Object round trip), calls the provider once with a timeout, and
//! answers what `send::Send::answer` makes of it: 200 with the provider's id, the provider's
//! refusal, or 202 with a delivery id while the `deliveries` queue retries. The outcome is
//! recorded in the gate after the response is sent.

use super::outbound::OutboundMessage;
use super::send::{self, attempt, channel_of_delivery, open_token, Send};
use crate::core::channel::config::ChannelConfig;
use crate::core::config::seal::Sealer;
use crate::core::error::ApiError;
use crate::core::flow::{ask_effect, Co, Effect};
use crate::core::http::HttpResponse;
use crate::core::jobs::wire::{enqueue, QueueSettings};
use crate::core::limits::gate::{Begin, BeginCmd, DeliveryQuery, FinishCmd};
use crate::core::objects::protocol::CallGate;
use crate::core::objects::Object;
use crate::core::platform::RecordKind;
use crate::core::upstream::Trail;
use serde_json::Value;

/// One send as the route received it.
pub struct SendRequest<'a> {
    pub tenant: &'a str,
    pub channel: &'a str,
    pub body: Value,
    pub idempotency_key: Option<String>,
    pub request_id: &'a str,
    pub trail: Trail,
    /// Names the delivery if the send is queued.
    pub random: [u8; 8],
}

pub async fn send_message(
    co: Co,
    sealer: &Sealer,
    settings: QueueSettings,
    r: SendRequest<'_>,
) -> Result<HttpResponse, ApiError> {
    let (tenant, channel) = (r.tenant, r.channel);
    let cfg: ChannelConfig = co
        .config(&RecordKind::Channel.kv_key(tenant, Some(channel)))
        .await?
        .ok_or_else(|| ApiError::not_found(format!("no channel `{channel}`")))?;
    let message: OutboundMessage = serde_json::from_value(r.body)
        .map_err(|e| ApiError::validation(format!("invalid message: {e}")))?;
    let idempotency_key = send::idempotency_key(r.idempotency_key)?;
    let token = open_token(sealer, tenant, channel, &cfg)?;
    // Rendered before the gate: a message the provider cannot take costs no round trip.
    let rendered = send::render(&cfg, &token, &message)?;
    let limits = send::limits(&cfg);
    let gate = Object::<CallGate>::channel(tenant, channel);
    let begin = BeginCmd {
        idempotency_key: idempotency_key.clone(),
        limits,
    };
    let probe = match co.ask(&gate, begin).await? {
        Begin::Go { probe } => probe,
        Begin::Replay { status, body } => {
            return Ok(HttpResponse::json(status, &body)?.header("idempotent-replayed", "true"))
        }
        stopped => return Err(send::stopped(stopped, channel)),
    };
    let outcome = attempt(&co, &rendered, &cfg, &token, &r.trail).await;
    let sending = Send {
        tenant,
        channel,
        kind: cfg.kind,
        message: &message,
        degraded: &rendered.degraded,
        request_id: r.request_id,
        trail: r.trail.clone(),
    };
    let id = send::delivery_id(r.random, channel);
    let answer = sending.answer(outcome, id, co.now());
    let mut finish = FinishCmd {
        idempotency_key,
        outcome: Some((limits.breaker, answer.provider_ok)),
        probe,
        status: answer.status,
        body: answer.body.clone(),
        delivery: None,
        ended: None,
    };
    if let Some((job, delay_s, record)) = answer.queued {
        enqueue(&co, &job, delay_s, settings).await?;
        finish.delivery = Some(record);
    }
    // The client's answer does not wait for the gate to hear the outcome.
    co.run(Effect::Later(Box::new(ask_effect(&gate, finish)?)))
        .await?;
    HttpResponse::json(answer.status, &answer.body)
}

/// `GET /v1/deliveries/{id}`: the id names its channel, so only the tenant's own gate is asked.
pub async fn delivery(co: Co, tenant: &str, id: &str) -> Result<HttpResponse, ApiError> {
    let not_found = || ApiError::not_found(format!("no delivery `{id}`"));
    let channel = channel_of_delivery(id).ok_or_else(not_found)?;
    let gate = Object::<CallGate>::channel(tenant, channel);
    let record = co.ask(&gate, DeliveryQuery { id: id.to_string() }).await?;
    HttpResponse::json(200, &record.ok_or_else(not_found)?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::flow::{drive, Flow, Outcome};
    use crate::core::objects::ObjectClass;
    use crate::core::testing::{asked, sealer, stored};
    use crate::core::upstream::UpstreamAnswer;
    use serde_json::json;

    /// One send to a Slack channel whose gate answers `begin` and whose provider answers `status`.
    fn send(
        begin: Begin,
        status: u16,
        key: Option<&str>,
    ) -> (Result<HttpResponse, ApiError>, Vec<Effect>) {
        let cfg = json!({"kind": "slack", "base_url": "https://slack.test", "credentials": {"bot_token": "xoxb-secret"}});
        let cfg = stored(RecordKind::Channel, "t1", Some("sl"), cfg);
        let sealer = sealer();
        let r = SendRequest {
            tenant: "t1",
            channel: "sl",
            body: json!({"conversation_id": "C1", "type": "text", "text": "hi"}),
            idempotency_key: key.map(String::from),
            request_id: "req_1",
            trail: Trail::default(),
            random: [7; 8],
        };
        let flow = Flow::new(|co| send_message(co, &sealer, QueueSettings::default(), r));
        drive(flow, 1_000, |e| match e {
            Effect::Config { .. } => Ok(Outcome::Doc(Some(cfg.clone()))),
            Effect::Ask { body, .. } if body.starts_with(r#"{"begin""#) => {
                Ok(Outcome::Text(serde_json::to_string(&begin).unwrap()))
            }
            Effect::Exchange { .. } => Ok(Outcome::Answer(Ok(UpstreamAnswer {
                status,
                body: br#"{"ok": true, "ts": "1.2"}"#.to_vec(),
                ..Default::default()
            }))),
            _ => Ok(Outcome::Text("null".into())),
        })
    }

    #[test]
    fn a_sent_message_answers_the_providers_id_and_the_gate_hears_of_it_after() {
        let (out, seen) = send(Begin::Go { probe: false }, 200, Some("k1"));
        let resp = out.unwrap();
        assert_eq!(resp.status, 200);
        let body: Value = serde_json::from_slice(resp.body.as_ref().unwrap()).unwrap();
        assert_eq!(body["provider_message_id"], "1.2");
        let Some(Effect::Later(finish)) = seen.last() else {
            panic!("{seen:?}")
        };
        let finish: Value = match &**finish {
            Effect::Ask { body, .. } => serde_json::from_str(body).unwrap(),
            other => panic!("{other:?}"),
        };
        assert_eq!(finish["finish"]["idempotency_key"], "k1");
        assert_eq!(finish["finish"]["status"], 200);
    }

    #[test]
    fn a_transient_failure_is_queued_with_a_delivery_id_that_names_the_channel() {
        let (out, seen) = send(Begin::Go { probe: false }, 503, None);
        let resp = out.unwrap();
        assert_eq!(resp.status, 202);
        let body: Value = serde_json::from_slice(resp.body.as_ref().unwrap()).unwrap();
        let id = body["delivery_id"].as_str().unwrap();
        assert_eq!(channel_of_delivery(id), Some("sl"));
        assert!(
            seen.iter().any(|e| matches!(e, Effect::All(_))),
            "queued: {seen:?}"
        );
        let gate = asked(&seen, ObjectClass::CallGate);
        assert_eq!(
            gate.last().unwrap()["finish"]["delivery"]["status"],
            "queued"
        );
        assert_eq!(
            asked(&seen, ObjectClass::Outbox).len(),
            1,
            "recorded as open work"
        );
    }

    #[test]
    fn a_repeated_key_replays_the_first_answer_and_a_stopped_send_calls_no_one() {
        let replay = Begin::Replay {
            status: 200,
            body: json!({"status": "sent"}),
        };
        let (out, seen) = send(replay, 200, Some("k1"));
        let resp = out.unwrap();
        assert!(resp
            .headers
            .contains(&("idempotent-replayed", "true".into())));
        assert!(!seen.iter().any(|e| matches!(e, Effect::Exchange { .. })));

        let limited = Begin::RateLimited {
            retry_after_s: 7,
            limit: 2,
        };
        let (out, seen) = send(limited, 200, None);
        let e = out.unwrap_err();
        assert_eq!((e.status(), e.retry_after), (429, Some(7)));
        assert!(!seen.iter().any(|e| matches!(e, Effect::Exchange { .. })));
    }

    #[test]
    fn a_delivery_id_that_names_no_channel_is_not_found_without_asking_anyone() {
        let flow = Flow::new(|co| delivery(co, "t1", "dlv_short"));
        let (out, seen) = drive(flow, 0, |_| Ok(Outcome::Text("null".into())));
        assert_eq!(out.unwrap_err().status(), 404);
        assert!(seen.is_empty());
    }
}
