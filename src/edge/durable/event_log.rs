//! `EventLog`: a tenant's events, their deliveries and every attempt (`core::webhook::event_log`),
//! in three tables. An event's status is kept on its row, recomputed as attempts arrive, so the
//! list filters on it in SQL.

use super::{answer, command, purge};
use crate::core::objects::protocol::LogCmd;
use crate::core::webhook::event_log::{
    cursor, event_status, AttemptEntry, DeliveryState, DeliverySummary, EventDetail, EventEntry,
    EventPage, EventQuery, EventStatus, EventSummary, ExpireLog, GetEvent, LogEntry,
};
use crate::core::webhook::health::{after_attempt, Disable, Health};
use serde::Deserialize;
use worker::{
    durable_object, DurableObject, Env, Request, Response, Result, SqlStorage, SqlStorageValue,
    State,
};

#[durable_object(fetch)]
pub struct EventLog {
    state: State,
}

const TABLES: &[&str] = &[
    "CREATE TABLE IF NOT EXISTS events (id TEXT PRIMARY KEY, source TEXT NOT NULL, type TEXT NOT NULL, received_at INTEGER NOT NULL, size INTEGER NOT NULL, status TEXT NOT NULL, body TEXT, body_until INTEGER, recorded_at INTEGER NOT NULL)",
    "CREATE INDEX IF NOT EXISTS events_by_time ON events (received_at, id)",
    "CREATE TABLE IF NOT EXISTS deliveries (id TEXT PRIMARY KEY, event TEXT NOT NULL, destination TEXT NOT NULL, state TEXT NOT NULL, attempts INTEGER NOT NULL, last_at INTEGER)",
    "CREATE INDEX IF NOT EXISTS deliveries_of_event ON deliveries (event)",
    "CREATE TABLE IF NOT EXISTS attempts (delivery TEXT NOT NULL, at INTEGER NOT NULL, body TEXT NOT NULL)",
    "CREATE INDEX IF NOT EXISTS attempts_of_delivery ON attempts (delivery, at)",
    "CREATE TABLE IF NOT EXISTS health (destination TEXT PRIMARY KEY, body TEXT NOT NULL)",
];

fn init(state: &State) {
    let sql = state.storage().sql();
    for t in TABLES {
        let _ = sql.exec(t, None);
    }
}

impl DurableObject for EventLog {
    fn new(state: State, _env: Env) -> Self {
        init(&state);
        EventLog { state }
    }

    async fn fetch(&self, req: Request) -> Result<Response> {
        let sql = self.state.storage().sql();
        match command::<LogCmd>(req).await? {
            LogCmd::Purge => {
                purge(&self.state).await?;
                init(&self.state);
                answer(&())
            }
            LogCmd::Record(batch) => {
                let mut disable = Vec::new();
                for entry in batch.entries {
                    match entry {
                        LogEntry::Event(e) => record_event(&sql, e)?,
                        LogEntry::Attempt(a) => {
                            disable.extend(judge(&sql, &a)?);
                            record_attempt(&sql, a)?;
                        }
                    }
                }
                answer(&disable)
            }
            LogCmd::List(q) => answer(&list(&sql, &q)?),
            LogCmd::Get(GetEvent { id }) => answer(&get(&sql, &id)?),
            LogCmd::Expire(x) => answer(&expire(&sql, &x)?),
        }
    }
}

fn now_ms() -> i64 {
    worker::Date::now().as_millis() as i64
}

fn record_event(sql: &SqlStorage, e: EventEntry) -> Result<()> {
    let status = match e.deliveries.is_empty() {
        true => EventStatus::Filtered,
        false => EventStatus::Pending,
    };
    sql.exec(
        "INSERT OR IGNORE INTO events (id, source, type, received_at, size, status, body, body_until, recorded_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        Some(vec![
            e.id.clone().into(),
            e.source.into(),
            e.event_type.into(),
            (e.received_at as i64).into(),
            (e.size as i64).into(),
            status.as_str().into(),
            e.body.into(),
            e.body_until_ms.map(|t| t as i64).into(),
            now_ms().into(),
        ]),
    )?;
    for (destination, id) in e.deliveries {
        sql.exec(
            "INSERT OR IGNORE INTO deliveries (id, event, destination, state, attempts, last_at) VALUES (?, ?, ?, 'pending', 0, NULL)",
            Some(vec![id.into(), e.id.clone().into(), destination.into()]),
        )?;
    }
    Ok(())
}

/// The destination's health after attempt `a` (`core::webhook::health`): whether to disable it.
fn judge(sql: &SqlStorage, a: &AttemptEntry) -> Result<Option<Disable>> {
    if a.disable_after_ms == 0 || a.state == DeliveryState::Pending {
        return Ok(None);
    }
    #[derive(Deserialize)]
    struct Row {
        body: String,
    }
    let rows: Vec<Row> = sql
        .exec(
            "SELECT body FROM health WHERE destination = ?",
            Some(vec![a.destination.clone().into()]),
        )?
        .to_array()?;
    let h: Health = rows
        .first()
        .and_then(|r| serde_json::from_str(&r.body).ok())
        .unwrap_or_default();
    let delivered = a.state == DeliveryState::Delivered;
    let (next, off) = after_attempt(h, delivered, a.at, a.disable_after_ms);
    sql.exec(
        "INSERT OR REPLACE INTO health (destination, body) VALUES (?, ?)",
        Some(vec![
            a.destination.clone().into(),
            serde_json::to_string(&next)?.into(),
        ]),
    )?;
    Ok(off.then(|| Disable {
        destination: a.destination.clone(),
        failing_since: h.failing_since.unwrap_or(a.at),
    }))
}

