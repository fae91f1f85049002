//! The queues' wire format: messages travel as JSON text (exact for every number, readable in
//! the dashboard), spilled to `PAYLOADS` past the queue's message limit; enqueueing records the
//! message as open work at the same time.

use super::open_work::{grace_ms, open_work_update};
use crate::core::error::ApiError;
use crate::core::jobs::{OpenWork, Pending};
use crate::core::jobs::{QueueMessage, QueueName};
use serde_json::Value;
use wasm_bindgen::JsValue;
use worker::{Env, QueueContentType, RawMessageBuilder, SendMessage};

const INLINE_LIMIT: usize = 96 * 1024;
const SPILL_TTL_S: u64 = 7 * 86_400;
const SPILLED: &str = "spilled_to";

/// A queue body back into its message, fetching it from `PAYLOADS` when it was spilled there.
/// `Ok(None)`: not a message of ours.
pub async fn decode(env: &Env, body: &str) -> std::result::Result<Option<QueueMessage>, ApiError> {
    if let Ok(m) = serde_json::from_str::<QueueMessage>(body) {
        return Ok(Some(m));
    }
    let Some(key) = serde_json::from_str::<Value>(body)
        .ok()
        .and_then(|v| v.get(SPILLED).and_then(Value::as_str).map(String::from))
    else {
        return Ok(None);
    };
    let kv = env
        .kv("PAYLOADS")
        .map_err(|e| ApiError::internal(e.to_string()))?;
    // KV is eventually consistent: a miss right after the write is retried by the platform.
    let text = kv
        .get(&key)
        .text()
        .await
        .map_err(|e| ApiError::internal(e.to_string()))?;
    let text =
        text.ok_or_else(|| ApiError::internal(format!("spilled payload {key} not readable yet")))?;
    serde_json::from_str(&text)
        .map(Some)
        .map_err(|e| ApiError::internal(e.to_string()))
}

/// Messages travel as JSON text: exact for every number (a JS object would lose integers past
/// 2^53, such as Shopify's order ids) and readable in the dashboard. A message over the queue's
/// 128 KB limit (a webhook may carry up to 1 MiB) is kept in the `PAYLOADS` KV namespace and
/// the queue carries its key.
async fn encode(env: &Env, m: &QueueMessage) -> worker::Result<String> {
    let text = serde_json::to_string(m).map_err(|e| worker::Error::RustError(e.to_string()))?;
    if text.len() <= INLINE_LIMIT {
        return Ok(text);
    }
    let key = format!("{}/{}/{}", m.tenant, m.id, m.attempt);
    env.kv("PAYLOADS")?
        .put(&key, text)?
        .expiration_ttl(SPILL_TTL_S)
        .execute()
        .await
        .map_err(|e| worker::Error::RustError(e.to_string()))?;
    Ok(serde_json::json!({ SPILLED: key }).to_string())
}

/// Sends encoded bodies to a queue.
pub async fn send_texts(
    env: &Env,
    binding: &str,
    texts: Vec<String>,
    delay_s: u32,
) -> worker::Result<()> {
    let queue = env.queue(binding)?;
    let raw: Vec<SendMessage<JsValue>> = texts
        .iter()
        .map(|text| {
            let mut b = RawMessageBuilder::new(JsValue::from_str(text));
            if delay_s > 0 {
                b = b.delay_seconds(delay_s);
            }
            b.build_with_content_type(QueueContentType::Text)
        })
        .collect();
    queue.send_raw_batch(raw).await
}

/// Encodes messages for `binding` and the open-work records that go with them: the same body,
/// to be sent again if still unfinished `delay_s` plus the grace period from now.
pub async fn prepare(
    env: &Env,
    queue: QueueName,
    msgs: &[QueueMessage],
    delay_s: u32,
) -> worker::Result<Vec<Pending>> {
    let due_in_ms = u64::from(delay_s) * 1000 + grace_ms(env);
    let mut out = Vec::with_capacity(msgs.len());
    for m in msgs {
        out.push(Pending {
            id: m.id.clone(),
            binding: queue.binding().to_string(),
            body: encode(env, m).await?,
            due_in_ms,
        });
    }
    Ok(out)
}

/// Queues one message (after `delay_s`) on its job's queue and records it as open work, in
/// parallel: the record
/// adds no latency, and only the queue's answer decides the result (the queue copy is the
/// primary). Ingress does not come here: it records new events in the same round trip as their
/// dedupe.
pub async fn enqueue(env: &Env, msg: &QueueMessage, delay_s: u32) -> Result<(), ApiError> {
    let internal = |e: worker::Error| ApiError::internal(e.to_string());
    let queue = QueueName::of(&msg.job);
    let pending = prepare(env, queue, std::slice::from_ref(msg), delay_s)
        .await
        .map_err(internal)?;
    let texts = pending.iter().map(|p| p.body.clone()).collect();
    let cmd = OpenWork {
        track: pending,
        done: vec![],
    };
    let (sent, ()) = futures::join!(
        send_texts(env, queue.binding(), texts, delay_s),
        open_work_update(env, msg, cmd)
    );
    sent.map_err(internal)
}
