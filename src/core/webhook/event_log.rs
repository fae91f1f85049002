//! A tenant's event log, kept in its `EventLog` object (SQLite): every event the consumer took
//! from ingress, the destinations it went to, and every delivery attempt (when, how long, the
//! status or error, the first KiB of the answer). Records are kept 30 days; an event's body only
//! when the tenant keeps bodies (`event_log.keep_bodies`), 3 days by default, so that any
//! delivery of it can be retried from the log. The consumer records in batches, one per tenant
//! per queue batch: the log is the operator's view, and a batch it loses loses no delivery.
//! It also keeps every MCP tool call's audit record (`mcp::audit`), sent after its response.

use super::delivery::EventEnvelope;
use crate::core::error::ApiError;
use crate::core::http::query_pairs;
use crate::core::mcp::audit::ToolCall;
use crate::core::upstream::ANSWER_PREVIEW;
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// How long a request's record waits in its isolate for others to go with it (one send to the
/// tenant's object for all of them).
pub const GATHER_MS: u64 = 50;
/// A send scheduled this long ago and not made is taken as lost (its request's context ended
/// before it ran), so the next record schedules another.
const SEND_LOST_MS: u64 = 1_000;

/// Whether a request that records at `now_ms` schedules a send, one being scheduled at
/// `scheduled_ms` (0: none).
pub fn send_due(scheduled_ms: u64, now_ms: u64) -> bool {
    now_ms.saturating_sub(scheduled_ms) > SEND_LOST_MS
}

/// How long records are kept.
pub const RECORD_RETENTION_MS: u64 = 30 * 86_400_000;
/// How long kept bodies are kept, unless the tenant says otherwise.
pub const DEFAULT_BODY_RETENTION_S: u32 = 3 * 86_400;
const MAX_PAGE: u32 = 100;
/// The page size of a log listing when none is asked for.
pub const DEFAULT_PAGE: u32 = 50;

/// What a tenant keeps of its events besides their records.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogSettings {
    /// Keep each event's body, so any delivery of it can be retried from the log.
    #[serde(default)]
    pub keep_bodies: bool,
    /// How long a body is kept (seconds, at most 30 days).
    pub body_retention_seconds: Option<u32>,
}

impl LogSettings {
    pub fn problems(&self, p: &mut Vec<String>) {
        if let Some(s) = self.body_retention_seconds {
            if !(60..=30 * 86_400).contains(&s) {
                p.push("`event_log.body_retention_seconds` must be between 60 and 2592000".into());
            }
        }
    }
}

/// How a delivery stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DeliveryState {
    /// Queued, not attempted yet (or held while its destination is paused).
    Pending,
    Delivered,
    /// Failed, and queued again.
    Retrying,
    DeadLettered,
}

impl DeliveryState {
    pub fn as_str(self) -> &'static str {
        match self {
            DeliveryState::Pending => "pending",
            DeliveryState::Delivered => "delivered",
            DeliveryState::Retrying => "retrying",
            DeliveryState::DeadLettered => "dead_lettered",
        }
    }
}

/// An event the consumer fanned out.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EventEntry {
    pub id: String,
    pub source: String,
    #[serde(rename = "type")]
    pub event_type: String,
    /// Seconds since the epoch, when ingress accepted it.
    pub received_at: u64,
    /// Bytes of its envelope.
    pub size: u64,
    /// Its deliveries: destination name and delivery id.
    pub deliveries: Vec<(String, String)>,
    /// The envelope, when the tenant keeps bodies, until `body_until_ms`.
    pub body: Option<String>,
    pub body_until_ms: Option<u64>,
    /// The tenant had no destination at all (not one that filters rejected).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub no_destination: bool,
}

/// One delivery attempt.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AttemptEntry {
    pub event: String,
    pub delivery: String,
    pub destination: String,
    pub attempt: u32,
    /// Epoch ms, when it started.
    pub at: u64,
    pub duration_ms: u64,
    pub status: Option<u16>,
    pub error: Option<String>,
    /// The first KiB of the destination's answer.
    pub answer: Option<String>,
    /// Where the delivery stands after it.
    pub state: DeliveryState,
    /// How long its destination may fail every attempt before it is disabled (0: never); the
    /// log's, not shown.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub disable_after_ms: u64,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum LogEntry {
    Event(EventEntry),
    Attempt(AttemptEntry),
    /// An MCP `tools/call` (`mcp::audit`).
    ToolCall(ToolCall),
}

