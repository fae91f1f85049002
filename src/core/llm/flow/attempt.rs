//! The attempts at a route's targets (`core::llm::attempts` says which and when): each builds
//! the upstream request from the plan, sends it with the target's timeout and reads what came
//! back (`core::llm::errors` says how a failure counts). A stream is read until its first
//! content, so that a failure before it can still fall over to the next target.

use super::account::Accounting;
use super::{Deployment, Isolate, LlmCall};
use crate::core::config::document::{open_secret, RecordRef};
use crate::core::error::{ApiError, ErrorKind};
use crate::core::flow::{Co, Effect};
use crate::core::integration::oauth::Holder;
use crate::core::integration::tokens::{access_token, OauthSecrets, TokenFor};
use crate::core::limits::limiter::Admitted;
use crate::core::llm::attempts::{AttemptStep, Attempts};
use crate::core::llm::balance::latency_key;
use crate::core::llm::cache::Entry;
use crate::core::llm::catalog::ModelEntry;
use crate::core::llm::config::{KeySource, LlmConfig, ProviderKind, Strategy};
use crate::core::llm::errors::{broken, failed_attempt, refused_attempt};
use crate::core::llm::providers::{self, vertex, Credentials};
use crate::core::llm::routing::{self, AttemptOutcome, Target};
use crate::core::llm::settle::Used;
use crate::core::llm::stream::{Options, Translator};
use crate::core::llm::{convert, embeddings, mock, sse, Dialect, Usage};
use crate::core::platform::ConfigKey;
use crate::core::upstream::{Chunk, FetchError, StreamClock, StreamId, Upstream};
use serde_json::json;
use std::collections::VecDeque;
use std::rc::Rc;

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
    /// A provider's body, as the shell holds it.
    Upstream(StreamId),
    /// The mock provider's events, paced like a real model's tokens (a cached stream's, at once).
    Events(VecDeque<Vec<u8>>, u64),
}

impl Source {
    /// The next chunk, unless `ms` pass first.
    pub async fn next(&mut self, co: &Co, ms: u64) -> Chunk {
        match self {
            Source::Upstream(id) => co.read(*id, ms).await,
            Source::Events(events, delay) => {
                let Some(e) = events.pop_front() else {
                    return Chunk::End;
                };
                if *delay > 0 {
                    co.sleep((*delay).min(ms)).await;
                }
                match *delay > ms {
                    true => Chunk::Late,
                    false => Chunk::Bytes(e),
                }
            }
        }
    }

    /// `bytes` to the client, and the chunk after: both at once from a provider's body (one
    /// wait), in turn from events already held. `Err`: the client is gone.
    pub async fn pass(&mut self, co: &Co, bytes: Vec<u8>, ms: u64) -> Result<Chunk, ApiError> {
        match self {
            Source::Upstream(id) => co.relay(bytes, *id, ms).await,
            Source::Events(..) => {
                co.write(bytes, ms).await?;
                Ok(self.next(co, ms).await)
            }
        }
    }

    /// Lets go of a body that will not be read to its end.
    pub async fn cancel(&self, co: &Co) {
        if let Source::Upstream(id) = self {
            let _ = co.run(Effect::Cancel(*id)).await;
        }
    }
}

/// What the catalog knows of `t`'s model (`pricing:{catalog name}`, through the isolate's
/// decoded documents) with the tenant's own entry for it (`models`) overlaid, if either has it.
/// An entry that cannot be read is an error, not "no entry": a budget must not read it as free.
pub async fn entry(
    co: &Co,
    isolate: &Isolate,
    cfg: &LlmConfig,
    t: &Target,
) -> Result<Option<Rc<ModelEntry>>, ApiError> {
    let key = ConfigKey::pricing(&t.catalog);
    let read = match key.storable() {
        true => isolate.document::<ModelEntry>(co, &key).await?,
        false => None,
    };
    Ok(match (read, cfg.models.get(&t.key())) {
        (Some(read), Some(own)) => Some(Rc::new(read.overlaid(own))),
        (None, Some(own)) => Some(Rc::new(own.clone())),
        (read, None) => read,
    })
}

