//! `EventLog`, one per tenant: its events, their deliveries and every attempt
//! (`webhook::event_log`), in three tables, each destination's health (`webhook::health`), and
//! its MCP tool calls (`mcp::audit`), kept as long as events, and the portal links it spent
//! (`portal::spend`), kept until each link expires.
//! An event's status is kept on its row, recomputed as attempts arrive, so the list filters on
//! it in SQL.

use super::machine::{Ctx, Machine, Step};
use super::protocol::{EventLog, LogCmd};
use super::store::{Arg, Store, StoreError};
use crate::core::mcp::audit::ToolCall;
use crate::core::mcp::tool_calls::{self, ToolCallPage, ToolCallQuery};
use crate::core::portal;
use crate::core::webhook::event_log::{
    cursor, event_status, AttemptEntry, DeliveryState, DeliverySummary, EventDetail, EventEntry,
    EventPage, EventQuery, EventStatus, EventSummary, ExpireLog, LogEntry,
};
use crate::core::webhook::health::{after_attempt, Disable, Health};
use serde::Deserialize;

impl Machine for EventLog {
    type Doc = ();
    const TABLES: &'static [&'static str] = &[
        "CREATE TABLE IF NOT EXISTS events (id TEXT PRIMARY KEY, source TEXT NOT NULL, type TEXT NOT NULL, received_at INTEGER NOT NULL, size INTEGER NOT NULL, status TEXT NOT NULL, body TEXT, body_until INTEGER, recorded_at INTEGER NOT NULL)",
        "CREATE INDEX IF NOT EXISTS events_by_time ON events (received_at, id)",
        "CREATE TABLE IF NOT EXISTS deliveries (id TEXT PRIMARY KEY, event TEXT NOT NULL, destination TEXT NOT NULL, state TEXT NOT NULL, attempts INTEGER NOT NULL, last_at INTEGER)",
        "CREATE INDEX IF NOT EXISTS deliveries_of_event ON deliveries (event)",
        "CREATE TABLE IF NOT EXISTS attempts (delivery TEXT NOT NULL, at INTEGER NOT NULL, body TEXT NOT NULL)",
        "CREATE INDEX IF NOT EXISTS attempts_of_delivery ON attempts (delivery, at)",
        "CREATE TABLE IF NOT EXISTS health (destination TEXT PRIMARY KEY, body TEXT NOT NULL)",
        // The filtered columns beside the record as shown; `id` orders calls at the same ms.
        "CREATE TABLE IF NOT EXISTS tool_calls (id INTEGER PRIMARY KEY, call TEXT NOT NULL UNIQUE, at INTEGER NOT NULL, tool TEXT NOT NULL, key TEXT NOT NULL, outcome TEXT NOT NULL, body TEXT NOT NULL)",
        "CREATE INDEX IF NOT EXISTS tool_calls_by_time ON tool_calls (at, id)",
        portal::spend::TABLE,
    ];

    fn apply<S: Store>(_: &mut (), sql: &S, cmd: LogCmd, at: &Ctx) -> Result<Step, StoreError> {
        Ok(match cmd {
            LogCmd::Purge => Step::erase(),
            LogCmd::Record(batch) => {
                let mut disable = Vec::new();
                for entry in &batch.entries {
                    match entry {
                        LogEntry::Event(e) => record_event(sql, e, at.now_ms)?,
                        LogEntry::Attempt(a) => {
                            disable.extend(judge(sql, a)?);
                            record_attempt(sql, a)?;
                        }
                        LogEntry::ToolCall(c) => record_tool_call(sql, c)?,
                    }
                }
                Step::reply(&batch, &disable)
            }
            LogCmd::List(q) => Step::reply(&q, &list(sql, &q)?),
            LogCmd::Get(g) => Step::reply(&g, &get(sql, &g.id)?),
            LogCmd::Expire(x) => Step::reply(&x, &expire(sql, &x)?),
            LogCmd::ToolCalls(q) => Step::reply(&q, &list_tool_calls(sql, &q)?),
            LogCmd::SpendLink(s) => Step::reply(&s, &portal::spend::spend(sql, &s, at.now_ms)?),
        })
    }
}

