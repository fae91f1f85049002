//! What a portal session may do: a link names capabilities, and each portal call needs the one
//! that covers its action. The map from the admin API's actions is one exhaustive match, so a new
//! admin action does not compile until someone decides what (if anything) covers it; `None`
//! means the portal never offers it (the tenant record itself, its LLM configuration, sources,
//! channels, MCP servers, OAuth apps, widget keys, portal links).

use crate::core::platform::RecordKind;
use crate::core::route::AdminAction;
use serde::{Deserialize, Serialize};
use serde_json::Value;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Capability {
    /// The tenant's webhook destinations: read, change, retry, rotate their secrets.
    Destinations,
    /// The event log and the dead letters: read, retry, replay.
    Events,
    /// Installed integrations, the marketplace, connecting and disconnecting.
    Integrations,
    /// The tenant's usage.
    Usage,
    /// The tenant's API keys: list, mint secret keys (shown once), change, rotate (a publishable
    /// key's rotation mints its successor), revoke. Minting a publishable key is not offered.
    Keys,
}

impl Capability {
    pub const ALL: [Capability; 5] = [
        Capability::Destinations,
        Capability::Events,
        Capability::Integrations,
        Capability::Usage,
        Capability::Keys,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Capability::Destinations => "destinations",
            Capability::Events => "events",
            Capability::Integrations => "integrations",
            Capability::Usage => "usage",
            Capability::Keys => "keys",
        }
    }

    pub fn parse(s: &str) -> Option<Capability> {
        Capability::ALL.into_iter().find(|c| c.name() == s)
    }

    /// A link's capabilities as asked: at least one, each known, none twice.
    pub fn parse_list(asked: &[String]) -> Result<Vec<Capability>, String> {
        let known = || {
            let names: Vec<&str> = Capability::ALL.iter().map(|c| c.name()).collect();
            names.join(", ")
        };
        if asked.is_empty() {
            return Err(format!("`capabilities` needs at least one of: {}", known()));
        }
        let mut out = Vec::new();
        for a in asked {
            let c = Capability::parse(a).ok_or_else(|| {
                let shown: String = a.chars().take(40).filter(|c| !c.is_control()).collect();
                format!("unknown capability `{shown}`: use {}", known())
            })?;
            if out.contains(&c) {
                return Err(format!("capability `{a}` is named twice"));
            }
            out.push(c);
        }
        Ok(out)
    }
}

/// The capability that lets a portal session run `action`; `None`: no portal session may.
pub fn covering(action: &AdminAction) -> Option<Capability> {
    use AdminAction::*;
    use Capability::{Destinations, Events, Integrations, Keys};
    let record = |kind: &RecordKind| match kind {
        RecordKind::Destination => Some(Destinations),
        RecordKind::Integration => Some(Integrations),
        RecordKind::Tenant
        | RecordKind::Source
        | RecordKind::Channel
        | RecordKind::Llm
        | RecordKind::McpServer
        | RecordKind::OauthApp => None,
    };
    match action {
        // An integration's raw configuration is the operator's to write: a portal installs
        // from the marketplace or connects.
        PutRecord(RecordKind::Integration, _) => None,
        PutRecord(kind, _) | GetRecord(kind, _) | DeleteRecord(kind, _) | ListRecords(kind) => {
            record(kind)
        }
        CreateKey | ListKeys | GetKey(_) | PatchKey(_) | DeleteKey(_) | RotateKey(_) => Some(Keys),
        // Publishable keys go with the widget's allowed origins, which the portal does not set.
        CreateWidgetKey => None,
        ListDeadLetters | ReplayDeadLetter(_) | ListEvents | GetEvent(_) | RetryEvent(_) => {
            Some(Events)
        }
        // The MCP audit goes with the MCP configuration, which the portal does not offer.
        ListToolCalls => None,
        AdminAction::Usage => Some(Capability::Usage),
        RetryDestination(_) | RotateDestinationSecret(_) => Some(Destinations),
        InstallIntegration | TestIntegration(_) => Some(Integrations),
        // Sources are the operator's (their signing secrets among them).
        SendSample(_) => None,
        // A portal never mints portal links.
        MintPortalLink => None,
    }
}