impl LogEntry {
    /// As a flow hands it to the shell (`core::flow::Effect::Record`).
    pub fn encode(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }

    /// What `encode` wrote.
    pub fn decode(text: &str) -> Result<LogEntry, ApiError> {
        serde_json::from_str(text)
            .map_err(|e| ApiError::internal(format!("an event log entry did not decode: {e}")))
    }
}

/// What the consumer recorded for one tenant during one batch.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct LogBatch {
    pub entries: Vec<LogEntry>,
}

/// The event entry for `event` going to `deliveries`, with its body if `settings` keep bodies.
pub fn event_entry(
    event: &EventEnvelope,
    deliveries: Vec<(String, String)>,
    settings: LogSettings,
    now_ms: u64,
) -> EventEntry {
    let text = serde_json::to_string(event).unwrap_or_default();
    let size = text.len() as u64;
    let retention = settings
        .body_retention_seconds
        .unwrap_or(DEFAULT_BODY_RETENTION_S);
    let (body, body_until_ms) = match settings.keep_bodies {
        true => (Some(text), Some(now_ms + u64::from(retention) * 1000)),
        false => (None, None),
    };
    EventEntry {
        id: event.id.clone(),
        source: event.source.clone(),
        event_type: event.event_type.clone(),
        received_at: event.received_at,
        size,
        deliveries,
        body,
        body_until_ms,
        no_destination: false,
    }
}

/// The first KiB of an answer, cut at a character boundary.
pub fn preview(body: &[u8]) -> Option<String> {
    if body.is_empty() {
        return None;
    }
    let text = String::from_utf8_lossy(&body[..body.len().min(ANSWER_PREVIEW)]).into_owned();
    Some(text.trim_end_matches('\u{FFFD}').to_string())
}

/// An event's overall state, for filtering: any delivery dead-lettered is `failed`; else any
/// still to make is `pending`; else `delivered`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EventStatus {
    Delivered,
    Pending,
    Failed,
    /// No destination took it (filters, or the source feeds none that exist).
    Filtered,
    /// The tenant had no destination when it arrived: recorded, and nothing failed.
    NoDestination,
}

impl EventStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            EventStatus::Delivered => "delivered",
            EventStatus::Pending => "pending",
            EventStatus::Failed => "failed",
            EventStatus::Filtered => "filtered",
            EventStatus::NoDestination => "no_destination",
        }
    }
}

/// `GET /v1/admin/tenants/{t}/events`: newest first, filtered, a page at a time.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct EventQuery {
    pub source: Option<String>,
    /// An event type, `*` standing for any run of characters.
    pub event_type: Option<String>,
    pub status: Option<EventStatus>,
    /// Received at or after (epoch seconds).
    pub since: Option<u64>,
    /// Received before (epoch seconds).
    pub until: Option<u64>,
    /// Where the last page ended: received_at and id.
    pub after: Option<(u64, String)>,
    pub limit: u32,
}

impl EventQuery {
    /// From the request's query string (`source`, `type`, `status`, `since`, `until`, `cursor`,
    /// `limit`); times are epoch seconds.
    pub fn from_url(url: &str) -> Result<EventQuery, ApiError> {
        let mut q = EventQuery {
            limit: DEFAULT_PAGE,
            ..EventQuery::default()
        };
        let seconds = |k: &str, v: &str| {
            v.parse::<u64>().map_err(|_| {
                ApiError::bad_request(format!("`{k}` must be epoch seconds, got `{v}`"))
            })
        };
        for (k, v) in query_pairs(url) {
            match k.as_str() {
                "source" => q.source = Some(v),
                "type" => q.event_type = Some(v),
                "status" => q.status = Some(match v.as_str() {
                    "delivered" => EventStatus::Delivered,
                    "pending" => EventStatus::Pending,
                    "failed" => EventStatus::Failed,
                    "filtered" => EventStatus::Filtered,
                    "no_destination" => EventStatus::NoDestination,
                    _ => return Err(ApiError::bad_request(
                        "`status` is one of delivered, pending, failed, filtered, no_destination",
                    )),
                }),
                "since" => q.since = Some(seconds("since", &v)?),
                "until" => q.until = Some(seconds("until", &v)?),
                "cursor" => q.after = Some(cursor_from(&v)?),
                "limit" => q.limit = page_limit(&v)?,
                _ => {}
            }
        }
        Ok(q)
    }