fn record_event<S: Store>(sql: &S, e: &EventEntry, now: u64) -> Result<(), StoreError> {
    let status = match (e.deliveries.is_empty(), e.no_destination) {
        (true, true) => EventStatus::NoDestination,
        (true, false) => EventStatus::Filtered,
        (false, _) => EventStatus::Pending,
    };
    sql.run(
        "INSERT OR IGNORE INTO events (id, source, type, received_at, size, status, body, body_until, recorded_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        vec![
            e.id.as_str().into(),
            e.source.as_str().into(),
            e.event_type.as_str().into(),
            e.received_at.into(),
            e.size.into(),
            status.as_str().into(),
            e.body.clone().into(),
            e.body_until_ms.into(),
            now.into(),
        ],
    )?;
    for (destination, id) in &e.deliveries {
        sql.run(
            "INSERT OR IGNORE INTO deliveries (id, event, destination, state, attempts, last_at) VALUES (?, ?, ?, 'pending', 0, NULL)",
            vec![id.as_str().into(), e.id.as_str().into(), destination.as_str().into()],
        )?;
    }
    Ok(())
}

/// The destination's health after attempt `a` (`webhook::health`): whether to disable it.
fn judge<S: Store>(sql: &S, a: &AttemptEntry) -> Result<Option<Disable>, StoreError> {
    if a.disable_after_ms == 0 || a.state == DeliveryState::Pending {
        return Ok(None);
    }
    #[derive(Deserialize)]
    struct Row {
        body: String,
    }
    let query = "SELECT body FROM health WHERE destination = ?";
    let rows: Vec<Row> = sql.rows(query, vec![a.destination.as_str().into()])?;
    let h: Health = rows
        .first()
        .and_then(|r| serde_json::from_str(&r.body).ok())
        .unwrap_or_default();
    let delivered = a.state == DeliveryState::Delivered;
    let (next, off) = after_attempt(h, delivered, a.at, a.disable_after_ms);
    sql.run(
        "INSERT OR REPLACE INTO health (destination, body) VALUES (?, ?)",
        vec![
            a.destination.as_str().into(),
            serde_json::to_string(&next)?.into(),
        ],
    )?;
    Ok(off.then(|| Disable {
        destination: a.destination.clone(),
        failing_since: h.failing_since.unwrap_or(a.at),
    }))
}

fn record_attempt<S: Store>(sql: &S, a: &AttemptEntry) -> Result<(), StoreError> {
    // The log's setting is not part of the attempt as shown.
    let shown = AttemptEntry {
        disable_after_ms: 0,
        ..a.clone()
    };
    sql.run(
        "INSERT INTO attempts (delivery, at, body) VALUES (?, ?, ?)",
        vec![
            a.delivery.as_str().into(),
            a.at.into(),
            serde_json::to_string(&shown)?.into(),
        ],
    )?;
    sql.run(
        "INSERT INTO deliveries (id, event, destination, state, attempts, last_at) VALUES (?, ?, ?, ?, 1, ?) \
         ON CONFLICT(id) DO UPDATE SET state = excluded.state, attempts = attempts + 1, last_at = excluded.last_at",
        vec![
            a.delivery.as_str().into(),
            a.event.as_str().into(),
            a.destination.as_str().into(),
            a.state.as_str().into(),
            a.at.into(),
        ],
    )?;
    let status = event_status(&deliveries(sql, &a.event)?);
    sql.run(
        "UPDATE events SET status = ? WHERE id = ?",
        vec![status.as_str().into(), a.event.as_str().into()],
    )?;
    Ok(())
}

#[derive(Deserialize)]
struct DeliveryRow {
    id: String,
    destination: String,
    state: String,
    attempts: f64,
    last_at: Option<f64>,
}

fn deliveries<S: Store>(sql: &S, event: &str) -> Result<Vec<DeliverySummary>, StoreError> {
    let rows: Vec<DeliveryRow> = sql.rows(
        "SELECT id, destination, state, attempts, last_at FROM deliveries WHERE event = ? ORDER BY destination",
        vec![event.into()],
    )?;
    Ok(rows
        .into_iter()
        .map(|r| DeliverySummary {
            id: r.id,
            destination: r.destination,
            state: state_of(&r.state),
            attempts: r.attempts as u32,
            last_attempt_at: r.last_at.map(|t| t as u64),
        })
        .collect())
}

