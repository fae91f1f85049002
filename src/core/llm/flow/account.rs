//! What an answer owes once it is known, for JSON and streams alike: its usage record, its
//! usage count and data point, the settlement with the limiter (once: the settlement is taken
//! when closed), and for a JSON answer the cache's copy of what the client was sent (a stream's
//! is kept by `relay`).

use super::limiter::LimiterClient;
use super::{cache_tiers, Cached, Content, Isolate, LlmCall, LogFields, OnAnswer, Served};
use crate::core::error::ApiError;
use crate::core::flow::{Co, Effect};
use crate::core::limits::budget::{usd, Nanos};
use crate::core::limits::limiter::TargetOutcome;
use crate::core::llm::cache::Entry;
use crate::core::llm::catalog::ModelEntry;
use crate::core::llm::guardrails::{walk, Direction};
use crate::core::llm::ledger::{searches_every_call, web_search_calls_in};
use crate::core::llm::pricing::{cost_of, format_nanos, Ending};
use crate::core::llm::routing::Target;
use crate::core::llm::settle::{Settlement, Used};
use crate::core::llm::{Dialect, Usage};
use crate::core::usage::point::point;
use crate::core::usage::{Counters, Dims, Sample};
use serde_json::{json, Value};
use std::rc::Rc;

/// Everything the answer's way out needs.
pub struct Accounting {
    pub target: Target,
    pub attempts: u32,
    pub limit_headers: Vec<(String, String)>,
    pub limiter: LimiterClient,
    /// What the request owes its limiter, until its end settles it.
    pub settlement: Option<Settlement>,
    pub on_answer: Option<OnAnswer>,
    pub cached: Cached,
    /// The budgets this request took past their alert share.
    pub alerts: Option<Value>,
    pub started_ms: u64,
    /// The most the request may use on its target (its input bound there, its output maximum):
    /// what an answer the provider did not count is charged from.
    pub estimate: Usage,
    /// The answering target's catalog entry (its price), read once at admission.
    pub entry: Option<Rc<ModelEntry>>,
    /// The chain's catalog entries admission read (each `None` where it read none).
    pub entries: Vec<Option<Rc<ModelEntry>>>,
}

impl Accounting {
    /// The response head of a 200 with the gateway's headers, then `more`.
    pub fn head(&self, more: &[(&str, &str)]) -> Vec<(String, String)> {
        let mut out = vec![
            (
                "x-gateway-provider".to_string(),
                self.target.provider.clone(),
            ),
            ("x-gateway-model".to_string(), self.target.model.clone()),
            ("x-gateway-attempts".to_string(), self.attempts.to_string()),
        ];
        out.extend(self.limit_headers.iter().cloned());
        out.extend(more.iter().map(|(k, v)| (k.to_string(), v.to_string())));
        if let Some(h) = self.cached.decision.header(self.cached.hit) {
            out.push(("x-gateway-cache".into(), h.into()));
        }
        out
    }

    /// What the breakers of the attempted targets must hear.
    pub fn heard(&mut self, outcomes: Vec<TargetOutcome>) {
        if let Some(s) = self.settlement.as_mut() {
            s.heard(outcomes);
        }
    }

    /// Sends the failed attempts' outcomes now, before a stream's end.
    pub async fn early(&mut self, co: &Co, isolate: &Isolate) {
        if let Some(s) = self.settlement.as_mut() {
            self.limiter.early(co, isolate, s).await;
        }
    }

    /// Closes the request's settlement (once: a second call finds none); what the limiter must
    /// still hear goes now (`wait`) or after the response.
    pub async fn close(&mut self, co: &Co, isolate: &Isolate, used: Used, wait: bool) {
        let Some(settlement) = self.settlement.take() else {
            return;
        };
        let Some(cmd) = self.limiter.close(co, isolate, settlement, used) else {
            return;
        };
        match wait {
            true => self.limiter.tell(co, cmd).await,
            false => self.limiter.tell_later(co, cmd).await,
        }
    }