    /// The SQL `LIKE` pattern of `event_type` (`*` is any run; `%`, `_` and `\` are literal).
    pub fn type_pattern(&self) -> Option<String> {
        self.event_type.as_ref().map(|t| {
            t.chars()
                .map(|c| match c {
                    '*' => "%".to_string(),
                    '%' | '_' | '\\' => format!("\\{c}"),
                    c => c.to_string(),
                })
                .collect()
        })
    }
}

/// A log listing's `limit` (events, tool calls): 1 to 100.
pub fn page_limit(v: &str) -> Result<u32, ApiError> {
    v.parse::<u32>()
        .ok()
        .filter(|n| (1..=MAX_PAGE).contains(n))
        .ok_or_else(|| ApiError::bad_request("`limit` is 1 to 100"))
}

/// A page's cursor: where it ended.
pub fn cursor(received_at: u64, id: &str) -> String {
    format!("{received_at}.{id}")
}

fn cursor_from(s: &str) -> Result<(u64, String), ApiError> {
    let bad = || ApiError::bad_request("`cursor` is not one this API gave");
    let (at, id) = s.split_once('.').ok_or_else(bad)?;
    Ok((at.parse().map_err(|_| bad())?, id.to_string()))
}

/// An event as listed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EventSummary {
    pub id: String,
    pub source: String,
    #[serde(rename = "type")]
    pub event_type: String,
    pub received_at: u64,
    pub size: u64,
    pub status: EventStatus,
    pub body_kept: bool,
    /// Destination -> where its delivery stands.
    pub deliveries: Vec<DeliverySummary>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DeliverySummary {
    pub id: String,
    pub destination: String,
    pub state: DeliveryState,
    pub attempts: u32,
    /// Epoch ms of the last attempt.
    pub last_attempt_at: Option<u64>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct EventPage {
    pub data: Vec<EventSummary>,
    pub next_cursor: Option<String>,
}

/// One event with its deliveries' attempts, and its body if kept.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EventDetail {
    #[serde(flatten)]
    pub summary: EventSummary,
    pub attempts: Vec<AttemptEntry>,
    pub body: Option<Value>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct GetEvent {
    pub id: String,
}

/// Forget records received before `before_ms` and bodies kept past their time (`now_ms`).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ExpireLog {
    pub before_ms: u64,
    pub now_ms: u64,
}

