//! `GET|POST /v1/webhooks/{tenant}/{source}`, as one flow: answer the provider's handshake or
//! probe, verify, normalize, dedupe (one Durable Object round trip that also records the new
//! events as open work), enqueue, and answer the receipt. What each step decides is `ingress`'s;
//! delivery happens in the `events` consumer (`jobs::consume`).

use super::dedupe::{Forget, HandshakeAttempt, SeenMany};
use super::handshake;
use super::ingress::{self, Origin};
use super::normalize::{normalize, unrecognized, Ingress, Unreadable};
use super::verify::SignedRequest;
use crate::core::config::document::{open_secret, RecordRef};
use crate::core::config::seal::Sealer;
use crate::core::error::ApiError;
use crate::core::flow::{Co, Effect};
use crate::core::http::{query_pairs, HttpResponse};
use crate::core::jobs::wire::{prepare, QueueSettings};
use crate::core::objects::protocol::Dedupe;
use crate::core::objects::Object;
use crate::core::platform::QueueName;
use crate::core::platform::RecordKind;
use crate::core::upstream::Trail;
use crate::core::webhook::source::SourceConfig;
use serde_json::json;

/// A webhook request as the route received it.
pub struct Webhook<'a> {
    pub tenant: &'a str,
    pub source: &'a str,
    /// A GET: Meta's subscription handshake, the only GET a provider sends.
    pub handshake: bool,
    /// The URL as the runtime serialized it.
    pub url: &'a str,
    /// Lowercase names.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    pub trail: Trail,
}

pub async fn receive(
    co: Co,
    sealer: &Sealer,
    settings: QueueSettings,
    w: Webhook<'_>,
) -> Result<HttpResponse, ApiError> {
    let (tenant, source) = (w.tenant, w.source);
    let cfg: SourceConfig = co
        .config(&RecordKind::Source.kv_key(tenant, Some(source)))
        .await?
        .ok_or_else(|| ApiError::not_found("unknown tenant or webhook source"))?;
    let record = RecordKind::Source.seal_record(Some(source));
    let at = RecordRef {
        tenant,
        record: &record,
    };
    let dedupe = Object::<Dedupe>::source(tenant, source);

    if w.handshake {
        let token = cfg
            .verify_token
            .as_ref()
            .map(|t| open_secret(sealer, &at, "/verify_token", t))
            .transpose()?;
        let challenge = handshake::challenge(&query_pairs(w.url), token.as_deref())?;
        let matched = challenge.is_some();
        let verdict = co.ask(&dedupe, HandshakeAttempt { matched }).await?;
        let echo = handshake::answer(verdict, challenge.as_deref())?;
        return Ok(HttpResponse::bytes(200, "text/plain", echo.into_bytes()));
    }
    if ingress::is_ssl_check(cfg.kind, &w.body) {
        return HttpResponse::json(200, &json!({"ok": true}));
    }
    let secrets = cfg
        .secrets
        .iter()
        .enumerate()
        .map(|(i, s)| open_secret(sealer, &at, &format!("/secrets/{i}"), s))
        .collect::<Result<Vec<_>, _>>()?;
    let now = co.now();
    let signed_url = ingress::signed_url(cfg.public_url.as_deref(), w.url);
    let inbound = SignedRequest {
        url: &signed_url,
        headers: &w.headers,
        body: &w.body,
        now_s: now / 1000,
    };
    ingress::verify(&cfg, &secrets, &inbound).map_err(|e| ingress::unverified(&e))?;

    let id_header = cfg.hmac.as_ref().and_then(|h| h.id_header.as_deref());
    let events = match normalize(cfg.kind, &inbound, id_header) {
        Ok(Ingress::Challenge(answer)) => return HttpResponse::json(200, &answer),
        Ok(Ingress::Ignored(why)) => return Ok(receipt(&cfg, 0, 0, Some(why))),
        Ok(Ingress::Events(events)) => events,
        Err(Unreadable(why)) => {
            co.log(json!({"webhook_unrecognized": source, "tenant": tenant, "why": why}))
                .await;
            match unrecognized(cfg.kind, &w.body) {
                Ingress::Events(events) => events,
                _ => Vec::new(),
            }
        }
    };
    let origin = Origin {
        tenant,
        source,
        kind: cfg.kind,
        received_at: now / 1000,
        trail: w.trail.clone(),
        ordering_key_expr: cfg.ordering_key_expr.as_deref(),
    };
    let messages = ingress::messages(&origin, events);

    // One round trip marks the ids and records the new events as open work.
    let pending = prepare(&co, QueueName::Events, &messages, 0, settings).await?;
    // Each event with a key takes its key's next position in the same trip.
    let keys = messages.iter().map(ingress::source_ordering_key).collect();
    let bodies = pending
        .iter()
        .map(|p| (p.id.clone(), p.body.clone()))
        .collect();
    let seen = SeenMany {
        ids: messages.into_iter().map(|m| m.id).collect(),
        ttl_ms: ingress::dedupe_window_ms(&cfg),
        pending,
        keys,
    };
    let seen = co.ask(&dedupe, seen).await?;
    if !seen.new_ids.is_empty() {
        let texts = seen.new_bodies(bodies);
        let send = Effect::Send {
            queue: QueueName::Events,
            texts,
            delay_s: 0,
        };
        if let Err(e) = co.run(send).await {
            // Not enqueued: unmark (and close) so the provider's redelivery is accepted, and ask
            // for one.
            let forget = Forget { ids: seen.new_ids };
            if let Err(e) = co.ask(&dedupe, forget).await {
                co.log_error(json!({"dedupe_forget_failed": e.logged()}))
                    .await;
            }
            co.log_error(json!({"enqueue_failed": e.logged()})).await;
            return Err(ingress::not_enqueued());
        }
    }
    Ok(receipt(&cfg, seen.new_ids.len(), seen.duplicates, None))
}

