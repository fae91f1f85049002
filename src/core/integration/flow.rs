//! `POST /v1/integrations/{id}/{endpoint}` and `POST /v1/integrations/{id}/test`, as flows:
//! validate, plan, answer from the cache, pass the gate (rate limit and breaker: one round trip),
//! authenticate, call with `execute::Calls`' retries (a 401 refreshes an OAuth2 token once), map,
//! keep in the cache, and answer with the result envelope. The gate hears the outcome after.

use super::connect::connection::Connection;
use super::execute::{
    attempt_of, cache_key, clean_page, conclude, conclude_gathered, limits, AfterCall, CallAttempt,
    Calls, Conclusion, Envelope, ExecuteRequest,
};
use super::graphql::{self, Turn};
use super::health;
use super::marketplace::test_report;
use super::oauth::Holder;
use super::oauth_tokens::KeptRefresh;
use super::paginate::{Next, Pager};
use super::plan::{apply_auth, plan, redacted, Credentials, Planned};
use super::provider_wait::provider_wait_s;
use super::tokens::{access_token, kept_refresh as ask_kept, refresh_ahead};
use super::tokens::{OauthSecrets, Refresh, TokenFor};
use crate::core::config::document::{open_secret, RecordRef};
use crate::core::config::seal::Sealer;
use crate::core::error::{ApiError, ErrorKind};
use crate::core::flow::{ask_effect, Co, Effect};
use crate::core::http::HttpResponse;
use crate::core::integration::config::{AuthType, Endpoint, IntegrationConfig};
use crate::core::limits::gate::{Begin, BeginCmd, Ended, Failure, FinishCmd};
use crate::core::objects::protocol::CallGate;
use crate::core::objects::Object;
use crate::core::platform::{ConfigKey, RecordKind};
use crate::core::upstream::Trail;
use crate::core::upstream::Upstream;
use serde_json::{json, Value};

const DEFAULT_TIMEOUT_MS: u32 = 10_000;

/// One call of an integration's endpoint, as the route received it.
pub struct Execution<'a> {
    pub tenant: &'a str,
    pub id: &'a str,
    pub request_id: &'a str,
    pub trail: Trail,
    /// When the request arrived: the call's deadline and `execution_time_ms` count from here.
    pub started: u64,
}

/// The integration, if it is there and, when it was connected, its connection still holds (a
/// disconnected one keeps its record, and whatever credential it was told, until reconnected).
pub async fn load(co: &Co, tenant: &str, id: &str) -> Result<IntegrationConfig, ApiError> {
    let cfg: IntegrationConfig = co
        .config(&RecordKind::Integration.kv_key(tenant, Some(id)))
        .await?
        .ok_or_else(|| ApiError::not_found(format!("no integration `{id}`")))?;
    if let Some(connection) = &cfg.auth.connection {
        let now: Option<Connection> = co.config(&ConfigKey::connection(tenant, id)).await?;
        if !now.is_some_and(|c| c.holds(connection)) {
            let why = format!("integration `{id}` is disconnected: connect it again with POST /v1/integrations/{id}/connect");
            return Err(ApiError::new(ErrorKind::Conflict, why));
        }
    }
    Ok(cfg)
}

/// The execute route: the envelope, with Retry-After when the gateway's own limits stopped it.
pub async fn execute(
    co: Co,
    sealer: &Sealer,
    x: Execution<'_>,
    endpoint: &str,
    body: Value,
) -> Result<HttpResponse, ApiError> {
    let cfg = load(&co, x.tenant, x.id).await?;
    let request = ExecuteRequest::parse(body)?;
    let e = run(&co, sealer, &x, &cfg, endpoint, request).await?;
    let resp = HttpResponse::json(e.http_status(), &e)?;
    Ok(match e.error.as_ref().and_then(|x| x.retry_after) {
        Some(s) => resp.header("retry-after", s.to_string()),
        None => resp,
    })
}

