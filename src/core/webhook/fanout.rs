//! Which destinations an event goes to: the ones its source feeds (all, unless the source names
//! some) whose filter takes it. Each is a delivery of its own, with an id of its own that stays
//! the same across its retries and replays.

use super::delivery::EventEnvelope;
use crate::core::integration::mapping::{compile, map_response, truthy};
use crate::core::webhook::destination::{DestinationConfig, EventFilter, DEFAULT};
use serde_json::Value;

/// The id of `event`'s delivery to `destination` (its `webhook-id`): the event's own id for the
/// tenant's default destination, as before there were others, and `{event}.{destination}` for a
/// named one, so two destinations of one receiver do not take each other's for duplicates.
pub fn delivery_id(event_id: &str, destination: &str) -> String {
    if destination == DEFAULT {
        event_id.to_string()
    } else {
        format!("{event_id}.{destination}")
    }
}

/// Whether `ty` is of the type `pattern`, where `*` stands for any run of characters.
pub fn type_matches(pattern: &str, ty: &str) -> bool {
    let mut parts = pattern.split('*');
    let first = parts.next().unwrap_or_default();
    let Some(mut rest) = ty.strip_prefix(first) else {
        return false;
    };
    let parts: Vec<&str> = parts.collect();
    let Some((last, middle)) = parts.split_last() else {
        return rest.is_empty();
    };
    for part in middle {
        match rest.find(part) {
            Some(i) => rest = &rest[i + part.len()..],
            None => return false,
        }
    }
    rest.len() >= last.len() && rest.ends_with(last)
}

/// Whether `filter` takes `event`; a condition that fails to evaluate does not.
pub fn takes(filter: &EventFilter, event: &EventEnvelope, as_json: &Value) -> bool {
    let typed = filter.types.is_empty()
        || filter
            .types
            .iter()
            .any(|p| type_matches(p, &event.event_type));
    typed
        && match &filter.condition {
            None => true,
            Some(c) => compile(c.trim())
                .ok()
                .and_then(|e| e.search(as_json.clone()).ok())
                .and_then(|v| serde_json::to_value(&*v).ok())
                .is_some_and(|v| truthy(&v)),
        }
}

/// Why a destination does not get an event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Skipped {
    /// The source names other destinations.
    NotFed,
    Filtered,
}

/// Where an event goes: the destinations that take it, by name, and the others with why not.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Plan {
    pub targets: Vec<String>,
    pub skipped: Vec<(String, Skipped)>,
    /// Names the source feeds that no destination has.
    pub unknown: Vec<String>,
}

/// Plans `event`'s deliveries among the tenant's `destinations` (by name, `default` included when
/// the tenant has one), for a source that feeds `fed` (`None`: every destination).
pub fn plan(
    event: &EventEnvelope,
    fed: Option<&[String]>,
    destinations: &[(String, &DestinationConfig)],
) -> Plan {
    let as_json = serde_json::to_value(event).unwrap_or(Value::Null);
    let mut plan = Plan::default();
    for (name, d) in destinations {
        if fed.is_some_and(|f| !f.contains(name)) {
            plan.skipped.push((name.clone(), Skipped::NotFed));
        } else if !takes(&d.filter, event, &as_json) {
            plan.skipped.push((name.clone(), Skipped::Filtered));
        } else {
            plan.targets.push(name.clone());
        }
    }
    plan.unknown = fed
        .unwrap_or_default()
        .iter()
        .filter(|n| !destinations.iter().any(|(d, _)| d == *n))
        .cloned()
        .collect();
    plan
}

