//! The shell: moves bytes between Cloudflare Workers and `core`, which decides. No protocol
//! knowledge here.

mod admin;
mod auth;
mod body;
mod channel;
mod console;
mod context;
mod crossings;
pub mod durable;
mod effects;
mod event_log;
mod inbound;
mod integration;
mod llm;
mod mcp;
mod outbound;
mod platform;
pub mod queue;
mod respond;
pub mod router;
mod store;
pub mod upkeep;
mod usage;
mod webhook;
mod widget;

pub use context::Call;
pub use inbound::Inbound;
