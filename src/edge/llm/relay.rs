//! The answer of a target that succeeded, to the client: a JSON body at once, or a stream relayed
//! chunk by chunk after its first content (each upstream chunk translated as it arrives). Either
//! way the real usage then corrects the token estimate, is priced and logged, and the limiter is
//! settled; a stream's end also calls the `on_answer` hook.

use super::attempt::{Stream, Success};
use super::limiter::Limiter;
use super::{cache, Cached, LlmCall, OnAnswer};
use crate::core::error::ApiError;
use crate::core::limits::budget::nanos;
use crate::core::limits::limiter::SettleCmd;
use crate::core::llm::cache::{Entry, Recorder};
use crate::core::llm::guardrails::stream::StreamGuard;
use crate::core::llm::guardrails::{walk, Direction, Guard, TextKind};
use crate::core::llm::pricing::{cost_usd, format_usd, usage_record, Outcome, Price};
use crate::core::llm::routing::Target;
use crate::core::llm::settle::{Settlement, Used};
use crate::core::llm::Usage;
use crate::core::platform::ConfigKey;
use crate::core::usage::point::point;
use crate::core::usage::{Counters, Dims, Sample};
use crate::edge::crossings::{self, Chunk, Pipe};
use crate::edge::platform::now_ms;
use crate::edge::respond::{Outgoing, Reply};
use crate::edge::{store, usage, Call};
use serde_json::json;
use std::rc::Rc;
use worker::Env;

/// Everything the answer's way out needs.
pub struct Answer {
    pub job: LlmCall,
    pub target: Target,
    pub attempts: u32,
    pub limit_headers: Vec<(String, String)>,
    pub limiter: Limiter,
    /// What the request owes its limiter, until its end settles it.
    pub settlement: Option<Settlement>,
    pub on_answer: Option<OnAnswer>,
    pub cached: Cached,
    /// The budgets this request took past their alert share.
    pub alerts: Option<serde_json::Value>,
    /// When the request arrived (a stream's data point has its whole duration).
    pub started_ms: u64,
    /// The most the request may use on its target (its input bound there, its output maximum):
    /// what an answer the provider did not count is charged from.
    pub estimate: Usage,
}

/// The model's price, if it has one in KV (through the isolate cache).
pub async fn price(env: &Env, model: &str) -> Option<Rc<Price>> {
    store::get_shared::<Price>(env, &ConfigKey::pricing(model))
        .await
        .ok()?
}

/// The request's cost, if the model has a price.
async fn cost(env: &Env, model: &str, usage: Usage) -> Option<f64> {
    Some(cost_usd(&*price(env, model).await?, usage))
}

impl Answer {
    /// A 200 with the gateway's headers, then `more`.
    fn response(&self, more: &[(&str, &str)]) -> Outgoing {
        let mut out = Outgoing::new(200)
            .with("x-gateway-provider", &self.target.provider)
            .with("x-gateway-model", &self.target.model)
            .with("x-gateway-attempts", &self.attempts.to_string());
        for (k, v) in self
            .limit_headers
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
        {
            out.append(k, v);
        }
        for (k, v) in more {
            out.append(k, v);
        }
        if let Some(h) = self.cached.decision.header(self.cached.hit) {
            out.append("x-gateway-cache", h);
        }
        out
    }

    /// A kept answer of this request's target.
    fn entry(&self, body: String, usage: Usage, ttl_s: u32) -> Entry {
        Entry {
            provider: self.target.provider.clone(),
            model: self.target.model.clone(),
            body,
            usage,
            expires_ms: now_ms() + u64::from(ttl_s) * 1000,
        }
    }

    /// The usage record of the log line; an answer from the cache cost nothing.
    fn record(
        &self,
        usage: Usage,
        cost: Option<f64>,
        stream: bool,
        outcome: Outcome,
    ) -> serde_json::Value {
        let mut record = usage_record(&self.target, self.attempts, usage, cost, stream, outcome);
        if self.cached.hit {
            record["cached"] = json!(true);
        }
        if let Some(a) = &self.alerts {
            record["budget_alerts"] = a.clone();
        }
        record
    }

    /// What the answer adds to the tenant's usage besides the request itself (the router counts
    /// that, under the same target): the provider's tokens, the cost, whether the cache answered.
    fn usage_sample(&self, usage: Usage, cost: Option<f64>) -> Sample {
        // An answer from the cache used no provider tokens.
        let usage = if self.cached.hit {
            Usage::default()
        } else {
            usage
        };
        Sample {
            dims: Dims {
                hour: 0,
                family: self.job.family,
                key: self.job.key.as_ref().map(|k| k.id.clone()),
                provider: Some(self.target.provider.clone()),
                model: Some(self.target.model.clone()),
                subject: None,
            },
            counters: Counters {
                input_tokens: usage.input_tokens,
                output_tokens: usage.output_tokens,
                cached: u64::from(self.cached.hit),
                cost_nanos: cost.map_or(0, nanos),
                ..Counters::default()
            },
        }
    }

