//! edge-gateway: the integration edge of a multi-tenant AI chatbot platform.
//!
//! `core` is pure and natively tested; `edge` is the thin Cloudflare Workers shell around it and
//! is only compiled for wasm.

pub mod core;

#[cfg(target_arch = "wasm32")]
mod edge;