fn state_of(s: &str) -> DeliveryState {
    match s {
        "delivered" => DeliveryState::Delivered,
        "retrying" => DeliveryState::Retrying,
        "dead_lettered" => DeliveryState::DeadLettered,
        _ => DeliveryState::Pending,
    }
}

#[derive(Deserialize)]
struct EventRow {
    id: String,
    source: String,
    #[serde(rename = "type")]
    event_type: String,
    received_at: f64,
    size: f64,
    body: Option<String>,
    /// As recorded: what an event without deliveries is (filtered, or no destination).
    status: String,
}

fn summary<S: Store>(sql: &S, r: &EventRow) -> Result<EventSummary, StoreError> {
    let deliveries = deliveries(sql, &r.id)?;
    Ok(EventSummary {
        id: r.id.clone(),
        source: r.source.clone(),
        event_type: r.event_type.clone(),
        received_at: r.received_at as u64,
        size: r.size as u64,
        status: match deliveries.is_empty() && r.status == EventStatus::NoDestination.as_str() {
            true => EventStatus::NoDestination,
            false => event_status(&deliveries),
        },
        body_kept: r.body.is_some(),
        deliveries,
    })
}

fn list<S: Store>(sql: &S, q: &EventQuery) -> Result<EventPage, StoreError> {
    let mut query = String::from(
        // Whether a body is kept (an empty stand-in), never the body itself: a page stays small.
        "SELECT id, source, type, received_at, size, CASE WHEN body IS NULL THEN NULL ELSE '' END AS body, status \
         FROM events WHERE 1 = 1",
    );
    let mut bind: Vec<Arg> = Vec::new();
    if let Some(s) = &q.source {
        query.push_str(" AND source = ?");
        bind.push(s.as_str().into());
    }
    if let Some(t) = q.type_pattern() {
        query.push_str(" AND type LIKE ? ESCAPE '\\'");
        bind.push(t.into());
    }
    if let Some(s) = q.status {
        query.push_str(" AND status = ?");
        bind.push(s.as_str().into());
    }
    if let Some(t) = q.since {
        query.push_str(" AND received_at >= ?");
        bind.push(t.into());
    }
    if let Some(t) = q.until {
        query.push_str(" AND received_at < ?");
        bind.push(t.into());
    }
    if let Some((at, id)) = &q.after {
        query.push_str(" AND (received_at < ? OR (received_at = ? AND id < ?))");
        bind.extend([(*at).into(), (*at).into(), id.as_str().into()]);
    }
    query.push_str(" ORDER BY received_at DESC, id DESC LIMIT ?");
    bind.push((q.limit + 1).into());
    let mut rows: Vec<EventRow> = sql.rows(&query, bind)?;
    let more = rows.len() > q.limit as usize;
    rows.truncate(q.limit as usize);
    let next_cursor = match (more, rows.last()) {
        (true, Some(last)) => Some(cursor(last.received_at as u64, &last.id)),
        _ => None,
    };
    let data = rows
        .iter()
        .map(|r| summary(sql, r))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(EventPage { data, next_cursor })
}

fn get<S: Store>(sql: &S, id: &str) -> Result<Option<EventDetail>, StoreError> {
    let rows: Vec<EventRow> = sql.rows(
        "SELECT id, source, type, received_at, size, body, status FROM events WHERE id = ?",
        vec![id.into()],
    )?;
    let Some(row) = rows.into_iter().next() else {
        return Ok(None);
    };
    let attempts = super::store::bodies(
        sql,
        "SELECT a.body AS body FROM attempts a JOIN deliveries d ON a.delivery = d.id WHERE d.event = ? ORDER BY a.at",
        vec![id.into()],
    )?;
    let body = row
        .body
        .as_deref()
        .and_then(|b| serde_json::from_str(b).ok());
    Ok(Some(EventDetail {
        summary: summary(sql, &row)?,
        attempts,
        body,
    }))
}

