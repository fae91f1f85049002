//! The channel-neutral message, shared by webhook ingress (normalized inbound messages) and
//! channel send (rendered outbound messages).

pub mod message;
