//! Durable Object classes (SQLite-backed, named by `core::objects`), and the one round trip that
//! asks them. A caller asks an `Object<K>` with a command of class `K` and gets that command's
//! answer type, so a wrong op, a wrong object or a wrong answer does not compile. Each class but
//! `OauthTokens` is its `core::objects` state machine in the one `host`; the caller makes one
//! round trip per request.

mod host;
mod oauth_tokens;

pub use oauth_tokens::OauthTokens;

use super::crossings;
use super::respond::{internal, unavailable};
use crate::core::error::ApiError;
use crate::core::objects::{protocol, Class, Command, Object, ObjectClass};
use futures::future::LocalBoxFuture;
use host::Host;
use worker::wasm_bindgen_futures::JsFuture;
use worker::{durable_object, DurableObject, Env, Request, Response, State};

/// Each class as `wrangler.toml` binds it: its state machine in the host (`alarm`: the class
/// exports its alarm handler).
macro_rules! hosted {
    ($($events:ident $class:ident),* $(,)?) => {$(
        #[durable_object($events)]
        pub struct $class {
            host: Host<protocol::$class>,
        }

        impl DurableObject for $class {
            fn new(state: State, env: Env) -> Self {
                $class { host: Host::new(state, env) }
            }

            async fn fetch(&self, req: Request) -> worker::Result<Response> {
                self.host.fetch(req).await
            }

            async fn alarm(&self) -> worker::Result<Response> {
                self.host.alarm().await
            }
        }
    )*};
}

hosted! {
    fetch RateLimiter,
    fetch DeadLetters,
    fetch CallGate,
    fetch Usage,
    fetch EventLog,
    alarm Dedupe,
    alarm Outbox,
    alarm Conversation,
    alarm Sequencer,
}

/// Sends `cmd` to `object` and decodes its answer.
pub async fn ask<K: Class, C: Command<K>>(
    env: &Env,
    object: &Object<K>,
    cmd: C,
) -> Result<C::Answer, ApiError> {
    let body = serde_json::to_string(&cmd.into_cmd()).map_err(internal)?;
    let text = send(env, K::CLASS, object.name(), body).await?;
    serde_json::from_str(&text).map_err(internal)
}

/// The round trip itself, boxed and non-generic so it exists once in the binary.
/// An object that fails, throws or misses its deadline is a 503 the client may retry.
pub fn send<'a>(
    env: &'a Env,
    class: ObjectClass,
    name: &'a str,
    body: String,
) -> LocalBoxFuture<'a, Result<String, ApiError>> {
    Box::pin(async move {
        let binding = class.binding();
        let answer = crossings::ask(env, binding, name, body, class.deadline_ms() as f64);
        let text = JsFuture::from(answer)
            .await
            .map_err(|e| unavailable(format!("{binding}: {}", crossings::message(&e))))?;
        text.as_string()
            .ok_or_else(|| internal(format!("{binding} answered no text")))
    })
}
