//! Tenants: their profile, their keys, and the sealing of their credentials (and its rotation).

pub mod admin;
pub mod erase;
pub mod key_admin;
pub mod key_settings;
pub mod keys;
pub mod model;
pub mod reseal;
pub mod seal;
