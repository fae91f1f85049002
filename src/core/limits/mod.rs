//! Rate limiting and circuit breaking as pure state machines; Durable Objects hold their state.

pub mod breaker;
pub mod budget;
pub mod gate;
pub mod lease;
pub mod limiter;
pub mod outcome_window;
pub mod rate;
