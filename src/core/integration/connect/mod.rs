//! "Connect": an integration connected through its provider's OAuth 2.0 authorization-code flow
//! (RFC 6749 4.1, PKCE per RFC 7636) instead of pasted credentials. The OAuth apps (`app`), the
//! template's description of its provider (`spec`), what a start chooses (`choose`), the signed
//! state (`state`), the attempts kept
//! until the callback (`pending`), the callback's decisions (`exchange`), the connection
//! recorded (`connection`), the routes as flows (`flow`), what becomes of a connection after
//! (`lost`, `disconnect`), and the hosted page (`page`).
//!
//! What travels where: the signed state (in the provider's URLs) binds tenant, incarnation,
//! integration, return URL, expiry and the nonce; the attempt (in the integration's
//! `OauthTokens` object, under the nonce) holds the PKCE verifier, the template, the tenant's
//! settings and the installation it began with; the connection record (KV
//! `connection:{tenant}:{id}`, its id the nonce, which the integration's `auth.connection`
//! names) holds who granted what and whether it holds; the refresh token is kept in the object,
//! sealed, as a rotated one is.

pub mod app;
pub mod choose;
pub mod connection;
pub mod disconnect;
pub mod exchange;
pub mod flow;
pub mod lost;
pub mod page;
pub mod pending;
pub mod spec;
pub mod state;
