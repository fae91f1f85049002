//! The policy side of executing an integration call: whether and when to retry, and the result
//! envelope the flow engine receives with the HTTP status that fits it.

use super::graphql;
use super::mapping::{map_response, search, truthy, ResponseMapping};
use super::paginate::Pages;
use super::validate::validate_input;
use crate::core::error::ApiError;
use crate::core::integration::config::{Backoff, Endpoint, IntegrationConfig, RetryPolicy};
use crate::core::limits::breaker::BreakerPolicy;
use crate::core::limits::gate::{Begin, Limits};
use crate::core::upstream::{FetchError, HttpMethod, Upstream};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256};

/// How one attempt ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CallAttempt {
    Status(u16),
    Timeout,
    ConnectionError,
    /// The answer was over the integration cap: the same call would get the same answer.
    TooLarge,
}

/// The wait before the next attempt, or `None` to stop. `retries_done` counts retries so far.
pub fn retry_delay_ms(
    policy: Option<&RetryPolicy>,
    retries_done: u32,
    attempt: CallAttempt,
    retry_after_s: Option<u64>,
) -> Option<u64> {
    let p = policy?;
    if retries_done >= p.max_retries {
        return None;
    }
    let retryable = match attempt {
        CallAttempt::Status(s) => match &p.retry_on_status {
            Some(list) => list.contains(&s),
            None => matches!(s, 408 | 429 | 500 | 502 | 503 | 504),
        },
        CallAttempt::Timeout => p.retry_on_timeout.unwrap_or(true),
        CallAttempt::ConnectionError => p.retry_on_connection_error.unwrap_or(true),
        CallAttempt::TooLarge => false,
    };
    if !retryable {
        return None;
    }
    let initial = u64::from(p.initial_delay_ms.unwrap_or(500));
    let max = u64::from(p.max_delay_ms.unwrap_or(30_000));
    if let Some(ra) = retry_after_s {
        // Never sooner than the provider asked: a longer wait than the policy allows is no
        // retry, and the caller hears the wait instead.
        return Some(ra.saturating_mul(1000)).filter(|w| *w <= max);
    }
    let n = u64::from(retries_done);
    let delay = match p.backoff.unwrap_or(Backoff::Exponential) {
        Backoff::Exponential => initial.saturating_mul(1 << n.min(20)),
        Backoff::Linear => initial.saturating_mul(n + 1),
        Backoff::Fixed => initial,
    };
    Some(delay.min(max))
}

/// The attempt loop of one call: fed how each attempt ended and the time, it says what to do
/// next. A 401 from an OAuth2 provider refreshes the token once and tries again; other failures
/// are retried per the integration's policy while the wait still ends before the call's deadline
/// (three timeouts from its start).
#[derive(Debug, Clone)]
pub struct Calls {
    policy: Option<RetryPolicy>,
    can_refresh: bool,
    refreshed: bool,
    deadline_ms: u64,
    /// Retries so far, refreshes included: reported in the envelope.
    pub retries: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AfterCall {
    /// Fetch a new token (the provider refused this one), then send again at once.
    Refresh,
    /// Send again after this many ms.
    Wait(u64),
    /// This attempt's result is the call's.
    Done,
}

impl Calls {
    pub fn new(
        policy: Option<&RetryPolicy>,
        can_refresh: bool,
        started_ms: u64,
        timeout_ms: u32,
    ) -> Self {
        Calls {
            policy: policy.cloned(),
            can_refresh,
            refreshed: false,
            deadline_ms: started_ms + u64::from(timeout_ms) * 3,
            retries: 0,
        }
    }