/// The test route: the integration's own test call, fresh (no cache), nothing mocked; reports
/// what failed instead of failing itself, and keeps the report as the integration's health.
pub async fn test(co: Co, sealer: &Sealer, x: Execution<'_>) -> Result<HttpResponse, ApiError> {
    let cfg = load(&co, x.tenant, x.id).await?;
    let checked = check(&co, sealer, &x, &cfg).await.ok_or_else(|| {
        ApiError::validation(format!("integration `{}` defines no `test` call", x.id))
    })?;
    HttpResponse::json(200, &checked.report)
}

/// A test call's report, and whether it changed the integration's recorded health.
pub struct Checked {
    pub report: Value,
    pub recorded: bool,
}

/// Runs the integration's test call and records its report as the integration's health if it
/// changes it (`health::observe`); `None` when it defines no test call.
pub async fn check(
    co: &Co,
    sealer: &Sealer,
    x: &Execution<'_>,
    cfg: &IntegrationConfig,
) -> Option<Checked> {
    let t = cfg.test.clone()?;
    let request = ExecuteRequest::test(t.input);
    let result = call(co, sealer, x, cfg, &t.endpoint, request, true).await;
    let report = test_report(&t.endpoint, result.as_ref());
    let seen = health::Seen::test(&report, co.now() / 1000);
    let recorded = health::observe(co, x.tenant, x.id, &seen).await;
    Some(Checked { report, recorded })
}

/// Replaces an OAuth2 integration's held token if it expires within `ahead_s`
/// (`tokens::refresh_ahead`); `None` for any other kind of auth.
pub async fn refresh_token(
    co: &Co,
    sealer: &Sealer,
    x: &Execution<'_>,
    cfg: &IntegrationConfig,
    ahead_s: u64,
) -> Option<Result<Refresh, ApiError>> {
    let secrets = match open_credentials(sealer, x.tenant, x.id, cfg) {
        Ok(mut creds) => oauth_secrets(cfg, &mut creds)?,
        Err(e) => return Some(Err(e)),
    };
    let t = TokenFor {
        sealer,
        tenant: x.tenant,
        holder: Holder::Integration { id: x.id, cfg },
        secrets: &secrets,
        trail: x.trail.clone(),
    };
    Some(refresh_ahead(co, &t, ahead_s).await)
}

/// Asks an OAuth2 integration's `OauthTokens` object about the refresh token it keeps, sealing
/// it again under the current master key with `reseal` (`tokens::kept_refresh`); `None` for any
/// other kind of auth, or when the integration's own secrets do not open.
pub async fn kept_refresh(
    co: &Co,
    sealer: &Sealer,
    tenant: &str,
    id: &str,
    cfg: &IntegrationConfig,
    reseal: bool,
) -> Option<Result<KeptRefresh, ApiError>> {
    let mut creds = open_credentials(sealer, tenant, id, cfg).ok()?;
    let secrets = oauth_secrets(cfg, &mut creds)?;
    let t = TokenFor {
        sealer,
        tenant,
        holder: Holder::Integration { id, cfg },
        secrets: &secrets,
        trail: Trail::default(),
    };
    Some(ask_kept(co, &t, reseal).await)
}

/// One call of an endpoint, as the execute route and MCP's `tools/call` run it.
pub(crate) async fn run(
    co: &Co,
    sealer: &Sealer,
    x: &Execution<'_>,
    cfg: &IntegrationConfig,
    endpoint_name: &str,
    request: ExecuteRequest,
) -> Result<Envelope, ApiError> {
    call(co, sealer, x, cfg, endpoint_name, request, false).await
}