/// The entries of `targets`, each as `entry` reads it; KV is asked for them all at once (warm,
/// the isolate's cache answers each).
pub async fn entries(
    co: &Co,
    isolate: &Isolate,
    cfg: &LlmConfig,
    targets: &[&Target],
) -> Vec<Result<Option<Rc<ModelEntry>>, ApiError>> {
    let mut keys: Vec<ConfigKey> = targets
        .iter()
        .map(|t| ConfigKey::pricing(&t.catalog))
        .filter(ConfigKey::storable)
        .collect();
    keys.sort_by(|a, b| a.as_str().cmp(b.as_str()));
    keys.dedup();
    if keys.len() > 1 {
        let reads = keys
            .into_iter()
            .map(|key| Effect::Config { key, cached: true });
        // Each read's failure is found again, and decided on, by its `entry`.
        let _ = co.all(reads.collect()).await;
    }
    let mut out = Vec::with_capacity(targets.len());
    for t in targets {
        out.push(entry(co, isolate, cfg, t).await);
    }
    out
}

/// The attempts of one request.
pub struct Attempting<'a> {
    pub co: &'a Co,
    pub isolate: &'a Isolate,
    pub deployment: &'a dyn Deployment,
    pub job: &'a LlmCall,
    pub chain: &'a [Target],
}

