//! Relaying a stream to the client after its first content: each upstream chunk is translated
//! as it arrives; at the end the real usage corrects the token estimate and is logged.

use super::attempt::Upstream;
use super::{Job, Meta, Settle};
use crate::core::config::ConfigKey;
use crate::core::llm::pricing::{cost_usd, Price};
use crate::core::llm::Usage;
use crate::core::upstream::LLM_STREAM_MAX_MS;
use crate::edge::durable;
use crate::edge::outbound::within;
use crate::edge::platform::now_ms;
use crate::edge::store;
use futures::Stream;
use serde_json::json;
use worker::Env;

/// The request's cost, if the model has a price in KV.
pub async fn cost(env: &Env, model: &str, usage: Usage) -> Option<f64> {
    let price: Price = store::get_json_cached(env, &ConfigKey::pricing(model))
        .await
        .ok()??;
    Some(cost_usd(&price, usage))
}

/// The usage record of one request: one JSON log line, no content, no keys.
pub fn usage_record(
    meta: &Meta,
    usage: Usage,
    cost: Option<f64>,
    stream: bool,
    failed: Option<&str>,
) -> serde_json::Value {
    json!({
        "provider": meta.target.provider,
        "model": meta.target.model,
        "attempts": meta.attempts,
        "stream": stream,
        "input_tokens": usage.input_tokens,
        "output_tokens": usage.output_tokens,
        "cost_usd": cost,
        "outcome": if failed.is_some() { "failed_midstream" } else { "ok" },
    })
}

/// A stream's usage is known only at its end, after the request's own log line: its own line.
fn log_stream_usage(job: &Job, record: serde_json::Value) {
    let line = json!({"ts": now_ms(), "request_id": job.request_id, "tenant": job.tenant, "llm_usage": record});
    worker::console_log!("{line}");
}

struct State {
    held: Vec<u8>,
    up: Box<Upstream>,
    finished: bool,
    job: Job,
    meta: Meta,
    settle: Option<Settle>,
}

pub fn body(
    job: Job,
    meta: Meta,
    up: Box<Upstream>,
    settle: Settle,
) -> impl Stream<Item = Result<Vec<u8>, worker::Error>> {
    let mut up = up;
    let held = std::mem::take(&mut up.held);
    let state = State {
        held,
        up,
        finished: false,
        job,
        meta,
        settle: Some(settle),
    };
    futures::stream::unfold(state, |mut st| async move {
        loop {
            // The end is accounted (and the conversation saved) before the last bytes go out,
            // so a client that reloads right after the answer finds it.
            if !st.finished && st.up.translator.is_over() {
                st.finished = true;
                wrap_up(&mut st).await;
            }
            let out = std::mem::take(&mut st.held);
            if !out.is_empty() {
                return Some((Ok(out), st));
            }
            if st.finished {
                return None;
            }
            let left = st.up.deadline_ms.saturating_sub(now_ms());
            let idle = st.up.idle_ms;
            let next = within(idle.min(left).max(1), st.up.source.next()).await;
            let t = &mut st.up.translator;
            st.held = match next {
                None if left <= idle => t.abort(&format!(
                    "the stream ran past the gateway's {} min limit",
                    LLM_STREAM_MAX_MS / 60_000
                )),
                None => t.abort(&format!("the provider sent nothing for {idle} ms")),
                Some(None) => t.end(),
                Some(Some(Ok(bytes))) => t.push(&bytes),
                Some(Some(Err(e))) => t.abort(&format!("connection to the provider lost: {e}")),
            };
        }
    })
}

async fn wrap_up(st: &mut State) {
    let t = &st.up.translator;
    let usage = t.usage();
    let failed = t.failed().map(str::to_string);
    let cost = cost(&st.job.env, &st.meta.target.model, usage).await;
    let record = usage_record(&st.meta, usage, cost, true, failed.as_deref());
    log_stream_usage(&st.job, record);
    if let (Some(c), None) = (&st.job.conversation, &failed) {
        let env = &st.job.env;
        if let Err(e) =
            durable::append_exchange(env, &c.object, &c.user_message, t.text(), c.max_history).await
        {
            worker::console_error!("{{\"conversation_append_failed\":{:?}}}", e.message);
        }
    }
    if let Some(mut s) = st.settle.take() {
        s.flush(Some(usage.total())).await;
    }
}
