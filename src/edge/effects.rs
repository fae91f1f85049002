//! Performs what core's flows ask for (`core::flow::Effect`) on Workers, and drives a flow from
//! its start to its output: resume it with the time, perform the effect it hands out, resume it
//! with the outcome, until it is done.

use super::crossings::{self, BodyReader, Pipe};
use super::durable;
use super::outbound::{exchange, send};
use super::platform::now_ms;
use super::respond::{internal, unavailable, Outgoing, Reply};
use super::store;
use crate::core::error::{ApiError, ErrorKind};
use crate::core::flow::{Content, Effect, Flow, Outcome, Served, Step};
use crate::core::upstream::{Chunk, StreamHead, StreamId};
use crate::core::usage::Sample;
use crate::core::webhook::event_log::{LogEntry, GATHER_MS};
use crate::core::webhook::health::disable_all;
use futures::future::{join_all, LocalBoxFuture};
use serde_json::Value;
use std::cell::RefCell;
use std::collections::HashMap;
use std::time::Duration;
use wasm_bindgen::{JsCast, JsValue};
use worker::{Cache, Context, Delay, Env, ResponseBuilder};
use worker::{QueueContentType, RawMessageBuilder, SendMessage};

thread_local! {
    /// What flows keep in this isolate between requests (`Effect::Remember`): OAuth tokens.
    static MEMORY: RefCell<HashMap<String, String>> = RefCell::new(HashMap::new());
}

/// Where effects are performed: the bindings, and the request's context for work that outlives
/// the response (none in a queue consumer, which waits for everything).
#[derive(Clone, Copy)]
pub struct Platform<'a> {
    pub env: &'a Env,
    pub ctx: Option<&'a Context>,
}

/// A value that may be missing.
fn text(value: Option<String>) -> Outcome {
    value.map_or(Outcome::Doc(None), Outcome::Text)
}

/// Runs `flow` to its end.
pub async fn drive<T>(p: Platform<'_>, flow: Flow<'_, T>) -> Result<T, ApiError> {
    drive_with(p, &mut Io::default(), flow).await
}

/// Runs `flow` to its end with `io`: the bodies it opened (which outlive it in `io`, for a
/// flow that goes on reading them) and the client's body it writes, if any.
pub async fn drive_with<T>(
    p: Platform<'_>,
    io: &mut Io,
    mut flow: Flow<'_, T>,
) -> Result<T, ApiError> {
    let mut outcome = None;
    loop {
        match flow.resume(outcome.take(), now_ms()) {
            Step::Done(out) => return out,
            Step::Do(effect) => {
                outcome = Some(match effect {
                    Effect::OpenStream { .. }
                    | Effect::Read { .. }
                    | Effect::Cancel(_)
                    | Effect::Write { .. }
                    | Effect::Relay { .. } => io.perform(effect).await,
                    effect => perform(p, effect).await,
                })
            }
        }
    }
}

/// The bodies a flow reads chunk by chunk, and the client's body it writes. A body dropped
/// before its end is cancelled.
#[derive(Default)]
pub struct Io {
    streams: Vec<Option<BodyReader>>,
    out: Option<Pipe>,
}

impl Io {
    /// The client's body, for a flow that writes it.
    pub fn writing(&mut self, out: Pipe) {
        self.out = Some(out);
    }

    async fn perform(&mut self, effect: Effect) -> Result<Outcome, ApiError> {
        Ok(match effect {
            Effect::OpenStream {
                req,
                trail,
                deadline_ms,
            } => Outcome::StreamHead(match send(&req, &trail, deadline_ms).await {
                Ok(answer) => {
                    let (status, headers) = (answer.status(), answer.headers());
                    self.streams.push(answer.into_stream());
                    let stream = StreamId(self.streams.len() as u32 - 1);
                    Ok(StreamHead {
                        status,
                        headers,
                        stream,
                    })
                }
                Err(e) => Err(e),
            }),
            // A body cancelled or never opened is a flow's bug, not an answer's end nor the
            // client leaving.
            Effect::Read { stream, within_ms } => {
                Outcome::Chunk(match reader(&mut self.streams, stream) {
                    Some(r) => r.next(within_ms).await,
                    None => Chunk::Failed("no such body".into()),
                })
            }
            Effect::Cancel(stream) => {
                if let Some(slot) = self.streams.get_mut(stream.0 as usize) {
                    slot.take();
                }
                Outcome::Done
            }
            Effect::Write { bytes, within_ms } => {
                let out = client(&self.out)?;
                out.write(&bytes, within_ms).await.map_err(|e| gone(&e))?;
                Outcome::Done
            }
            Effect::Relay {
                bytes,
                stream,
                within_ms,
            } => {
                let out = client(&self.out)?;
                let Some(r) = reader(&mut self.streams, stream) else {
                    return Ok(Outcome::Chunk(Chunk::Failed("no such body".into())));
                };
                match r.relay(out, &bytes, within_ms).await {
                    Some(chunk) => Outcome::Chunk(chunk),
                    None => return Err(gone("it took nothing in time, or left")),
                }
            }
            _ => return Err(internal("not an effect of a body")),
        })
    }
}

