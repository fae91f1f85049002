//! Tenants: their profile, their keys, and the rotation of the key their credentials are sealed
//! under (`config::seal` seals them).

pub mod admin;
pub mod erase;
pub mod key_admin;
pub mod key_settings;
pub mod keys;
pub mod model;
pub mod reseal;
