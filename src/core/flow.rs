//! Flows: a route's or a consumer's whole conversation with the platform, written as plain async
//! code that performs no I/O. Whenever a flow needs the platform (a KV read, a Durable Object, a
//! fetch, a queue, a pause) it hands out an `Effect` and waits; the shell performs the effect and
//! resumes the flow with its `Outcome` and the time. Nothing else can wake a flow, so it is a state
//! machine the shell polls (as quinn polls quinn-proto), and tests drive it natively by scripting
//! the outcomes.
//!
//! The runtime sits below every domain: an effect names the platform's things
//! (`core::platform`, a Durable Object's class) and carries text, bytes or an upstream request;
//! what a domain hands the shell (a usage sample, an event log entry) it encodes itself. A flow
//! takes each outcome typed, from `Co`'s methods.

use crate::core::error::ApiError;
use crate::core::objects::{Class, Command, Object, ObjectClass};
use crate::core::platform::{ConfigKey, DataPoint, Kv, QueueName};
use crate::core::upstream::{
    Chunk, FetchError, OutboundRequest, StreamHead, StreamId, Trail, Upstream, UpstreamAnswer,
};
use serde::de::DeserializeOwned;
use serde_json::Value;
use std::cell::{Cell, RefCell};
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll, Waker};

/// What a flow asks the platform to do.
#[derive(Debug, Clone, PartialEq)]
pub enum Effect {
    /// A document from `CONFIG` (`Outcome::Doc`); `cached`: through the isolate's cache.
    Config {
        key: ConfigKey,
        cached: bool,
    },
    /// Writes a document to `CONFIG` (and evicts it from the isolate's cache).
    PutConfig {
        key: ConfigKey,
        text: String,
    },
    DeleteConfig(ConfigKey),
    /// Every `CONFIG` key under a prefix (`Outcome::Keys`); `cached`: through the isolate's
    /// cache, which a write under the prefix evicts.
    ListConfig {
        prefix: ConfigKey,
        cached: bool,
    },
    /// A value of a KV namespace other than `CONFIG` (`Outcome::Text`, or `Doc(None)`).
    KvGet {
        ns: Kv,
        key: String,
    },
    /// Writes a value, kept `ttl_s` if given.
    KvPut {
        ns: Kv,
        key: String,
        text: String,
        ttl_s: Option<u64>,
    },
    KvDelete {
        ns: Kv,
        key: String,
    },
    /// Every key under a prefix (`Outcome::Names`).
    KvList {
        ns: Kv,
        prefix: String,
    },
    /// A value kept in this isolate's memory between requests (`Outcome::Text`, or `Doc(None)`).
    Recall(String),
    Remember {
        key: String,
        text: String,
    },
    /// Forgets every value under a prefix from this isolate's memory.
    ForgetPrefix(String),
    /// A response kept in the data center's cache for `url` (`Outcome::Doc`).
    CacheGet(String),
    /// Keeps a JSON document in the data center's cache for `ttl_s`.
    CachePut {
        url: String,
        ttl_s: u32,
        text: String,
    },
    /// One Durable Object round trip: the command as sent, the answer as text (`Outcome::Text`).
    Ask {
        class: ObjectClass,
        name: String,
        body: String,
    },
    /// One exchange with a third party: the request carrying the trail (marked as one more
    /// hop, in the trace), its answer read under `upstream`'s byte cap, all within
    /// `deadline_ms` (`Outcome::Answer`).
    Exchange {
        req: OutboundRequest,
        trail: Trail,
        upstream: Upstream,
        deadline_ms: u64,
    },
    /// Sends a request carrying the trail and waits for its answer's head only, within
    /// `deadline_ms`; no redirect is followed (`Outcome::StreamHead`). The body is the flow's to
    /// read (`Read`) until it ends, is cancelled, or the flow ends.
    OpenStream {
        req: OutboundRequest,
        trail: Trail,
        deadline_ms: u64,
    },
    /// The next chunk of an opened body, unless `within_ms` pass first (`Outcome::Chunk`).
    Read {
        stream: StreamId,
        within_ms: u64,
    },
    /// Cancels an opened body the flow will not read to its end.
    Cancel(StreamId),
    /// Bytes of the client's body, once the response went out with a body to write (a relay's);
    /// an error when the client is gone, or took nothing for `within_ms` (the body is then
    /// aborted: a client that stops reading holds nothing open).
    Write {
        bytes: Vec<u8>,
        within_ms: u64,
    },
    /// `Write` and `Read` at once, under one deadline: the bytes to the client while the next
    /// chunk of `stream` is read (`Outcome::Chunk`; an error when the client is gone). A relay
    /// waits once a chunk instead of twice.
    Relay {
        bytes: Vec<u8>,
        stream: StreamId,
        within_ms: u64,
    },
    /// A data point for the deployment's analytics dataset, if it binds one.
    Point(DataPoint),
    /// Encoded messages onto a queue, delivered after `delay_s`.
    Send {
        queue: QueueName,
        texts: Vec<String>,
        delay_s: u32,
    },
    /// Several effects at once (`Outcome::All`, in the same order).
    All(Vec<Effect>),
    /// An effect performed after the response has gone out; its failure is only logged (where
    /// nothing runs after the response, a queue batch, it is performed at once).
    Later(Box<Effect>),
    Sleep(u64),
    /// Adds a usage sample, as `usage::Sample::encode` wrote it, to the tenant's usage (this
    /// isolate's tally; `Outcome::Done`).
    Count {
        tenant: String,
        sample: String,
    },
    /// Adds an entry, as `webhook::event_log::LogEntry::encode` wrote it, to the tenant's event
    /// log (sent when the queue batch ends; `Outcome::Done`).
    Record {
        tenant: String,
        entry: String,
    },
    /// A log line (a JSON document; never a secret or upstream text).
    Log(String),
    /// An error log line.
    LogError(String),
}