    /// A target that failed first has its breaker hear of it before the client does.
    pub async fn send(mut self, call: &mut Call, success: Success) -> Reply {
        let any_failure = self
            .settlement
            .as_ref()
            .is_some_and(Settlement::any_failure);
        call.llm_target = Some((self.target.provider.clone(), self.target.model.clone()));
        match success {
            Success::Json { body, usage } => {
                let usage = usage.or_estimated(self.estimate, body.len());
                let guarded = self.guard_answer(call, body);
                // What the client is sent is kept; a blocked answer is not.
                if let (Some((key, ttl_s, kv)), Ok(body)) = (self.cached.store(), &guarded) {
                    let entry =
                        self.entry(String::from_utf8_lossy(body).into_owned(), usage, ttl_s);
                    let (env, tenant, key) = (
                        self.job.env.clone(),
                        self.job.tenant.clone(),
                        key.to_string(),
                    );
                    call.ctx.wait_until(async move {
                        cache::put(&env, &tenant, &key, &entry, ttl_s, kv).await
                    });
                }
                let cost = match self.cached.hit {
                    true => None,
                    false => cost(&self.job.env, &self.target.model, usage).await,
                };
                let cost_header = cost.map(format_usd);
                let mut more = vec![("content-type", "application/json")];
                if let Some(c) = &cost_header {
                    more.push(("x-gateway-cost-usd", c));
                }
                let out = self.response(&more);
                // The usage record goes into the request's own log line.
                let record = self.record(usage, cost, false, Outcome::Ok);
                call.usage = Some(record);
                // Counted with the request, by the router.
                call.llm_used = Some(self.usage_sample(usage, cost).counters);
                let used = Used::Answer {
                    tokens: usage.total(),
                    cost_usd: cost,
                };
                if let Some(cmd) = self.settle(used) {
                    let limiter = self.limiter.clone();
                    match any_failure {
                        true => limiter.tell(cmd).await,
                        false => call.ctx.wait_until(async move { limiter.tell(cmd).await }),
                    }
                }
                Ok(out.bytes(guarded?))
            }
            Success::Stream(stream) => {
                if let Some(s) = self.settlement.as_mut() {
                    // The failed attempts now; the token correction waits for the stream's end.
                    self.limiter.early(s).await;
                }
                let out = self.response(&[
                    ("content-type", "text/event-stream; charset=utf-8"),
                    ("cache-control", "no-cache"),
                ]);
                // Its figures are known at its end: its data point is written then.
                call.point_later = true;
                let (body, pipe) = crossings::pipe();
                call.ctx.wait_until(self.pump(stream, pipe));
                Ok(out.stream(body))
            }
        }
    }

    /// Pushes the stream to the client: the held bytes at once, then each upstream chunk
    /// translated as it arrives, until the end or the client leaves. Runs after the response
    /// (`wait_until`), writing into the body the response already carries.
    async fn pump(mut self, mut up: Box<Stream>, pipe: Pipe) {
        let acts = |g: &Option<Guard>| g.as_ref().is_some_and(|g| g.acts_on(Direction::Response));
        let mut filter =
            acts(&self.job.guard.borrow()).then(|| StreamGuard::new(self.job.req.dialect));
        let first = std::mem::take(&mut up.held);
        // A miss keeps the events the client was sent (after the answer guardrails).
        let mut recorder = self.cached.store().map(|_| Recorder::default());
        let mut held = self.guarded(&mut filter, first);
        if let Some(r) = recorder.as_mut() {
            r.push(&held);
        }
        let mut over = false;
        let mut keep = None;
        loop {
            // The end is accounted (and the hook called) before the last bytes go out, so a
            // client that reloads right after the answer finds it. An answer the guardrails
            // blocked ends there.
            let blocked = filter.as_ref().is_some_and(|f| f.blocked().is_some());
            if !over && (up.translator.is_over() || blocked) {
                over = true;
                self.wrap_up(&up, blocked).await;
                let done = up.translator.done();
                keep = recorder.take().and_then(|r| r.finish(done, blocked));
            }
            if !held.is_empty() && pipe.write(&std::mem::take(&mut held)).await.is_err() {
                // The client is gone: the provider's stream is cancelled with `up`, and the
                // request is charged what it used so far.
                if !over {
                    self.abandoned(&up).await;
                }
                return;
            }
            if over {
                // Kept after the last bytes went out: the client does not wait for the cache.
                if let (Some(events), Some((key, ttl_s, kv))) = (keep, self.cached.store()) {
                    let entry = self.entry(events, up.translator.usage(), ttl_s);
                    let job = &self.job;
                    cache::put(&job.env, &job.tenant, key, &entry, ttl_s, kv).await;
                }
                return;
            }
            let waited_from = now_ms();
            let next = up.source.next(up.clock.wait_ms(waited_from)).await;
            let t = &mut up.translator;
            let out = match next {
                Chunk::Late => t.abort(&up.clock.expired(waited_from)),
                Chunk::End => t.end(),
                Chunk::Bytes(bytes) => t.push(&bytes),
                Chunk::Failed(e) => t.abort(&format!("connection to the provider lost: {e}")),
            };
            held = self.guarded(&mut filter, out);
            if let Some(r) = recorder.as_mut() {
                r.push(&held);
            }
        }
    }