    /// `usage` with the web searches the provider bills and its count leaves out: a Responses
    /// answer's `web_search_call` items (`responses`: its bytes; a stream counts its own), one
    /// a call for a model that searches on every call.
    pub fn searched(&self, usage: Usage, responses: Option<&[u8]>) -> Usage {
        let every_call = u64::from(searches_every_call(&self.target.catalog));
        usage.with_searches(responses.map_or(0, web_search_calls_in).max(every_call))
    }

    /// What `usage` cost, if the model has a price; an answer from the cache cost nothing.
    pub fn cost(&self, usage: Usage) -> Option<Nanos> {
        match self.cached.hit {
            true => None,
            false => cost_of(self.entry.as_deref()?, &usage),
        }
    }

    /// A kept answer of this request's target.
    pub fn entry(&self, body: String, usage: Usage, ttl_s: u32, now: u64) -> Entry {
        Entry {
            provider: self.target.provider.clone(),
            model: self.target.model.clone(),
            body,
            usage,
            expires_ms: now + u64::from(ttl_s) * 1000,
        }
    }

    /// The usage record of the log line (no content, no keys); an answer from the cache cost
    /// nothing.
    pub fn record(
        &self,
        usage: Usage,
        cost: Option<Nanos>,
        stream: bool,
        outcome: Ending,
    ) -> Value {
        let mut record = json!({
            "provider": self.target.provider,
            "model": self.target.model,
            "attempts": self.attempts,
            "stream": stream,
            "input_tokens": usage.input_tokens,
            "output_tokens": usage.output_tokens,
            "cost_usd": cost.map(usd),
            "outcome": outcome.name(),
        });
        if let Some(tokens) = classes(&usage) {
            record["tokens"] = tokens;
        }
        if self.cached.hit {
            record["cached"] = json!(true);
        }
        if let Some(a) = &self.alerts {
            record["budget_alerts"] = a.clone();
        }
        record
    }

    /// What the answer adds to the tenant's usage besides the request itself (counted under
    /// the same target): the provider's tokens, the cost, whether the cache answered.
    pub fn usage_sample(&self, job: &LlmCall, usage: Usage, cost: Option<Nanos>) -> Sample {
        // An answer from the cache used no provider tokens.
        let usage = match self.cached.hit {
            true => Usage::default(),
            false => usage,
        };
        Sample {
            dims: Dims {
                hour: 0,
                family: job.family,
                key: job.key.as_ref().map(|k| k.id.clone()),
                provider: Some(self.target.provider.clone()),
                model: Some(self.target.model.clone()),
                subject: None,
            },
            counters: Counters {
                input_tokens: usage.input_tokens,
                output_tokens: usage.output_tokens,
                cached: u64::from(self.cached.hit),
                cost_nanos: cost.unwrap_or(0),
                fresh_input_tokens: usage.input_tokens.saturating_sub(
                    usage
                        .cache_read_tokens
                        .saturating_add(usage.cache_write_tokens),
                ),
                cache_read_tokens: usage.cache_read_tokens,
                cache_write_tokens: usage.cache_write_tokens,
                reasoning_tokens: usage.reasoning_tokens,
                media_tokens: usage.media_tokens(),
                ..Counters::default()
            },
        }
    }

    /// The end of a stream's accounting (known only then, after the request's own log line):
    /// its usage line, its settlement, its usage count and data point.
    pub async fn account_stream(
        &mut self,
        co: &Co,
        isolate: &Isolate,
        job: &LlmCall,
        usage: Usage,
        outcome: Ending,
    ) {
        let usage = self.searched(usage, None);
        let cost = self.cost(usage);
        let record = self.record(usage, cost, true, outcome);
        let findings = job.guard.borrow().as_ref().and_then(|g| g.findings());
        let mut line = json!({"ts": co.now(), "request_id": job.request_id, "tenant": job.tenant, "llm_usage": record});
        if let Some(f) = findings {
            line["guardrails"] = f;
        }
        if let Some(k) = &job.key {
            line["key"] = json!(k.logged());
        }
        if let Some(t) = &job.trail.trace {
            line["trace_id"] = json!(t.trace_id);
        }
        co.log(line).await;
        let used = Used::Answer {
            tokens: usage.total(),
            cost_nanos: cost,
        };
        self.close(co, isolate, used, true).await;
        let sample = self.usage_sample(job, usage, cost);
        let latency_ms = co.now().saturating_sub(self.started_ms);
        let p = point(&job.tenant, &sample.dims, 200, latency_ms, &sample.counters);
        let _ = co.run(Effect::Point(p)).await;
        co.count(&job.tenant, sample.encode()).await;
    }
}