fn reader(streams: &mut [Option<BodyReader>], stream: StreamId) -> Option<&mut BodyReader> {
    streams.get_mut(stream.0 as usize).and_then(Option::as_mut)
}

/// The client's body, once the response went out with one.
fn client(out: &Option<Pipe>) -> Result<&Pipe, ApiError> {
    out.as_ref().ok_or_else(|| internal("no body to write"))
}

fn gone(why: &str) -> ApiError {
    ApiError::new(ErrorKind::Unavailable, format!("the client is gone: {why}"))
}

// Boxed and non-generic, so that it exists once in the binary whatever the flow.
fn perform<'a>(p: Platform<'a>, effect: Effect) -> LocalBoxFuture<'a, Result<Outcome, ApiError>> {
    let env = p.env;
    Box::pin(async move {
        match effect {
            Effect::Config { key, cached: true } => {
                let doc = store::get_cached(env, &key).await?;
                return Ok(doc.map_or(Outcome::Doc(None), Outcome::Shared));
            }
            Effect::Config { key, cached: false } => {
                return Ok(Outcome::Doc(store::get_json(env, &key).await?))
            }
            Effect::ListConfig { prefix, cached } => {
                let keys = match cached {
                    true => store::list_cached(env, &prefix).await?,
                    false => store::list(env, &prefix).await?,
                };
                return Ok(Outcome::Keys(keys));
            }
            Effect::KvGet { ns, key } => {
                let kv = env.kv(ns.binding()).map_err(internal)?;
                return Ok(text(kv.get(&key).text().await.map_err(unavailable)?));
            }
            Effect::KvList { ns, prefix } => {
                return Ok(Outcome::Names(
                    store::list_in(env, ns.binding(), &prefix).await?,
                ))
            }
            Effect::Recall(key) => return Ok(text(MEMORY.with(|m| m.borrow().get(&key).cloned()))),
            Effect::CacheGet(url) => {
                let hit = Cache::default().get(url, false).await.ok().flatten();
                return Ok(Outcome::Doc(match hit {
                    Some(mut r) => r.json::<Value>().await.ok(),
                    None => None,
                }));
            }
            Effect::Ask { class, name, body } => {
                return Ok(Outcome::Text(durable::send(env, class, &name, body).await?))
            }
            Effect::Exchange {
                req,
                trail,
                upstream,
                deadline_ms,
            } => {
                return Ok(Outcome::Answer(
                    exchange(&req, &trail, upstream, deadline_ms).await,
                ))
            }
            Effect::All(effects) => {
                let all = join_all(effects.into_iter().map(|e| perform(p, e))).await;
                return Ok(Outcome::All(all));
            }
            Effect::PutConfig { key, text } => store::put_text(env, &key, text).await?,
            Effect::DeleteConfig(key) => store::delete(env, &key).await?,
            Effect::KvPut {
                ns,
                key,
                text,
                ttl_s,
            } => {
                let put = env.kv(ns.binding()).map_err(internal)?;
                let put = put.put(&key, text).map_err(internal)?;
                let put = match ttl_s {
                    Some(ttl_s) => put.expiration_ttl(ttl_s),
                    None => put,
                };
                put.execute().await.map_err(unavailable)?
            }
            Effect::KvDelete { ns, key } => {
                let kv = env.kv(ns.binding()).map_err(internal)?;
                kv.delete(&key).await.map_err(unavailable)?
            }
            Effect::Remember { key, text } => {
                MEMORY.with(|m| m.borrow_mut().insert(key, text));
            }
            Effect::ForgetPrefix(prefix) => {
                MEMORY.with(|m| m.borrow_mut().retain(|k, _| !k.starts_with(&prefix)))
            }
            Effect::CachePut { url, ttl_s, text } => {
                let max_age = format!("max-age={ttl_s}");
                let headers = crossings::headers([
                    ("content-type", "application/json"),
                    ("cache-control", max_age.as_str()),
                ])
                .ok_or_else(|| internal("a cache header the runtime refuses"))?;
                let resp = ResponseBuilder::new()
                    .with_headers(headers)
                    .fixed(text.into_bytes());
                Cache::default().put(url, resp).await.map_err(internal)?
            }
            Effect::Send {
                queue,
                texts,
                delay_s,
            } => send_texts(env, queue.binding(), texts, delay_s)
                .await
                .map_err(unavailable)?,
            Effect::Later(effect) => {
                let Some(ctx) = p.ctx else {
                    return perform(p, *effect).await;
                };
                let env = env.clone();
                ctx.wait_until(async move {
                    let p = Platform {
                        env: &env,
                        ctx: None,
                    };
                    if let Err(e) = perform(p, *effect).await {
                        let line = serde_json::json!({"later_failed": e.logged()});
                        worker::console_error!("{line}");
                    }
                });
            }
            Effect::Count { tenant, sample } => {
                let sample = Sample::decode(&sample)?;
                match p.ctx {
                    Some(ctx) => {
                        if let Some(send) = super::usage::count(env, &tenant, sample) {
                            ctx.wait_until(send);
                        }
                    }
                    // A queue batch sends what it counted when it ends.
                    None => super::usage::tally(env, &tenant, sample),
                }
            }
            Effect::Record { tenant, entry } => {
                super::event_log::record(tenant, LogEntry::decode(&entry)?);
                // Outside a queue batch, nothing would send it later: a request sends what the
                // isolate holds a moment later, one send for every record of that moment.
                if let (Some(ctx), true) = (p.ctx, super::event_log::schedule()) {
                    let env = env.clone();
                    ctx.wait_until(async move {
                        Delay::from(Duration::from_millis(GATHER_MS)).await;
                        send_event_log(&env).await
                    });
                }
            }
            Effect::Point(point) => super::usage::write_point(env, point),
            Effect::OpenStream { .. }
            | Effect::Read { .. }
            | Effect::Cancel(_)
            | Effect::Write { .. }
            | Effect::Relay { .. } => return Err(internal("a body's effect outside its driver")),
            Effect::Sleep(ms) => Delay::from(Duration::from_millis(ms)).await,
            Effect::Log(line) => worker::console_log!("{line}"),
            Effect::LogError(line) => worker::console_error!("{line}"),
        }
        Ok(Outcome::Done)
    })
}

