//! Usage counting from the request's side: samples go into this isolate's `core::usage::Tally`,
//! and are sent to each tenant's `Usage` object in one batch, a few seconds after the first one
//! waited (or at once when the tally is full). No request waits for it: the send runs after the
//! response, in `waitUntil` or at the end of work already running there. A lost isolate loses
//! what it had not sent, at most those seconds.

use super::platform::now_ms;
use super::{crossings, durable};
use crate::core::objects::{protocol::Usage, Object};
use crate::core::platform::DataPoint;
use crate::core::usage::{Sample, Tally, FLUSH_MS};
use futures::future::LocalBoxFuture;
use std::cell::{Cell, OnceCell, RefCell};
use std::time::Duration;
use wasm_bindgen::JsValue;
use worker::js_sys::Reflect;
use worker::{Delay, Env};

thread_local! {
    /// Whether the deployment counts usage (`USAGE_COUNTING` is not `off`), once read.
    static ENABLED: Cell<Option<bool>> = const { Cell::new(None) };
    /// The deployment's Analytics Engine dataset (`ANALYTICS`), if it binds one; looked up once.
    static ANALYTICS: OnceCell<Option<JsValue>> = const { OnceCell::new() };
    static TALLY: RefCell<Tally> = RefCell::new(Tally::default());
    /// A send is due (scheduled by the first sample that waited).
    static DUE: Cell<bool> = const { Cell::new(false) };
}

/// Whether usage is counted: on unless the deployment sets `USAGE_COUNTING = "off"` (read once
/// per isolate; vars do not change under a running isolate).
pub fn enabled(env: &Env) -> bool {
    ENABLED.with(|e| {
        *e.get().get_or_insert_with(|| {
            env.var("USAGE_COUNTING")
                .map_or(true, |v| v.to_string() != "off")
        })
    })
}

/// Counts `sample` for `tenant`. Returns the send the caller must run after its response (in
/// `waitUntil`, or awaited by work already running there), if this sample made one due.
pub fn count(env: &Env, tenant: &str, sample: Sample) -> Option<LocalBoxFuture<'static, ()>> {
    if !enabled(env) {
        return None;
    }
    let (_, full) = TALLY.with(|t| t.borrow_mut().count(tenant, sample, now_ms()));
    let env = env.clone();
    if full {
        return Some(Box::pin(send(env)));
    }
    if DUE.with(|d| d.replace(true)) {
        return None;
    }
    Some(Box::pin(async move {
        Delay::from(Duration::from_millis(FLUSH_MS)).await;
        send(env).await;
    }))
}

/// Counts `sample` for `tenant` without scheduling a send: the caller sends (`send`) when its
/// work ends (a queue batch).
pub fn tally(env: &Env, tenant: &str, sample: Sample) {
    if !enabled(env) {
        return;
    }
    TALLY.with(|t| t.borrow_mut().count(tenant, sample, now_ms()));
}

/// Sends everything counted, one batch per tenant; a batch that fails waits for the next send.
pub async fn send(env: Env) {
    DUE.with(|d| d.set(false));
    let all = TALLY.with(|t| t.borrow_mut().take_all());
    for (tenant, batch) in all {
        if let Err(e) = durable::ask(&env, &Object::<Usage>::usage(&tenant), batch.clone()).await {
            worker::console_error!("{}", serde_json::json!({"usage_send_failed": e.logged()}));
            TALLY.with(|t| t.borrow_mut().restore(&tenant, batch));
        }
    }
}

/// Writes a request's data point to the `ANALYTICS` Analytics Engine dataset; nothing where the
/// deployment binds none (looked up once per isolate).
pub fn write_point(env: &Env, p: DataPoint) {
    if !enabled(env) {
        return;
    }
    ANALYTICS.with(|a| {
        let dataset = a.get_or_init(|| {
            let binding = Reflect::get(env, &JsValue::from_str("ANALYTICS")).ok();
            binding.filter(|b| !b.is_undefined())
        });
        let Some(dataset) = dataset else {
            return;
        };
        if let Err(e) = crossings::point(dataset, p) {
            worker::console_error!("{}", serde_json::json!({"analytics_failed": e}));
        }
    });
}
