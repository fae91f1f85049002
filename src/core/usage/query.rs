//! `GET /v1/usage`: the rows of a time range, added up by the dimensions asked for, with each
//! group's latency percentiles from its merged histogram, as JSON or CSV.

use super::{Counters, Dims, Family, Range, HOUR_MS};
use crate::core::error::ApiError;
use crate::core::flow::Co;
use crate::core::http::{query_param, HttpResponse};
use crate::core::integration::health;
use crate::core::integration::transforms::parse_iso8601;
use crate::core::limits::budget::usd;
use crate::core::objects::{protocol::Usage, Object};
use crate::core::time::iso8601;
use serde_json::{json, Value};
use std::collections::BTreeMap;

/// A dimension to group by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Group {
    Hour,
    Day,
    Route,
    Provider,
    Model,
    Key,
    Subject,
    /// The MCP tool called: the subject of `mcp` rows, none of any other's.
    Tool,
}

impl Group {
    const ALL: [Group; 8] = [
        Group::Hour,
        Group::Day,
        Group::Route,
        Group::Provider,
        Group::Model,
        Group::Key,
        Group::Subject,
        Group::Tool,
    ];

    fn name(self) -> &'static str {
        match self {
            Group::Hour => "hour",
            Group::Day => "day",
            Group::Route => "route",
            Group::Provider => "provider",
            Group::Model => "model",
            Group::Key => "key",
            Group::Subject => "subject",
            Group::Tool => "tool",
        }
    }

    fn of(self, d: &Dims) -> Option<String> {
        match self {
            Group::Hour => Some(iso8601(d.hour / 1000)),
            Group::Day => Some(iso8601(d.hour / 1000)[..10].to_string()),
            Group::Route => Some(d.family.name().to_string()),
            Group::Provider => d.provider.clone(),
            Group::Model => d.model.clone(),
            Group::Key => d.key.clone(),
            Group::Subject => d.subject.clone(),
            Group::Tool => match d.family {
                Family::Mcp => d.subject.clone(),
                _ => None,
            },
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Json,
    Csv,
}

/// A parsed usage query.
#[derive(Debug, Clone, PartialEq)]
pub struct Query {
    pub range: Range,
    pub group_by: Vec<Group>,
    pub format: Format,
}

/// The longest range one query may cover.
const MAX_RANGE_MS: u64 = 93 * 24 * HOUR_MS;

/// `from` and `to` (ISO 8601 or Unix seconds; default: the last 24 hours), `group_by` (a comma
/// list of hour, day, route, provider, model, key, subject, tool; default day), `format` (json,
/// csv).
pub fn parse(url: &str, now_ms: u64) -> Result<Query, ApiError> {
    let time = |name: &str| -> Result<Option<u64>, ApiError> {
        let Some(v) = query_param(url, name) else {
            return Ok(None);
        };
        let secs = match v.parse::<u64>() {
            Ok(s) => Some(s as i64),
            Err(_) => parse_iso8601(&v),
        };
        match secs {
            Some(s) if s >= 0 => Ok(Some(s as u64 * 1000)),
            _ => Err(ApiError::bad_request(format!(
                "`{name}` must be ISO 8601 (2026-11-01 or 2026-11-01T00:00:00Z) or Unix seconds"
            ))),
        }
    };
    let to = time("to")?.unwrap_or(now_ms);
    let from = time("from")?.unwrap_or(to.saturating_sub(24 * HOUR_MS));
    if from >= to || to - from > MAX_RANGE_MS {
        return Err(ApiError::bad_request(
            "`from` must come before `to`, at most 93 days apart",
        ));
    }
    let mut group_by = Vec::new();
    for name in query_param(url, "group_by")
        .unwrap_or_else(|| "day".into())
        .split(',')
    {
        let name = name.trim();
        let g = Group::ALL
            .into_iter()
            .find(|g| g.name() == name)
            .ok_or_else(|| {
                ApiError::bad_request(format!(
                    "unknown `group_by` `{name}`; use {}",
                    Group::ALL.map(Group::name).join(", ")
                ))
            })?;
        if !group_by.contains(&g) {
            group_by.push(g);
        }
    }
    let format = match query_param(url, "format").as_deref() {
        None | Some("json") => Format::Json,
        Some("csv") => Format::Csv,
        Some(_) => return Err(ApiError::bad_request("`format` is json or csv")),
    };
    // Whole hours: the hour holding `from`, up to the hour holding `to`.
    let range = Range {
        from: from - from % HOUR_MS,
        to: to - to % HOUR_MS + HOUR_MS,
    };
    Ok(Query {
        range,
        group_by,
        format,
    })
}

/// The rows added up by the query's groups, in order.
pub fn group(q: &Query, rows: &[(Dims, Counters)]) -> Vec<(Vec<Option<String>>, Counters)> {
    let mut groups: BTreeMap<Vec<Option<String>>, Counters> = BTreeMap::new();
    for (d, c) in rows
        .iter()
        .filter(|(d, _)| (q.range.from..q.range.to).contains(&d.hour))
    {
        let key = q.group_by.iter().map(|g| g.of(d)).collect();
        groups.entry(key).or_default().add(c);
    }
    groups.into_iter().collect()
}

/// The columns of a group, in order; the token classes come last, after the columns a report
/// had before them (a CSV reader by position still finds those where they were).
const COLUMNS: [&str; 17] = [
    "requests",
    "client_errors",
    "server_errors",
    "p50_ms",
    "p95_ms",
    "input_tokens",
    "output_tokens",
    "cached",
    "cost_usd",
    "delivered",
    "failed",
    "dead_lettered",
    "fresh_input_tokens",
    "cache_read_tokens",
    "cache_write_tokens",
    "reasoning_tokens",
    "media_tokens",
];

fn figures(c: &Counters) -> [Value; 17] {
    [
        json!(c.requests),
        json!(c.client_errors),
        json!(c.server_errors),
        json!(c.percentile_ms(0.5)),
        json!(c.percentile_ms(0.95)),
        json!(c.input_tokens),
        json!(c.output_tokens),
        json!(c.cached),
        json!(usd(c.cost_nanos)),
        json!(c.delivered),
        json!(c.failed),
        json!(c.dead_lettered),
        json!(c.fresh_input_tokens),
        json!(c.cache_read_tokens),
        json!(c.cache_write_tokens),
        json!(c.reasoning_tokens),
        json!(c.media_tokens),
    ]
}

/// The answer: its content type and body.
/// The report in the query's format; JSON also lists each checked integration's last health.
pub fn render(
    q: &Query,
    groups: &[(Vec<Option<String>>, Counters)],
    health: &[Value],
) -> (&'static str, Vec<u8>) {
    let names: Vec<&str> = q.group_by.iter().map(|g| g.name()).collect();
    match q.format {
        Format::Json => {
            let data: Vec<Value> = groups
                .iter()
                .map(|(key, c)| {
                    let mut row = serde_json::Map::new();
                    for (n, v) in names.iter().zip(key) {
                        row.insert(n.to_string(), json!(v));
                    }
                    for (n, v) in COLUMNS.iter().zip(figures(c)) {
                        row.insert(n.to_string(), v);
                    }
                    Value::Object(row)
                })
                .collect();
            let body = json!({
                "from": iso8601(q.range.from / 1000),
                "to": iso8601(q.range.to / 1000),
                "group_by": names,
                "data": data,
                "integrations_health": health,
            });
            ("application/json", body.to_string().into_bytes())
        }
        Format::Csv => {
            let mut out = String::new();
            let header: Vec<&str> = names
                .iter()
                .copied()
                .chain(COLUMNS.iter().copied())
                .collect();
            out.push_str(&header.join(","));
            out.push('\n');
            for (key, c) in groups {
                let cells: Vec<String> = key
                    .iter()
                    .map(|v| csv_cell(v.as_deref().unwrap_or("")))
                    .chain(figures(c).iter().map(|v| match v {
                        Value::Null => String::new(),
                        Value::Number(n) if n.is_f64() => n.as_f64().unwrap_or(0.0).to_string(),
                        v => v.to_string(),
                    }))
                    .collect();
                out.push_str(&cells.join(","));
                out.push('\n');
            }
            ("text/csv; charset=utf-8", out.into_bytes())
        }
    }
}

/// A CSV cell (RFC 4180): quoted when it holds a comma, quote or line break; a leading `=`,
/// `+`, `-` or `@` is prefixed with `'` so a spreadsheet does not run it as a formula.
fn csv_cell(s: &str) -> String {
    let s = match s.chars().next() {
        Some('=' | '+' | '-' | '@') => format!("'{s}"),
        _ => s.to_string(),
    };
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s
    }
}

