//! A stream after its first content, as a flow of its own driven after the response went out:
//! the held bytes at once, then each upstream chunk translated as it arrives and passed through
//! the answer guardrails, until the end or the client leaves. The end is accounted (and the
//! `on_answer` effect performed) before the last bytes go out, so that a client that reloads
//! right after the answer finds it; the cache keeps the events the client was sent.

use super::account::Accounting;
use super::attempt::Stream;
use super::{cache_tiers, Isolate, LlmCall};
use crate::core::error::ApiError;
use crate::core::flow::Co;
use crate::core::llm::cache::Recorder;
use crate::core::llm::guardrails::stream::StreamGuard;
use crate::core::llm::guardrails::{Direction, Guard, TextKind};
use crate::core::llm::pricing::Ending;
use crate::core::upstream::Chunk;
use serde_json::json;
use std::rc::Rc;

pub async fn pump(
    co: Co,
    isolate: Rc<Isolate>,
    job: Rc<LlmCall>,
    mut answer: Accounting,
    mut up: Box<Stream>,
) -> Result<(), ApiError> {
    let acts = |g: &Option<Guard>| g.as_ref().is_some_and(|g| g.acts_on(Direction::Response));
    let mut filter = acts(&job.guard.borrow()).then(|| StreamGuard::new(job.req.dialect));
    let first = std::mem::take(&mut up.held);
    // A miss keeps the events the client was sent (after the answer guardrails).
    let mut recorder = answer.cached.store().map(|_| Recorder::default());
    let mut held = guarded(&job, &mut filter, first);
    if let Some(r) = recorder.as_mut() {
        r.push(&held);
    }
    let mut over = false;
    let mut keep = None;
    loop {
        let blocked = filter.as_ref().is_some_and(|f| f.blocked().is_some());
        if !over && (up.translator.is_over() || blocked) {
            over = true;
            wrap_up(&co, &isolate, &job, &mut answer, &up, blocked).await;
            let done = up.translator.done();
            keep = recorder.take().and_then(|r| r.finish(done, blocked));
        }
        // A client that stops reading is given as long as the provider is (`StreamClock`). Until
        // the end, the next chunk is read while the last one is written.
        let waited_from = co.now();
        let within_ms = up.clock.wait_ms(waited_from);
        let held_now = std::mem::take(&mut held);
        let next = match (over, held_now.is_empty()) {
            (false, true) => Ok(up.source.next(&co, within_ms).await),
            (false, false) => up.source.pass(&co, held_now, within_ms).await,
            (true, true) => Ok(Chunk::End),
            (true, false) => co.write(held_now, within_ms).await.map(|_| Chunk::End),
        };
        let Ok(next) = next else {
            // The client is gone, or stopped reading: the provider's stream is let go, and the
            // request is charged what it used so far.
            if !over {
                let usage = match up.replayed_usage {
                    Some(u) => u,
                    None => up
                        .translator
                        .charged_usage(answer.estimate, job.req.thinking),
                };
                answer
                    .account_stream(&co, &isolate, &job, usage, Ending::ClientGone)
                    .await;
            }
            up.source.cancel(&co).await;
            return Ok(());
        };
        if over {
            // Kept after the last bytes went out: the client does not wait for the cache.
            if let (Some(events), Some((key, ttl_s, kv))) = (keep, answer.cached.store()) {
                let entry = answer.entry(events, up.translator.usage(), ttl_s, co.now());
                cache_tiers::put(&co, &isolate, &job.tenant, key, &entry, ttl_s, kv).await;
            }
            return Ok(());
        }
        let t = &mut up.translator;
        let out = match next {
            Chunk::Late => t.abort(&up.clock.expired(waited_from)),
            Chunk::End => t.end(),
            Chunk::Bytes(bytes) => t.push(&bytes),
            Chunk::Failed(e) => t.abort(&format!("connection to the provider lost: {e}")),
        };
        held = guarded(&job, &mut filter, out);
        if let Some(r) = recorder.as_mut() {
            r.push(&held);
        }
    }
}

/// The client's events through the response guardrails, if any act on answers.
fn guarded(job: &LlmCall, filter: &mut Option<StreamGuard>, events: Vec<u8>) -> Vec<u8> {
    let mut guard = job.guard.borrow_mut();
    let (Some(f), Some(g)) = (filter.as_mut(), guard.as_mut()) else {
        return events;
    };
    f.push(g, &events)
}

/// A stream's end: its accounting, and the `on_answer` effect with the text as the client saw
/// it (redacted where the guardrails redacted).
async fn wrap_up(
    co: &Co,
    isolate: &Isolate,
    job: &LlmCall,
    answer: &mut Accounting,
    up: &Stream,
    blocked: bool,
) {
    let t = &up.translator;
    let usage = up
        .replayed_usage
        .unwrap_or_else(|| t.charged_usage(answer.estimate, job.req.thinking));
    let outcome = match t.failed().is_some() || blocked {
        true => Ending::FailedMidstream,
        false => Ending::Ok,
    };
    answer
        .account_stream(co, isolate, job, usage, outcome)
        .await;
    if let (Some(hook), Ending::Ok) = (answer.on_answer.take(), outcome) {
        let text = match job.guard.borrow_mut().as_mut() {
            Some(g) if g.acts_on(Direction::Response) => {
                g.as_seen(Direction::Response, TextKind::Text, t.text())
            }
            _ => t.text().to_string(),
        };
        let kept = match hook(text) {
            Ok(effect) => co.run(effect).await,
            Err(e) => Err(e),
        };
        if let Err(e) = kept {
            let line = json!({"request_id": job.request_id, "on_answer_failed": e.logged()});
            co.log_error(line).await;
        }
    }
}