    pub fn after(
        &mut self,
        attempt: CallAttempt,
        retry_after_s: Option<u64>,
        now_ms: u64,
    ) -> AfterCall {
        if attempt == CallAttempt::Status(401) && self.can_refresh && !self.refreshed {
            self.refreshed = true;
            self.retries += 1;
            return AfterCall::Refresh;
        }
        match retry_delay_ms(self.policy.as_ref(), self.retries, attempt, retry_after_s) {
            Some(wait) if now_ms + wait < self.deadline_ms => {
                self.retries += 1;
                AfterCall::Wait(wait)
            }
            _ => AfterCall::Done,
        }
    }
}

/// What a call's last attempt makes of the envelope: success, data and error, and whether the
/// provider was healthy (for its breaker). The answer body is parsed as JSON, else kept as text.
#[derive(Debug, Clone, PartialEq)]
pub struct Conclusion {
    pub success: bool,
    pub data: Value,
    pub error: Option<EnvelopeError>,
    pub provider_ok: bool,
    /// The answer as read, for `options.debug`.
    pub body: Value,
}

impl Conclusion {
    /// A call that got no usable answer (the provider is not counted healthy).
    pub fn failed(code: &'static str, message: impl Into<String>, body: Value) -> Self {
        Conclusion {
            success: false,
            data: Value::Null,
            error: Some(EnvelopeError::new(code, message)),
            provider_ok: false,
            body,
        }
    }
}

/// A page of a paginated call that answered cleanly (a success status, JSON, the mapping's
/// success path true, a GraphQL answer without errors): what its items are read from. Any other
/// page ends the call as its answer.
pub fn clean_page(endpoint: &Endpoint, attempt: CallAttempt, body: &str) -> Option<Value> {
    let CallAttempt::Status(200..=299) = attempt else {
        return None;
    };
    let parsed: Value = serde_json::from_str(body).ok()?;
    let read = match endpoint.graphql {
        Some(_) => match graphql::answer(&parsed)? {
            graphql::Answer {
                errors: Some(_), ..
            } => return None,
            a => a.data,
        },
        None => parsed,
    };
    let success_path = endpoint
        .response
        .as_ref()
        .and_then(|r| r.success_path.as_ref());
    match success_path {
        Some(p) => truthy(&search(p, &read).ok()?).then_some(read),
        None => Some(read),
    }
}

/// A paginated call's gathered items, read by the endpoint's response mapping.
pub fn conclude_gathered(endpoint: &Endpoint, items: Value) -> Result<Conclusion, ApiError> {
    let mapping = endpoint.response.as_ref().map(|r| ResponseMapping {
        success_path: None,
        error_path: None,
        ..r.clone()
    });
    let mapped =
        map_response(mapping.as_ref(), true, &items).map_err(|e| ApiError::validation(e.0))?;
    Ok(Conclusion {
        success: true,
        data: mapped.data,
        error: None,
        provider_ok: true,
        body: items,
    })
}

/// `retry_after_s`: the wait the provider asked for (`provider_wait`); on a 429 the error is
/// `provider_rate_limited` and carries it, so that the caller can wait as long. A GraphQL
/// endpoint's answer is mapped from its `data`, and its `errors[]` are the envelope's error
/// (`graphql_error`) whether or not data came with them.
pub fn conclude(
    endpoint: &Endpoint,
    attempt: CallAttempt,
    body: &str,
    timeout_ms: u32,
    retry_after_s: Option<u64>,
) -> Result<Conclusion, ApiError> {
    let parsed: Value =
        serde_json::from_str(body).unwrap_or_else(|_| Value::String(body.to_string()));
    let failed = |code, message| Conclusion::failed(code, message, parsed.clone());
    Ok(match attempt {
        CallAttempt::Timeout => failed(
            "timeout",
            format!("the provider did not answer within {timeout_ms} ms"),
        ),
        CallAttempt::ConnectionError => {
            failed("upstream_error", "could not connect to the provider".into())
        }
        CallAttempt::TooLarge => failed(
            "upstream_error",
            format!(
                "the provider's answer is larger than the {} MiB the gateway reads",
                Upstream::Integration.max_answer_bytes() / (1024 * 1024)
            ),
        ),
        CallAttempt::Status(status) => {
            let gql = endpoint
                .graphql
                .as_ref()
                .and_then(|_| graphql::answer(&parsed));
            let (read, gql_errors) = match gql {
                Some(a) => (a.data, a.errors),
                None => (parsed.clone(), None),
            };
            let ok = (200..300).contains(&status) && !(gql_errors.is_some() && read.is_null());
            let mapped = map_response(endpoint.response.as_ref(), ok, &read)
                .map_err(|e| ApiError::validation(e.0))?;
            let limited = status == 429;
            let error = match gql_errors {
                Some((message, listed)) if !limited => Some(EnvelopeError {
                    details: Some(listed),
                    ..EnvelopeError::new("graphql_error", message)
                }),
                gql_errors => (!mapped.success).then(|| EnvelopeError {
                    retry_after: retry_after_s.filter(|_| limited),
                    ..EnvelopeError::new(
                        if limited {
                            "provider_rate_limited"
                        } else {
                            "upstream_error"
                        },
                        gql_errors
                            .map(|(m, _)| m)
                            .or(mapped.error)
                            .unwrap_or_else(|| format!("the provider answered {status}")),
                    )
                }),
            };
            Conclusion {
                success: mapped.success,
                data: mapped.data,
                error,
                provider_ok: status < 500,
                body: parsed,
            }
        }
    })
}

/// Where a cacheable call's result is kept (a `GET` endpoint with a cache policy), and for how
/// long: keyed by tenant, integration, endpoint and the input's key fields (all of it if none),
/// and by the integration's `incarnation` and what the call is sent with (base URL, auth as
/// stored, headers, the endpoint's definition). The platform's cache cannot be cleared by
/// prefix, so a result must not be found again once these change: an integration deleted and
/// installed again (alone, or with its tenant) has another incarnation, and one replaced with
/// other credentials or another mapping keys its results apart.
pub fn cache_key(
    tenant: &str,
    id: &str,
    cfg: &IntegrationConfig,
    endpoint_name: &str,
    endpoint: &Endpoint,
    input: &Value,
) -> Option<(String, u32)> {
    let c = endpoint.cache.as_ref().filter(|c| c.ttl_seconds > 0)?;
    if endpoint.method != HttpMethod::Get {
        return None;
    }
    let fields: Value = if c.key_fields.is_empty() {
        input.clone()
    } else {
        c.key_fields
            .iter()
            .map(|f| input.get(f).cloned().unwrap_or(Value::Null))
            .collect()
    };
    let sent_with = serde_json::json!([cfg.base_url, cfg.auth, cfg.headers, endpoint]);
    let incarnation = cfg.incarnation.as_deref().unwrap_or_default();
    let h = hex::encode(Sha256::digest(
        format!("{tenant}\x1f{id}\x1f{incarnation}\x1f{sent_with}\x1f{endpoint_name}\x1f{fields}")
            .as_bytes(),
    ));
    Some((
        format!("https://integration-cache.internal/{tenant}/{id}/{endpoint_name}/{h}"),
        c.ttl_seconds,
    ))
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct EnvelopeError {
    pub code: &'static str,
    pub message: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub retry_after: Option<u64>,
    /// A GraphQL answer's errors, each with its message and path.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub details: Option<Value>,
}

impl EnvelopeError {
    pub fn new(code: &'static str, message: impl Into<String>) -> Self {
        EnvelopeError {
            code,
            message: message.into(),
            retry_after: None,
            details: None,
        }
    }
}

/// `POST /v1/integrations/{id}/{endpoint}`'s body.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExecuteRequest {
    #[serde(default)]
    pub input: Value,
    #[serde(default)]
    pub context: Value,
    #[serde(default)]
    pub options: ExecuteOptions,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExecuteOptions {
    #[serde(default)]
    pub skip_cache: bool,
    #[serde(default)]
    pub debug: bool,
    #[serde(default)]
    pub mock: bool,
}

impl ExecuteRequest {
    pub fn parse(body: Value) -> Result<Self, ApiError> {
        serde_json::from_value(body)
            .map_err(|e| ApiError::validation(format!("invalid request: {e}")))
    }

    /// An integration's test call: fresh (no cache), nothing mocked.
    pub fn test(input: Value) -> Self {
        ExecuteRequest {
            input,
            options: ExecuteOptions {
                skip_cache: true,
                ..Default::default()
            },
            ..Default::default()
        }
    }

    /// The endpoint asked for, and the input it accepts (`{}` when none was given).
    pub fn endpoint<'a>(
        &mut self,
        cfg: &'a IntegrationConfig,
        id: &str,
        name: &str,
    ) -> Result<&'a Endpoint, ApiError> {
        let endpoint = cfg.endpoints.get(name).ok_or_else(|| {
            ApiError::not_found(format!("integration `{id}` has no endpoint `{name}`"))
        })?;
        if self.input.is_null() {
            self.input = serde_json::json!({});
        }
        if let Some(schema) = &endpoint.input_schema {
            validate_input(schema, &self.input)
                .map_err(|problems| ApiError::validation(problems.join("; ")))?;
        }
        Ok(endpoint)
    }
}