/// What the platform answered to an effect.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    Done,
    Doc(Option<Value>),
    /// A document from the isolate's cache, shared: a flow decodes it without copying it.
    Shared(Rc<Value>),
    Keys(Vec<ConfigKey>),
    Names(Vec<String>),
    Text(String),
    Answer(Result<UpstreamAnswer, FetchError>),
    StreamHead(Result<StreamHead, FetchError>),
    Chunk(Chunk),
    All(Vec<Result<Outcome, ApiError>>),
}

/// The response: its head, and its body whole or written by a relay after it went out.
pub struct Served {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Content,
}

pub enum Content {
    Bytes(Vec<u8>),
    /// A stream: the flow that writes it (`Effect::Write`), driven after the response went out.
    Relay(Flow<'static, ()>),
}

/// A flow's handle on the platform: the effects it may wait for, and the time it was resumed at.
#[derive(Clone, Default)]
pub struct Co(Rc<Slot>);

#[derive(Default)]
struct Slot {
    effect: RefCell<Option<Effect>>,
    outcome: RefCell<Option<Result<Outcome, ApiError>>>,
    now: Cell<u64>,
}

/// An effect handed out, then its outcome taken back in.
struct Waiting {
    co: Co,
    effect: Option<Effect>,
}

impl Future for Waiting {
    type Output = Result<Outcome, ApiError>;

    fn poll(mut self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<Self::Output> {
        if let Some(effect) = self.effect.take() {
            *self.co.0.effect.borrow_mut() = Some(effect);
            return Poll::Pending;
        }
        match self.co.0.outcome.borrow_mut().take() {
            Some(outcome) => Poll::Ready(outcome),
            None => Poll::Pending,
        }
    }
}

fn unexpected(effect: &str, outcome: &Outcome) -> ApiError {
    ApiError::internal(format!("the shell answered {effect} with {outcome:?}"))
}

impl Co {
    /// When the flow was last resumed (epoch ms).
    pub fn now(&self) -> u64 {
        self.0.now.get()
    }

