//! The pure core: protocol and policy logic with no I/O, no clock and no randomness of its own.
//! Everything here runs natively under `cargo test`; the `edge` shell feeds it bytes and time.

/// A built-in regular expression, compiled once (on first use) and kept.
macro_rules! pattern {
    ($re:expr) => {{
        static CELL: std::sync::OnceLock<regex_lite::Regex> = std::sync::OnceLock::new();
        CELL.get_or_init(|| regex_lite::Regex::new($re).expect("a built-in pattern compiles"))
    }};
}

pub mod channel;
pub mod cloud;
pub mod config;
pub mod console;
pub mod error;
pub mod flow;
#[cfg(any(test, fuzzing))]
pub mod fuzzing;
pub mod http;
pub mod integration;
pub mod jobs;
pub mod limits;
pub mod llm;
pub mod log;
pub mod mcp;
pub mod objects;
pub mod platform;
pub mod portal;
pub mod records;
pub mod redirect;
pub mod route;
pub mod sign;
pub mod tenant;
#[cfg(test)]
pub mod testing;
pub mod time;
pub mod trace;
pub mod upkeep;
pub mod upstream;
pub mod usage;
pub mod webhook;
pub mod widget;

/// Randomness supplied by the shell (the platform CSPRNG at the edge, a counter in tests).
pub trait Entropy {
    fn fill(&mut self, buf: &mut [u8]);
}
