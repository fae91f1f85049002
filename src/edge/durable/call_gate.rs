//! `CallGate`, one per tenant channel (`{tenant}:{channel}`) and integration
//! (`{tenant}:integration:{id}`): what a call must pass first, in one round trip (the key's
//! earlier result, then `core::limits::gate`: windows and breaker), and what it records after
//! (the breaker's outcome, the key's result, a queued send's delivery record). Each write also
//! forgets a few expired idempotency keys and delivery records, so storage stays bounded.

use super::{answer, bodies, command, purge};
use crate::core::limits::gate::{
    replay, Begin, DeliveryQuery, DeliveryRecord, Gate, DELIVERY_RECORD_TTL_MS, IDEMPOTENCY_TTL_MS,
    PRUNE_PER_WRITE,
};
use crate::core::objects::protocol::GateCmd;
use crate::edge::platform::now_ms;
use serde::Deserialize;
use serde_json::Value;
use std::cell::RefCell;
use worker::wasm_bindgen::JsValue;
use worker::{durable_object, DurableObject, Env, Request, Response, Result, State, Storage};

#[durable_object(fetch)]
pub struct CallGate {
    state: State,
    gate: RefCell<Option<Gate>>,
}

fn init(state: &State) {
    let sql = state.storage().sql();
    let _ = sql.exec("CREATE TABLE IF NOT EXISTS idempotency (key TEXT PRIMARY KEY, status INTEGER NOT NULL, body TEXT, expires_at INTEGER NOT NULL)", None);
    let _ = sql.exec("CREATE TABLE IF NOT EXISTS deliveries (id TEXT PRIMARY KEY, body TEXT NOT NULL, updated_at INTEGER NOT NULL)", None);
    let _ = sql.exec(
        "CREATE INDEX IF NOT EXISTS idempotency_expiry ON idempotency (expires_at)",
        None,
    );
    let _ = sql.exec(
        "CREATE INDEX IF NOT EXISTS deliveries_age ON deliveries (updated_at)",
        None,
    );
}

/// Forgets up to `PRUNE_PER_WRITE` idempotency keys past their time and delivery records
/// unchanged for `DELIVERY_RECORD_TTL_MS`.
fn prune(storage: &Storage, now: u64) -> Result<()> {
    let sql = storage.sql();
    let limit = i64::from(PRUNE_PER_WRITE);
    sql.exec(
        "DELETE FROM idempotency WHERE key IN (SELECT key FROM idempotency WHERE expires_at <= ? LIMIT ?)",
        Some(vec![(now as i64).into(), limit.into()]),
    )?;
    let stale = now.saturating_sub(DELIVERY_RECORD_TTL_MS) as i64;
    sql.exec(
        "DELETE FROM deliveries WHERE id IN (SELECT id FROM deliveries WHERE updated_at <= ? LIMIT ?)",
        Some(vec![stale.into(), limit.into()]),
    )?;
    Ok(())
}

#[derive(Deserialize)]
struct Row {
    status: i64,
    body: Option<String>,
    expires_at: i64,
}

impl CallGate {
    /// Loads the gate (once per object lifetime), applies `f`, and saves it if it changed: one
    /// JSON string under one key (a JS object per field would cost a crossing per field, and the
    /// runtime's structured clone on top).
    async fn with<T>(&self, f: impl FnOnce(&mut Gate) -> T) -> Result<T> {
        let storage = self.state.storage();
        if self.gate.borrow().is_none() {
            let gate = load(&storage).await?;
            self.gate.borrow_mut().get_or_insert(gate);
        }
        let (out, changed) = {
            let mut memory = self.gate.borrow_mut();
            let gate = memory.get_or_insert_with(Gate::default);
            let before = gate.clone();
            let out = f(gate);
            (out, (*gate != before).then(|| gate.clone()))
        };
        if let Some(g) = changed {
            let text = serde_json::to_string(&g)?;
            storage.put_raw(GATE_KEY, JsValue::from_str(&text)).await?;
        }
        Ok(out)
    }