/// What a portal may set on a key: the limits the operator set (rate, budget, models, tools,
/// scopes) are the operator's. A key minted from the portal may not reach MCP tools nor take
/// every scope; a change may only rename, label or set when it expires.
pub fn keys_within(action: &AdminAction, body: Option<&Value>) -> Result<(), String> {
    let body = body.and_then(Value::as_object);
    match action {
        AdminAction::CreateKey => {
            let scopes = body.and_then(|b| b.get("scopes")).and_then(Value::as_array);
            let broad = scopes.is_none_or(|s| s.iter().any(|v| v == "*" || v == "mcp"));
            let tools = body.is_some_and(|b| b.get("allowed_tools").is_some_and(|t| !t.is_null()));
            match (broad, tools) {
                (false, false) => Ok(()),
                _ => Err("a key minted from the portal names its scopes, neither `*` nor `mcp`, and no `allowed_tools`".into()),
            }
        }
        AdminAction::PatchKey(_) => {
            let changes = body.into_iter().flat_map(|b| b.keys());
            let settled: Vec<&String> = changes
                .filter(|k| !["name", "metadata", "expires_at"].contains(&k.as_str()))
                .collect();
            match settled.is_empty() {
                true => Ok(()),
                false => Err(format!("from the portal a key's name, metadata and expires_at may change, not {settled:?}")),
            }
        }
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const KINDS: [RecordKind; 8] = [
        RecordKind::Tenant,
        RecordKind::Source,
        RecordKind::Channel,
        RecordKind::Integration,
        RecordKind::Llm,
        RecordKind::Destination,
        RecordKind::McpServer,
        RecordKind::OauthApp,
    ];

    /// Each admin action's variant, by an exhaustive match: a new variant fails to compile here
    /// until the table below decides it.
    fn variant(a: &AdminAction) -> &'static str {
        use AdminAction::*;
        match a {
            PutRecord(..) => "PutRecord",
            GetRecord(..) => "GetRecord",
            DeleteRecord(..) => "DeleteRecord",
            ListRecords(_) => "ListRecords",
            CreateKey => "CreateKey",
            CreateWidgetKey => "CreateWidgetKey",
            ListKeys => "ListKeys",
            GetKey(_) => "GetKey",
            PatchKey(_) => "PatchKey",
            DeleteKey(_) => "DeleteKey",
            RotateKey(_) => "RotateKey",
            ListDeadLetters => "ListDeadLetters",
            ReplayDeadLetter(_) => "ReplayDeadLetter",
            AdminAction::Usage => "Usage",
            ListEvents => "ListEvents",
            GetEvent(_) => "GetEvent",
            RetryEvent(_) => "RetryEvent",
            ListToolCalls => "ListToolCalls",
            RetryDestination(_) => "RetryDestination",
            RotateDestinationSecret(_) => "RotateDestinationSecret",
            InstallIntegration => "InstallIntegration",
            TestIntegration(_) => "TestIntegration",
            SendSample(_) => "SendSample",
            MintPortalLink => "MintPortalLink",
        }
    }

    /// The decision for every action (records: for every kind), written out.
    fn decided() -> Vec<(AdminAction, Option<Capability>)> {
        use AdminAction::*;
        use Capability::{Destinations, Events, Integrations, Keys};
        let id = || "x".to_string();
        let mut table = vec![
            (CreateKey, Some(Keys)),
            (CreateWidgetKey, None),
            (ListKeys, Some(Keys)),
            (GetKey(id()), Some(Keys)),
            (PatchKey(id()), Some(Keys)),
            (DeleteKey(id()), Some(Keys)),
            (RotateKey(id()), Some(Keys)),
            (ListDeadLetters, Some(Events)),
            (ReplayDeadLetter(id()), Some(Events)),
            (AdminAction::Usage, Some(Capability::Usage)),
            (ListEvents, Some(Events)),
            (GetEvent(id()), Some(Events)),
            (RetryEvent(id()), Some(Events)),
            (ListToolCalls, None),
            (RetryDestination(id()), Some(Destinations)),
            (RotateDestinationSecret(id()), Some(Destinations)),
            (InstallIntegration, Some(Integrations)),
            (TestIntegration(id()), Some(Integrations)),
            (SendSample(id()), None),
            (MintPortalLink, None),
        ];
        for kind in KINDS {
            let (read, write) = match kind {
                RecordKind::Destination => (Some(Destinations), Some(Destinations)),
                RecordKind::Integration => (Some(Integrations), None),
                _ => (None, None),
            };
            table.push((GetRecord(kind, Some(id())), read));
            table.push((ListRecords(kind), read));
            table.push((PutRecord(kind, Some(id())), write));
            // Deleting an integration the tenant's own key may do too (`DELETE /v1/integrations/{id}`).
            table.push((DeleteRecord(kind, Some(id())), read));
        }
        table
    }

    #[test]
    fn every_admin_action_has_a_deliberate_answer() {
        let table = decided();
        for (action, expected) in &table {
            assert_eq!(covering(action), *expected, "{action:?}");
        }
        // Every variant appears in the table (a variant added to the match above but not to
        // the table fails here).
        let mut seen: Vec<&str> = table.iter().map(|(a, _)| variant(a)).collect();
        seen.sort();
        seen.dedup();
        assert_eq!(seen.len(), 24, "{seen:?}");
    }

    #[test]
    fn what_the_contract_names_as_never_from_a_portal_is_never_covered() {
        use AdminAction::*;
        for kind in [
            RecordKind::Tenant,
            RecordKind::Llm,
            RecordKind::Source,
            RecordKind::Channel,
            RecordKind::McpServer,
            RecordKind::OauthApp,
        ] {
            for a in [
                GetRecord(kind, None),
                PutRecord(kind, None),
                DeleteRecord(kind, None),
                ListRecords(kind),
            ] {
                assert_eq!(covering(&a), None, "{a:?}");
            }
        }
        assert_eq!(covering(&CreateWidgetKey), None);
        assert_eq!(covering(&MintPortalLink), None);
    }

    #[test]
    fn capabilities_are_asked_by_name_at_least_one_each_once() {
        let list = |v: &[&str]| {
            Capability::parse_list(&v.iter().map(|s| s.to_string()).collect::<Vec<_>>())
        };
        assert_eq!(
            list(&["events", "keys"]),
            Ok(vec![Capability::Events, Capability::Keys])
        );
        let all: Vec<&str> = Capability::ALL.iter().map(|c| c.name()).collect();
        assert_eq!(list(&all).unwrap().len(), 5);
        assert!(list(&[]).unwrap_err().contains("at least one"));
        assert!(list(&["events", "events"]).unwrap_err().contains("twice"));
        assert!(list(&["admin"])
            .unwrap_err()
            .contains("unknown capability `admin`"));
        assert!(list(&["Events"]).is_err(), "names are exact");
        for c in Capability::ALL {
            let json = serde_json::to_string(&c).unwrap();
            assert_eq!(json, format!("\"{}\"", c.name()));
        }
    }

    #[test]
    fn a_key_from_the_portal_keeps_the_operators_limits() {
        use serde_json::json;
        let create = |b: Value| keys_within(&AdminAction::CreateKey, Some(&b));
        assert!(create(json!({"name": "bot", "scopes": ["channels", "llm"]})).is_ok());
        for broad in [
            json!({"name": "x"}),
            json!({"scopes": ["*"]}),
            json!({"scopes": ["mcp"]}),
            json!({"scopes": ["llm"], "allowed_tools": ["*"]}),
        ] {
            assert!(create(broad.clone()).is_err(), "{broad}");
        }
        let patch = |b: Value| keys_within(&AdminAction::PatchKey("k1".into()), Some(&b));
        assert!(patch(
            json!({"name": "renamed", "metadata": {"team": "a"}, "expires_at": 2_000_000_000})
        )
        .is_ok());
        for loosened in [
            json!({"budget": null}),
            json!({"rpm": null}),
            json!({"allowed_models": []}),
            json!({"scopes": ["*"]}),
        ] {
            assert!(patch(loosened.clone()).is_err(), "{loosened}");
        }
        assert!(keys_within(&AdminAction::ListKeys, None).is_ok());
    }
}