    // Private: a flow takes each effect's outcome typed, from the methods below.
    async fn perform(&self, effect: Effect) -> Result<Outcome, ApiError> {
        let co = self.clone();
        Waiting {
            co,
            effect: Some(effect),
        }
        .await
    }

    /// Performs an effect whose outcome carries nothing.
    pub async fn run(&self, effect: Effect) -> Result<(), ApiError> {
        self.perform(effect).await.map(drop)
    }

    /// A configuration document through the isolate's cache.
    pub async fn config<T: DeserializeOwned>(
        &self,
        key: &ConfigKey,
    ) -> Result<Option<T>, ApiError> {
        self.document(key, true).await
    }

    /// A configuration document as JSON through the isolate's cache, shared: the same `Rc` for
    /// as long as the cache keeps the document.
    pub async fn config_shared(&self, key: &ConfigKey) -> Result<Option<Rc<Value>>, ApiError> {
        let effect = Effect::Config {
            key: key.clone(),
            cached: true,
        };
        match self.perform(effect).await? {
            Outcome::Doc(doc) => Ok(doc.map(Rc::new)),
            Outcome::Shared(v) => Ok(Some(v)),
            other => Err(unexpected("a config read", &other)),
        }
    }

    /// A configuration document as KV has it now (admin reads before writes).
    pub async fn config_fresh<T: DeserializeOwned>(
        &self,
        key: &ConfigKey,
    ) -> Result<Option<T>, ApiError> {
        self.document(key, false).await
    }

    async fn document<T: DeserializeOwned>(
        &self,
        key: &ConfigKey,
        cached: bool,
    ) -> Result<Option<T>, ApiError> {
        let effect = Effect::Config {
            key: key.clone(),
            cached,
        };
        match self.perform(effect).await? {
            Outcome::Doc(None) => Ok(None),
            Outcome::Doc(Some(v)) => T::deserialize(&v).map(Some),
            Outcome::Shared(v) => T::deserialize(&*v).map(Some),
            other => return Err(unexpected("a config read", &other)),
        }
        .map_err(|e| {
            ApiError::internal(format!("stored document {} is invalid: {e}", key.as_str()))
        })
    }

    /// Every `CONFIG` key under `prefix`.
    pub async fn list(&self, prefix: &ConfigKey) -> Result<Vec<ConfigKey>, ApiError> {
        self.listing(prefix, false).await
    }

    /// `list` through the isolate's cache, for the hot path (a tenant's destinations).
    pub async fn list_cached(&self, prefix: &ConfigKey) -> Result<Vec<ConfigKey>, ApiError> {
        self.listing(prefix, true).await
    }

    async fn listing(&self, prefix: &ConfigKey, cached: bool) -> Result<Vec<ConfigKey>, ApiError> {
        let prefix = prefix.clone();
        match self.perform(Effect::ListConfig { prefix, cached }).await? {
            Outcome::Keys(keys) => Ok(keys),
            other => Err(unexpected("a config listing", &other)),
        }
    }

    /// A value of a KV namespace.
    pub async fn kv_get(&self, ns: Kv, key: &str) -> Result<Option<String>, ApiError> {
        let effect = Effect::KvGet {
            ns,
            key: key.to_string(),
        };
        match self.perform(effect).await? {
            Outcome::Text(text) => Ok(Some(text)),
            Outcome::Doc(None) => Ok(None),
            other => Err(unexpected("a KV read", &other)),
        }
    }

    /// Every key of a KV namespace under `prefix`.
    pub async fn kv_list(&self, ns: Kv, prefix: &str) -> Result<Vec<String>, ApiError> {
        let effect = Effect::KvList {
            ns,
            prefix: prefix.to_string(),
        };
        match self.perform(effect).await? {
            Outcome::Names(names) => Ok(names),
            other => Err(unexpected("a KV listing", &other)),
        }
    }