/// The limits the integration's gate admits a call under (600 a minute unless it says).
pub fn limits(cfg: &IntegrationConfig) -> Limits {
    let rate = cfg.rate_limit.as_ref();
    Limits {
        per_second: None,
        per_minute: rate.and_then(|r| r.per_minute).map_or(600, u64::from),
        per_day: rate.and_then(|r| r.per_day).map(u64::from),
        breaker: BreakerPolicy::policy(cfg.circuit_breaker.as_ref()),
    }
}

/// How an attempt ended, from the fetch's result (its status and the wait it asked for,
/// `provider_wait`).
pub fn attempt_of(
    result: Result<(u16, Option<u64>), &FetchError>,
) -> Result<(CallAttempt, Option<u64>), ApiError> {
    Ok(match result {
        Ok((status, wait)) => (CallAttempt::Status(status), wait),
        Err(FetchError::Timeout(_)) => (CallAttempt::Timeout, None),
        Err(FetchError::Network(_)) => (CallAttempt::ConnectionError, None),
        Err(FetchError::TooLarge(_)) => (CallAttempt::TooLarge, None),
        Err(FetchError::Invalid(what)) => {
            let e = format!("the planned request has an invalid {what}");
            return Err(ApiError::validation(e));
        }
    })
}

/// What `POST /v1/integrations/{id}/{endpoint}` answers.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Envelope {
    pub request_id: String,
    pub success: bool,
    pub data: Value,
    pub error: Option<EnvelopeError>,
    /// The provider's HTTP status (0 when it never answered).
    pub status_code: u16,
    pub execution_time_ms: u64,
    pub cached: bool,
    pub retries: u32,
    /// A paginated call's pages: how many were fetched, and whether that was all of them.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pages: Option<Pages>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub debug: Option<Value>,
}

