//! What every configuration document kept in KV `CONFIG` shares: how it is validated
//! (`document`), how its secrets are sealed (`seal`), and the isolate's cache of what was read
//! (`cache`). Each document itself lives with the domain it configures (`webhook::source`,
//! `channel::config`, ...); `core::records` knows them all.

pub mod cache;
pub mod document;
pub mod seal;