/// The usage report of `tenant` that `url`'s query asks for.
pub async fn report(co: &Co, tenant: &str, url: &str) -> Result<HttpResponse, ApiError> {
    let q = parse(url, co.now())?;
    let rows = co
        .ask(&Object::<Usage>::usage(tenant), q.range.clone())
        .await?;
    let health = match q.format {
        Format::Json => health::of_tenant(co, tenant).await?,
        Format::Csv => Vec::new(),
    };
    let (content_type, body) = render(&q, &group(&q, &rows), &health);
    Ok(HttpResponse::bytes(200, content_type, body))
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: u64 = 1_795_967_178_000; // 2026-11-29T15:46:18Z
    const H15: u64 = 1_795_964_400_000; // 15:00

    fn row(hour: u64, model: &str, tokens: u64, ms: u64) -> (Dims, Counters) {
        let mut c = Counters::request(200, ms);
        c.output_tokens = tokens;
        c.cost_nanos = tokens * 1_000;
        let d = Dims {
            hour,
            family: Family::Llm,
            key: Some("key_1".into()),
            provider: Some("oai".into()),
            model: Some(model.into()),
            subject: None,
        };
        (d, c)
    }

    #[test]
    fn a_query_is_read_with_its_defaults_and_refused_when_wrong() {
        let q = parse("https://gw/v1/usage", NOW).unwrap();
        assert_eq!(q.group_by, vec![Group::Day]);
        assert_eq!(q.format, Format::Json);
        assert_eq!(q.range.to, H15 + HOUR_MS, "through the current hour");
        assert_eq!(q.range.to - q.range.from, 25 * HOUR_MS);
        let q = parse("https://gw/v1/usage?from=2026-11-29&to=1795967178&group_by=model,hour,model&format=csv", NOW).unwrap();
        assert_eq!(q.group_by, vec![Group::Model, Group::Hour]);
        assert_eq!(q.range.from, 1_795_910_400_000);
        for bad in [
            "from=yesterday",
            "group_by=colour",
            "format=xml",
            "from=2026-11-30&to=2026-11-29",
            "from=2026-01-01&to=2026-11-29",
        ] {
            let e = parse(&format!("https://gw/v1/usage?{bad}"), NOW).unwrap_err();
            assert_eq!(e.status(), 400, "{bad}");
        }
    }

    #[test]
    fn rows_are_added_up_by_the_groups_asked_for() {
        let rows = [
            row(H15 - HOUR_MS, "m1", 10, 3),
            row(H15 - HOUR_MS, "m2", 5, 900),
            row(H15, "m1", 1, 3),
            row(H15 - 30 * HOUR_MS, "m1", 100, 3), // outside the range
        ];
        let q = parse("https://gw/v1/usage?group_by=model", NOW).unwrap();
        let g = group(&q, &rows);
        assert_eq!(g.len(), 2);
        assert_eq!(g[0].0, vec![Some("m1".to_string())]);
        assert_eq!((g[0].1.requests, g[0].1.output_tokens), (2, 11));
        let q = parse("https://gw/v1/usage?group_by=route", NOW).unwrap();
        let g = group(&q, &rows);
        assert_eq!(g.len(), 1);
        assert_eq!(
            (g[0].1.requests, g[0].1.percentile_ms(0.95)),
            (3, Some(1_000))
        );
        let (ct, body) = render(&q, &g, &[]);
        assert_eq!(ct, "application/json");
        let v: Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(v["data"][0]["route"], "llm");
        assert_eq!(v["data"][0]["output_tokens"], 16);
        assert_eq!(v["data"][0]["cost_usd"], 0.000016);
        assert_eq!(v["data"][0]["p50_ms"], 5);
    }

    #[test]
    fn tools_are_the_subjects_of_mcp_rows_only() {
        let at = |family, subject: Option<&str>, status| {
            let d = Dims {
                hour: H15,
                family,
                key: Some("key_1".into()),
                provider: None,
                model: None,
                subject: subject.map(String::from),
            };
            (d, Counters::request(status, 4))
        };
        let rows = [
            at(Family::Mcp, Some("crm__get_contact"), 200),
            at(Family::Mcp, Some("crm__get_contact"), 200),
            at(Family::Mcp, Some("crm__delete_contact"), 200),
            at(Family::Webhook, Some("stripe"), 200),
            at(Family::Mcp, None, 401),
        ];
        let q = parse("https://gw/v1/usage?group_by=tool", NOW).unwrap();
        let g = group(&q, &rows);
        let counted: Vec<(Option<&str>, u64)> = g
            .iter()
            .map(|(k, c)| (k[0].as_deref(), c.requests))
            .collect();
        assert_eq!(
            counted,
            [
                (None, 2),
                (Some("crm__delete_contact"), 1),
                (Some("crm__get_contact"), 2)
            ],
            "a webhook source is not a tool"
        );
        let q = parse("https://gw/v1/usage?group_by=route,tool&format=csv", NOW).unwrap();
        let (_, body) = render(&q, &group(&q, &rows), &[]);
        let text = String::from_utf8(body).unwrap();
        assert!(text.starts_with("route,tool,requests,"), "{text}");
        assert!(text.contains("\nmcp,crm__get_contact,2,"), "{text}");
        assert!(text.contains("\nwebhook,,1,"), "{text}");
    }

    #[test]
    fn token_classes_are_columns_added_up_by_the_groups() {
        let mut cached = row(H15, "claude", 400, 3);
        (cached.1.input_tokens, cached.1.fresh_input_tokens) = (13_050, 50);
        (cached.1.cache_read_tokens, cached.1.cache_write_tokens) = (10_000, 3_000);
        let mut thinking = row(H15, "claude", 800, 3);
        (thinking.1.reasoning_tokens, thinking.1.media_tokens) = (640, 1_032);
        let rows = [cached, thinking, row(H15, "gpt", 5, 3)];
        let q = parse("https://gw/v1/usage?group_by=model", NOW).unwrap();
        let (_, body) = render(&q, &group(&q, &rows), &[]);
        let v: Value = serde_json::from_slice(&body).unwrap();
        let claude = &v["data"][0];
        assert_eq!(claude["model"], "claude");
        assert_eq!(
            [
                "fresh_input_tokens",
                "cache_read_tokens",
                "cache_write_tokens",
                "reasoning_tokens",
                "media_tokens"
            ]
            .map(|c| claude[c].as_u64()),
            [50, 10_000, 3_000, 640, 1_032].map(Some)
        );
        assert_eq!(v["data"][1]["cache_read_tokens"], 0);
        let q = parse("https://gw/v1/usage?group_by=model&format=csv", NOW).unwrap();
        let (_, body) = render(&q, &group(&q, &rows), &[]);
        let text = String::from_utf8(body).unwrap();
        assert!(
            text.lines()
                .nth(1)
                .unwrap()
                .ends_with(",50,10000,3000,640,1032"),
            "{text}"
        );
    }

    #[test]
    fn csv_has_a_header_and_safe_cells() {
        let q = parse("https://gw/v1/usage?group_by=model,day&format=csv", NOW).unwrap();
        let rows = [row(H15, "=cmd,x", 2, 3)];
        let (ct, body) = render(&q, &group(&q, &rows), &[]);
        assert_eq!(ct, "text/csv; charset=utf-8");
        let text = String::from_utf8(body).unwrap();
        let mut lines = text.lines();
        assert_eq!(
            lines.next().unwrap(),
            "model,day,requests,client_errors,server_errors,p50_ms,p95_ms,input_tokens,output_tokens,cached,cost_usd,delivered,failed,dead_lettered,fresh_input_tokens,cache_read_tokens,cache_write_tokens,reasoning_tokens,media_tokens"
        );
        assert_eq!(
            lines.next().unwrap(),
            "\"'=cmd,x\",2026-11-29,1,0,0,5,5,0,2,0,0.000002,0,0,0,0,0,0,0,0"
        );
    }
}