/// One call of an endpoint; `test`: the integration's health test (the gate keeps it apart).
async fn call(
    co: &Co,
    sealer: &Sealer,
    x: &Execution<'_>,
    cfg: &IntegrationConfig,
    endpoint_name: &str,
    mut request: ExecuteRequest,
    test: bool,
) -> Result<Envelope, ApiError> {
    let endpoint = request.endpoint(cfg, x.id, endpoint_name)?;
    let (input, options) = (&request.input, &request.options);
    let envelope = Envelope::new(x.request_id);
    let mut envelope = if options.mock {
        envelope.mocked(endpoint, endpoint_name)?
    } else {
        let planned = plan(cfg, endpoint, input, &request.context)?;
        let cache_key = cache_key(x.tenant, x.id, cfg, endpoint_name, endpoint, input);
        let hit = match (&cache_key, options.skip_cache) {
            (Some((url, _)), false) => co.cache_get(url).await,
            _ => None,
        };
        match hit {
            Some(data) => envelope.answered(true, data, true),
            None => {
                let limits = limits(cfg);
                let gate = Object::<CallGate>::integration(x.tenant, x.id);
                let begin = BeginCmd {
                    idempotency_key: None,
                    limits,
                };
                match co.ask(&gate, begin).await? {
                    Begin::Go { probe } => {
                        let calling = Calling {
                            co,
                            sealer,
                            x,
                            cfg,
                            endpoint,
                        };
                        let (envelope, provider_ok) =
                            calling.send(envelope, planned, options.debug).await?;
                        if let (true, Some((url, ttl_s))) = (envelope.success, cache_key) {
                            let text = envelope.data.to_string();
                            let keep = Effect::CachePut { url, ttl_s, text };
                            if let Err(e) = co.run(keep).await {
                                let line = json!({"integration_cache_put_failed": e.logged()});
                                co.log_error(line).await;
                            }
                        }
                        let finish = FinishCmd {
                            outcome: Some((limits.breaker, provider_ok)),
                            probe,
                            ended: Some(ended(&envelope, provider_ok, test)),
                            ..Default::default()
                        };
                        co.run(Effect::Later(Box::new(ask_effect(&gate, finish)?)))
                            .await?;
                        envelope
                    }
                    stopped => envelope.stopped(stopped, x.id)?,
                }
            }
        }
    };
    envelope.execution_time_ms = co.now().saturating_sub(x.started);
    Ok(envelope)
}

/// How an admitted call ended, for the integration's health: failed when the provider was not
/// healthy (as its breaker judges), with the status it answered and the envelope's error code.
fn ended(envelope: &Envelope, provider_ok: bool, test: bool) -> Ended {
    let failure = (!provider_ok).then(|| Failure {
        status: Some(envelope.status_code).filter(|s| *s != 0),
        error: envelope
            .error
            .as_ref()
            .map_or("upstream_error", |e| e.code)
            .into(),
    });
    Ended { failure, test }
}

/// One admitted call to the integration's provider.
struct Calling<'a> {
    co: &'a Co,
    sealer: &'a Sealer,
    x: &'a Execution<'a>,
    cfg: &'a IntegrationConfig,
    endpoint: &'a Endpoint,
}

/// One request's last attempt, as `Calling::request` ends it.
struct Sent {
    attempt: CallAttempt,
    text: String,
    retry_after_s: Option<u64>,
    /// The answer's `Link` header (where a list's next page is).
    link: Option<String>,
    /// The request as last sent, authenticated.
    planned: Planned,
}