impl Attempting<'_> {
    /// Sends to the targets `attempts` gives, from the first the limiter claimed, until one
    /// answers (its target, attempts and price go into `answer`) or none is left (the
    /// settlement is closed then: no target answered).
    pub async fn until_answered(
        &self,
        mut attempts: Attempts,
        first: &Admitted,
        answer: &mut Accounting,
    ) -> Result<Success, ApiError> {
        let co = self.co;
        let mut step = attempts.claimed(first, co.now());
        let success = loop {
            step = match step {
                AttemptStep::Send { target, after_ms } => {
                    if after_ms > 0 {
                        co.sleep(after_ms).await;
                    }
                    let t = &self.chain[target];
                    let sent = co.now();
                    match self.attempt(t).await {
                        Ok(success) => {
                            self.observe(t, co.now() - sent);
                            attempts.succeeded();
                            answer.target = t.clone();
                            answer.entry = answer.entries.get(target).cloned().flatten();
                            break success;
                        }
                        Err((outcome, error)) => {
                            if outcome == AttemptOutcome::Timeout {
                                self.observe(t, co.now() - sent);
                            }
                            let line = json!({"request_id": self.job.request_id, "llm_attempt_failed": t.key(), "status": error.status(), "error": error.kind.type_name()});
                            co.log(line).await;
                            attempts.failed(outcome, error, co.now())
                        }
                    }
                }
                AttemptStep::Claim { targets } => {
                    match answer.limiter.claim(co, &targets, 0).await {
                        Ok(a) => attempts.claimed(&a, co.now()),
                        Err(e) => AttemptStep::Fail(e),
                    }
                }
                AttemptStep::Fail(e) => {
                    answer.heard(attempts.take_outcomes());
                    answer.close(co, self.isolate, Used::Nothing, true).await;
                    return Err(e);
                }
            };
        };
        answer.heard(attempts.take_outcomes());
        answer.attempts = attempts.total();
        // Admission read every entry of the chain: the answer's price is among them.
        let price = answer.entry.as_deref();
        answer.estimate = self.job.req.estimated_usage_on(answer.target.family, price);
        Ok(success)
    }

    /// An attempt at `t` reached its first byte (or timed out) `ms` after it was sent: noted
    /// for the `lowest_latency` routes of the tenant.
    fn observe(&self, t: &Target, ms: u64) {
        if self.job.strategy == Strategy::LowestLatency {
            let key = latency_key(&self.job.tenant, &t.key());
            let mut book = self.isolate.latency.borrow_mut();
            book.observe(&key, ms, self.co.now());
        }
    }

    /// What the attempt authenticates with: an AWS key, a service account's access token (a
    /// new one when the provider just `rejected` the one it held), or the provider's API key as
    /// `Provider::key_source` says where it comes from. A key that cannot be opened is the
    /// gateway's failure, not the provider's; a token that cannot be had is the target's.
    async fn credentials(&self, t: &Target, rejected: Option<&str>) -> Result<Credentials, Failed> {
        let job = self.job;
        let ours = |e| (AttemptOutcome::Ours, e);
        let provider = &job.cfg.providers[&t.provider];
        let at = RecordRef {
            tenant: &job.tenant,
            record: "llm",
        };
        let open = |field: &str, secret: &crate::core::config::document::Secret| {
            let field = format!("/providers/{}/{field}", t.provider);
            let sealer = self.deployment.sealer().map_err(ours)?;
            open_secret(&sealer, &at, &field, secret).map_err(ours)
        };
        if let Some(aws) = &provider.aws {
            return Ok(Credentials::Aws(
                aws.open(|f, s| open(&format!("aws/{f}"), s))?,
            ));
        }
        if let Some(sa) = &provider.service_account {
            let sealed = sa.private_key.as_ref().ok_or_else(|| {
                ours(ApiError::internal(
                    "a stored service account has no private key",
                ))
            })?;
            let secrets = OauthSecrets {
                client_secret: open("service_account/private_key", sealed)?,
                refresh_token: None,
            };
            let sealer = self.deployment.sealer().map_err(ours)?;
            let auth = vertex::token_auth(sa);
            let holder = Holder::Llm {
                provider: &t.provider,
                auth: &auth,
            };
            let token_for = TokenFor {
                sealer: &sealer,
                tenant: &job.tenant,
                holder,
                secrets: &secrets,
                trail: job.trail.clone(),
            };
            return match access_token(self.co, &token_for, rejected).await {
                Ok(token) => Ok(Credentials::Bearer(token)),
                Err(e) => Err(self.no_token(t, e).await),
            };
        }
        Ok(match provider.key_source() {
            KeySource::Sealed(secret) => Credentials::Key(open("api_key", secret)?),
            KeySource::Platform(name) => match self.deployment.secret(name) {
                Some(k) if !k.is_empty() => Credentials::Key(k),
                _ => Credentials::None,
            },
            KeySource::None => Credentials::None,
        })
    }

    /// No access token for `t`'s service account (its token endpoint refused the key, or could
    /// not be reached): the target is unusable, as if it had refused the gateway's credentials,
    /// and the next one is tried.
    async fn no_token(&self, t: &Target, e: ApiError) -> Failed {
        let line = json!({"request_id": self.job.request_id, "llm_token_failed": t.key(), "error": e.logged()});
        self.co.log(line).await;
        // The token object's own words (an endpoint's status, a key it cannot sign with) are
        // the gateway's and name no secret; anything else stays in the log.
        let why = match e.kind {
            ErrorKind::Upstream => e.message.as_str(),
            _ => "the token store failed",
        };
        let message = format!(
            "{}: no access token for its service account ({why})",
            t.key()
        );
        (
            AttemptOutcome::Status(502, None),
            ApiError::new(ErrorKind::Upstream, message),
        )
    }

    /// After `status`: the credentials to send the same request again with, once per attempt,
    /// when the provider refused a token (401: revoked, or expired early) that a new one may
    /// replace.
    async fn renewed(
        &self,
        t: &Target,
        creds: &Credentials,
        status: u16,
        renewed: &mut bool,
    ) -> Result<Option<Credentials>, Failed> {
        let Credentials::Bearer(token) = creds else {
            return Ok(None);
        };
        if status != 401 || *renewed {
            return Ok(None);
        }
        *renewed = true;
        let line = json!({"request_id": self.job.request_id, "llm_token_rejected": t.key()});
        self.co.log(line).await;
        self.credentials(t, Some(token)).await.map(Some)
    }

    async fn attempt(&self, t: &Target) -> Result<Success, Failed> {
        let (co, job) = (self.co, self.job);
        if t.kind == ProviderKind::Mock {
            return self.mock(t).await;
        }
        let mut creds = self.credentials(t, None).await?;
        let mut renewed = false;
        let envelope = t.envelope(job.req.dialect);
        let name = t.key();
        let fetch_failed = |e: FetchError| failed_attempt(&name, t.timeout_ms, &e);
        let timeout = u64::from(t.timeout_ms);
        loop {
            let now_s = co.now() / 1000;
            // The client's request the target cannot take is a 400; a request the gateway could
            // not build or sign is the gateway's failure.
            let request = routing::plan(&job.req, t, &creds, job.beta.as_deref(), now_s).map_err(
                |e| match e.kind {
                    crate::core::error::ErrorKind::Internal => (AttemptOutcome::Ours, e),
                    _ => (AttemptOutcome::Status(400, None), e),
                },
            )?;
            if !job.req.stream {
                // One deadline for the whole exchange: headers and body.
                let answer = co
                    .exchange(request, &job.trail, Upstream::Llm, timeout)
                    .await
                    .map_err(fetch_failed)?;
                if !(200..300).contains(&answer.status) {
                    if let Some(fresh) =
                        self.renewed(t, &creds, answer.status, &mut renewed).await?
                    {
                        creds = fresh;
                        continue;
                    }
                    let wait = self.retry_wait(|n| answer.header(n));
                    let aws_type = answer.header("x-amzn-errortype");
                    let refusal = providers::refusal(t.kind, answer.status, aws_type, &answer.body);
                    return Err(self.refused(&name, refusal, wait).await);
                }
                let body = providers::answer(envelope, answer.body, &t.model, job.random)
                    .map_err(broken)?;
                return json_answer(co, job, t.wire(job.req.dialect), body);
            }
            let started = co.now();
            let opened = co
                .open_stream(request, &job.trail, timeout)
                .await
                .map_err(fetch_failed)?;
            let remaining = timeout.saturating_sub(co.now() - started).max(1);
            let source = Source::Upstream(opened.stream);
            if !(200..300).contains(&opened.status) {
                // The refused body is let go of whether or not a new token comes.
                match self.renewed(t, &creds, opened.status, &mut renewed).await {
                    Ok(Some(fresh)) => {
                        source.cancel(co).await;
                        creds = fresh;
                        continue;
                    }
                    Ok(None) => {}
                    Err(failed) => {
                        source.cancel(co).await;
                        return Err(failed);
                    }
                }
                let wait = self.retry_wait(|n| opened.header(n));
                let body = read_to_end(co, opened.stream, remaining).await;
                let aws_type = opened.header("x-amzn-errortype");
                let refusal = providers::refusal(t.kind, opened.status, aws_type, &body);
                return Err(self.refused(&name, refusal, wait).await);
            }
            if !opened
                .header("content-type")
                .is_some_and(|c| c.contains(envelope.stream_content_type()))
            {
                source.cancel(co).await;
                return Err(broken(format!(
                    "{name} answered a stream request without an event stream"
                )));
            }
            let id = providers::message_id(job.random);
            let (dialect, opts) = (t.wire(job.req.dialect), options(co, job));
            let translator = Translator::with_envelope(dialect, envelope, opts, (&id, &t.model));
            return first_content(co, t, translator, source, remaining).await;
        }
    }

    /// How long a refusing provider asked to be left alone, from its headers.
    fn retry_wait<'h>(&self, header: impl Fn(&str) -> Option<&'h str>) -> Option<u64> {
        routing::retry_after_ms(
            header("retry-after-ms"),
            header("retry-after"),
            self.co.now() / 1000,
        )
    }

    /// A provider's refusal (a status other than 2xx): how it counts, and the client's error.
    /// The log gets the status and the provider's code, never its text.
    async fn refused(
        &self,
        name: &str,
        (status, text): (u16, String),
        wait: Option<u64>,
    ) -> Failed {
        let (outcome, e, code) = refused_attempt(name, status, wait, &text);
        let line = json!({"request_id": self.job.request_id, "llm_upstream_error": name, "status": status, "code": code});
        self.co.log(line).await;
        (outcome, e)
    }

    async fn mock(&self, t: &Target) -> Result<Success, Failed> {
        let (co, job) = (self.co, self.job);
        let id = hex::encode(job.random.to_le_bytes());
        let now_s = co.now() / 1000;
        if job.req.dialect == Dialect::Embeddings {
            let value = embeddings::mock(&job.req, &t.model);
            return json_answer(co, job, Dialect::Embeddings, value.to_string().into_bytes());
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
            return json_answer(co, job, Dialect::OpenAi, value.to_string().into_bytes());
        }
        let events = mock::stream_events(req, &t.model, &id, now_s)
            .into_iter()
            .map(|e| {
                let mut wire = Vec::new();
                sse::encode(&mut wire, None, &e);
                wire
            })
            .collect();
        let source = Source::Events(events, self.deployment.mock_delay_ms());
        let translator = Translator::new(Dialect::OpenAi, options(co, job));
        first_content(co, t, translator, source, u64::from(t.timeout_ms)).await
    }
}