/// A flow's answer: its body whole, or written by its relay after the response went out (in
/// `waitUntil`, on `io`'s bodies); a relay's failure is logged under `failed`.
pub fn served(p: Platform<'_>, mut io: Io, reply: Served, failed: &'static str) -> Reply {
    let mut out = Outgoing::new(reply.status);
    for (k, v) in &reply.headers {
        out.append(k, v);
    }
    let relay = match reply.body {
        Content::Bytes(bytes) => return Ok(out.bytes(bytes)),
        Content::Relay(relay) => relay,
    };
    let (body, pipe) = crossings::pipe();
    io.writing(pipe);
    let env = p.env.clone();
    let here = p.ctx.ok_or_else(|| internal("a relay outside a request"))?;
    // The same request's context: the relay's own after-work (usage sends) extends it.
    let js: &JsValue = here.as_ref().as_ref();
    let ctx = Context::new(js.clone().unchecked_into());
    here.wait_until(async move {
        let p = Platform {
            env: &env,
            ctx: Some(&ctx),
        };
        if let Err(e) = drive_with(p, &mut io, relay).await {
            let line = serde_json::json!({"ts": now_ms(), failed: e.logged()});
            worker::console_error!("{line}");
        }
    });
    Ok(out.stream(body))
}

/// Sends the event log this isolate holds, then disables the destinations it found failing.
pub async fn send_event_log(env: &Env) {
    let off = super::event_log::send(env).await;
    let flow = Flow::new(|co| async move { disable_all(&co, &off).await });
    let _ = drive(Platform { env, ctx: None }, flow).await;
}

/// Sends encoded bodies to a queue, as text.
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