impl Calling<'_> {
    /// Authenticates, sends (every page of a paginated endpoint) with the retries `Calls`
    /// allows, and concludes the envelope; also says whether the provider was healthy.
    async fn send(
        &self,
        envelope: Envelope,
        unauthenticated: Planned,
        debug: bool,
    ) -> Result<(Envelope, bool), ApiError> {
        let (co, x, cfg) = (self.co, self.x, self.cfg);
        let mut creds = open_credentials(self.sealer, x.tenant, x.id, cfg)?;
        let secrets = oauth_secrets(cfg, &mut creds);
        let token_for = secrets.as_ref().map(|secrets| TokenFor {
            sealer: self.sealer,
            tenant: x.tenant,
            holder: Holder::Integration { id: x.id, cfg },
            secrets,
            trail: x.trail.clone(),
        });
        if let Some(t) = &token_for {
            creds.access_token = Some(access_token(co, t, None).await?);
        }
        let timeout = cfg.timeout_ms.unwrap_or(DEFAULT_TIMEOUT_MS);
        // One deadline and one retry budget for the whole call, every page of it.
        let mut calls = Calls::new(cfg.retry.as_ref(), token_for.is_some(), x.started, timeout);
        let mut pager = self
            .endpoint
            .paginate
            .as_ref()
            .map(|p| Pager::new(p, &cfg.base_url));
        let (sent, done, pages) = loop {
            let page = match &pager {
                Some(p) => p.place(&unauthenticated)?,
                None => unauthenticated.clone(),
            };
            let sent = self
                .request(&mut calls, page, &mut creds, token_for.as_ref(), timeout)
                .await?;
            // Only a paginated call reads a page before concluding (a single answer is read once).
            let page = pager.as_mut().and_then(|p| {
                let read = clean_page(self.endpoint, sent.attempt, &sent.text)?;
                Some((p, read))
            });
            let Some((p, read)) = page else {
                let done = conclude(
                    self.endpoint,
                    sent.attempt,
                    &sent.text,
                    timeout,
                    sent.retry_after_s,
                )?;
                break (sent, done, None);
            };
            match p.after(&read, sent.link.as_deref())? {
                Next::Fetch => continue,
                Next::Done => {
                    let (items, pages) = pager.take().map(Pager::gathered).unzip();
                    let items = items.unwrap_or_default();
                    break (sent, conclude_gathered(self.endpoint, items)?, pages);
                }
                Next::Refused(why) => {
                    break (
                        sent,
                        Conclusion::failed("upstream_error", why, Value::Null),
                        None,
                    )
                }
            }
        };
        let provider_ok = done.provider_ok;
        let status = match sent.attempt {
            CallAttempt::Status(s) => s,
            _ => 0,
        };
        let debug = debug.then(|| json!({"request": redacted(&sent.planned, &creds), "response": {"status": status, "body": done.body}}));
        let mut envelope = envelope.concluded(done, sent.attempt, calls.retries);
        envelope.debug = debug;
        envelope.pages = pages;
        Ok((envelope, provider_ok))
    }

    /// Sends one request until `calls` says its attempt is the last: waits and retries, fetches
    /// a new token after a 401, sends a persisted GraphQL document when the server asks for it.
    async fn request(
        &self,
        calls: &mut Calls,
        mut unauthenticated: Planned,
        creds: &mut Credentials,
        token_for: Option<&TokenFor<'_>>,
        timeout: u32,
    ) -> Result<Sent, ApiError> {
        let (co, x, cfg) = (self.co, self.x, self.cfg);
        let mut planned = unauthenticated.clone();
        apply_auth(&mut planned, &cfg.auth, creds)?;
        loop {
            let result = co
                .exchange(
                    planned.request(),
                    &x.trail,
                    Upstream::Integration,
                    u64::from(timeout),
                )
                .await;
            let now_s = co.now() / 1000;
            let (attempt, retry_after_s) = attempt_of(match &result {
                Ok(a) => Ok((a.status, provider_wait_s(a.status, |n| a.header(n), now_s))),
                Err(e) => Err(e),
            })?;
            let link = result
                .as_ref()
                .ok()
                .and_then(|a| a.header("link"))
                .map(String::from);
            let text = result.map(|a| a.text()).unwrap_or_default();
            let (attempt, retry_after_s) = match (&self.endpoint.graphql, attempt) {
                (Some(_), CallAttempt::Status(_)) => match graphql::turn(&text) {
                    Turn::SendDocument if planned.send_document() => {
                        unauthenticated.send_document();
                        continue;
                    }
                    Turn::Throttled(wait) => (CallAttempt::Status(429), Some(wait)),
                    _ => (attempt, retry_after_s),
                },
                _ => (attempt, retry_after_s),
            };
            match calls.after(attempt, retry_after_s, co.now()) {
                AfterCall::Done => {
                    return Ok(Sent {
                        attempt,
                        text,
                        retry_after_s,
                        link,
                        planned,
                    })
                }
                AfterCall::Wait(ms) => co.sleep(ms).await,
                AfterCall::Refresh => {
                    // The token was revoked or expired early: a new one, and the same call again.
                    let t = token_for.ok_or_else(|| ApiError::internal("no token"))?;
                    let rejected = creds.access_token.take();
                    creds.access_token = Some(access_token(co, t, rejected.as_deref()).await?);
                    planned = unauthenticated.clone();
                    apply_auth(&mut planned, &cfg.auth, creds)?;
                }
            }
        }
    }
}

