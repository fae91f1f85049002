//! One attempt at one target: build the upstream request from the plan, send it with the
//! target's timeout, and read what came back (`core::llm::errors` says how a failure counts). A
//! stream is read until its first content so that a failure before it can still fall over to
//! the next target.

use super::LlmCall;
use crate::core::config::document::{open_secret, RecordRef};
use crate::core::config::llm::{KeySource, ProviderKind};
use crate::core::error::ApiError;
use crate::core::llm::cache::Entry;
use crate::core::llm::errors::{broken, failed_attempt, refused_attempt};
use crate::core::llm::routing::{self, AttemptOutcome, Target};
use crate::core::llm::stream::{Options, Translator};
use crate::core::llm::{convert, embeddings, mock, sse, Dialect, Usage};
use crate::core::upstream::{FetchError, StreamClock, Upstream};
use crate::edge::crossings::{BodyReader, Chunk};
use crate::edge::outbound::{exchange, read_body, send};
use crate::edge::platform::{now_ms, random_array};
use crate::edge::store;
use std::collections::VecDeque;
use std::time::Duration;
use worker::Delay;

pub enum Success {
    Json { body: Vec<u8>, usage: Usage },
    Stream(Box<Stream>),
}

/// How a failed attempt ended, and the client's error if it was the last.
pub type Failed = (AttemptOutcome, ApiError);

/// A stream that has produced its first content, with what it produced so far.
pub struct Stream {
    pub held: Vec<u8>,
    pub source: Source,
    pub translator: Translator,
    pub clock: StreamClock,
    /// A replayed stream's usage, as recorded when it was kept (its events may not carry it).
    pub replayed_usage: Option<Usage>,
}

pub enum Source {
    Http(BodyReader),
    /// The mock provider's events, paced like a real model's tokens (a cached stream's, at once).
    Mock(VecDeque<Vec<u8>>, u64),
}

impl Source {
    /// The next chunk, unless `ms` pass first.
    pub async fn next(&mut self, ms: u64) -> Chunk {
        match self {
            Source::Http(s) => s.next(ms).await,
            Source::Mock(events, delay) => {
                let Some(e) = events.pop_front() else {
                    return Chunk::End;
                };
                if *delay > 0 {
                    Delay::from(Duration::from_millis((*delay).min(ms))).await;
                }
                match *delay > ms {
                    true => Chunk::Late,
                    false => Chunk::Bytes(e),
                }
            }
        }
    }
}

fn options(job: &LlmCall) -> Options {
    Options {
        client: job.req.dialect,
        include_usage: job.req.include_usage,
        thinking: job.req.thinking,
        now_s: now_ms() / 1000,
        collect_text: job.keep_text,
    }
}

/// The provider's key, as `Provider::key_source` says where it comes from.
fn api_key(call: &LlmCall, t: &Target) -> Result<Option<String>, ApiError> {
    match call.cfg.providers[&t.provider].key_source() {
        KeySource::Sealed(secret) => {
            let at = RecordRef {
                tenant: &call.tenant,
                record: "llm",
            };
            let field = format!("/providers/{}/api_key", t.provider);
            open_secret(&*store::sealer(&call.env)?, &at, &field, secret).map(Some)
        }
        KeySource::Platform(name) => {
            let secret = call.env.secret(name).ok().map(|s| s.to_string());
            Ok(secret.filter(|s| !s.is_empty()))
        }
        KeySource::None => Ok(None),
    }
}

pub async fn run(job: &LlmCall, t: &Target) -> Result<Success, Failed> {
    if t.kind == ProviderKind::Mock {
        return run_mock(job, t).await;
    }
    let key = api_key(job, t).map_err(|e| (AttemptOutcome::Network, e))?;
    let request = routing::plan(&job.req, t, key.as_deref(), job.anthropic_beta.as_deref())
        .map_err(|e| (AttemptOutcome::Status(400, None), e))?;
    let name = t.key();
    let fetch_failed = |e: FetchError| failed_attempt(&name, t.timeout_ms, &e);
    let timeout = u64::from(t.timeout_ms);
    if !job.req.stream {
        // One deadline for the whole exchange: headers and body.
        let answer = exchange(&request, &job.trail, Upstream::Llm, timeout)
            .await
            .map_err(fetch_failed)?;
        if !(200..300).contains(&answer.status) {
            let wait = retry_wait(|n| answer.header(n).map(str::to_string));
            return Err(refused(job, &name, answer.status, wait, &answer.body));
        }
        return json_answer(job, t.wire(job.req.dialect), answer.body);
    }
    let started = now_ms();
    let resp = send(&request, &job.trail, timeout)
        .await
        .map_err(fetch_failed)?;
    let remaining = timeout.saturating_sub(now_ms() - started).max(1);
    let status = resp.status();
    if !(200..300).contains(&status) {
        let wait = retry_wait(|n| resp.header(n));
        let body = read_body(&resp, Upstream::Llm, remaining)
            .await
            .unwrap_or_default();
        return Err(refused(job, &name, status, wait, &body));
    }
    if !resp
        .header("content-type")
        .is_some_and(|c| c.contains("text/event-stream"))
    {
        return Err(broken(format!(
            "{name} answered a stream request without an event stream"
        )));
    }
    let source = resp
        .into_stream()
        .ok_or_else(|| broken(format!("{name} sent no body")))?;
    first_content(
        job,
        t,
        t.wire(job.req.dialect),
        Source::Http(source),
        remaining,
    )
    .await
}

