//! Queues: the wire format (`wire`), the open-work record kept beside each queued message
//! (`open_work`), and the consumers (`consume`).

mod consume;
mod open_work;
mod wire;

pub use consume::consume;
pub use open_work::grace_ms;
pub use wire::{enqueue, prepare, send_texts};