impl Envelope {
    pub fn new(request_id: &str) -> Self {
        Envelope {
            request_id: request_id.to_string(),
            success: false,
            data: Value::Null,
            error: None,
            status_code: 0,
            execution_time_ms: 0,
            cached: false,
            retries: 0,
            pages: None,
            debug: None,
        }
    }

    /// An answer without a provider call: the endpoint's mock, or a cached result.
    pub fn answered(mut self, success: bool, data: Value, cached: bool) -> Self {
        self.success = success;
        self.data = data;
        self.status_code = 200;
        self.cached = cached;
        self
    }

    /// The endpoint's `mock_response`, mapped as a real answer would be. A paginated
    /// endpoint's mock is its gathered items, read as `conclude_gathered` reads them: the
    /// success and error paths are a page's, and were met by every page gathered.
    pub fn mocked(self, endpoint: &Endpoint, name: &str) -> Result<Self, ApiError> {
        let mock = endpoint.mock_response.as_ref().ok_or_else(|| {
            ApiError::validation(format!("endpoint `{name}` has no mock_response"))
        })?;
        let (success, data) = match endpoint.paginate {
            Some(_) => {
                let gathered = conclude_gathered(endpoint, mock.clone())?;
                (gathered.success, gathered.data)
            }
            None => {
                let mapped = map_response(endpoint.response.as_ref(), true, mock)
                    .map_err(|e| ApiError::validation(e.0))?;
                (mapped.success, mapped.data)
            }
        };
        Ok(self.answered(success, data, false))
    }

    /// The gate stopped the call before it was made (our limit, or the open breaker).
    pub fn stopped(mut self, begin: Begin, id: &str) -> Result<Self, ApiError> {
        let (code, message, retry_after_s) = match begin {
            Begin::RateLimited {
                retry_after_s,
                limit,
            } => (
                "rate_limited",
                format!("integration `{id}` allows {limit} calls per window"),
                retry_after_s,
            ),
            Begin::BreakerOpen { retry_after_s } => (
                "circuit_open",
                format!("circuit breaker for integration `{id}` is open after repeated failures"),
                retry_after_s,
            ),
            Begin::Go { .. } | Begin::Replay { .. } | Begin::InProgress => {
                return Err(ApiError::internal("unexpected gate answer"))
            }
        };
        self.error = Some(EnvelopeError {
            retry_after: Some(retry_after_s),
            ..EnvelopeError::new(code, message)
        });
        Ok(self)
    }

