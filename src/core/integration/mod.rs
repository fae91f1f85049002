//! Declarative integrations: validating input, planning the provider request, and mapping the
//! provider's response, all driven by the integration's config. No integration needs code.

pub mod body;
pub mod config;
pub mod connect;
pub mod execute;
pub mod flow;
pub mod graphql;
pub mod health;
pub mod installed;
pub mod managing;
pub mod mapping;
pub mod marketplace;
pub mod oauth;
pub mod oauth_tokens;
pub mod paginate;
pub mod plan;
pub mod provider_wait;
pub mod tokens;
pub mod transforms;
pub mod validate;