/// An OAuth2 integration's secrets, taken from its opened credentials.
fn oauth_secrets(cfg: &IntegrationConfig, creds: &mut Credentials) -> Option<OauthSecrets> {
    (cfg.auth.kind == AuthType::Oauth2).then(|| OauthSecrets {
        client_secret: creds.password.take().unwrap_or_default(),
        refresh_token: creds.token.take(),
    })
}

/// The integration's auth secrets, opened.
fn open_credentials(
    sealer: &Sealer,
    tenant: &str,
    id: &str,
    cfg: &IntegrationConfig,
) -> Result<Credentials, ApiError> {
    let record = RecordKind::Integration.seal_record(Some(id));
    let at = RecordRef {
        tenant,
        record: &record,
    };
    Credentials::open(&cfg.auth, |field, secret| {
        open_secret(sealer, &at, &format!("/auth/{field}"), secret)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::flow::{drive, Outcome};
    use crate::core::integration::oauth_tokens::{HeldToken, IssuedToken, KeptToken};
    use crate::core::objects::ObjectClass;
    use crate::core::testing::{asked, sealer, stored};
    use crate::core::upstream::UpstreamAnswer;
    use std::cell::RefCell;

    fn crm() -> Value {
        let doc = json!({"name": "CRM", "base_url": "https://crm.test/api",
            "auth": {"type": "oauth2", "grant": "client_credentials", "token_url": "https://crm.test/token",
                "client_id": "gw", "client_secret": "s3cret"},
            "endpoints": {"get": {"method": "GET", "path": "/contacts/{id}",
                "cache": {"ttl_seconds": 60, "key_fields": ["id"]}}},
            "test": {"endpoint": "get", "input": {"id": "c1"}}});
        stored(RecordKind::Integration, "t1", Some("crm"), doc)
    }

    fn answer(status: u16, body: &str) -> Outcome {
        Outcome::Answer(Ok(UpstreamAnswer {
            status,
            body: body.as_bytes().to_vec(),
            ..Default::default()
        }))
    }

    /// The OauthTokens object's answer: the token, and its sealed form for KV.
    fn token(t: &str) -> String {
        let token = HeldToken {
            access_token: t.into(),
            usable_until_s: u64::MAX,
        };
        let kept = KeptToken {
            sealed: format!("sealed {t}"),
            usable_until_s: u64::MAX,
        };
        serde_json::to_string(&Ok::<_, String>(IssuedToken { token, kept })).unwrap()
    }

    /// Executes `get` against a provider that answers `statuses` in turn, a cache holding
    /// `cached`, and an `OauthTokens` object that hands out `tok-1`, `tok-2`, ...
    fn execute_with(cached: Option<Value>, statuses: &[u16]) -> (HttpResponse, Vec<Effect>) {
        let cfg = crm();
        let statuses = RefCell::new(statuses.to_vec());
        let tokens = RefCell::new(0);
        let sealer = sealer();
        let x = Execution {
            tenant: "t1",
            id: "crm",
            request_id: "req_1",
            trail: Trail::default(),
            started: 0,
        };
        let body = json!({"input": {"id": "c1"}});
        let flow = crate::core::flow::Flow::new(|co| execute(co, &sealer, x, "get", body));
        let (out, seen) = drive(flow, 1_000, |e| match e {
            Effect::Config { .. } => Ok(Outcome::Doc(Some(cfg.clone()))),
            Effect::CacheGet(_) => Ok(Outcome::Doc(cached.clone())),
            Effect::Recall(_) | Effect::KvGet { .. } => Ok(Outcome::Doc(None)),
            Effect::Ask { body, .. } if body.starts_with(r#"{"begin""#) => Ok(Outcome::Text(
                serde_json::to_string(&Begin::Go { probe: false }).unwrap(),
            )),
            Effect::Ask { body, .. } if body.starts_with(r#"{"token""#) => {
                *tokens.borrow_mut() += 1;
                Ok(Outcome::Text(token(&format!("tok-{}", tokens.borrow()))))
            }
            Effect::Exchange { .. } => {
                Ok(answer(statuses.borrow_mut().remove(0), r#"{"name":"Ada"}"#))
            }
            _ => Ok(Outcome::Text("null".into())),
        });
        (out.unwrap(), seen)
    }

    fn bearer(seen: &[Effect]) -> Vec<String> {
        seen.iter()
            .filter_map(|e| match e {
                Effect::Exchange { req, .. } => req
                    .headers
                    .iter()
                    .find(|(k, _)| k.eq_ignore_ascii_case("authorization"))
                    .map(|(_, v)| v.clone()),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn a_cached_result_answers_without_the_gate_or_the_provider() {
        let (resp, seen) = execute_with(Some(json!({"name": "Ada"})), &[]);
        assert_eq!(resp.status, 200);
        let envelope: Value = serde_json::from_slice(resp.body.as_ref().unwrap()).unwrap();
        assert_eq!(
            (envelope["cached"].as_bool(), &envelope["data"]),
            (Some(true), &json!({"name": "Ada"}))
        );
        assert!(asked(&seen, ObjectClass::CallGate).is_empty());
        assert!(bearer(&seen).is_empty());
    }

    #[test]
    fn a_refused_token_is_refreshed_once_and_the_call_sent_again_then_kept_in_the_cache() {
        let (resp, seen) = execute_with(None, &[401, 200]);
        assert_eq!(resp.status, 200);
        assert_eq!(bearer(&seen), vec!["Bearer tok-1", "Bearer tok-2"]);
        let asks = asked(&seen, ObjectClass::OauthTokens);
        assert_eq!(
            asks[1]["token"]["rejected"], "tok-1",
            "the refused token is named"
        );
        assert!(seen
            .iter()
            .any(|e| matches!(e, Effect::CachePut { ttl_s: 60, .. })));
        let gate = asked(&seen, ObjectClass::CallGate);
        assert_eq!(
            gate.last().unwrap()["finish"]["outcome"][1],
            true,
            "the provider was healthy"
        );
    }

    #[test]
    fn the_gate_hears_how_each_call_ended_for_the_integrations_health() {
        let ended = |seen: &[Effect]| {
            let gate = asked(seen, ObjectClass::CallGate);
            let finish = &gate.last().unwrap()["finish"];
            serde_json::from_value::<Ended>(finish["ended"].clone()).unwrap()
        };
        let (_, seen) = execute_with(None, &[200]);
        assert_eq!(ended(&seen), Ended::default());
        let (resp, seen) = execute_with(None, &[503; 4]);
        assert_eq!(resp.status, 502);
        let failure = Failure {
            status: Some(503),
            error: "upstream_error".into(),
        };
        let want = Ended {
            failure: Some(failure),
            test: false,
        };
        assert_eq!(ended(&seen), want);
        // A refusal the provider gave a healthy answer to is no failure of its health.
        let (resp, seen) = execute_with(None, &[404]);
        assert_eq!(resp.status, 502);
        assert_eq!(ended(&seen), Ended::default());
    }

    /// Runs the test route against a provider answering `status`, with `recorded` as the
    /// integration's health: the report, and the health records written.
    fn test_route(status: u16, recorded: Option<Value>) -> (Value, Vec<Effect>) {
        let cfg = crm();
        let sealer = sealer();
        let x = Execution {
            tenant: "t1",
            id: "crm",
            request_id: "r",
            trail: Trail::default(),
            started: 0,
        };
        let health_key = crate::core::platform::ConfigKey::health("t1", Some("crm"));
        let flow = crate::core::flow::Flow::new(|co| test(co, &sealer, x));
        let (out, seen) = drive(flow, 1_000_000, |e| match e {
            Effect::Config { key, .. } if *key == health_key => Ok(Outcome::Doc(recorded.clone())),
            Effect::Config { .. } => Ok(Outcome::Doc(Some(cfg.clone()))),
            Effect::Recall(_) | Effect::KvGet { .. } => Ok(Outcome::Doc(None)),
            Effect::Ask { body, .. } if body.starts_with(r#"{"begin""#) => Ok(Outcome::Text(
                serde_json::to_string(&Begin::Go { probe: false }).unwrap(),
            )),
            Effect::Ask { body, .. } if body.starts_with(r#"{"token""#) => {
                Ok(Outcome::Text(token("tok-1")))
            }
            Effect::Exchange { .. } => Ok(answer(status, "{}")),
            _ => Ok(Outcome::Text("null".into())),
        });
        let report = serde_json::from_slice(out.unwrap().body.as_ref().unwrap()).unwrap();
        let gate = asked(&seen, ObjectClass::CallGate);
        let ended: Ended =
            serde_json::from_value(gate.last().unwrap()["finish"]["ended"].clone()).unwrap();
        assert!(ended.test, "the gate keeps a test apart from the calls");
        let writes = seen
            .into_iter()
            .filter(|e| matches!(e, Effect::PutConfig { key, .. } if *key == health_key))
            .collect();
        (report, writes)
    }

    #[test]
    fn a_test_records_the_health_only_when_it_changes() {
        let (report, writes) = test_route(500, None);
        assert_eq!(
            (&report["ok"], &report["status_code"]),
            (&json!(false), &json!(500))
        );
        let Some(Effect::PutConfig { text, .. }) = writes.first() else {
            panic!("nothing recorded yet: {writes:?}")
        };
        let recorded: Value = serde_json::from_str(text).unwrap();
        assert_eq!(
            (
                &recorded["from"],
                &recorded["checked_at"],
                &recorded["status_code"]
            ),
            (&json!("test"), &json!(1_000), &json!(500))
        );
        // The same failure again writes nothing; recovery does.
        let (_, writes) = test_route(500, Some(recorded.clone()));
        assert!(writes.is_empty(), "{writes:?}");
        let (report, writes) = test_route(200, Some(recorded));
        assert_eq!(report["ok"], true);
        assert_eq!(writes.len(), 1);
    }

    #[test]
    fn a_token_this_isolate_holds_is_used_without_asking_for_one() {
        let cfg = crm();
        let sealer = sealer();
        let held = HeldToken {
            access_token: "tok-held".into(),
            usable_until_s: u64::MAX,
        };
        let x = Execution {
            tenant: "t1",
            id: "crm",
            request_id: "r",
            trail: Trail::default(),
            started: 0,
        };
        let flow = crate::core::flow::Flow::new(|co| test(co, &sealer, x));
        let (out, seen) = drive(flow, 1_000, |e| match e {
            Effect::Config { .. } => Ok(Outcome::Doc(Some(cfg.clone()))),
            Effect::Recall(_) => Ok(Outcome::Text(serde_json::to_string(&held).unwrap())),
            Effect::Ask { body, .. } if body.starts_with(r#"{"begin""#) => Ok(Outcome::Text(
                serde_json::to_string(&Begin::Go { probe: false }).unwrap(),
            )),
            Effect::Exchange { .. } => Ok(answer(200, "{}")),
            _ => Ok(Outcome::Text("null".into())),
        });
        let report: Value = serde_json::from_slice(out.unwrap().body.as_ref().unwrap()).unwrap();
        assert_eq!(report["ok"], true);
        assert_eq!(bearer(&seen), vec!["Bearer tok-held"]);
        assert!(asked(&seen, ObjectClass::OauthTokens).is_empty());
        assert!(
            !seen.iter().any(|e| matches!(e, Effect::CacheGet(_))),
            "a test call is fresh"
        );
    }
}