/// The usage record's `tokens`: the classes of the input and output that are not zero (none:
/// a plain usage's record is as it was).
fn classes(u: &Usage) -> Option<Value> {
    let all = [
        ("cache_read", u.cache_read_tokens),
        ("cache_write", u.cache_write_tokens),
        ("cache_write_1h", u.cache_write_1h_tokens),
        ("reasoning", u.reasoning_tokens),
        ("audio_input", u.audio_input_tokens),
        ("audio_output", u.audio_output_tokens),
        ("image_input", u.image_input_tokens),
        ("image_output", u.image_output_tokens),
        ("web_search_requests", u.web_search_requests),
    ];
    let known: serde_json::Map<String, Value> = all
        .into_iter()
        .filter(|(_, n)| *n > 0)
        .map(|(k, n)| (k.to_string(), json!(n)))
        .collect();
    (!known.is_empty()).then_some(Value::Object(known))
}

/// A whole answer to the client: under the answer guardrails, kept by the cache as sent,
/// priced, and settled (a target that failed first has its breaker hear of it before the
/// client does).
pub async fn json(
    co: &Co,
    isolate: &Isolate,
    job: &LlmCall,
    answer: &mut Accounting,
    body: Vec<u8>,
    usage: Usage,
    log: &mut LogFields,
) -> Result<Served, ApiError> {
    let any_failure = answer
        .settlement
        .as_ref()
        .is_some_and(Settlement::any_failure);
    let usage = usage.or_estimated(answer.estimate, body.len());
    let responses = (job.req.dialect == Dialect::Responses).then_some(body.as_slice());
    let usage = answer.searched(usage, responses);
    let guarded = guard_answer(job, body, log);
    // What the client is sent is kept; a blocked answer is not.
    if let (Some((key, ttl_s, kv)), Ok(body)) = (answer.cached.store(), &guarded) {
        let text = String::from_utf8_lossy(body).into_owned();
        let entry = answer.entry(text, usage, ttl_s, co.now());
        cache_tiers::put(co, isolate, &job.tenant, key, &entry, ttl_s, kv).await;
    }
    let cost = answer.cost(usage);
    let cost_header = cost.map(format_nanos);
    let mut more = vec![("content-type", "application/json")];
    if let Some(c) = &cost_header {
        more.push(("x-gateway-cost-usd", c));
    }
    let headers = answer.head(&more);
    log.usage = Some(answer.record(usage, cost, false, Ending::Ok));
    log.used = Some(answer.usage_sample(job, usage, cost).counters);
    let used = Used::Answer {
        tokens: usage.total(),
        cost_nanos: cost,
    };
    answer.close(co, isolate, used, any_failure).await;
    Ok(Served {
        status: 200,
        headers,
        body: Content::Bytes(guarded?),
    })
}

/// A whole answer under the response guardrails: as it came when none act on answers, else
/// redacted (re-encoded), or refused naming the detector. The findings go to the log line.
fn guard_answer(job: &LlmCall, body: Vec<u8>, log: &mut LogFields) -> Result<Vec<u8>, ApiError> {
    let mut guard = job.guard.borrow_mut();
    let Some(g) = guard.as_mut().filter(|g| g.acts_on(Direction::Response)) else {
        return Ok(body);
    };
    let mut value: Value =
        serde_json::from_slice(&body).map_err(|_| ApiError::internal("answer not JSON"))?;
    let checked = walk::answer(g, job.req.dialect, &mut value);
    log.guardrails = g.findings();
    checked.map_err(|b| b.error(Direction::Response))?;
    Ok(serde_json::to_vec(&value).unwrap_or_default())
}
