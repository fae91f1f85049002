//! GraphQL endpoints: the request (`{query, variables, operationName}`, or the document's hash
//! first for automatic persisted queries) and the answer. An answer's `data` is what the
//! endpoint's response mapping reads; its `errors[]` become the envelope's error, and whatever
//! data came back with them is kept (a partial answer is still a success). A server that does not
//! know a persisted hash is sent the document; a cost-throttled answer (Shopify's `THROTTLED`)
//! is a rate limit with the wait its cost figures give.

use crate::core::integration::config::GraphqlCall;
use serde_json::{json, Map, Value};
use sha2::{Digest, Sha256};

/// At most this many of an answer's errors are listed in the envelope.
const MAX_LISTED_ERRORS: usize = 10;

/// The request body: `variables` filled from the call's input; without `with_document` a
/// persisted call sends only the document's hash.
pub fn request_body(g: &GraphqlCall, variables: Value, with_document: bool) -> Value {
    let mut body = Map::new();
    if with_document || !g.persisted() {
        body.insert("query".into(), g.query.clone().into());
    }
    if !variables.is_null() {
        body.insert("variables".into(), variables);
    }
    if let Some(op) = &g.operation_name {
        body.insert("operationName".into(), op.clone().into());
    }
    if g.persisted() {
        let hash = hex::encode(Sha256::digest(g.query.as_bytes()));
        body.insert(
            "extensions".into(),
            json!({"persistedQuery": {"version": 1, "sha256Hash": hash}}),
        );
    }
    Value::Object(body)
}

fn errors(body: &Value) -> &[Value] {
    body.get("errors")
        .and_then(Value::as_array)
        .map_or(&[], Vec::as_slice)
}

fn code(e: &Value) -> Option<&str> {
    e.pointer("/extensions/code").and_then(Value::as_str)
}

/// The server does not know a persisted hash and asks for the document (Apollo's protocol).
pub fn asks_for_document(body: &Value) -> bool {
    errors(body).iter().any(|e| {
        e.get("message").and_then(Value::as_str) == Some("PersistedQueryNotFound")
            || code(e) == Some("PERSISTED_QUERY_NOT_FOUND")
    })
}

/// A cost-throttled answer, and how long until the query's cost is restored: Shopify's
/// `THROTTLED` with `extensions.cost` (requested cost, currently available, restore rate per
/// second); a second when it gives no figures.
pub fn throttled_wait_s(body: &Value) -> Option<u64> {
    errors(body).iter().find(|e| code(e) == Some("THROTTLED"))?;
    let cost = body.pointer("/extensions/cost");
    let num = |p: &str| cost.and_then(|c| c.pointer(p)).and_then(Value::as_f64);
    let wait = match (
        num("/requestedQueryCost"),
        num("/throttleStatus/currentlyAvailable"),
        num("/throttleStatus/restoreRate"),
    ) {
        (Some(need), Some(have), Some(rate)) if rate > 0.0 => ((need - have) / rate).ceil(),
        _ => 1.0,
    };
    Some(if wait.is_finite() {
        wait.max(1.0) as u64
    } else {
        1
    })
}

/// What an attempt's GraphQL answer asks of the call before it is concluded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Turn {
    /// The server does not know the persisted hash: send the document.
    SendDocument,
    /// Cost-throttled: a rate limit (a 429 to the retry policy) with this wait.
    Throttled(u64),
    Conclude,
}

pub fn turn(text: &str) -> Turn {
    let Ok(body) = serde_json::from_str::<Value>(text) else {
        return Turn::Conclude;
    };
    if asks_for_document(&body) {
        return Turn::SendDocument;
    }
    throttled_wait_s(&body).map_or(Turn::Conclude, Turn::Throttled)
}

/// A GraphQL answer read: its data, and its errors as one message and a list.
#[derive(Debug, Clone, PartialEq)]
pub struct Answer {
    pub data: Value,
    pub errors: Option<(String, Value)>,
}