    /// Deletes every key of a KV namespace under `prefix`.
    pub async fn kv_delete_prefix(&self, ns: Kv, prefix: &str) -> Result<(), ApiError> {
        for key in self.kv_list(ns, prefix).await? {
            self.run(Effect::KvDelete { ns, key }).await?;
        }
        Ok(())
    }

    /// A value this isolate remembers.
    pub async fn recall(&self, key: &str) -> Option<String> {
        match self.perform(Effect::Recall(key.to_string())).await {
            Ok(Outcome::Text(text)) => Some(text),
            _ => None,
        }
    }

    /// Keeps `value` in this isolate's memory under `key`.
    pub async fn remember<T: serde::Serialize>(&self, key: &str, value: &T) {
        if let Ok(text) = serde_json::to_string(value) {
            let key = key.to_string();
            let _ = self.perform(Effect::Remember { key, text }).await;
        }
    }

    /// The JSON document the data center's cache keeps for `url`; a cache that cannot be read
    /// is a miss.
    pub async fn cache_get(&self, url: &str) -> Option<Value> {
        match self.perform(Effect::CacheGet(url.to_string())).await {
            Ok(Outcome::Doc(hit)) => hit,
            _ => None,
        }
    }

    /// Sends `cmd` to `object` and decodes its answer.
    pub async fn ask<K: Class, C: Command<K>>(
        &self,
        object: &Object<K>,
        cmd: C,
    ) -> Result<C::Answer, ApiError> {
        let effect = ask_effect(object, cmd)?;
        match self.perform(effect).await? {
            Outcome::Text(text) => serde_json::from_str(&text).map_err(|e| {
                ApiError::internal(format!("{:?} answered unreadably: {e}", K::CLASS))
            }),
            other => Err(unexpected("an object's command", &other)),
        }
    }

    /// One exchange with a third party (see `Effect::Exchange`).
    pub async fn exchange(
        &self,
        req: OutboundRequest,
        trail: &Trail,
        upstream: Upstream,
        deadline_ms: u64,
    ) -> Result<UpstreamAnswer, FetchError> {
        let effect = Effect::Exchange {
            req,
            trail: trail.clone(),
            upstream,
            deadline_ms,
        };
        match self.perform(effect).await {
            Ok(Outcome::Answer(answer)) => answer,
            Ok(other) => Err(FetchError::Network(format!("no answer: {other:?}"))),
            Err(e) => Err(FetchError::Network(e.message)),
        }
    }

    /// Sends `req` and waits for its answer's head (see `Effect::OpenStream`).
    pub async fn open_stream(
        &self,
        req: OutboundRequest,
        trail: &Trail,
        deadline_ms: u64,
    ) -> Result<StreamHead, FetchError> {
        let effect = Effect::OpenStream {
            req,
            trail: trail.clone(),
            deadline_ms,
        };
        match self.perform(effect).await {
            Ok(Outcome::StreamHead(opened)) => opened,
            Ok(other) => Err(FetchError::Network(format!("no answer: {other:?}"))),
            Err(e) => Err(FetchError::Network(e.message)),
        }
    }

    /// The next chunk of an opened body, unless `within_ms` pass first.
    pub async fn read(&self, stream: StreamId, within_ms: u64) -> Chunk {
        match self.perform(Effect::Read { stream, within_ms }).await {
            Ok(Outcome::Chunk(chunk)) => chunk,
            Ok(other) => Chunk::Failed(format!("no chunk: {other:?}")),
            Err(e) => Chunk::Failed(e.message),
        }
    }

    /// Bytes to the client, unless it takes nothing for `within_ms`; `Err`: it is gone.
    pub async fn write(&self, bytes: Vec<u8>, within_ms: u64) -> Result<(), ApiError> {
        self.run(Effect::Write { bytes, within_ms }).await
    }