/// A refusing provider's body, for its error code: what arrives within `ms`, up to the LLM
/// answer cap.
async fn read_to_end(co: &Co, stream: StreamId, ms: u64) -> Vec<u8> {
    let cap = Upstream::Llm.max_answer_bytes();
    let deadline = co.now() + ms;
    let mut body = Vec::new();
    loop {
        let left = deadline.saturating_sub(co.now());
        if left == 0 || body.len() > cap {
            let _ = co.run(Effect::Cancel(stream)).await;
            body.truncate(cap);
            return body;
        }
        match co.read(stream, left).await {
            Chunk::Bytes(b) => body.extend(b),
            Chunk::End | Chunk::Failed(_) => return body,
            Chunk::Late => {
                let _ = co.run(Effect::Cancel(stream)).await;
                return body;
            }
        }
    }
}

fn options(co: &Co, job: &LlmCall) -> Options {
    Options {
        client: job.req.dialect,
        include_usage: job.req.include_usage,
        thinking: job.req.thinking,
        now_s: co.now() / 1000,
        collect_text: job.keep_text,
    }
}

fn json_answer(
    co: &Co,
    job: &LlmCall,
    upstream: Dialect,
    text: Vec<u8>,
) -> Result<Success, Failed> {
    // Same dialect: the provider's bytes go through unchanged, read only in passing.
    if upstream == job.req.dialect {
        if let Some(usage) = convert::passthrough::usage(upstream, &text) {
            let usage = usage.map_err(broken)?;
            return Ok(Success::Json { body: text, usage });
        }
    }
    let value = serde_json::from_slice::<serde_json::Value>(&text)
        .map_err(|_| broken("the provider's answer is not JSON".into()))?;
    let (client, usage) =
        convert::client_response(&job.req, upstream, &value, co.now() / 1000).map_err(broken)?;
    let body = match client {
        Some(translated) => serde_json::to_vec(&translated).unwrap_or_default(),
        None => text,
    };
    Ok(Success::Json { body, usage })
}