/// `None` when the body is no GraphQL answer (an HTML error page, a gateway's own error).
pub fn answer(body: &Value) -> Option<Answer> {
    let o = body.as_object()?;
    if !o.contains_key("data") && !o.contains_key("errors") {
        return None;
    }
    let data = o.get("data").cloned().unwrap_or(Value::Null);
    let list = errors(body);
    let errors = (!list.is_empty()).then(|| {
        let listed: Vec<Value> = list
            .iter()
            .take(MAX_LISTED_ERRORS)
            .map(|e| {
                let message = match e.get("message") {
                    Some(Value::String(s)) => s.clone(),
                    _ => "error without a message".into(),
                };
                match e.get("path").filter(|p| p.is_array()) {
                    Some(path) => json!({"message": message, "path": path}),
                    None => json!({"message": message}),
                }
            })
            .collect();
        let first = &listed[0];
        let mut message = first["message"].as_str().unwrap_or_default().to_string();
        if let Some(path) = first.get("path").and_then(Value::as_array) {
            let dotted: Vec<String> = path
                .iter()
                .map(|p| p.as_str().map_or_else(|| p.to_string(), String::from))
                .collect();
            message.push_str(&format!(" (at {})", dotted.join(".")));
        }
        if list.len() > 1 {
            message.push_str(&format!(" and {} more", list.len() - 1));
        }
        (message, Value::Array(listed))
    });
    Some(Answer { data, errors })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::config::document::validate;
    use crate::core::integration::config::IntegrationConfig;

    fn call(persisted: bool) -> GraphqlCall {
        GraphqlCall {
            query: "query Order($id: ID!) { order(id: $id) { name } }".into(),
            variables: None,
            operation_name: Some("Order".into()),
            persisted: Some(persisted),
        }
    }

    #[test]
    fn requests_carry_the_document_or_its_hash() {
        let vars = json!({"id": "gid://shopify/Order/1"});
        let plain = request_body(&call(false), vars.clone(), false);
        assert_eq!(
            plain,
            json!({"query": call(false).query, "variables": vars, "operationName": "Order"})
        );
        let hashed = request_body(&call(true), vars.clone(), false);
        assert!(hashed.get("query").is_none());
        let hash = hashed["extensions"]["persistedQuery"]["sha256Hash"]
            .as_str()
            .unwrap();
        assert_eq!(hash, hex::encode(Sha256::digest(call(true).query)));
        let full = request_body(&call(true), Value::Null, true);
        assert_eq!(full["query"], call(true).query);
        assert!(full.get("variables").is_none());
        let unknown = json!({"errors": [{"message": "PersistedQueryNotFound", "extensions": {"code": "PERSISTED_QUERY_NOT_FOUND"}}]});
        assert!(asks_for_document(&unknown));
        assert_eq!(turn(&unknown.to_string()), Turn::SendDocument);
        assert_eq!(turn(r#"{"data": {}}"#), Turn::Conclude);
        assert_eq!(turn("<html>"), Turn::Conclude);
    }

    #[test]
    fn errors_become_one_message_and_partial_data_is_kept() {
        // The shape of the spec's example (October 2021, 7.1.2): a null field with its error.
        let partial = json!({
            "errors": [
                {"message": "Name for character with ID 1002 could not be fetched.",
                 "locations": [{"line": 6, "column": 7}], "path": ["hero", "heroFriends", 1, "name"]},
                {"message": "second"}
            ],
            "data": {"hero": {"name": "R2-D2", "heroFriends": [{"name": "Luke"}, {"name": null}]}}
        });
        let a = answer(&partial).unwrap();
        assert_eq!(a.data["hero"]["name"], "R2-D2");
        let (message, listed) = a.errors.unwrap();
        assert_eq!(
            message,
            "Name for character with ID 1002 could not be fetched. (at hero.heroFriends.1.name) and 1 more"
        );
        assert_eq!(listed[0]["path"], json!(["hero", "heroFriends", 1, "name"]));
        assert_eq!(listed[1], json!({"message": "second"}));
        let failed = answer(&json!({"errors": [{"message": "Field 'x' doesn't exist"}]})).unwrap();
        assert_eq!(failed.data, Value::Null);
        assert_eq!(
            answer(&json!({"data": {"a": 1}})).unwrap().errors,
            None,
            "no errors"
        );
        assert_eq!(answer(&json!("<html>")), None);
        assert_eq!(answer(&json!({"message": "Bad gateway"})), None);
    }

    #[test]
    fn a_throttled_answer_waits_until_its_cost_is_restored() {
        // Shopify GraphQL Admin's throttled answer.
        let throttled = json!({
            "errors": [{"message": "Throttled", "extensions": {"code": "THROTTLED", "documentation": "https://shopify.dev/api/usage/rate-limits"}}],
            "extensions": {"cost": {"requestedQueryCost": 202, "actualQueryCost": null,
                "throttleStatus": {"maximumAvailable": 2000.0, "currentlyAvailable": 22, "restoreRate": 100.0}}}
        });
        assert_eq!(throttled_wait_s(&throttled), Some(2));
        assert_eq!(turn(&throttled.to_string()), Turn::Throttled(2));
        let bare =
            json!({"errors": [{"message": "Throttled", "extensions": {"code": "THROTTLED"}}]});
        assert_eq!(throttled_wait_s(&bare), Some(1));
        assert_eq!(throttled_wait_s(&json!({"data": {}})), None);
    }

    #[test]
    fn a_graphql_endpoint_is_a_post_whose_input_goes_through_variables() {
        let cfg = |endpoint: Value| {
            validate::<IntegrationConfig>(&json!({"name": "Shop", "base_url": "https://x.example",
                "endpoints": {"q": endpoint}}))
        };
        let ok = json!({"method": "POST", "path": "/graphql.json",
            "graphql": {"query": "query($id: ID!) { order(id: $id) { name } }", "variables": {"id": "{{input.id}}"}}});
        assert!(cfg(ok).is_ok());
        let problems = |v: Value| cfg(v).unwrap_err().message;
        let injected = json!({"method": "POST", "path": "/g",
            "graphql": {"query": "{ order(id: \"{{input.id}}\") { name } }"}});
        assert!(problems(injected).contains("through `variables`"));
        let get = json!({"method": "GET", "path": "/g", "graphql": {"query": "{ a }"}});
        assert!(problems(get).contains("must be POST"));
        let both =
            json!({"method": "POST", "path": "/g", "body": {}, "graphql": {"query": "{ a }"}});
        assert!(problems(both).contains("both `body` and `graphql`"));
        let bad_var = json!({"method": "POST", "path": "/g",
            "graphql": {"query": "{ a }", "variables": {"x": "{{input.[}}"}}});
        assert!(problems(bad_var).contains("`endpoints.q.graphql.variables`: invalid JMESPath"));
    }
}
