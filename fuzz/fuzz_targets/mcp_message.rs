//! Fuzz target `mcp_message`: the property lives in `edge_gateway::core::fuzzing`, where
//! `cargo test` also replays every kept input.
#![no_main]
use edge_gateway::core::fuzzing::*;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| mcp_message(data));