fn record_attempt(sql: &SqlStorage, mut a: AttemptEntry) -> Result<()> {
    a.disable_after_ms = 0;
    sql.exec(
        "INSERT INTO attempts (delivery, at, body) VALUES (?, ?, ?)",
        Some(vec![
            a.delivery.clone().into(),
            (a.at as i64).into(),
            serde_json::to_string(&a)?.into(),
        ]),
    )?;
    sql.exec(
        "INSERT INTO deliveries (id, event, destination, state, attempts, last_at) VALUES (?, ?, ?, ?, 1, ?) \
         ON CONFLICT(id) DO UPDATE SET state = excluded.state, attempts = attempts + 1, last_at = excluded.last_at",
        Some(vec![
            a.delivery.into(),
            a.event.clone().into(),
            a.destination.into(),
            a.state.as_str().into(),
            (a.at as i64).into(),
        ]),
    )?;
    let status = event_status(&deliveries(sql, &a.event)?);
    sql.exec(
        "UPDATE events SET status = ? WHERE id = ?",
        Some(vec![status.as_str().into(), a.event.into()]),
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

fn deliveries(sql: &SqlStorage, event: &str) -> Result<Vec<DeliverySummary>> {
    let rows: Vec<DeliveryRow> = sql
        .exec(
            "SELECT id, destination, state, attempts, last_at FROM deliveries WHERE event = ? ORDER BY destination",
            Some(vec![event.into()]),
        )?
        .to_array()?;
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
}

fn summary(sql: &SqlStorage, r: &EventRow) -> Result<EventSummary> {
    let deliveries = deliveries(sql, &r.id)?;
    Ok(EventSummary {
        id: r.id.clone(),
        source: r.source.clone(),
        event_type: r.event_type.clone(),
        received_at: r.received_at as u64,
        size: r.size as u64,
        status: event_status(&deliveries),
        body_kept: r.body.is_some(),
        deliveries,
    })
}

fn list(sql: &SqlStorage, q: &EventQuery) -> Result<EventPage> {
    let mut query = String::from(
        "SELECT id, source, type, received_at, size, NULL AS body FROM events WHERE 1 = 1",
    );
    let mut bind: Vec<SqlStorageValue> = Vec::new();
    if let Some(s) = &q.source {
        query.push_str(" AND source = ?");
        bind.push(s.clone().into());
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
        bind.push((t as i64).into());
    }
    if let Some(t) = q.until {
        query.push_str(" AND received_at < ?");
        bind.push((t as i64).into());
    }
    if let Some((at, id)) = &q.after {
        query.push_str(" AND (received_at < ? OR (received_at = ? AND id < ?))");
        bind.extend([(*at as i64).into(), (*at as i64).into(), id.clone().into()]);
    }
    query.push_str(" ORDER BY received_at DESC, id DESC LIMIT ?");
    bind.push(i64::from(q.limit + 1).into());
    let mut rows: Vec<EventRow> = sql.exec(&query, Some(bind))?.to_array()?;
    let more = rows.len() > q.limit as usize;
    rows.truncate(q.limit as usize);
    let next_cursor = match (more, rows.last()) {
        (true, Some(last)) => Some(cursor(last.received_at as u64, &last.id)),
        _ => None,
    };
    let data = rows
        .iter()
        .map(|r| summary(sql, r))
        .collect::<Result<Vec<_>>>()?;
    Ok(EventPage { data, next_cursor })
}

fn get(sql: &SqlStorage, id: &str) -> Result<Option<EventDetail>> {
    let rows: Vec<EventRow> = sql
        .exec(
            "SELECT id, source, type, received_at, size, body FROM events WHERE id = ?",
            Some(vec![id.into()]),
        )?
        .to_array()?;
    let Some(row) = rows.into_iter().next() else {
        return Ok(None);
    };
    #[derive(Deserialize)]
    struct Body {
        body: String,
    }
    let attempts: Vec<Body> = sql
        .exec(
            "SELECT a.body AS body FROM attempts a JOIN deliveries d ON a.delivery = d.id WHERE d.event = ? ORDER BY a.at",
            Some(vec![id.into()]),
        )?
        .to_array()?;
    let attempts: Vec<AttemptEntry> = attempts
        .iter()
        .filter_map(|a| serde_json::from_str(&a.body).ok())
        .collect();
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

fn expire(sql: &SqlStorage, x: &ExpireLog) -> Result<u32> {
    let gone = sql
        .exec(
            "DELETE FROM events WHERE recorded_at < ?",
            Some(vec![(x.before_ms as i64).into()]),
        )?
        .rows_written();
    sql.exec(
        "DELETE FROM deliveries WHERE event NOT IN (SELECT id FROM events)",
        None,
    )?;
    sql.exec(
        "DELETE FROM attempts WHERE delivery NOT IN (SELECT id FROM deliveries)",
        None,
    )?;
    sql.exec(
        "UPDATE events SET body = NULL, body_until = NULL WHERE body_until < ?",
        Some(vec![(x.now_ms as i64).into()]),
    )?;
    Ok(gone as u32)
}