    /// Bytes to the client while the next chunk of `stream` is read (`Effect::Relay`); `Err`:
    /// the client is gone.
    pub async fn relay(
        &self,
        bytes: Vec<u8>,
        stream: StreamId,
        within_ms: u64,
    ) -> Result<Chunk, ApiError> {
        let relay = Effect::Relay {
            bytes,
            stream,
            within_ms,
        };
        match self.perform(relay).await? {
            Outcome::Chunk(chunk) => Ok(chunk),
            other => Err(unexpected("a relayed chunk", &other)),
        }
    }

    /// Several effects whose outcomes carry nothing, at once; each result in the order given.
    pub async fn all(&self, effects: Vec<Effect>) -> Result<Vec<Result<(), ApiError>>, ApiError> {
        match self.perform(Effect::All(effects)).await? {
            Outcome::All(outcomes) => Ok(outcomes.into_iter().map(|o| o.map(drop)).collect()),
            other => Err(unexpected("several effects", &other)),
        }
    }

    pub async fn sleep(&self, ms: u64) {
        let _ = self.perform(Effect::Sleep(ms)).await;
    }

    /// Adds an encoded usage sample to `tenant`'s usage (see `Effect::Count`).
    pub async fn count(&self, tenant: &str, sample: String) {
        let tenant = tenant.to_string();
        let _ = self.perform(Effect::Count { tenant, sample }).await;
    }

    /// Records an encoded entry in the tenant's event log (see `Effect::Record`); a failure is
    /// the shell's to log.
    pub async fn record(&self, tenant: &str, entry: String) {
        let tenant = tenant.to_string();
        let _ = self.perform(Effect::Record { tenant, entry }).await;
    }

    pub async fn log(&self, line: Value) {
        let _ = self.perform(Effect::Log(line.to_string())).await;
    }

    pub async fn log_error(&self, line: Value) {
        let _ = self.perform(Effect::LogError(line.to_string())).await;
    }
}

/// The effect that sends `cmd` to `object`.
pub fn ask_effect<K: Class, C: Command<K>>(object: &Object<K>, cmd: C) -> Result<Effect, ApiError> {
    let body = serde_json::to_string(&cmd.into_cmd())
        .map_err(|e| ApiError::internal(format!("a command did not serialize: {e}")))?;
    Ok(Effect::Ask {
        class: K::CLASS,
        name: object.name().to_string(),
        body,
    })
}

/// A flow in progress, with its output type `T`.
pub struct Flow<'a, T> {
    co: Co,
    run: Pin<Box<dyn Future<Output = Result<T, ApiError>> + 'a>>,
    started: bool,
}

/// What a flow needs next: an effect performed, or nothing (it is done).
pub enum Step<T> {
    Do(Effect),
    Done(Result<T, ApiError>),
}

impl<'a, T> Flow<'a, T> {
    /// The flow `f` writes, given its handle on the platform.
    pub fn new<F: Future<Output = Result<T, ApiError>> + 'a>(f: impl FnOnce(Co) -> F) -> Self {
        let co = Co::default();
        let run = Box::pin(f(co.clone()));
        Flow {
            co,
            run,
            started: false,
        }
    }

    /// Runs the flow until it needs the platform or is done: first with no outcome, then each
    /// time with the outcome of the effect it asked for.
    pub fn resume(&mut self, outcome: Option<Result<Outcome, ApiError>>, now: u64) -> Step<T> {
        self.co.0.now.set(now);
        if self.started {
            let outcome = outcome.unwrap_or(Ok(Outcome::Done));
            *self.co.0.outcome.borrow_mut() = Some(outcome);
        }
        self.started = true;
        let mut cx = Context::from_waker(Waker::noop());
        match self.run.as_mut().poll(&mut cx) {
            Poll::Ready(out) => Step::Done(out),
            Poll::Pending => match self.co.0.effect.borrow_mut().take() {
                Some(effect) => Step::Do(effect),
                // Only effects suspend a flow; anything else is a bug, not a hang.
                None => Step::Done(Err(ApiError::internal("a flow waited on nothing"))),
            },
        }
    }
}

