//! The widget's chat when the tenant's own chat service answers instead of a model
//! (`chat_url`): the visitor's windows in the tenant's `RateLimiter`, the service's
//! `{"reply", "quick_replies"}`, the exchange kept in the conversation, and the reply as the same
//! SSE stream a model's answer would be.

use super::retention::Owner;
use super::{service_answer, service_answer_events, service_request, visitor_refused};
use super::{AppendCmd, Turn};
use crate::core::error::ApiError;
use crate::core::flow::Co;
use crate::core::http::HttpResponse;
use crate::core::limits::breaker::BreakerPolicy;
use crate::core::limits::limiter::{AdmitCmd, Check};
use crate::core::llm::admission::LimitKind;
use crate::core::objects::protocol::{Conversation, RateLimiter};
use crate::core::objects::Object;
use crate::core::upstream::Trail;
use crate::core::upstream::Upstream;

const CHAT_SERVICE_MS: u64 = 30_000;

/// One visitor message for the tenant's chat service.
pub struct Forward<'a> {
    pub tenant: &'a str,
    pub url: &'a str,
    pub conversation_id: &'a str,
    pub message: &'a str,
    pub history: Vec<Turn>,
    pub visitor_checks: Vec<(LimitKind, Check)>,
    pub max_history: u32,
    /// Whose the conversation is, and how long it is kept.
    pub owner: Owner,
    pub trail: Trail,
}

pub async fn forward(co: Co, f: Forward<'_>) -> Result<HttpResponse, ApiError> {
    // No targets are claimed: the policy only has to be a valid one.
    let cmd = AdmitCmd {
        checks: f.visitor_checks.into_iter().map(|(_, c)| c).collect(),
        ..AdmitCmd::claim(vec![], 0, BreakerPolicy::policy(None))
    };
    if !co
        .ask(&Object::<RateLimiter>::llm(f.tenant), cmd)
        .await?
        .allowed
    {
        return Err(visitor_refused());
    }
    let request = service_request(f.url, f.conversation_id, f.message, &f.history);
    let answer = co
        .exchange(request, &f.trail, Upstream::ChatService, CHAT_SERVICE_MS)
        .await;
    let text = answer.as_ref().map(|a| a.text()).unwrap_or_default();
    let reply = service_answer(answer.as_ref().map(|a| (a.status, text.as_str())))?;
    let kept = AppendCmd::exchange(f.message, &reply, f.max_history, f.owner);
    let conversation = Object::<Conversation>::of(f.tenant, f.conversation_id);
    co.ask(&conversation, kept).await?;
    let events = service_answer_events(&reply);
    Ok(HttpResponse::bytes(
        200,
        "text/event-stream; charset=utf-8",
        events,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::flow::{drive, Effect, Flow, Outcome};
    use crate::core::limits::limiter::Admitted;
    use crate::core::objects::ObjectClass;
    use crate::core::testing::asked;
    use crate::core::upstream::UpstreamAnswer;
    use serde_json::Value;

    fn forward_with(allowed: bool, service: &str) -> (Result<HttpResponse, ApiError>, Vec<Effect>) {
        let f = Forward {
            tenant: "t1",
            url: "https://bot.example/chat",
            conversation_id: "c1",
            message: "hi",
            history: vec![],
            visitor_checks: vec![],
            max_history: 20,
            owner: Owner {
                tenant: "t1".into(),
                incarnation: "i1".into(),
                retention_ms: 1000,
            },
            trail: Trail::default(),
        };
        let admitted: Admitted = serde_json::from_value(serde_json::json!({
            "allowed": allowed, "decisions": [], "target": null, "retry_at_ms": null, "closed": [],
        }))
        .unwrap();
        drive(Flow::new(|co| forward(co, f)), 0, |e| match e {
            Effect::Ask { body, .. } if body.starts_with(r#"{"admit""#) => {
                Ok(Outcome::Text(serde_json::to_string(&admitted).unwrap()))
            }
            Effect::Exchange { .. } => Ok(Outcome::Answer(Ok(UpstreamAnswer {
                status: 200,
                body: service.as_bytes().to_vec(),
                ..Default::default()
            }))),
            _ => Ok(Outcome::Text(r#"{"turns": []}"#.into())),
        })
    }

    #[test]
    fn the_services_reply_is_kept_and_streamed_like_a_models() {
        let (out, seen) = forward_with(true, r#"{"reply": "Hello!"}"#);
        let resp = out.unwrap();
        assert!(String::from_utf8_lossy(resp.body.as_ref().unwrap()).contains("Hello!"));
        let kept: Vec<Value> = asked(&seen, ObjectClass::Conversation);
        assert_eq!(kept[0]["append"]["turns"][1]["content"], "Hello!");
    }

    #[test]
    fn a_visitor_over_its_windows_reaches_no_service() {
        let (out, seen) = forward_with(false, r#"{"reply": "x"}"#);
        assert_eq!(out.unwrap_err().status(), 429);
        assert!(!seen.iter().any(|e| matches!(e, Effect::Exchange { .. })));
    }

    #[test]
    fn a_service_answer_without_a_reply_is_an_upstream_error_and_nothing_is_kept() {
        let (out, seen) = forward_with(true, r#"{"oops": 1}"#);
        assert_eq!(out.unwrap_err().status(), 502);
        assert!(asked(&seen, ObjectClass::Conversation).is_empty());
    }
}
