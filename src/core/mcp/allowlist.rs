//! A key's tool allowlist (`allowed_tools`): which tools `tools/list` shows it and `tools/call`
//! lets it run. Deny by default: a key with no patterns sees no tool. A pattern matches whole
//! names, `*` standing for any run of characters; one starting with `!` takes names away again,
//! whatever else matches them (`hubspot__*` with `!hubspot__delete_*`).

use crate::core::tenant::key_settings::glob;

pub fn allows(patterns: &[String], tool: &str) -> bool {
    let (denies, grants): (Vec<&String>, Vec<&String>) =
        patterns.iter().partition(|p| p.starts_with('!'));
    grants.iter().any(|p| glob(p, tool)) && !denies.iter().any(|p| glob(&p[1..], tool))
}
