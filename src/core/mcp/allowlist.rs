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

/// Whether some name starting with `prefix` could be allowed (a remote server's namespace is
/// asked for its tools only then): a grant without `*` must start with it, one with `*` must
/// agree with it up to its first `*`. Exclusions are not weighed: a yes may still list nothing.
pub fn may_allow_prefix(patterns: &[String], prefix: &str) -> bool {
    patterns
        .iter()
        .filter(|p| !p.starts_with('!'))
        .any(|p| match p.split_once('*') {
            None => p.starts_with(prefix),
            Some((head, _)) => head.starts_with(prefix) || prefix.starts_with(head),
        })
}

#[cfg(test)]
mod tests {
    use super::{allows, may_allow_prefix};

    fn patterns(p: &[&str]) -> Vec<String> {
        p.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn a_key_with_no_patterns_sees_no_tool() {
        assert!(!allows(&[], "hubspot__get_contact"));
        assert!(!allows(&[], ""));
    }

    #[test]
    fn patterns_match_whole_names() {
        let p = patterns(&["hubspot__get_contact", "stripe__*", "*__list_*"]);
        assert!(allows(&p, "hubspot__get_contact"));
        // Neither a prefix nor an extension of a listed name.
        assert!(!allows(&p, "hubspot__get_contact_notes"));
        assert!(!allows(&p, "hubspot__get"));
        assert!(allows(&p, "stripe__create_refund"));
        assert!(
            !allows(&p, "stripe2__create_refund"),
            "`stripe__*` is not `stripe*`"
        );
        assert!(!allows(&p, "my_stripe__get_customer"));
        assert!(allows(&p, "zendesk__list_tickets"));
        assert!(!allows(&p, "zendesk__get_ticket"));
        assert!(allows(&patterns(&["*"]), "anything__at_all"));
    }

    #[test]
    fn an_exclusion_wins_wherever_it_stands() {
        for p in [
            patterns(&["hubspot__*", "!hubspot__delete_*"]),
            patterns(&["!hubspot__delete_*", "hubspot__*"]),
        ] {
            assert!(allows(&p, "hubspot__get_contact"));
            assert!(!allows(&p, "hubspot__delete_contact"));
        }
        // Named exactly and excluded: excluded.
        let p = patterns(&["stripe__create_refund", "!stripe__create_refund"]);
        assert!(!allows(&p, "stripe__create_refund"));
        let p = patterns(&["*", "!*__create_*", "!twilio__*"]);
        assert!(allows(&p, "stripe__get_customer"));
        assert!(!allows(&p, "stripe__create_refund"));
        assert!(!allows(&p, "twilio__get_message"));
    }

    #[test]
    fn exclusions_alone_grant_nothing() {
        let p = patterns(&["!hubspot__delete_*"]);
        assert!(!allows(&p, "hubspot__get_contact"));
        assert!(!allows(&p, "stripe__get_customer"));
        assert!(!allows(&patterns(&["!*"]), "hubspot__get_contact"));
    }

    #[test]
    fn a_namespace_is_asked_for_only_when_a_grant_could_reach_it() {
        let ns = "docs__";
        assert!(may_allow_prefix(&patterns(&["docs__search"]), ns));
        assert!(may_allow_prefix(&patterns(&["docs__*"]), ns));
        assert!(may_allow_prefix(&patterns(&["*"]), ns));
        assert!(may_allow_prefix(&patterns(&["do*"]), ns));
        assert!(may_allow_prefix(&patterns(&["*__search"]), ns));
        assert!(!may_allow_prefix(&patterns(&["crm__*", "!docs__*"]), ns));
        assert!(!may_allow_prefix(&patterns(&["docsx__*"]), ns));
        assert!(!may_allow_prefix(&[], ns));
    }
}