fn receipt(
    cfg: &SourceConfig,
    received: usize,
    duplicates: usize,
    ignored: Option<&str>,
) -> HttpResponse {
    let (content_type, body) = ingress::receipt(cfg.kind, received, duplicates, ignored);
    HttpResponse::bytes(200, content_type, body)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::flow::{drive, Flow, Outcome};
    use crate::core::jobs::order::{Order, SourceOrderingKey};
    use crate::core::objects::ObjectClass;
    use crate::core::testing::{asked, sealer, stored};
    use crate::core::webhook::dedupe::SeenResult;
    use crate::core::webhook::verify::standard;
    use serde_json::Value;

    const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
    const NOW_MS: u64 = 1_700_000_000_000;

    /// A Standard Webhooks delivery of `body`, signed with `secret`, to a world whose dedupe
    /// object finds `new` of its ids new and whose queue works if `queue_up`.
    fn post(
        secret: &str,
        new: bool,
        queue_up: bool,
    ) -> (Result<HttpResponse, ApiError>, Vec<Effect>) {
        post_to(
            json!({"kind": "standard", "secrets": [SECRET]}),
            secret,
            new,
            queue_up,
        )
    }

    /// ... to a source configured as `cfg`; its dedupe object gives each keyed new id position 5.
    fn post_to(
        cfg: Value,
        secret: &str,
        new: bool,
        queue_up: bool,
    ) -> (Result<HttpResponse, ApiError>, Vec<Effect>) {
        let cfg = stored(RecordKind::Source, "t1", Some("app"), cfg);
        let body = br#"{"type":"invoice.paid","id":1}"#.to_vec();
        let key = standard::key(secret).unwrap();
        let headers = vec![
            ("webhook-id".to_string(), "msg_1".to_string()),
            ("webhook-timestamp".into(), (NOW_MS / 1000).to_string()),
            (
                "webhook-signature".into(),
                standard::sign(&key, "msg_1", NOW_MS / 1000, &body),
            ),
        ];
        let w = Webhook {
            tenant: "t1",
            source: "app",
            handshake: false,
            url: "https://gw.example/v1/webhooks/t1/app",
            headers,
            body,
            trail: Trail::default(),
        };
        let sealer = sealer();
        let flow = Flow::new(|co| receive(co, &sealer, QueueSettings::default(), w));
        drive(flow, NOW_MS, |e| match e {
            Effect::Config { .. } => Ok(Outcome::Doc(Some(cfg.clone()))),
            Effect::Ask { body, .. } if body.starts_with(r#"{"seen_many""#) => {
                let cmd: Value = serde_json::from_str(body).unwrap();
                let ids: Vec<String> =
                    serde_json::from_value(cmd["seen_many"]["ids"].clone()).unwrap();
                let keys: Vec<Option<SourceOrderingKey>> =
                    serde_json::from_value(cmd["seen_many"]["keys"].clone()).unwrap();
                let order = ids
                    .iter()
                    .zip(keys)
                    .filter_map(|(i, k)| k.map(|k| (i.clone(), Order::new(k, 5))))
                    .collect();
                let (new_ids, duplicates) = if new { (ids, 0) } else { (vec![], ids.len()) };
                let seen = SeenResult {
                    new_ids,
                    duplicates,
                    order,
                };
                Ok(Outcome::Text(serde_json::to_string(&seen).unwrap()))
            }
            Effect::Send { .. } if !queue_up => Err(ApiError::internal("queue down")),
            _ => Ok(Outcome::Text("null".into())),
        })
    }

    fn json_body(r: &HttpResponse) -> Value {
        serde_json::from_slice(r.body.as_ref().unwrap()).unwrap()
    }

    #[test]
    fn a_verified_event_is_marked_recorded_and_queued_in_one_pass() {
        let (out, seen) = post(SECRET, true, true);
        assert_eq!(
            json_body(&out.unwrap()),
            json!({"received": 1, "duplicates": 0, "ignored": null})
        );
        let marked = &asked(&seen, ObjectClass::Dedupe)[0]["seen_many"];
        assert_eq!(
            marked["pending"].as_array().unwrap().len(),
            1,
            "open work in the same trip"
        );
        let Some(Effect::Send { queue, texts, .. }) =
            seen.iter().find(|e| matches!(e, Effect::Send { .. }))
        else {
            panic!("{seen:?}")
        };
        assert_eq!((*queue, texts.len()), (QueueName::Events, 1));
    }

    #[test]
    fn an_event_with_an_ordering_key_is_queued_with_its_place_in_order() {
        let cfg = json!({"kind": "standard", "secrets": [SECRET], "ordering_key": "data.id"});
        let (out, seen) = post_to(cfg, SECRET, true, true);
        assert_eq!(json_body(&out.unwrap())["received"], 1);
        let marked = &asked(&seen, ObjectClass::Dedupe)[0]["seen_many"];
        assert_eq!(marked["keys"], json!(["app/1"]), "per source");
        let Some(Effect::Send { texts, .. }) =
            seen.iter().find(|e| matches!(e, Effect::Send { .. }))
        else {
            panic!("{seen:?}")
        };
        let sent: Value = serde_json::from_str(&texts[0]).unwrap();
        assert_eq!(sent["order"], json!({"key": "app/1", "n": 5}));
        assert_eq!(sent["job"]["event"]["ordering_key"], "1");
        // Without a key (the standard kind has no default), no order.
        let (_, seen) = post(SECRET, true, true);
        let Some(Effect::Send { texts, .. }) =
            seen.iter().find(|e| matches!(e, Effect::Send { .. }))
        else {
            panic!("{seen:?}")
        };
        assert!(!texts[0].contains(r#""order""#));
    }

    #[test]
    fn a_duplicate_is_counted_and_not_queued() {
        let (out, seen) = post(SECRET, false, true);
        assert_eq!(json_body(&out.unwrap())["duplicates"], 1);
        assert!(!seen.iter().any(|e| matches!(e, Effect::Send { .. })));
    }

    #[test]
    fn events_that_could_not_be_queued_are_unmarked_and_the_provider_asked_to_retry() {
        let (out, seen) = post(SECRET, true, false);
        assert_eq!(out.unwrap_err().status(), 503);
        let asks = asked(&seen, ObjectClass::Dedupe);
        assert!(
            asks.last().unwrap()["forget"]["ids"][0].is_string(),
            "{asks:?}"
        );
    }

    #[test]
    fn a_wrong_signature_is_refused_before_any_object_hears_of_it() {
        let (out, seen) = post("whsec_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", true, true);
        assert_eq!(out.unwrap_err().status(), 401);
        assert!(asked(&seen, ObjectClass::Dedupe).is_empty());
    }
}