/// A call's record: the first of it kept, a later one replacing it only with how it ended (the
/// two may arrive in either order; a call seen `started` and never again stays so).
fn record_tool_call<S: Store>(sql: &S, c: &ToolCall) -> Result<(), StoreError> {
    sql.run(
        "INSERT INTO tool_calls (call, at, tool, key, outcome, body) VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT(call) DO UPDATE SET outcome = excluded.outcome, body = excluded.body WHERE excluded.outcome != 'started'",
        vec![
            c.call.as_str().into(),
            c.at.into(),
            c.tool.as_str().into(),
            c.key.as_str().into(),
            c.outcome.as_str().into(),
            serde_json::to_string(c)?.into(),
        ],
    )?;
    Ok(())
}

fn list_tool_calls<S: Store>(sql: &S, q: &ToolCallQuery) -> Result<ToolCallPage, StoreError> {
    let mut query = String::from("SELECT id, at, body FROM tool_calls WHERE 1 = 1");
    let mut bind: Vec<Arg> = Vec::new();
    let columns = [("tool", &q.tool), ("key", &q.key)];
    for (column, value) in columns {
        if let Some(v) = value {
            query.push_str(&format!(" AND {column} = ?"));
            bind.push(v.as_str().into());
        }
    }
    if let Some(o) = q.outcome {
        query.push_str(" AND outcome = ?");
        bind.push(o.as_str().into());
    }
    if let Some(t) = q.since_ms {
        query.push_str(" AND at >= ?");
        bind.push(t.into());
    }
    if let Some(t) = q.until_ms {
        query.push_str(" AND at < ?");
        bind.push(t.into());
    }
    if let Some((at, id)) = q.after {
        query.push_str(" AND (at < ? OR (at = ? AND id < ?))");
        bind.extend([at.into(), at.into(), id.into()]);
    }
    query.push_str(" ORDER BY at DESC, id DESC LIMIT ?");
    bind.push((q.limit + 1).into());
    #[derive(Deserialize)]
    struct Row {
        id: f64,
        at: f64,
        body: String,
    }
    let mut rows: Vec<Row> = sql.rows(&query, bind)?;
    let more = rows.len() > q.limit as usize;
    rows.truncate(q.limit as usize);
    let next_cursor = match (more, rows.last()) {
        (true, Some(last)) => Some(tool_calls::cursor(last.at as u64, last.id as u64)),
        _ => None,
    };
    let data = rows
        .iter()
        .filter_map(|r| serde_json::from_str(&r.body).ok())
        .collect();
    Ok(ToolCallPage { data, next_cursor })
}