/// Reads a stream until it has content (success), or fails or times out before any.
async fn first_content(
    co: &Co,
    t: &Target,
    mut translator: Translator,
    mut source: Source,
    budget_ms: u64,
) -> Result<Success, Failed> {
    let mut held = Vec::new();
    let started = co.now();
    let deadline = started + budget_ms;
    loop {
        let left = deadline.saturating_sub(co.now()).max(1);
        match source.next(co, left).await {
            Chunk::Late => {
                source.cancel(co).await;
                let late = FetchError::Timeout(left);
                return Err(failed_attempt(&t.key(), t.timeout_ms, &late));
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
            source.cancel(co).await;
            // What the provider's error event said is its text: not for logs or the client.
            let message = format!("{} failed before any content", t.key());
            return Err(match translator.failed_status() {
                // An exception standing for a status (Bedrock's throttling) counts as that
                // status would: a 429 falls over without tripping the breaker.
                Some(status) => {
                    let (outcome, _, _) = refused_attempt(&t.key(), status, None, "");
                    (
                        outcome,
                        ApiError::new(crate::core::error::ErrorKind::Upstream, message),
                    )
                }
                None => broken(message),
            });
        }
    }
}

/// An answer from the cache, as if `t` had just given it: a JSON body as kept, or the kept
/// events read again through the translator of the client's own dialect.
pub async fn replay(co: &Co, job: &LlmCall, t: &Target, entry: Entry) -> Result<Success, Failed> {
    if !job.req.stream {
        return Ok(Success::Json {
            body: entry.body.into_bytes(),
            usage: entry.usage,
        });
    }
    let events = VecDeque::from([entry.body.into_bytes()]);
    let budget = u64::from(t.timeout_ms);
    let source = Source::Events(events, 0);
    let translator = Translator::new(job.req.dialect, options(co, job));
    let mut success = first_content(co, t, translator, source, budget).await?;
    if let Success::Stream(s) = &mut success {
        s.replayed_usage = Some(entry.usage);
    }
    Ok(success)
}
