//! `GET /v1/admin/tenants/{t}/tool-calls` (`webhook::log_admin::tool_calls` asks): a tenant's MCP
//! tool calls (`audit::ToolCall`) from its event log, newest first, filtered by tool, key and outcome, a page at a time. The log
//! keeps epoch ms; the answer shows `at` in Unix seconds with a millisecond fraction, as the
//! event log's attempts do.

use super::audit::{Outcome, ToolCall};
use crate::core::error::ApiError;
use crate::core::http::query_pairs;
use crate::core::time::ms_field_in_seconds;
use crate::core::webhook::event_log::{page_limit, DEFAULT_PAGE};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

/// A filtered page of tool calls, as the object takes it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ToolCallQuery {
    pub tool: Option<String>,
    /// A key's id.
    pub key: Option<String>,
    pub outcome: Option<Outcome>,
    /// Called at or after (epoch ms).
    pub since_ms: Option<u64>,
    /// Called before (epoch ms).
    pub until_ms: Option<u64>,
    /// Where the last page ended: its call's time (epoch ms) and row.
    pub after: Option<(u64, u64)>,
    pub limit: u32,
}

impl ToolCallQuery {
    /// From the request's query string: `tool`, `key`, `outcome`, `since` and `until` (Unix
    /// seconds), `cursor`, `limit` (1 to 100, default 50).
    pub fn from_url(url: &str) -> Result<ToolCallQuery, ApiError> {
        let mut q = ToolCallQuery {
            limit: DEFAULT_PAGE,
            ..ToolCallQuery::default()
        };
        let ms = |k: &str, v: &str| {
            v.parse::<u64>()
                .ok()
                .and_then(|s| s.checked_mul(1000))
                .ok_or_else(|| {
                    ApiError::bad_request(format!("`{k}` must be Unix seconds, got `{v}`"))
                })
        };
        for (k, v) in query_pairs(url) {
            match k.as_str() {
                "tool" => q.tool = Some(v),
                "key" => q.key = Some(v),
                "outcome" => {
                    let found = Outcome::ALL.into_iter().find(|o| o.as_str() == v);
                    q.outcome = Some(found.ok_or_else(|| {
                        let all = Outcome::ALL.map(Outcome::as_str).join(", ");
                        ApiError::bad_request(format!("`outcome` is one of {all}"))
                    })?);
                }
                "since" => q.since_ms = Some(ms("since", &v)?),
                "until" => q.until_ms = Some(ms("until", &v)?),
                "cursor" => q.after = Some(cursor_from(&v)?),
                "limit" => q.limit = page_limit(&v)?,
                _ => {}
            }
        }
        Ok(q)
    }
}

/// A page's cursor: where it ended.
pub fn cursor(at_ms: u64, row: u64) -> String {
    format!("{at_ms}.{row}")
}

fn cursor_from(s: &str) -> Result<(u64, u64), ApiError> {
    let bad = || ApiError::bad_request("`cursor` is not one this API gave");
    let (at, row) = s.split_once('.').ok_or_else(bad)?;
    Ok((
        at.parse().map_err(|_| bad())?,
        row.parse().map_err(|_| bad())?,
    ))
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ToolCallPage {
    pub data: Vec<ToolCall>,
    pub next_cursor: Option<String>,
}

/// The page as the API shows it: times in Unix seconds.
pub fn view(page: &ToolCallPage) -> Value {
    let mut v = json!(page);
    let calls = v.get_mut("data").and_then(Value::as_array_mut);
    for c in calls.into_iter().flatten() {
        ms_field_in_seconds(c, "at");
    }
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_query_reads_its_filters_and_refuses_what_it_cannot() {
        let q = ToolCallQuery::from_url(
            "https://g/v1/admin/tenants/t/tool-calls?tool=crm__get_contact&key=key_1&outcome=denied&since=10&until=20&limit=5&cursor=15000.7",
        )
        .unwrap();
        assert_eq!(q.tool.as_deref(), Some("crm__get_contact"));
        assert_eq!(q.key.as_deref(), Some("key_1"));
        assert_eq!(q.outcome, Some(Outcome::Denied));
        assert_eq!((q.since_ms, q.until_ms), (Some(10_000), Some(20_000)));
        assert_eq!((q.limit, q.after), (5, Some((15_000, 7))));
        let plain = ToolCallQuery::from_url("https://g/x").unwrap();
        assert_eq!(
            plain,
            ToolCallQuery {
                limit: 50,
                ..Default::default()
            }
        );
        for o in Outcome::ALL {
            let url = format!("https://g/x?outcome={}", o.as_str());
            assert_eq!(ToolCallQuery::from_url(&url).unwrap().outcome, Some(o));
            // The name the filter takes is the one a record shows.
            assert_eq!(json!(o), json!(o.as_str()));
        }
        for bad in [
            "outcome=fine",
            "since=yesterday",
            "until=-1",
            "since=99999999999999999",
            "limit=0",
            "limit=101",
            "cursor=x",
            "cursor=1.x",
        ] {
            let e = ToolCallQuery::from_url(&format!("https://g/x?{bad}")).unwrap_err();
            assert_eq!(e.status(), 400, "{bad}");
        }
    }

    #[test]
    fn a_cursor_reads_back_as_where_its_page_ended() {
        let url = format!("https://g/x?cursor={}", cursor(1_700_000_000_123, 42));
        let q = ToolCallQuery::from_url(&url).unwrap();
        assert_eq!(q.after, Some((1_700_000_000_123, 42)));
    }

    #[test]
    fn a_page_shows_times_in_seconds() {
        let page = ToolCallPage {
            data: vec![ToolCall {
                call: "n1".into(),
                request_id: "req_1".into(),
                key: "key_1".into(),
                tool: "crm__get_contact".into(),
                arguments_sha256: "00".repeat(32),
                outcome: Outcome::Ok,
                at: 1_700_000_000_250,
                duration_ms: 12,
                bytes: 30,
            }],
            next_cursor: None,
        };
        let v = view(&page);
        assert_eq!(v["data"][0]["at"], 1_700_000_000.25);
        assert_eq!(v["data"][0]["duration_ms"], 12);
        assert_eq!(v["next_cursor"], Value::Null);
    }
}