    /// The call's last attempt, concluded.
    pub fn concluded(mut self, done: Conclusion, attempt: CallAttempt, retries: u32) -> Self {
        self.status_code = match attempt {
            CallAttempt::Status(s) => s,
            _ => 0,
        };
        self.retries = retries;
        self.success = done.success;
        self.data = done.data;
        self.error = done.error;
        self
    }

    /// The gateway's own status for this result: 200 on success; 502 when the provider failed,
    /// 504 when it timed out, 429 when our limit or the provider's stopped the call, 503 when
    /// the breaker did.
    pub fn http_status(&self) -> u16 {
        match (&self.error, self.success) {
            (_, true) => 200,
            (Some(e), false) => match e.code {
                "timeout" => 504,
                "rate_limited" | "provider_rate_limited" => 429,
                "circuit_open" => 503,
                _ => 502,
            },
            (None, false) => 502,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn policy(v: Value) -> RetryPolicy {
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn an_execute_request_names_an_endpoint_and_brings_the_input_it_takes() {
        let cfg: IntegrationConfig = serde_json::from_value(json!({
            "name": "CRM", "base_url": "https://crm.example.com",
            "endpoints": {"get": {"method": "GET", "path": "/c/{id}",
                "input_schema": {"id": {"type": "string", "required": true}}}}
        }))
        .unwrap();
        let mut r = ExecuteRequest::parse(json!({"input": {"id": "7"}})).unwrap();
        assert!(r.endpoint(&cfg, "crm", "get").is_ok());
        let mut missing = ExecuteRequest::parse(json!({})).unwrap();
        assert_eq!(
            missing.endpoint(&cfg, "crm", "get").unwrap_err().status(),
            422
        );
        assert_eq!(missing.input, json!({}));
        assert_eq!(r.endpoint(&cfg, "crm", "nope").unwrap_err().status(), 404);
        assert!(ExecuteRequest::parse(json!({"options": {"cache": true}})).is_err());
        assert!(ExecuteRequest::test(json!(null)).options.skip_cache);
    }

    #[test]
    fn the_gates_refusals_are_envelopes_with_their_wait() {
        let e = Envelope::new("r1")
            .stopped(
                Begin::RateLimited {
                    retry_after_s: 12,
                    limit: 5,
                },
                "crm",
            )
            .unwrap();
        assert_eq!(
            (e.http_status(), e.error.as_ref().unwrap().retry_after),
            (429, Some(12))
        );
        let e = Envelope::new("r1")
            .stopped(Begin::BreakerOpen { retry_after_s: 30 }, "crm")
            .unwrap();
        assert_eq!(e.http_status(), 503);
        assert!(Envelope::new("r1")
            .stopped(Begin::InProgress, "crm")
            .is_err());
    }

    #[test]
    fn fetch_results_become_attempts() {
        assert_eq!(
            attempt_of(Ok((503, Some(4)))).unwrap(),
            (CallAttempt::Status(503), Some(4))
        );
        assert_eq!(
            attempt_of(Err(&FetchError::Timeout(10))).unwrap(),
            (CallAttempt::Timeout, None)
        );
        assert_eq!(
            attempt_of(Err(&FetchError::TooLarge(1))).unwrap().0,
            CallAttempt::TooLarge
        );
        assert_eq!(
            attempt_of(Err(&FetchError::Invalid("url")))
                .unwrap_err()
                .status(),
            422
        );
    }

    #[test]
    fn limits_default_to_600_a_minute_and_no_day_cap() {
        let cfg: IntegrationConfig = serde_json::from_value(json!({
            "name": "CRM", "base_url": "https://crm.example.com", "endpoints": {}
        }))
        .unwrap();
        let l = limits(&cfg);
        assert_eq!((l.per_minute, l.per_day), (600, None));
    }

    #[test]
    fn the_attempt_loop() {
        let p = policy(json!({"max_retries": 2, "initial_delay_ms": 100}));
        // A 401 refreshes once; a second 401 is the answer.
        let mut c = Calls::new(Some(&p), true, 0, 1000);
        assert_eq!(
            c.after(CallAttempt::Status(401), None, 10),
            AfterCall::Refresh
        );
        assert_eq!(c.after(CallAttempt::Status(401), None, 20), AfterCall::Done);
        assert_eq!(c.retries, 1);
        // Without OAuth a 401 is not refreshed.
        let mut c = Calls::new(Some(&p), false, 0, 1000);
        assert_eq!(c.after(CallAttempt::Status(401), None, 10), AfterCall::Done);
        // Retries per the policy, then done.
        let mut c = Calls::new(Some(&p), false, 0, 1000);
        assert_eq!(
            c.after(CallAttempt::Status(503), None, 10),
            AfterCall::Wait(100)
        );
        assert_eq!(
            c.after(CallAttempt::Timeout, None, 200),
            AfterCall::Wait(200)
        );
        assert_eq!(
            c.after(CallAttempt::Status(503), None, 500),
            AfterCall::Done
        );
        assert_eq!(c.retries, 2);
        // A wait that would end past the deadline (3 timeouts) is not taken.
        let mut c = Calls::new(Some(&p), false, 0, 100);
        assert_eq!(
            c.after(CallAttempt::Status(503), Some(1), 10),
            AfterCall::Done
        );
    }

    #[test]
    fn a_graphql_answer_is_mapped_from_its_data_and_its_errors_are_the_envelopes() {
        let e: Endpoint = serde_json::from_value(json!({"method": "POST", "path": "/graphql",
            "graphql": {"query": "query($id: ID!) { order(id: $id) { name customer { email } } }"},
            "response": {"field_mappings": {"name": "order.name", "email": "order.customer.email"}}}))
        .unwrap();
        let conclude = |status, body: Value| {
            conclude(
                &e,
                CallAttempt::Status(status),
                &body.to_string(),
                1000,
                Some(2),
            )
            .unwrap()
        };
        let partial = conclude(
            200,
            json!({"data": {"order": {"name": "#1001", "customer": null}},
            "errors": [{"message": "Access denied for customer field.", "path": ["order", "customer"]}]}),
        );
        assert!(partial.success, "partial data is still an answer");
        assert_eq!(partial.data, json!({"name": "#1001", "email": null}));
        let err = partial.error.unwrap();
        assert_eq!(
            (err.code, err.message.as_str()),
            (
                "graphql_error",
                "Access denied for customer field. (at order.customer)"
            )
        );
        assert_eq!(
            err.details.unwrap()[0]["path"],
            json!(["order", "customer"])
        );
        let failed = conclude(
            200,
            json!({"errors": [{"message": "Field 'ordr' doesn't exist on type 'QueryRoot'"}]}),
        );
        assert!(!failed.success && failed.provider_ok);
        assert_eq!(failed.error.as_ref().unwrap().code, "graphql_error");
        let mut env = Envelope::new("r");
        env.error = failed.error;
        assert_eq!(env.http_status(), 502);
        // Throttled (the flow makes it a 429): the caller hears the wait.
        let throttled = conclude(
            429,
            json!({"errors": [{"message": "Throttled", "extensions": {"code": "THROTTLED"}}]}),
        );
        let err = throttled.error.unwrap();
        assert_eq!(
            (err.code, err.message.as_str(), err.retry_after),
            ("provider_rate_limited", "Throttled", Some(2))
        );
    }

    /// Pipedrive's deals, as shipped: only a page that says `"success": true` is read for its
    /// items; a 2xx that says otherwise (a rate limit, an empty object) ends the call as a
    /// failure instead of passing for a last, shorter page. The endpoint's mock is the gathered
    /// list, which no page-level success path applies to, and still answers.
    #[test]
    fn a_page_must_say_it_succeeded_and_a_paginated_mock_is_the_gathered_list() {
        let file = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/kv-seed/templates/pipedrive.json"
        );
        let t: Value = serde_json::from_str(&std::fs::read_to_string(file).unwrap()).unwrap();
        let deals: Endpoint =
            serde_json::from_value(t["integration"]["endpoints"]["list_deals"].clone()).unwrap();
        let ok = CallAttempt::Status(200);
        let page = json!({"success": true, "data": [{"id": 1}],
            "additional_data": {"pagination": {"more_items_in_collection": true, "next_start": 1}}});
        assert!(clean_page(&deals, ok, &page.to_string()).is_some());
        for body in [r#"{"error":"Rate limit"}"#, "{}"] {
            assert_eq!(clean_page(&deals, ok, body), None, "{body} is no page");
            let done = conclude(&deals, ok, body, 1000, None).unwrap();
            assert!(!done.success && done.error.is_some(), "{body}: {done:?}");
        }
        let limited = conclude(&deals, ok, r#"{"error":"Rate limit"}"#, 1000, None).unwrap();
        assert_eq!(limited.error.unwrap().message, "Rate limit");
        let mocked = Envelope::new("r").mocked(&deals, "list_deals").unwrap();
        assert!(mocked.success, "{mocked:?}");
        assert_eq!(mocked.data[1]["title"], "Second demo deal");
    }

    #[test]
    fn conclusions_and_cache_keys() {
        let mapping =
            json!({"success_path": "ok", "data_path": "contact", "error_path": "error.message"});
        let endpoint = |v: Value| -> Endpoint { serde_json::from_value(v).unwrap() };
        let mapped = endpoint(json!({"method": "GET", "path": "/c", "response": mapping}));
        let plain = endpoint(json!({"method": "GET", "path": "/c"}));
        let ok = conclude(
            &mapped,
            CallAttempt::Status(200),
            r#"{"ok":true,"contact":{"id":1}}"#,
            1000,
            None,
        )
        .unwrap();
        assert!(ok.success && ok.provider_ok && ok.error.is_none());
        assert_eq!(ok.data, json!({"id": 1}));
        let refused = conclude(
            &mapped,
            CallAttempt::Status(404),
            r#"{"ok":false,"error":{"message":"no such contact"}}"#,
            1000,
            None,
        )
        .unwrap();
        assert!(!refused.success && refused.provider_ok);
        assert_eq!(refused.error.unwrap().message, "no such contact");
        let down = conclude(&plain, CallAttempt::Status(503), "<html>", 1000, Some(5)).unwrap();
        assert!(!down.provider_ok);
        assert_eq!(down.body, json!("<html>"));
        let down = down.error.unwrap();
        assert_eq!(down.message, "the provider answered 503");
        assert_eq!((down.code, down.retry_after), ("upstream_error", None));
        // The provider's rate limit: the caller hears how long to wait.
        let limited = conclude(&mapped, CallAttempt::Status(429), "{}", 1000, Some(7));
        let limited = limited.unwrap();
        assert!(
            limited.provider_ok,
            "a rate limit is no sign of a failing provider"
        );
        let e = limited.error.unwrap();
        assert_eq!((e.code, e.retry_after), ("provider_rate_limited", Some(7)));
        let slow = conclude(&plain, CallAttempt::Timeout, "", 1500, None).unwrap();
        assert_eq!(slow.error.as_ref().map(|e| e.code), Some("timeout"));
        assert!(!slow.provider_ok);

        let get = endpoint(
            json!({"method": "GET", "path": "/c/{id}", "cache": {"ttl_seconds": 60, "key_fields": ["id"]}}),
        );
        let cfg = |v: Value| -> IntegrationConfig {
            let mut doc = json!({"name": "CRM", "base_url": "https://crm.example", "endpoints": {},
                "incarnation": "01", "auth": {"type": "bearer", "token": {"$sealed": "v2.k.a"}}});
            for (k, val) in v.as_object().unwrap() {
                doc[k] = val.clone();
            }
            serde_json::from_value(doc).unwrap()
        };
        let crm = cfg(json!({}));
        let key = |tenant: &str, c: &IntegrationConfig, e: &Endpoint, input: Value| {
            cache_key(tenant, "crm", c, "get", e, &input).map(|(url, _)| url)
        };
        let (url, ttl) = cache_key(
            "acme",
            "crm",
            &crm,
            "get",
            &get,
            &json!({"id": "c1", "x": 1}),
        )
        .unwrap();
        assert_eq!(ttl, 60);
        assert!(url.starts_with("https://integration-cache.internal/acme/crm/get/"));
        // Only the key fields count; another tenant is another entry.
        assert_eq!(
            key("acme", &crm, &get, json!({"id": "c1", "x": 2})),
            Some(url.clone())
        );
        assert_ne!(
            key("globex", &crm, &get, json!({"id": "c1"})),
            Some(url.clone())
        );
        // Installed again (another incarnation, alone or with its tenant), or replaced with other
        // credentials, another base URL or another definition of the endpoint: another entry.
        for other in [
            json!({"incarnation": "02"}),
            json!({"incarnation": null}),
            json!({"auth": {"type": "bearer", "token": {"$sealed": "v2.k.b"}}}),
            json!({"base_url": "https://other.example"}),
            json!({"headers": {"x-team": "2"}}),
        ] {
            assert_ne!(
                key("acme", &cfg(other.clone()), &get, json!({"id": "c1"})),
                Some(url.clone()),
                "{other}"
            );
        }
        let remapped = endpoint(
            json!({"method": "GET", "path": "/c/{id}", "cache": {"ttl_seconds": 60, "key_fields": ["id"]},
                   "response": {"data_path": "contact"}}),
        );
        assert_ne!(key("acme", &crm, &remapped, json!({"id": "c1"})), Some(url));
        let post = endpoint(json!({"method": "POST", "path": "/c", "cache": {"ttl_seconds": 60}}));
        assert_eq!(key("acme", &crm, &post, json!({})), None);
    }

    #[test]
    fn retry_decisions() {
        let p = policy(json!({"max_retries": 3, "initial_delay_ms": 100, "max_delay_ms": 1000}));
        assert_eq!(
            retry_delay_ms(Some(&p), 0, CallAttempt::Status(503), None),
            Some(100)
        );
        assert_eq!(
            retry_delay_ms(Some(&p), 1, CallAttempt::Status(503), None),
            Some(200)
        );
        assert_eq!(
            retry_delay_ms(Some(&p), 2, CallAttempt::Timeout, None),
            Some(400)
        );
        assert_eq!(
            retry_delay_ms(Some(&p), 0, CallAttempt::TooLarge, None),
            None
        );
        assert_eq!(
            retry_delay_ms(Some(&p), 3, CallAttempt::Status(503), None),
            None,
            "max_retries reached"
        );
        assert_eq!(
            retry_delay_ms(Some(&p), 0, CallAttempt::Status(404), None),
            None,
            "4xx is not retried"
        );
        assert_eq!(
            retry_delay_ms(Some(&p), 0, CallAttempt::Status(429), Some(1)),
            Some(1000),
            "the provider's wait"
        );
        assert_eq!(
            retry_delay_ms(Some(&p), 0, CallAttempt::Status(429), Some(2)),
            None,
            "longer than the policy waits: no retry sooner than asked"
        );
        assert_eq!(
            retry_delay_ms(None, 0, CallAttempt::Status(503), None),
            None,
            "no policy, no retry"
        );
        let linear = policy(
            json!({"max_retries": 5, "backoff": "linear", "initial_delay_ms": 50, "retry_on_status": [409], "retry_on_timeout": false}),
        );
        assert_eq!(
            retry_delay_ms(Some(&linear), 2, CallAttempt::Status(409), None),
            Some(150)
        );
        assert_eq!(
            retry_delay_ms(Some(&linear), 0, CallAttempt::Status(503), None),
            None
        );
        assert_eq!(
            retry_delay_ms(Some(&linear), 0, CallAttempt::Timeout, None),
            None
        );
        let fixed = policy(json!({"max_retries": 5, "backoff": "fixed", "initial_delay_ms": 70}));
        assert_eq!(
            retry_delay_ms(Some(&fixed), 4, CallAttempt::ConnectionError, None),
            Some(70)
        );
    }

    #[test]
    fn envelope_statuses() {
        let mut e = Envelope {
            request_id: "r".into(),
            success: true,
            data: json!({}),
            error: None,
            status_code: 200,
            execution_time_ms: 1,
            cached: false,
            retries: 0,
            pages: None,
            debug: None,
        };
        assert_eq!(e.http_status(), 200);
        e.success = false;
        for (code, status) in [
            ("timeout", 504),
            ("rate_limited", 429),
            ("circuit_open", 503),
            ("upstream_error", 502),
        ] {
            e.error = Some(EnvelopeError::new(code, "m"));
            assert_eq!(e.http_status(), status);
        }
        let v = serde_json::to_value(&e).unwrap();
        for k in [
            "request_id",
            "success",
            "data",
            "error",
            "status_code",
            "execution_time_ms",
            "cached",
            "retries",
        ] {
            assert!(v.get(k).is_some(), "{k}");
        }
    }
}
