//! The channel-neutral message, shared by webhook ingress (normalized inbound messages) and
//! channel send (rendered outbound messages).

pub mod config;
pub mod flow;
pub mod message;
pub mod outbound;
pub mod render;
pub mod response;
pub mod send;