    fn stored(&self, key: &str, now: u64) -> Result<Option<Begin>> {
        let rows: Vec<Row> = self
            .state
            .storage()
            .sql()
            .exec(
                "SELECT status, body, expires_at FROM idempotency WHERE key = ?",
                Some(vec![key.into()]),
            )?
            .to_array()?;
        Ok(rows.into_iter().next().and_then(|r| {
            let body = r.body.and_then(|b| serde_json::from_str(&b).ok());
            replay(
                r.status as u16,
                body.unwrap_or(Value::Null),
                r.expires_at as u64,
                now,
            )
        }))
    }
}

const GATE_KEY: &str = "gate";

/// The stored gate; one written before it was a single document has a key per field.
async fn load(storage: &Storage) -> Result<Gate> {
    match storage.get::<Value>(GATE_KEY).await? {
        Some(Value::String(text)) => Ok(serde_json::from_str(&text)?),
        _ => Ok(Gate {
            minute: storage.get("window").await?.unwrap_or_default(),
            day: storage.get("day").await?.unwrap_or_default(),
            second: Default::default(),
            breaker: storage.get("breaker").await?.unwrap_or_default(),
        }),
    }
}

fn keep(storage: &Storage, key: &str, status: u16, body: Option<String>, now: u64) -> Result<()> {
    let expires_at = (now + IDEMPOTENCY_TTL_MS) as i64;
    storage.sql().exec(
        "INSERT OR REPLACE INTO idempotency (key, status, body, expires_at) VALUES (?, ?, ?, ?)",
        Some(vec![
            key.into(),
            i64::from(status).into(),
            body.into(),
            expires_at.into(),
        ]),
    )?;
    Ok(())
}

impl DurableObject for CallGate {
    fn new(state: State, _env: Env) -> Self {
        init(&state);
        CallGate {
            state,
            gate: RefCell::new(None),
        }
    }

    async fn fetch(&self, req: Request) -> Result<Response> {
        let now = now_ms();
        let storage = self.state.storage();
        match command::<GateCmd>(req).await? {
            GateCmd::Purge => {
                purge(&self.state).await?;
                init(&self.state);
                *self.gate.borrow_mut() = None;
                answer(&())
            }
            GateCmd::Begin(cmd) => {
                let key = cmd.idempotency_key.as_deref();
                if let Some(earlier) = key.map(|k| self.stored(k, now)).transpose()?.flatten() {
                    return answer(&earlier);
                }
                let begin = self.with(|g| g.admit(now, &cmd.limits)).await?;
                if let (Begin::Go { .. }, Some(key)) = (&begin, key) {
                    // Claimed (status 0): a concurrent repeat is "in progress" until finish.
                    keep(&storage, key, 0, None, now)?;
                }
                answer(&begin)
            }
            GateCmd::Finish(cmd) => {
                if let Some((policy, ok)) = &cmd.outcome {
                    let change = self
                        .with(|g| g.breaker.record(now, policy, *ok, cmd.probe))
                        .await?;
                    if let Some(t) = change {
                        super::log_transition(&self.state, None, t);
                    }
                }
                if let Some(key) = &cmd.idempotency_key {
                    keep(&storage, key, cmd.status, Some(cmd.body.to_string()), now)?;
                }
                if cmd.idempotency_key.is_some() || cmd.delivery.is_some() {
                    prune(&storage, now)?;
                }
                if let Some(d) = &cmd.delivery {
                    storage.sql().exec(
                        "INSERT OR REPLACE INTO deliveries (id, body, updated_at) VALUES (?, ?, ?)",
                        Some(vec![
                            d.id.clone().into(),
                            serde_json::to_string(d)?.into(),
                            (now as i64).into(),
                        ]),
                    )?;
                }
                answer(&())
            }
            GateCmd::Delivery(DeliveryQuery { id }) => {
                let query = "SELECT body FROM deliveries WHERE id = ?";
                let found: Vec<DeliveryRecord> = bodies(&storage.sql(), query, id.into())?;
                answer(&found.into_iter().next())
            }
        }
    }
}