/// How long a refusing provider asked to be left alone, from its headers.
fn retry_wait(header: impl Fn(&str) -> Option<String>) -> Option<u64> {
    routing::retry_after_ms(
        header("retry-after-ms").as_deref(),
        header("retry-after").as_deref(),
        now_ms() / 1000,
    )
}

/// A provider's refusal (a status other than 2xx): how it counts, and the client's error. The
/// log gets the status and the provider's code, never its text.
fn refused(job: &LlmCall, name: &str, status: u16, wait: Option<u64>, body: &[u8]) -> Failed {
    let (outcome, e, code) = refused_attempt(name, status, wait, &String::from_utf8_lossy(body));
    worker::console_log!(
        "{}",
        serde_json::json!({"request_id": job.request_id, "llm_upstream_error": name, "status": status, "code": code})
    );
    (outcome, e)
}

fn json_answer(job: &LlmCall, upstream: Dialect, text: Vec<u8>) -> Result<Success, Failed> {
    let value = serde_json::from_slice::<serde_json::Value>(&text)
        .map_err(|_| broken("the provider's answer is not JSON".into()))?;
    let (client, usage) =
        convert::client_response(&job.req, upstream, &value, now_ms() / 1000).map_err(broken)?;
    // Same dialect: the provider's bytes go through unchanged.
    let body = match client {
        Some(translated) => translated.to_string().into_bytes(),
        None => text,
    };
    Ok(Success::Json { body, usage })
}

/// Reads a stream until it has content (success), or fails or times out before any.
async fn first_content(
    job: &LlmCall,
    t: &Target,
    upstream: Dialect,
    mut source: Source,
    budget_ms: u64,
) -> Result<Success, Failed> {
    let mut translator = Translator::new(upstream, options(job));
    let mut held = Vec::new();
    let started = now_ms();
    let deadline = started + budget_ms;
    loop {
        let left = deadline.saturating_sub(now_ms()).max(1);
        match source.next(left).await {
            Chunk::Late => {
                return Err(failed_attempt(
                    &t.key(),
                    t.timeout_ms,
                    &FetchError::Timeout(left),
                ))
            }
            Chunk::Bytes(bytes) => held.extend(translator.push(&bytes)),
            Chunk::Failed(e) => held.extend(translator.abort(&format!("connection lost: {e}"))),
            Chunk::End => held.extend(translator.end()),
        }
        if translator.started() {
            return Ok(Success::Stream(Box::new(Stream {
                held,
                source,
                translator,
                clock: StreamClock::started(u64::from(t.timeout_ms), started),
                replayed_usage: None,
            })));
        }
        if translator.failed_before_start().is_some() {
            // What the provider's error event said is its text: not for logs or the client.
            return Err(broken(format!("{} failed before any content", t.key())));
        }
    }
}

/// An answer from the cache, as if `t` had just given it: a JSON body as kept, or the kept
/// events read again through the translator of the client's own dialect.
pub async fn replay(job: &LlmCall, t: &Target, entry: Entry) -> Result<Success, Failed> {
    if !job.req.stream {
        return Ok(Success::Json {
            body: entry.body.into_bytes(),
            usage: entry.usage,
        });
    }
    let events = VecDeque::from([entry.body.into_bytes()]);
    let budget = u64::from(t.timeout_ms);
    let mut success =
        first_content(job, t, job.req.dialect, Source::Mock(events, 0), budget).await?;
    if let Success::Stream(s) = &mut success {
        s.replayed_usage = Some(entry.usage);
    }
    Ok(success)
}

async fn run_mock(job: &LlmCall, t: &Target) -> Result<Success, Failed> {
    let id = hex::encode(random_array::<8>());
    let now_s = now_ms() / 1000;
    if job.req.dialect == Dialect::Embeddings {
        let value = embeddings::mock(&job.req, &t.model);
        return json_answer(job, Dialect::Embeddings, value.to_string().into_bytes());
    }
    // The mock reads chat messages: a Responses request is read as its chat translation.
    let chat;
    let req = match job.req.dialect {
        Dialect::Responses => {
            chat = convert::responses::to_chat(&job.req)
                .map_err(|e| (AttemptOutcome::Status(400, None), e))?;
            &chat
        }
        _ => &job.req,
    };
    if !job.req.stream {
        let value = mock::completion(req, &t.model, &id, now_s);
        return json_answer(job, Dialect::OpenAi, value.to_string().into_bytes());
    }
    let delay = job
        .env
        .var("MOCK_STREAM_DELAY_MS")
        .ok()
        .and_then(|v| v.to_string().parse().ok())
        .unwrap_or(30);
    let events = mock::stream_events(req, &t.model, &id, now_s)
        .into_iter()
        .map(|e| {
            let mut wire = Vec::new();
            sse::encode(&mut wire, None, &e);
            wire
        })
        .collect();
    first_content(
        job,
        t,
        Dialect::OpenAi,
        Source::Mock(events, delay),
        u64::from(t.timeout_ms),
    )
    .await
}