fn expire<S: Store>(sql: &S, x: &ExpireLog) -> Result<u32, StoreError> {
    let gone = sql.run(
        "DELETE FROM events WHERE recorded_at < ?",
        vec![x.before_ms.into()],
    )?;
    let calls = sql.run(
        "DELETE FROM tool_calls WHERE at < ?",
        vec![x.before_ms.into()],
    )?;
    sql.run(
        "DELETE FROM deliveries WHERE event NOT IN (SELECT id FROM events)",
        vec![],
    )?;
    sql.run(
        "DELETE FROM attempts WHERE delivery NOT IN (SELECT id FROM deliveries)",
        vec![],
    )?;
    sql.run(
        "UPDATE events SET body = NULL, body_until = NULL WHERE body_until < ?",
        vec![x.now_ms.into()],
    )?;
    Ok((gone + calls) as u32)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::mcp::audit::Outcome;
    use crate::core::objects::store::{create, Sqlite};
    use crate::core::webhook::event_log::{GetEvent, LogBatch};

    const T: u64 = 1_700_000_000_000;

    fn event(id: &str, source: &str, kind: &str, received_at: u64, to: &[&str]) -> LogEntry {
        LogEntry::Event(EventEntry {
            id: id.into(),
            source: source.into(),
            event_type: kind.into(),
            received_at,
            size: 10,
            deliveries: to
                .iter()
                .map(|d| (d.to_string(), format!("{id}-{d}")))
                .collect(),
            body: Some(r#"{"n":1}"#.into()),
            body_until_ms: Some(T + 1_000),
            no_destination: false,
        })
    }

    fn attempt(event: &str, to: &str, at: u64, state: DeliveryState) -> LogEntry {
        LogEntry::Attempt(AttemptEntry {
            event: event.into(),
            delivery: format!("{event}-{to}"),
            destination: to.into(),
            attempt: 1,
            at,
            duration_ms: 5,
            status: Some(500),
            error: None,
            answer: None,
            state,
            disable_after_ms: 60_000,
        })
    }

    fn log() -> Sqlite {
        let sql = Sqlite::default();
        create(&sql, EventLog::TABLES).unwrap();
        sql
    }

    fn ask<T: serde::de::DeserializeOwned>(sql: &Sqlite, cmd: LogCmd, now: u64) -> T {
        let step = EventLog::apply(&mut (), sql, cmd, &Ctx::at(now)).unwrap();
        serde_json::from_str(&step.answer).unwrap()
    }

    fn record(sql: &Sqlite, entries: Vec<LogEntry>, now: u64) -> Vec<Disable> {
        ask(sql, LogCmd::Record(LogBatch { entries }), now)
    }

    fn listed(sql: &Sqlite, q: EventQuery) -> (Vec<(String, EventStatus)>, Option<String>) {
        let page: EventPage = ask(sql, LogCmd::List(q), T);
        let ids = page.data.into_iter().map(|e| (e.id, e.status)).collect();
        (ids, page.next_cursor)
    }

    #[test]
    fn an_event_that_found_no_destination_is_listed_as_such_not_as_filtered() {
        let sql = log();
        let mut nowhere = event("e9", "stripe", "invoice.paid", 400, &[]);
        if let LogEntry::Event(e) = &mut nowhere {
            e.no_destination = true;
        }
        record(
            &sql,
            vec![nowhere, event("e3", "github", "push", 300, &[])],
            T,
        );
        let q = |status| EventQuery {
            limit: 50,
            status,
            ..Default::default()
        };
        use EventStatus::*;
        let (ids, _) = listed(&sql, q(None));
        assert_eq!(
            ids,
            [
                ("e9".to_string(), NoDestination),
                ("e3".to_string(), Filtered)
            ]
        );
        assert_eq!(
            listed(&sql, q(Some(NoDestination))).0,
            [("e9".to_string(), NoDestination)]
        );
        assert_eq!(
            listed(&sql, q(Some(Filtered))).0,
            [("e3".to_string(), Filtered)]
        );
        let got: Option<EventDetail> = ask(&sql, LogCmd::Get(GetEvent { id: "e9".into() }), T);
        assert_eq!(got.unwrap().summary.status, NoDestination);
    }

    #[test]
    fn events_are_listed_newest_first_filtered_and_paged_with_their_status() {
        let sql = log();
        record(
            &sql,
            vec![
                event("e1", "stripe", "invoice.paid", 100, &["crm"]),
                event("e2", "stripe", "charge.failed", 200, &["crm", "bi"]),
                event("e3", "github", "push", 300, &[]),
            ],
            T,
        );
        record(
            &sql,
            vec![
                attempt("e1", "crm", T, DeliveryState::Delivered),
                attempt("e2", "crm", T, DeliveryState::Delivered),
                attempt("e2", "bi", T, DeliveryState::DeadLettered),
            ],
            T,
        );
        let all = EventQuery {
            limit: 50,
            ..Default::default()
        };
        let (ids, more) = listed(&sql, all.clone());
        use EventStatus::*;
        let want = [("e3", Filtered), ("e2", Failed), ("e1", Delivered)];
        assert_eq!(ids, want.map(|(i, s)| (i.to_string(), s)).to_vec());
        assert_eq!(more, None);
        let q = |f: fn(&mut EventQuery)| {
            let mut q = all.clone();
            f(&mut q);
            listed(&sql, q)
                .0
                .into_iter()
                .map(|(i, _)| i)
                .collect::<Vec<_>>()
        };
        assert_eq!(q(|q| q.source = Some("stripe".into())), ["e2", "e1"]);
        assert_eq!(q(|q| q.event_type = Some("*.paid".into())), ["e1"]);
        assert_eq!(q(|q| q.status = Some(EventStatus::Failed)), ["e2"]);
        assert_eq!(q(|q| (q.since, q.until) = (Some(200), Some(300))), ["e2"]);
        // A page of one, then the next from its cursor.
        let (first, cursor) = listed(
            &sql,
            EventQuery {
                limit: 1,
                ..all.clone()
            },
        );
        assert_eq!(first[0].0, "e3");
        let cursor = cursor.expect("more to come");
        assert_eq!(cursor, "300.e3");
        let after = Some((300, "e3".to_string()));
        let (next, _) = listed(
            &sql,
            EventQuery {
                limit: 1,
                after,
                ..all
            },
        );
        assert_eq!(next[0].0, "e2");
    }

    #[test]
    fn an_event_shows_its_attempts_and_body_until_they_expire() {
        let sql = log();
        record(&sql, vec![event("e1", "s", "t", 100, &["crm"])], T);
        record(
            &sql,
            vec![attempt("e1", "crm", T + 5, DeliveryState::Retrying)],
            T,
        );
        let get = |sql: &Sqlite| -> Option<EventDetail> {
            ask(sql, LogCmd::Get(GetEvent { id: "e1".into() }), T)
        };
        let detail = get(&sql).unwrap();
        assert_eq!(detail.summary.status, EventStatus::Pending);
        assert_eq!(detail.summary.deliveries[0].attempts, 1);
        assert_eq!(detail.summary.deliveries[0].last_attempt_at, Some(T + 5));
        assert_eq!(detail.attempts.len(), 1);
        assert_eq!(
            detail.attempts[0].disable_after_ms, 0,
            "the setting is not shown"
        );
        assert_eq!(detail.body, Some(serde_json::json!({"n": 1})));
        let all = EventQuery {
            limit: 10,
            ..EventQuery::default()
        };
        let page: EventPage = ask(&sql, LogCmd::List(all), T);
        assert!(
            page.data[0].body_kept,
            "the list says the body is kept, as the event does"
        );
        // Past the body's time it is dropped; past the record's time the event is gone.
        let x = |before_ms, now_ms| LogCmd::Expire(ExpireLog { before_ms, now_ms });
        assert_eq!(ask::<u32>(&sql, x(0, T + 2_000), T), 0);
        let detail = get(&sql).unwrap();
        assert_eq!((detail.body, detail.summary.body_kept), (None, false));
        assert_eq!(ask::<u32>(&sql, x(T + 1, T + 2_000), T), 1);
        assert_eq!(get(&sql), None);
        let left: Vec<serde_json::Value> = sql.rows("SELECT * FROM attempts", vec![]).unwrap();
        assert!(left.is_empty(), "its attempts went with it");
    }

    fn call(key: &str, tool: &str, outcome: Outcome, at: u64) -> LogEntry {
        LogEntry::ToolCall(ToolCall {
            call: format!("call_{at}_{tool}"),
            request_id: format!("req_{at}"),
            key: key.into(),
            tool: tool.into(),
            arguments_sha256: "ab".repeat(32),
            outcome,
            at,
            duration_ms: 3,
            bytes: 10,
        })
    }

    fn calls(sql: &Sqlite, q: ToolCallQuery) -> (Vec<String>, Option<String>) {
        let page: ToolCallPage = ask(sql, LogCmd::ToolCalls(q), T);
        let ids = page.data.into_iter().map(|c| c.request_id).collect();
        (ids, page.next_cursor)
    }

    #[test]
    fn a_started_call_is_replaced_by_how_it_ended_whichever_arrives_first() {
        let sql = log();
        let started = || call("key_1", "crm__get", Outcome::Started, T + 1);
        let ended = || call("key_1", "crm__get", Outcome::Ok, T + 1);
        record(&sql, vec![started()], T);
        let outcomes = |sql: &Sqlite| -> Vec<Outcome> {
            let q = ToolCallQuery {
                limit: 50,
                ..Default::default()
            };
            let page: ToolCallPage = ask(sql, LogCmd::ToolCalls(q), T);
            page.data.into_iter().map(|c| c.outcome).collect()
        };
        assert_eq!(
            outcomes(&sql),
            [Outcome::Started],
            "a client that left sees it started"
        );
        record(&sql, vec![ended()], T);
        assert_eq!(outcomes(&sql), [Outcome::Ok]);
        record(&sql, vec![started()], T);
        assert_eq!(
            outcomes(&sql),
            [Outcome::Ok],
            "a late start changes nothing"
        );
    }

    #[test]
    fn tool_calls_are_listed_newest_first_filtered_paged_and_expired_with_the_log() {
        let sql = log();
        use Outcome::*;
        record(
            &sql,
            vec![
                call("key_1", "crm__get", Ok, T + 1),
                event("e1", "s", "t", 100, &[]),
                call("key_2", "crm__delete", Denied, T + 2),
                call("key_1", "crm__get", ToolError, T + 3),
            ],
            T,
        );
        // Two calls in the same ms are both listed, one page each.
        record(&sql, vec![call("key_1", "crm__put", Ok, T + 3)], T);
        let all = ToolCallQuery {
            limit: 50,
            ..Default::default()
        };
        let ids = |f: fn(&mut ToolCallQuery)| {
            let mut q = all.clone();
            f(&mut q);
            calls(&sql, q).0
        };
        let r = |at: u64| format!("req_{at}");
        assert_eq!(ids(|_| {}), [r(T + 3), r(T + 3), r(T + 2), r(T + 1)]);
        assert_eq!(
            ids(|q| q.tool = Some("crm__get".into())),
            [r(T + 3), r(T + 1)]
        );
        assert_eq!(ids(|q| q.key = Some("key_2".into())), [r(T + 2)]);
        assert_eq!(ids(|q| q.outcome = Some(Denied)), [r(T + 2)]);
        assert_eq!(ids(|q| q.outcome = Some(Blocked)), Vec::<String>::new());
        assert_eq!(
            ids(|q| (q.since_ms, q.until_ms) = (Some(T + 2), Some(T + 3))),
            [r(T + 2)]
        );
        let page: ToolCallPage = ask(&sql, LogCmd::ToolCalls(all.clone()), T);
        assert_eq!(page.data[0].tool, "crm__put", "the latest recorded first");
        assert_eq!(page.data[3].outcome, Ok);
        let mut seen = Vec::new();
        let mut after = None;
        for _ in 0..10 {
            let q = ToolCallQuery {
                limit: 1,
                after,
                ..all.clone()
            };
            let page: ToolCallPage = ask(&sql, LogCmd::ToolCalls(q), T);
            seen.extend(page.data.into_iter().map(|c| c.tool));
            let Some(c) = page.next_cursor else { break };
            let url = format!("https://g/x?cursor={c}");
            after = ToolCallQuery::from_url(&url).unwrap().after;
        }
        assert_eq!(seen, ["crm__put", "crm__get", "crm__delete", "crm__get"]);
        // Past the records' time they go, with the events of that time.
        let x = |before_ms| {
            LogCmd::Expire(ExpireLog {
                before_ms,
                now_ms: T,
            })
        };
        assert_eq!(ask::<u32>(&sql, x(T + 2), T), 2, "the event and one call");
        assert_eq!(ids(|_| {}), [r(T + 3), r(T + 3), r(T + 2)]);
    }

    #[test]
    fn a_destination_failing_for_its_whole_period_is_disabled_once() {
        let sql = log();
        record(&sql, vec![event("e1", "s", "t", 100, &["crm"])], T);
        let failed = |at| {
            record(
                &sql,
                vec![attempt("e1", "crm", at, DeliveryState::Retrying)],
                T,
            )
        };
        assert_eq!(failed(T), vec![]);
        assert_eq!(failed(T + 59_999), vec![]);
        let off = Disable {
            destination: "crm".into(),
            failing_since: T,
        };
        assert_eq!(failed(T + 60_000), vec![off]);
        assert_eq!(failed(T + 60_001), vec![], "counted anew after disabling");
    }
}
