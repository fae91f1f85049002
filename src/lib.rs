//! edge-gateway: the integration edge of a multi-tenant AI chatbot platform.
//!
//! `core` is pure and natively tested: it decides. `edge` is the Cloudflare Workers shell around
//! it (only compiled for wasm): it loads, asks `core`, and performs. This file holds the Worker's
//! entry points.

pub mod core;

#[cfg(target_arch = "wasm32")]
mod edge;

#[cfg(target_arch = "wasm32")]
mod entry {
    use crate::edge::{queue, router, upkeep, Inbound};
    use worker::{
        event, web_sys, Context, Env, MessageBatch, Result, ScheduleContext, ScheduledEvent,
    };

    /// Every HTTP request: `edge::router` (the runtime's own request object: see `edge::inbound`).
    #[event(fetch)]
    async fn fetch(req: web_sys::Request, env: Env, ctx: Context) -> Result<web_sys::Response> {
        Ok(router::serve(Inbound::new(req), env, ctx).await)
    }

    /// Every queue batch (`events`, `deliveries` and their dead-letter queues): `edge::queue`.
    #[event(queue)]
    async fn queue(batch: MessageBatch<String>, env: Env, _ctx: Context) -> Result<()> {
        queue::consume(batch, env).await
    }

    /// The cron trigger (`wrangler.toml`): `edge::upkeep`.
    #[event(scheduled)]
    async fn scheduled(_event: ScheduledEvent, env: Env, _ctx: ScheduleContext) {
        upkeep::run(env).await
    }
}

/// The Durable Object classes `wrangler.toml` binds, each defined in `edge::durable`.
#[cfg(target_arch = "wasm32")]
pub use edge::durable::{
    CallGate, Conversation, DeadLetters, Dedupe, EventLog, OauthTokens, Outbox, RateLimiter,
    Sequencer, Usage,
};
