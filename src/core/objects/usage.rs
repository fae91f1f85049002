//! `Usage`, one per tenant: the hourly rows of `core::usage`, added to by isolates' batches and
//! read by the usage API. Rows older than the retention are dropped as batches arrive.

use super::machine::{Ctx, Machine, Step};
use super::protocol::{Usage, UsageCmd};
use super::store::{Store, StoreError};
use crate::core::usage::{Counters, Dims, HOUR_MS};
use serde::Deserialize;

/// How long usage is kept.
const RETENTION_MS: u64 = 400 * 24 * HOUR_MS;

#[derive(Deserialize)]
struct Row {
    dims: String,
    counters: String,
}

impl Machine for Usage {
    type Doc = ();
    const TABLES: &'static [&'static str] = &[
        "CREATE TABLE IF NOT EXISTS usage (hour INTEGER NOT NULL, dims TEXT NOT NULL, counters TEXT NOT NULL, PRIMARY KEY (hour, dims))",
    ];

    fn apply<S: Store>(_: &mut (), sql: &S, cmd: UsageCmd, at: &Ctx) -> Result<Step, StoreError> {
        Ok(match cmd {
            UsageCmd::Purge => Step::erase(),
            UsageCmd::Add(batch) => {
                for (dims, c) in &batch.rows {
                    let key = serde_json::to_string(dims)?;
                    let query = "SELECT dims, counters FROM usage WHERE hour = ? AND dims = ?";
                    let rows: Vec<Row> =
                        sql.rows(query, vec![dims.hour.into(), key.as_str().into()])?;
                    let mut total: Counters = rows
                        .first()
                        .and_then(|r| serde_json::from_str(&r.counters).ok())
                        .unwrap_or_default();
                    total.add(c);
                    sql.run(
                        "INSERT OR REPLACE INTO usage (hour, dims, counters) VALUES (?, ?, ?)",
                        vec![
                            dims.hour.into(),
                            key.into(),
                            serde_json::to_string(&total)?.into(),
                        ],
                    )?;
                }
                let cutoff = at.now_ms.saturating_sub(RETENTION_MS);
                sql.run("DELETE FROM usage WHERE hour < ?", vec![cutoff.into()])?;
                Step::reply(&batch, &())
            }
            UsageCmd::Rows(range) => {
                let query = "SELECT dims, counters FROM usage WHERE hour >= ? AND hour < ?";
                let rows: Vec<Row> = sql.rows(query, vec![range.from.into(), range.to.into()])?;
                let out: Vec<(Dims, Counters)> = rows
                    .iter()
                    .filter_map(|r| {
                        Some((
                            serde_json::from_str(&r.dims).ok()?,
                            serde_json::from_str(&r.counters).ok()?,
                        ))
                    })
                    .collect();
                Step::reply(&range, &out)
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::objects::store::{create, Sqlite};
    use crate::core::usage::{Batch, Family, Range};

    const H: u64 = 500_000 * HOUR_MS;

    fn dims(hour: u64, model: &str) -> Dims {
        Dims {
            hour,
            family: Family::Llm,
            key: None,
            provider: None,
            model: Some(model.into()),
            subject: None,
        }
    }

    fn counted(requests: u64) -> Counters {
        Counters {
            requests,
            latency: vec![requests],
            ..Default::default()
        }
    }

    fn ask(sql: &Sqlite, cmd: UsageCmd, now: u64) -> String {
        Usage::apply(&mut (), sql, cmd, &Ctx::at(now))
            .unwrap()
            .answer
    }

    #[test]
    fn batches_add_up_per_hour_and_dimensions_and_old_hours_are_dropped() {
        let sql = Sqlite::default();
        create(&sql, Usage::TABLES).unwrap();
        let add = |rows: Vec<(Dims, Counters)>, now| ask(&sql, UsageCmd::Add(Batch { rows }), now);
        add(
            vec![(dims(H, "a"), counted(2)), (dims(H, "b"), counted(1))],
            H,
        );
        add(vec![(dims(H, "a"), counted(3))], H);
        add(vec![(dims(H + HOUR_MS, "a"), counted(1))], H + HOUR_MS);
        let rows = |from, to| {
            let text = ask(&sql, UsageCmd::Rows(Range { from, to }), H);
            let mut rows: Vec<(Dims, Counters)> = serde_json::from_str(&text).unwrap();
            rows.sort_by(|a, b| a.0.cmp(&b.0));
            rows
        };
        let want = vec![(dims(H, "a"), counted(5)), (dims(H, "b"), counted(1))];
        assert_eq!(rows(H, H + HOUR_MS), want);
        assert_eq!(rows(H, H + 2 * HOUR_MS).len(), 3);
        // A batch 400 days on drops the hours before its retention.
        add(vec![], H + HOUR_MS + RETENTION_MS);
        assert_eq!(rows(0, u64::MAX / 2).len(), 1);
    }
}
