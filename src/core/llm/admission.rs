//! What the tenant's limiter is asked for an LLM request (its windows, and which of them a lease
//! may cover), and how its answer is told to the client: `x-ratelimit-*` headers, and the error
//! naming the windows that refused.

use crate::core::error::{ApiError, ErrorKind};
use crate::core::limits::lease::Leasable;
use crate::core::limits::limiter::{Adjust, Check};
use crate::core::limits::rate::Decision;
use crate::core::llm::config::LlmConfig;
use crate::core::tenant::keys::KeyRecord;
use crate::core::tenant::model::TenantConfig;

/// What a window counts, as named in the `x-ratelimit-*-{name}` headers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LimitKind {
    Requests,
    Tokens,
    /// The windows of the request's key (its own `rpm` and `tpm`).
    KeyRequests,
    KeyTokens,
    /// The widget's windows per visitor and per client IP.
    Visitor,
    Ip,
}

impl LimitKind {
    pub fn name(self) -> &'static str {
        match self {
            LimitKind::Requests => "requests",
            LimitKind::Tokens => "tokens",
            LimitKind::KeyRequests => "key-requests",
            LimitKind::KeyTokens => "key-tokens",
            LimitKind::Visitor => "visitor",
            LimitKind::Ip => "ip",
        }
    }

    pub fn leasable(self) -> Leasable {
        match self {
            LimitKind::Requests | LimitKind::KeyRequests => Leasable::Requests,
            LimitKind::Tokens | LimitKind::KeyTokens => Leasable::Tokens,
            LimitKind::Visitor | LimitKind::Ip => Leasable::No,
        }
    }
}

/// Requests and tokens per minute: the LLM config's, else the tenant's.
pub fn limits(cfg: &LlmConfig, tenant: Option<&TenantConfig>) -> (Option<u64>, Option<u64>) {
    let tenant = tenant.map(|t| &t.limits);
    let rpm = cfg.limits.rpm.or(tenant.and_then(|l| l.rpm));
    let tpm = cfg.limits.tpm.or(tenant.and_then(|l| l.tpm));
    (rpm.map(u64::from), tpm)
}

const REQUESTS_WINDOW: &str = "rpm";
const TOKENS_WINDOW: &str = "tpm";

/// The windows a request of `estimated_tokens` is charged to.
pub fn checks(
    rpm: Option<u64>,
    tpm: Option<u64>,
    estimated_tokens: u64,
) -> Vec<(LimitKind, Check)> {
    let rpm = rpm.map(|l| {
        (
            LimitKind::Requests,
            Check::per_minute(REQUESTS_WINDOW, l, 1),
        )
    });
    let tpm = tpm.map(|l| {
        let check = Check::per_minute(TOKENS_WINDOW, l, estimated_tokens);
        (LimitKind::Tokens, check)
    });
    rpm.into_iter().chain(tpm).collect()
}

/// The windows of the request's key, from its settings: its own, beside the tenant's.
pub fn key_checks(key: &KeyRecord, estimated_tokens: u64) -> Vec<(LimitKind, Check)> {
    let s = &key.settings;
    let rpm = s.rpm.map(|l| {
        let check = Check::per_minute(format!("key:{}:{REQUESTS_WINDOW}", key.id), l.into(), 1);
        (LimitKind::KeyRequests, check)
    });
    let tpm = s.tpm.map(|l| {
        let window = format!("key:{}:{TOKENS_WINDOW}", key.id);
        (
            LimitKind::KeyTokens,
            Check::per_minute(window, l, estimated_tokens),
        )
    });
    rpm.into_iter().chain(tpm).collect()
}

/// The corrections of the token windows a request was charged `charged` tokens in at
/// `charged_at_ms`, once its real count is known.
pub fn token_corrections(
    checks: &[(LimitKind, Check)],
    actual: u64,
    charged_at_ms: u64,
) -> Vec<Adjust> {
    checks
        .iter()
        .filter(|(k, _)| matches!(k, LimitKind::Tokens | LimitKind::KeyTokens))
        .map(|(_, c)| Adjust {
            key: c.key.clone(),
            window_ms: c.window_ms,
            charged: c.cost,
            actual,
            at_ms: charged_at_ms,
        })
        .collect()
}

/// `x-ratelimit-{limit,remaining,reset}-{kind}` for each window decided.
pub fn headers(kinds: &[LimitKind], decisions: &[Decision], now: u64) -> Vec<(String, String)> {
    let mut h = Vec::new();
    for (kind, d) in kinds.iter().zip(decisions) {
        let name = kind.name();
        let reset_s = d.reset_ms.saturating_sub(now).div_ceil(1000);
        h.push((format!("x-ratelimit-limit-{name}"), d.limit.to_string()));
        h.push((
            format!("x-ratelimit-remaining-{name}"),
            d.remaining.to_string(),
        ));
        h.push((format!("x-ratelimit-reset-{name}"), format!("{reset_s}s")));
    }
    h
}

/// A request that no token window could ever admit (it may use more tokens than a whole
/// minute's limit) is refused for what it is, a 400, instead of a 429 that no wait would end.
/// `unmeasured`: its input could not be measured (it was reserved at the model's context window).
pub fn check_fits(checks: &[(LimitKind, Check)], unmeasured: bool) -> Result<(), ApiError> {
    let too_big = checks
        .iter()
        .filter(|(k, _)| k.leasable() == Leasable::Tokens)
        .find(|(_, c)| c.cost > c.limit);
    let Some((kind, c)) = too_big else {
        return Ok(());
    };
    let what = match unmeasured {
        true => "its output maximum and its input, which the gateway cannot size and counts at the model's context window",
        false => "its input, images at their bounds, and its output maximum",
    };
    Err(ApiError::bad_request(format!(
        "this request may use up to {} tokens ({what}), more than the {} limit of {} per minute allows; lower `max_tokens`{}",
        c.cost,
        kind.name(),
        c.limit,
        if unmeasured { " or send the input itself" } else { "" }
    )))
}