/// An event's state from its deliveries'.
pub fn event_status(deliveries: &[DeliverySummary]) -> EventStatus {
    let any = |s: DeliveryState| deliveries.iter().any(|d| d.state == s);
    if deliveries.is_empty() {
        EventStatus::Filtered
    } else if any(DeliveryState::DeadLettered) {
        EventStatus::Failed
    } else if any(DeliveryState::Pending) || any(DeliveryState::Retrying) {
        EventStatus::Pending
    } else {
        EventStatus::Delivered
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_request_schedules_a_send_unless_one_is_coming_or_that_one_was_lost() {
        use super::send_due;
        assert!(send_due(0, 5_000), "none scheduled");
        assert!(!send_due(5_000, 5_000 + super::GATHER_MS), "one is coming");
        assert!(!send_due(5_000, 6_000));
        assert!(send_due(5_000, 6_001), "one a second old was lost");
    }

    use super::*;

    fn envelope() -> EventEnvelope {
        EventEnvelope {
            id: "evt_1".into(),
            event_type: "stripe.invoice.paid".into(),
            tenant: "t1".into(),
            source: "stripe".into(),
            source_kind: "stripe".into(),
            received_at: 1_700_000_000,
            data: serde_json::json!({"amount": 2000}),
            unsigned: Default::default(),
            ordering_key: None,
        }
    }

    #[test]
    fn a_body_is_kept_only_when_the_tenant_keeps_bodies_and_for_its_retention() {
        let d = vec![("crm".to_string(), "evt_1.crm".to_string())];
        let off = event_entry(&envelope(), d.clone(), LogSettings::default(), 1_000);
        assert_eq!((off.body.is_none(), off.body_until_ms), (true, None));
        assert!(off.size > 50);
        let on = LogSettings {
            keep_bodies: true,
            body_retention_seconds: Some(60),
        };
        let kept = event_entry(&envelope(), d, on, 1_000);
        assert_eq!(kept.body_until_ms, Some(61_000));
        let back: EventEnvelope = serde_json::from_str(kept.body.as_deref().unwrap()).unwrap();
        assert_eq!(back, envelope());
    }

    #[test]
    fn an_answer_keeps_its_first_kib_and_no_broken_character() {
        assert_eq!(preview(b""), None);
        let long = "é".repeat(1000);
        let p = preview(long.as_bytes()).unwrap();
        assert!(p.len() <= ANSWER_PREVIEW && p.chars().all(|c| c == 'é'));
    }

    #[test]
    fn queries_read_their_filters_and_refuse_what_they_cannot() {
        let q = EventQuery::from_url(
            "https://g/v1/admin/tenants/t/events?source=stripe&type=stripe.invoice.*&status=failed&since=10&until=20&limit=5&cursor=15.evt_9",
        )
        .unwrap();
        assert_eq!(q.source.as_deref(), Some("stripe"));
        assert_eq!(q.type_pattern().as_deref(), Some("stripe.invoice.%"));
        assert_eq!(q.status, Some(EventStatus::Failed));
        assert_eq!((q.since, q.until, q.limit), (Some(10), Some(20), 5));
        assert_eq!(q.after, Some((15, "evt_9".to_string())));
        let lit = EventQuery {
            event_type: Some("a_b%".into()),
            ..EventQuery::default()
        };
        assert_eq!(lit.type_pattern().as_deref(), Some("a\\_b\\%"));
        for bad in [
            "status=lost",
            "since=yesterday",
            "limit=0",
            "limit=101",
            "cursor=x",
        ] {
            let url = format!("https://g/e?{bad}");
            assert_eq!(
                EventQuery::from_url(&url).unwrap_err().status(),
                400,
                "{bad}"
            );
        }
    }

    #[test]
    fn an_event_is_failed_if_any_delivery_died_and_pending_while_any_is_left() {
        let d = |state| DeliverySummary {
            id: "d".into(),
            destination: "x".into(),
            state,
            attempts: 1,
            last_attempt_at: None,
        };
        use DeliveryState::*;
        assert_eq!(
            event_status(&[d(Delivered), d(Delivered)]),
            EventStatus::Delivered
        );
        assert_eq!(
            event_status(&[d(Delivered), d(Retrying)]),
            EventStatus::Pending
        );
        assert_eq!(
            event_status(&[d(Pending), d(DeadLettered)]),
            EventStatus::Failed
        );
        assert_eq!(event_status(&[]), EventStatus::Filtered);
    }
    #[test]
    fn an_entry_reaches_the_shell_as_it_was_recorded() {
        let kept = LogSettings {
            keep_bodies: true,
            body_retention_seconds: None,
        };
        let d = vec![("crm".to_string(), "evt_1.crm".to_string())];
        let event = LogEntry::Event(event_entry(&envelope(), d, kept, 1_000));
        let attempt = |disable_after_ms| {
            LogEntry::Attempt(AttemptEntry {
                event: "evt_1".into(),
                delivery: "evt_1.crm".into(),
                destination: "crm".into(),
                attempt: 2,
                at: 5,
                duration_ms: 7,
                status: Some(503),
                error: None,
                answer: preview("busy".as_bytes()),
                state: DeliveryState::Retrying,
                disable_after_ms,
            })
        };
        let call = LogEntry::ToolCall(ToolCall {
            call: "n1".into(),
            request_id: "req_1".into(),
            key: "key_1".into(),
            tool: "crm__get_contact".into(),
            arguments_sha256: "ab".repeat(32),
            outcome: crate::core::mcp::audit::Outcome::Denied,
            at: 5,
            duration_ms: 2,
            bytes: 0,
        });
        assert!(call.encode().contains(r#""kind":"tool_call""#));
        for entry in [event, attempt(0), attempt(60_000), call] {
            assert_eq!(LogEntry::decode(&entry.encode()).unwrap(), entry);
        }
        assert!(LogEntry::decode("{}").unwrap_err().is_internal());
    }
}
