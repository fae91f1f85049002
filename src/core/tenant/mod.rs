//! Tenants: their profile, their keys, and the sealing of their credentials.

pub mod admin;
pub mod erase;
pub mod keys;
pub mod model;
pub mod seal;