    /// Closes the request's settlement (once: a second call finds none): what the limiter must
    /// still hear, if anything.
    fn settle(&mut self, used: Used) -> Option<SettleCmd> {
        let settlement = self.settlement.take()?;
        self.limiter.close(settlement, used)
    }

    /// The client's events through the response guardrails, if any act on answers.
    fn guarded(&self, filter: &mut Option<StreamGuard>, events: Vec<u8>) -> Vec<u8> {
        let mut guard = self.job.guard.borrow_mut();
        let (Some(f), Some(g)) = (filter.as_mut(), guard.as_mut()) else {
            return events;
        };
        f.push(g, &events)
    }

    /// A whole answer under the response guardrails: as it came when none act on answers, else
    /// redacted (re-encoded), or refused naming the detector. The findings go to the log line.
    fn guard_answer(&self, call: &mut Call, body: Vec<u8>) -> Result<Vec<u8>, ApiError> {
        let mut guard = self.job.guard.borrow_mut();
        let Some(g) = guard.as_mut().filter(|g| g.acts_on(Direction::Response)) else {
            return Ok(body);
        };
        let mut value: serde_json::Value =
            serde_json::from_slice(&body).map_err(|_| ApiError::internal("answer not JSON"))?;
        let checked = walk::answer(g, self.job.req.dialect, &mut value);
        call.guardrails = g.findings();
        checked.map_err(|b| b.error(Direction::Response))?;
        Ok(value.to_string().into_bytes())
    }

    /// The end of a stream's accounting (known only then, after the request's own log line):
    /// its usage line, its settlement, its usage count and data point.
    async fn account(&mut self, usage: Usage, outcome: Outcome) {
        let cost = match self.cached.hit {
            true => None,
            false => cost(&self.job.env, &self.target.model, usage).await,
        };
        let record = self.record(usage, cost, true, outcome);
        let findings = self.job.guard.borrow().as_ref().and_then(Guard::findings);
        let mut line = json!({"ts": now_ms(), "request_id": self.job.request_id, "tenant": self.job.tenant, "llm_usage": record});
        if let Some(f) = findings {
            line["guardrails"] = f;
        }
        if let Some(k) = &self.job.key {
            line["key"] = json!(k.logged());
        }
        if let Some(t) = &self.job.trail.trace {
            line["trace_id"] = json!(t.trace_id);
        }
        worker::console_log!("{line}");
        let used = Used::Answer {
            tokens: usage.total(),
            cost_usd: cost,
        };
        if let Some(cmd) = self.settle(used) {
            self.limiter.tell(cmd).await;
        }
        // Already after the response: a send this made due runs here.
        let sample = self.usage_sample(usage, cost);
        let latency_ms = now_ms().saturating_sub(self.started_ms);
        let p = point(
            &self.job.tenant,
            &sample.dims,
            200,
            latency_ms,
            &sample.counters,
        );
        usage::write_point(&self.job.env, p);
        if let Some(send) = usage::count(&self.job.env, &self.job.tenant, sample) {
            send.await;
        }
    }

    /// The client left before the stream ended: what the provider produced so far is charged
    /// (its own count where it sent one, else estimated from the text relayed).
    async fn abandoned(&mut self, up: &Stream) {
        let usage = match up.replayed_usage {
            Some(u) => u,
            None => up
                .translator
                .charged_usage(self.estimate, self.job.req.thinking),
        };
        self.account(usage, Outcome::ClientGone).await;
    }

    /// A stream's end: its usage line, its settlement, and the `on_answer` hook.
    async fn wrap_up(&mut self, up: &Stream, blocked: bool) {
        let t = &up.translator;
        let usage = up
            .replayed_usage
            .unwrap_or_else(|| t.charged_usage(self.estimate, self.job.req.thinking));
        let outcome = match t.failed().is_some() || blocked {
            true => Outcome::FailedMidstream,
            false => Outcome::Ok,
        };
        self.account(usage, outcome).await;
        if let (Some(hook), Outcome::Ok) = (self.on_answer.take(), outcome) {
            // Kept as the client saw it: redacted where the guardrails redacted.
            let text = match self.job.guard.borrow_mut().as_mut() {
                Some(g) if g.acts_on(Direction::Response) => {
                    g.as_seen(Direction::Response, TextKind::Text, t.text())
                }
                _ => t.text().to_string(),
            };
            hook(text).await;
        }
    }
}
