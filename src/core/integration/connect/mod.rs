//! "Connect": an integration connected through its provider's OAuth 2.0 authorization-code flow
//! (RFC 6749 4.1, PKCE per RFC 7636) instead of pasted credentials. The OAuth apps (`app`), the
//! template's description of its provider (`spec`), the signed state (`state`), the attempts kept
//! until the callback (`pending`), the callback's decisions (`exchange`), the connection
//! recorded (`connection`), and the routes as flows (`flow`).

pub mod app;
pub mod connection;
pub mod exchange;
pub mod flow;
pub mod lifecycle;
pub mod pending;
pub mod spec;
pub mod state;