/// The 429 for a refused request: which windows refused, and when the last of them has room.
pub fn refusal(kinds: &[LimitKind], decisions: &[Decision], now: u64) -> ApiError {
    let refused: Vec<_> = kinds
        .iter()
        .zip(decisions)
        .filter(|(_, d)| !d.allowed)
        .collect();
    let reset = refused.iter().map(|(_, d)| d.reset_ms).max().unwrap_or(now);
    let wait = reset.saturating_sub(now).div_ceil(1000).max(1);
    let which: Vec<_> = refused.iter().map(|(k, _)| k.name()).collect();
    ApiError::new(
        ErrorKind::RateLimited,
        format!(
            "rate limit reached for {} per minute; retry in {wait} s",
            which.join(" and ")
        ),
    )
    .with_retry_after(wait)
}

#[cfg(test)]
mod tests {
    use super::*;

    const T0: u64 = 1_700_000_000_000;

    fn decision(allowed: bool, remaining: u64, reset_ms: u64) -> Decision {
        Decision {
            allowed,
            limit: 100,
            remaining,
            reset_ms,
        }
    }

    #[test]
    fn the_llm_configs_limits_come_before_the_tenants() {
        let cfg: LlmConfig =
            serde_json::from_value(serde_json::json!({"providers": {}, "limits": {"tpm": 500}}))
                .unwrap();
        let tenant: TenantConfig = serde_json::from_value(
            serde_json::json!({"name": "T", "limits": {"rpm": 60, "tpm": 9000}}),
        )
        .unwrap();
        assert_eq!(limits(&cfg, Some(&tenant)), (Some(60), Some(500)));
        assert_eq!(limits(&cfg, None), (None, Some(500)));
        let checks = checks(Some(60), Some(500), 42);
        assert_eq!(checks[0].0, LimitKind::Requests);
        assert_eq!((checks[1].1.limit, checks[1].1.cost), (500, 42));
    }

    #[test]
    fn a_keys_windows_are_its_own_and_token_windows_are_corrected() {
        let key: KeyRecord = serde_json::from_value(serde_json::json!({
            "tenant": "t", "id": "key_a", "kind": "secret", "rpm": 3, "tpm": 900, "created_at": 0}))
        .unwrap();
        let mut all = checks(Some(60), Some(500), 42);
        all.extend(key_checks(&key, 42));
        let keys: Vec<_> = all.iter().map(|(_, c)| c.key.as_str()).collect();
        assert_eq!(keys, ["rpm", "tpm", "key:key_a:rpm", "key:key_a:tpm"]);
        assert_eq!(all[2].0.leasable(), Leasable::Requests);
        let fixes = token_corrections(&all, 10, T0);
        let fixed: Vec<_> = fixes
            .iter()
            .map(|a| (a.key.as_str(), a.charged, a.actual))
            .collect();
        assert_eq!(fixed, [("tpm", 42, 10), ("key:key_a:tpm", 42, 10)]);
    }

    #[test]
    fn headers_tell_each_window_and_its_reset_in_seconds() {
        let d = [decision(true, 99, T0 + 1_500)];
        let h = headers(&[LimitKind::Requests], &d, T0);
        assert_eq!(
            h,
            vec![
                ("x-ratelimit-limit-requests".into(), "100".into()),
                ("x-ratelimit-remaining-requests".into(), "99".into()),
                ("x-ratelimit-reset-requests".into(), "2s".into()),
            ]
        );
    }

    #[test]
    fn a_refusal_names_the_windows_and_waits_for_the_later_one() {
        let kinds = [LimitKind::Requests, LimitKind::Tokens, LimitKind::Visitor];
        let d = [
            decision(false, 0, T0 + 3_000),
            decision(true, 10, T0 + 60_000),
            decision(false, 0, T0 + 20_200),
        ];
        let e = refusal(&kinds, &d, T0);
        assert_eq!(e.status(), 429);
        assert_eq!(e.retry_after, Some(21));
        assert_eq!(
            e.message,
            "rate limit reached for requests and visitor per minute; retry in 21 s"
        );
    }

    #[test]
    fn a_request_larger_than_a_whole_window_is_a_400() {
        let fits = checks(Some(10), Some(1_000), 1_000);
        assert!(check_fits(&fits, false).is_ok());
        let over = checks(Some(10), Some(1_000), 1_001);
        let e = check_fits(&over, false).unwrap_err();
        assert_eq!(e.status(), 400);
        assert!(e.message.contains("1001 tokens"), "{}", e.message);
        assert!(e.message.contains("tokens limit of 1000"), "{}", e.message);
        assert!(
            !e.message.contains("send the input itself"),
            "{}",
            e.message
        );
        let unmeasured = check_fits(&over, true).unwrap_err();
        assert!(unmeasured.message.contains("send the input itself"));
        // Only token windows: a request window of 0 is the rate limit's to refuse.
        assert!(check_fits(&checks(Some(0), None, 5), false).is_ok());
    }
}