/// The event as `d` receives it: its `data` reshaped by the destination's `transform`, if any.
pub fn shaped(event: &EventEnvelope, d: &DestinationConfig) -> Result<EventEnvelope, String> {
    let Some(shape) = &d.transform else {
        return Ok(event.clone());
    };
    let mapped = map_response(Some(&shape.mapping()), true, &event.data).map_err(|e| e.0)?;
    Ok(EventEnvelope {
        data: mapped.data,
        ..event.clone()
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn event(ty: &str, data: Value) -> EventEnvelope {
        EventEnvelope {
            id: "evt_1".into(),
            event_type: ty.into(),
            tenant: "t1".into(),
            source: "stripe".into(),
            source_kind: "stripe".into(),
            received_at: 1,
            data,
            unsigned: Default::default(),
            ordering_key: None,
        }
    }

    fn dest(doc: Value) -> DestinationConfig {
        let mut base = json!({"url": "https://a.example/in", "secret": "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"});
        base.as_object_mut()
            .unwrap()
            .extend(doc.as_object().unwrap().clone());
        crate::core::config::document::validate(&base).unwrap()
    }

    #[test]
    fn type_patterns_take_any_run_of_characters_for_a_star() {
        for (p, t) in [
            ("message.*", "message.received"),
            ("message.*", "message.status"),
            ("stripe.invoice.*", "stripe.invoice.payment_failed"),
            ("stripe.*.paid", "stripe.invoice.paid"),
            ("*", "anything"),
            ("github.issues.opened", "github.issues.opened"),
            ("*.created", "shopify.orders.created"),
        ] {
            assert!(type_matches(p, t), "{p} should take {t}");
        }
        for (p, t) in [
            ("message.*", "messages.received"),
            ("stripe.invoice.*", "stripe.invoice"),
            ("stripe.*.paid", "stripe.invoice.paid.late"),
            ("github.issues.opened", "github.issues.opened2"),
            ("a*a", "a"),
        ] {
            assert!(!type_matches(p, t), "{p} should not take {t}");
        }
    }

    #[test]
    fn one_event_goes_to_every_destination_whose_filter_takes_it() {
        let all = dest(json!({}));
        let invoices = dest(json!({"filter": {"types": ["stripe.invoice.*"]}}));
        let big = dest(
            json!({"filter": {"types": ["stripe.*"], "condition": "data.object.amount > `1000`"}}),
        );
        let messages = dest(json!({"filter": {"types": ["message.*"]}}));
        let ds = [
            ("default".to_string(), &all),
            ("invoices".to_string(), &invoices),
            ("big".to_string(), &big),
            ("chat".to_string(), &messages),
        ];
        let paid = event("stripe.invoice.paid", json!({"object": {"amount": 2000}}));
        let p = plan(&paid, None, &ds);
        assert_eq!(p.targets, ["default", "invoices", "big"]);
        assert_eq!(p.skipped, [("chat".to_string(), Skipped::Filtered)]);

        let small = event("stripe.charge.succeeded", json!({"object": {"amount": 5}}));
        assert_eq!(plan(&small, None, &ds).targets, ["default"]);
    }

    #[test]
    fn a_source_that_names_destinations_feeds_only_those() {
        let all = dest(json!({}));
        let ds = [
            ("default".to_string(), &all),
            ("crm".to_string(), &all),
            ("audit".to_string(), &all),
        ];
        let fed = ["crm".to_string(), "gone".to_string()];
        let p = plan(&event("x", json!({})), Some(&fed), &ds);
        assert_eq!(p.targets, ["crm"]);
        assert_eq!(p.skipped.len(), 2);
        assert_eq!(p.unknown, ["gone"]);
    }

    #[test]
    fn a_condition_that_cannot_be_evaluated_takes_nothing() {
        // Comparing a string with a number is an error in JMESPath, not a match.
        let d = dest(json!({"filter": {"condition": "data.n > `3`"}}));
        let ds = [("d".to_string(), &d)];
        assert!(plan(&event("x", json!({"n": "five"})), None, &ds)
            .targets
            .is_empty());
        assert_eq!(plan(&event("x", json!({"n": 5})), None, &ds).targets, ["d"]);
    }

    #[test]
    fn deliveries_have_ids_of_their_own_but_the_default_keeps_the_events() {
        assert_eq!(delivery_id("evt_1", "default"), "evt_1");
        assert_eq!(delivery_id("evt_1", "crm"), "evt_1.crm");
    }

    #[test]
    fn a_transform_reshapes_the_data_a_destination_receives() {
        let d = dest(json!({"transform": {
            "field_mappings": {"amount": "object.amount", "customer": "object.customer"},
            "transforms": {"amount": [{"type": "currency", "currency": "EUR", "divisor": 100}]},
            "defaults": {"customer": "unknown"}
        }}));
        let e = event("stripe.invoice.paid", json!({"object": {"amount": 2000}}));
        let out = shaped(&e, &d).unwrap();
        assert_eq!(out.data, json!({"amount": "€20.00", "customer": "unknown"}));
        assert_eq!((out.id, out.event_type), (e.id, e.event_type));
    }

    #[test]
    fn destinations_are_validated_when_saved() {
        let bad = json!({"url": "ftp://x", "secret": "plain", "max_attempts": 0,
            "filter": {"types": ["bad type!"], "condition": "data.[["},
            "transform": {"field_mappings": {"a": "x.["}, "transforms": {"b": ["nope"]}}});
        let e = crate::core::config::document::validate::<DestinationConfig>(&bad).unwrap_err();
        for field in [
            "`url`",
            "`secret`",
            "`max_attempts`",
            "`filter.types[0]`",
            "`filter.condition`",
            "`transform.field_mappings.a`",
            "`transform.transforms.b`",
        ] {
            assert!(e.message.contains(field), "{field} in {}", e.message);
        }
    }
}
