//! Tenants: their profile, their keys, and the sealing of their credentials.

pub mod admin;
pub mod erase;
pub mod key_admin;
pub mod key_settings;
pub mod keys;
pub mod model;
pub mod seal;
