//! The event log from the consumer's side: what a queue batch records goes into this isolate's
//! buffer, one list per tenant, and is sent to each tenant's `EventLog` object in one round trip
//! when the batch ends (what requests record, `GATHER_MS` after the first of them). A send that
//! fails is logged and dropped: the log is the operator's view, and no delivery depends on it.

use super::durable;
use crate::core::objects::{protocol::EventLog, Object};
use crate::core::webhook::event_log::{send_due, LogBatch, LogEntry};
use crate::core::webhook::health::Disable;
use std::cell::{Cell, RefCell};
use std::collections::BTreeMap;
use worker::Env;

/// Entries held at most; a batch never comes near it unless sends keep failing.
const MAX_HELD: usize = 20_000;

thread_local! {
    static HELD: RefCell<BTreeMap<String, Vec<LogEntry>>> = const { RefCell::new(BTreeMap::new()) };
    /// When a request scheduled the send of what is held (epoch ms; 0: none is coming).
    static SCHEDULED: Cell<u64> = const { Cell::new(0) };
}

/// Whether the caller should schedule a send (`event_log::send_due`); it is then scheduled.
pub fn schedule() -> bool {
    let now = super::platform::now_ms();
    let due = SCHEDULED.with(|s| send_due(s.get(), now));
    if due {
        SCHEDULED.with(|s| s.set(now));
    }
    due
}

/// Holds `entry` for `tenant` until the next `send`.
pub fn record(tenant: String, entry: LogEntry) {
    HELD.with(|h| {
        let mut h = h.borrow_mut();
        if h.values().map(Vec::len).sum::<usize>() >= MAX_HELD {
            worker::console_error!("{}", serde_json::json!({"event_log_dropped": MAX_HELD}));
            h.clear();
        }
        h.entry(tenant).or_default().push(entry);
    });
}

/// Sends what is held, one batch per tenant; answers the destinations the logs found failing
/// for too long, by tenant, for the caller to disable (`core::webhook::health::disable_all`).
pub async fn send(env: &Env) -> Vec<(String, Disable)> {
    // What is recorded from now on needs a send of its own.
    SCHEDULED.with(|s| s.set(0));
    let all = HELD.with(|h| std::mem::take(&mut *h.borrow_mut()));
    let mut off = Vec::new();
    for (tenant, entries) in all {
        let batch = LogBatch { entries };
        match durable::ask(env, &Object::<EventLog>::tenant(&tenant), batch).await {
            Ok(found) => off.extend(found.into_iter().map(|d| (tenant.clone(), d))),
            Err(e) => {
                let line =
                    serde_json::json!({"event_log_send_failed": e.logged(), "tenant": tenant});
                worker::console_error!("{line}");
            }
        }
    }
    off
}