/// Drives a flow natively: `world` plays the platform. Returns the output and every effect the
/// flow asked for, in order.
#[cfg(test)]
pub fn drive<T>(
    mut flow: Flow<'_, T>,
    now: u64,
    mut world: impl FnMut(&Effect) -> Result<Outcome, ApiError>,
) -> (Result<T, ApiError>, Vec<Effect>) {
    let mut seen = Vec::new();
    let mut outcome = None;
    loop {
        match flow.resume(outcome.take(), now) {
            Step::Done(out) => return (out, seen),
            Step::Do(effect) => {
                let got = match &effect {
                    Effect::All(each) => Ok(Outcome::All(each.iter().map(&mut world).collect())),
                    Effect::Later(_) | Effect::Log(_) | Effect::LogError(_) | Effect::Sleep(_) => {
                        Ok(Outcome::Done)
                    }
                    e => world(e),
                };
                seen.push(effect);
                outcome = Some(got);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::objects::protocol::Outbox;

    #[test]
    fn a_flow_hands_out_its_effects_one_at_a_time_and_reads_the_time_it_was_resumed_at() {
        let flow = Flow::new(|co: Co| async move {
            let doc: Option<Value> = co.config(&ConfigKey::pricing("m")).await?;
            co.sleep(5).await;
            Ok((doc, co.now()))
        });
        let (out, seen) = drive(flow, 42, |e| match e {
            Effect::Config { .. } => Ok(Outcome::Doc(Some(serde_json::json!({"a": 1})))),
            _ => Ok(Outcome::Done),
        });
        assert_eq!(out.unwrap(), (Some(serde_json::json!({"a": 1})), 42));
        assert_eq!(seen.len(), 2);
        assert_eq!(seen[1], Effect::Sleep(5));
    }

    #[test]
    fn a_shared_document_is_decoded_like_a_copied_one_and_a_bad_one_is_ours_to_fix() {
        #[derive(Debug, PartialEq, serde::Deserialize)]
        struct Price {
            a: u32,
        }
        let read = |answer: Outcome| {
            let flow =
                Flow::new(
                    |co: Co| async move { co.config::<Price>(&ConfigKey::pricing("m")).await },
                );
            drive(flow, 0, move |_| Ok(answer.clone())).0
        };
        let doc = serde_json::json!({"a": 1});
        assert_eq!(
            read(Outcome::Shared(Rc::new(doc.clone()))).unwrap(),
            Some(Price { a: 1 })
        );
        assert_eq!(read(Outcome::Doc(Some(doc))).unwrap(), Some(Price { a: 1 }));
        let bad = read(Outcome::Shared(Rc::new(serde_json::json!({"a": "x"})))).unwrap_err();
        assert!(
            bad.is_internal() && bad.message.contains("is invalid"),
            "{bad:?}"
        );
    }

    #[test]
    fn a_platform_failure_ends_the_flow_as_an_internal_error() {
        let flow = Flow::new(|co: Co| async move {
            co.list(&ConfigKey::templates()).await?;
            Ok(())
        });
        let (out, _) = drive(flow, 0, |_| Err(ApiError::internal("KV is down")));
        assert!(out.unwrap_err().is_internal());
    }

    #[test]
    fn a_wrong_outcome_is_an_internal_error_not_a_panic() {
        let flow = Flow::new(|co: Co| async move {
            let object = Object::<Outbox>::channel("t", "c");
            co.ask(&object, crate::core::jobs::OpenWork::default())
                .await
        });
        let (out, seen) = drive(flow, 0, |_| Ok(Outcome::Keys(vec![])));
        assert!(out.unwrap_err().is_internal());
        let Effect::Ask { class, name, .. } = &seen[0] else {
            panic!("asked {seen:?}");
        };
        assert_eq!((*class, name.as_str()), (ObjectClass::Outbox, "t:c"));
    }
}
