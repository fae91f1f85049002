//! `Usage`, one per tenant: the hourly rows of `core::usage`, added to by isolates' batches and
//! read by the usage API. Rows older than the retention are dropped as batches arrive.

use super::{answer, command, purge};
use crate::core::objects::protocol::UsageCmd;
use crate::core::usage::{Counters, Dims, HOUR_MS};
use crate::edge::platform::now_ms;
use worker::{durable_object, DurableObject, Env, Request, Response, Result, State};

/// How long usage is kept.
const RETENTION_MS: u64 = 400 * 24 * HOUR_MS;

#[durable_object(fetch)]
pub struct Usage {
    state: State,
}

fn init(state: &State) {
    let _ = state.storage().sql().exec(
        "CREATE TABLE IF NOT EXISTS usage (hour INTEGER NOT NULL, dims TEXT NOT NULL, counters TEXT NOT NULL, PRIMARY KEY (hour, dims))",
        None,
    );
}

#[derive(serde::Deserialize)]
struct Row {
    dims: String,
    counters: String,
}

impl DurableObject for Usage {
    fn new(state: State, _env: Env) -> Self {
        init(&state);
        Usage { state }
    }

    async fn fetch(&self, req: Request) -> Result<Response> {
        let sql = self.state.storage().sql();
        match command::<UsageCmd>(req).await? {
            UsageCmd::Purge => {
                purge(&self.state).await?;
                init(&self.state);
                answer(&())
            }
            UsageCmd::Add(batch) => {
                // Synchronous statements: no other command runs between the read and the write.
                for (dims, c) in batch.rows {
                    let key = serde_json::to_string(&dims)?;
                    let hour = dims.hour as i64;
                    let query = "SELECT dims, counters FROM usage WHERE hour = ? AND dims = ?";
                    let rows: Vec<Row> = sql
                        .exec(query, Some(vec![hour.into(), key.clone().into()]))?
                        .to_array()?;
                    let mut total: Counters = rows
                        .first()
                        .and_then(|r| serde_json::from_str(&r.counters).ok())
                        .unwrap_or_default();
                    total.add(&c);
                    sql.exec(
                        "INSERT OR REPLACE INTO usage (hour, dims, counters) VALUES (?, ?, ?)",
                        Some(vec![
                            hour.into(),
                            key.into(),
                            serde_json::to_string(&total)?.into(),
                        ]),
                    )?;
                }
                let cutoff = now_ms().saturating_sub(RETENTION_MS) as i64;
                sql.exec(
                    "DELETE FROM usage WHERE hour < ?",
                    Some(vec![cutoff.into()]),
                )?;
                answer(&())
            }
            UsageCmd::Rows(range) => {
                let query = "SELECT dims, counters FROM usage WHERE hour >= ? AND hour < ?";
                let bind = vec![(range.from as i64).into(), (range.to as i64).into()];
                let rows: Vec<Row> = sql.exec(query, Some(bind))?.to_array()?;
                let out: Vec<(Dims, Counters)> = rows
                    .iter()
                    .filter_map(|r| {
                        Some((
                            serde_json::from_str(&r.dims).ok()?,
                            serde_json::from_str(&r.counters).ok()?,
                        ))
                    })
                    .collect();
                answer(&out)
            }
        }
    }
}
