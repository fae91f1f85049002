//! Durable Object classes (SQLite-backed, named `{tenant}:{scope}`) and the client side of their
//! JSON command interface. Each class wraps a `core` state machine or a small table; the caller
//! makes one round trip per request.

mod channel_gate;
mod conversation;
mod dead_letters;
mod dedupe;
mod outbox;
mod pending;
mod rate_limiter;
pub use rate_limiter::{Adjust, AdmitCmd, Admitted, Check, Outcome as TargetOutcome, SettleCmd};

pub use channel_gate::{
    finish_later, Begin, BeginCmd, DeliveryRecord, FinishCmd, TokenAnswer, TokenCmd,
};
pub use conversation::{append_exchange, history};
pub use dead_letters::{DeadLetter, DeadLetterCmd};
pub use dedupe::{SeenMany, SeenResult};
pub use pending::{OpenWork, Pending};

/// The `put` command of `DeadLetters`, as the queue consumer sends it.
#[derive(serde::Serialize)]
pub struct DeadLetterCmdOut {
    pub letter: Option<DeadLetter>,
}

use super::respond::internal;
use crate::core::error::ApiError;
use futures::future::LocalBoxFuture;
use serde::de::DeserializeOwned;
use serde::Serialize;
use worker::{Env, Method, Request, RequestInit, Response};

/// Sends one command to the object `name` of `binding` and decodes its JSON answer.
pub async fn call<C: Serialize, R: DeserializeOwned>(
    env: &Env,
    binding: &str,
    name: &str,
    op: &str,
    cmd: &C,
) -> Result<R, ApiError> {
    let body = serde_json::to_string(cmd).map_err(internal)?;
    let text = send(env, binding, name, op, body).await?;
    serde_json::from_str(&text).map_err(internal)
}

/// The round trip itself, boxed and non-generic so it exists once in the binary.
fn send<'a>(
    env: &'a Env,
    binding: &'a str,
    name: &'a str,
    op: &'a str,
    body: String,
) -> LocalBoxFuture<'a, Result<String, ApiError>> {
    Box::pin(async move {
        let stub = env
            .durable_object(binding)
            .map_err(internal)?
            .get_by_name(name)
            .map_err(internal)?;
        let mut init = RequestInit::new();
        init.with_method(Method::Post).with_body(Some(body.into()));
        let req = Request::new_with_init(&format!("https://do.internal/{op}"), &init)
            .map_err(internal)?;
        let mut resp = stub.fetch_with_request(req).await.map_err(internal)?;
        let text = resp.text().await.map_err(internal)?;
        if resp.status_code() != 200 {
            return Err(internal(format!(
                "{binding}/{op} answered {}: {text}",
                resp.status_code()
            )));
        }
        Ok(text)
    })
}

/// Inside an object: the command and the op name of a request.
async fn command<C: DeserializeOwned>(mut req: Request) -> worker::Result<(String, C)> {
    let op = req.path().trim_start_matches('/').to_string();
    let cmd = req.json().await?;
    Ok((op, cmd))
}

fn answer<T: Serialize>(v: &T) -> worker::Result<Response> {
    Response::from_json(v)
}

/// The op that erases an object's storage (a deleted tenant or record): every row, key and alarm.
const PURGE: &str = "purge";

/// Erases everything `state` stores; the caller resets its memory and recreates its tables.
async fn purge(state: &worker::State) -> worker::Result<()> {
    state.storage().delete_alarm().await?;
    state.storage().delete_all().await
}

/// Erases the object `name` of `binding` (state a deleted tenant or record leaves).
pub async fn purge_object(env: &Env, binding: &str, name: &str) -> Result<(), ApiError> {
    send(env, binding, name, PURGE, "{}".into())
        .await
        .map(|_| ())
}

fn unknown_op(op: &str) -> worker::Result<Response> {
    Response::error(format!("unknown op {op}"), 400)
}

/// One log line per breaker change, named by the object (`{tenant}:{scope}:{id}`) and, for
/// objects holding several breakers, the target.
fn log_transition(
    state: &worker::State,
    target: Option<&str>,
    t: crate::core::limits::breaker::Transition,
) {
    worker::console_log!(
        "{}",
        serde_json::json!({"breaker": t, "object": state.id().name(), "target": target})
    );
}
