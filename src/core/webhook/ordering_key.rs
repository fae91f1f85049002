//! Ordering keys: what orders an event among its source's events for a destination that
//! delivers in order. Each source kind has a sensible default (the conversation, the Stripe
//! object, the GitHub issue or pull request, the Shopify record); a source may set its own
//! expression (`SourceConfig.ordering_key_expr`, JSON `ordering_key`: JMESPath over the event
//! envelope). No key: the event is not
//! ordered. A key longer than SQS FIFO's `MessageGroupId` allows becomes a digest of itself.

use super::delivery::EventEnvelope;
use super::source_kind::SourceKind;
use crate::core::integration::mapping::compile;
use jmespath::ast::Ast;
use jmespath::{Expression, Variable};
use serde_json::Value;
use sha2::{Digest, Sha256};

/// The longest key kept as it is (SQS FIFO's `MessageGroupId` limit).
pub const MAX_KEY: usize = 128;

/// How a source's events get their key: `None`, the default of its kind; else the source's own
/// expression, compiled once for a request's events (`Some(None)`: it does not compile or uses
/// more than a key needs, and gives no key).
pub struct Rule(Option<Option<Expression<'static>>>);

/// The rule of a source's ordering key expression (if it sets one).
pub fn rule(expr: Option<&str>) -> Rule {
    Rule(expr.map(|e| {
        match too_deep(e) {
            true => None,
            false => compile(e.trim())
                .ok()
                .filter(|c| refused(c.as_ast()).is_none()),
        }
    }))
}

/// The event's ordering key: the source's own expression when it sets one, else the default of
/// its kind. A null, empty or failing result is no key.
pub fn key_of(kind: SourceKind, event: &EventEnvelope, expr: Option<&str>) -> Option<String> {
    key_by(kind, event, &rule(expr))
}

/// `key_of` by a rule already made. An expression reads the envelope without its `unsigned`
/// headers: what the provider did not sign does not choose the key.
pub fn key_by(kind: SourceKind, event: &EventEnvelope, rule: &Rule) -> Option<String> {
    let key = match &rule.0 {
        Some(compiled) => {
            let mut doc = serde_json::to_value(event).ok()?;
            doc.as_object_mut()?.remove("unsigned");
            // Only a scalar is a key: a structured result is dropped, never copied.
            match &*compiled.as_ref()?.search(doc).ok()? {
                Variable::String(s) if !s.is_empty() => Some(s.clone()),
                Variable::Number(n) => Some(n.to_string()),
                Variable::Bool(b) => Some(b.to_string()),
                _ => None,
            }
        }
        None => default_key(kind, &event.event_type, &event.data),
    }?;
    Some(bounded(key))
}

/// At most this many paths in the one `join`. With fields, indices, literals and one `join` of paths, an
/// expression costs at most a few lookups per event and yields no more than the event holds;
/// projections, multi-selects and other functions can multiply it (the review's
/// `[@,@,…][] | …` makes 216,000 copies of the envelope in 375 characters).
const MAX_JOINED: usize = 8;

/// Nesting (`(`, `[`, `{`) an expression may have: the JMESPath parser recurses once per level
/// (a 500-character `[[[…` overflows a small stack), and a key needs two (`join('/', [a[0]])`).
const MAX_NESTING: usize = 4;

/// Whether an expression nests deeper than `MAX_NESTING` (quoted parts aside), checked before
/// it is parsed.
fn too_deep(expr: &str) -> bool {
    let (mut depth, mut quote, mut escaped) = (0usize, None, false);
    for c in expr.chars() {
        if let Some(q) = quote {
            match (escaped, c) {
                (false, '\\') => escaped = true,
                (false, c) if c == q => quote = None,
                _ => escaped = false,
            }
            continue;
        }
        match c {
            '\'' | '"' | '`' => quote = Some(c),
            '(' | '[' | '{' => {
                depth += 1;
                if depth > MAX_NESTING {
                    return true;
                }
            }
            ')' | ']' | '}' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    false
}

/// Why an ordering key expression is refused (the first construct it may not use), if it is.
fn refused(ast: &Ast) -> Option<String> {
    match ast {
        Ast::Literal { .. } => None,
        Ast::Function { name, args, .. } if name == "join" => match args.as_slice() {
            [Ast::Literal { value, .. }, Ast::MultiList { elements, .. }]
                if value.is_string() && (1..=MAX_JOINED).contains(&elements.len()) =>
            {
                elements.iter().find_map(not_a_path)
            }
            _ => Some(format!(
                "`join` other than `join('sep', [path, …])` with 1 to {MAX_JOINED} paths"
            )),
        },
        _ => not_a_path(ast),
    }
}

/// Why `ast` is not a field path (`a.b`, `a[0]`, `"quoted"`, `a | b`), if it is not.
fn not_a_path(ast: &Ast) -> Option<String> {
    let why = match ast {
        Ast::Field { .. } | Ast::Index { .. } => return None,
        Ast::Subexpr { lhs, rhs, .. } => return not_a_path(lhs).or_else(|| not_a_path(rhs)),
        Ast::Function { name, .. } => return Some(format!("function `{name}`")),
        Ast::Literal { .. } => "a literal inside a path or `join`",
        Ast::Identity { .. } => "`@`",
        Ast::MultiList { .. } => "a multi-select list `[a, b]` (except as `join`'s list)",
        Ast::MultiHash { .. } => "a multi-select hash `{k: v}`",
        Ast::Projection { .. } | Ast::Flatten { .. } | Ast::ObjectValues { .. } => {
            "a projection or flatten (`*`, `[]`, `[?…]`)"
        }
        Ast::Slice { .. } => "a slice `[a:b]`",
        Ast::Comparison { .. } | Ast::Condition { .. } => "a comparison or filter",
        Ast::And { .. } => "`&&`",
        Ast::Or { .. } => "`||`",
        Ast::Not { .. } => "`!`",
        Ast::Expref { .. } => "`&expression`",
    };
    Some(why.into())
}

/// The default key of a source kind's event (`data` is the envelope's `data`).
pub fn default_key(kind: SourceKind, event_type: &str, data: &Value) -> Option<String> {
    let at = |pointer: &str| data.pointer(pointer).and_then(text);
    if event_type.starts_with("message.") {
        return at("/conversation_id");
    }
    match kind {
        // Template, quality and account updates: the business account.
        SourceKind::Whatsapp => at("/entry_id"),
        SourceKind::Stripe => at("/data/object/id"),
        SourceKind::Github => {
            let repo = at("/repository/full_name")?;
            let number = ["/issue/number", "/pull_request/number", "/number"]
                .iter()
                .find_map(|p| at(p));
            Some(match number {
                Some(n) => format!("{repo}#{n}"),
                None => repo,
            })
        }
        SourceKind::Shopify => at("/admin_graphql_api_id").or_else(|| {
            // `shopify.orders/create` → `orders/{id}`.
            let resource = event_type.strip_prefix("shopify.")?.split('/').next()?;
            Some(format!("{resource}/{}", at("/id")?))
        }),
        SourceKind::Slack | SourceKind::Telegram | SourceKind::Twilio => None,
        SourceKind::Standard | SourceKind::Hmac => None,
    }
}

/// A scalar as key text; null, empty strings, arrays and objects are no key.
fn text(v: &Value) -> Option<String> {
    match v {
        Value::String(s) if !s.is_empty() => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

/// A key as kept: itself up to `MAX_KEY` characters, else `h:` and 40 hex of its SHA-256.
pub fn bounded(key: String) -> String {
    if key.chars().count() <= MAX_KEY {
        return key;
    }
    hashed(&key)
}

/// `h:` and 40 hex digits of the key's SHA-256: what stands for a key too long (or, for a bus,
/// of characters it refuses) to be sent as it is; short, and distinct keys stay distinct.
pub fn hashed(key: &str) -> String {
    format!("h:{}", &hex::encode(Sha256::digest(key.as_bytes()))[..40])
}

/// Refuses an expression that does not compile or uses more than a key needs (a source's
/// `ordering_key`, when saved).
pub fn check(expr: &str, p: &mut Vec<String>) {
    if expr.trim().is_empty() || expr.len() > 500 {
        p.push("`ordering_key` must be a JMESPath expression of 1 to 500 characters".into());
        return;
    }
    if too_deep(expr) {
        p.push(format!(
            "`ordering_key` nests deeper than {MAX_NESTING} levels of `(`, `[` and `{{`"
        ));
        return;
    }
    match compile(expr.trim()) {
        Err(e) => p.push(format!("`ordering_key`: {}", e.0)),
        Ok(c) => {
            if let Some(why) = refused(c.as_ast()) {
                p.push(format!("`ordering_key` may use only field paths (`a.b`, `a[0]`), a literal, or one `join('sep', [path, …])` of 1 to {MAX_JOINED} paths, since it runs on every event; {why} is not allowed"));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::upstream::Trail;
    use crate::core::webhook::ingress::{self, Origin};
    use crate::core::webhook::normalize::{normalize, Ingress};
    use crate::core::webhook::samples::{sample, Signing};
    use crate::core::webhook::source::{HmacAlgorithm, HmacScheme, SignatureEncoding};
    use crate::core::webhook::verify::SignedRequest;
    use serde_json::json;

    /// The envelope of `kind`'s sample, as ingress builds it.
    fn sampled(kind: SourceKind) -> EventEnvelope {
        let scheme = HmacScheme {
            header: "X-Signature".into(),
            algorithm: HmacAlgorithm::Sha256,
            encoding: SignatureEncoding::Hex,
            prefix: None,
            timestamp_header: None,
            template: None,
            id_header: None,
        };
        let url = "https://gw.example/v1/webhooks/t1/src";
        let signing = Signing {
            secret: "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
            url,
            scheme: Some(&scheme),
            now_s: 1_700_000_000,
            nonce: "n1",
        };
        let s = sample(kind, &signing).unwrap();
        let req = SignedRequest {
            url,
            headers: &s.headers,
            body: s.body.as_bytes(),
            now_s: 1_700_000_000,
        };
        let Ok(Ingress::Events(events)) = normalize(kind, &req, None) else {
            panic!("{kind:?} sample did not normalize")
        };
        let origin = Origin {
            tenant: "t1",
            source: "src",
            kind,
            received_at: 1,
            trail: Trail::default(),
            ordering_key_expr: None,
        };
        let msg = ingress::messages(&origin, events).remove(0);
        let crate::core::jobs::Job::DeliverEvent { event, .. } = msg.job else {
            panic!()
        };
        event
    }

    #[test]
    fn each_kinds_sample_has_its_default_key() {
        let expected = [
            (SourceKind::Whatsapp, Some("16315551181")),
            (SourceKind::Slack, Some("C0001")),
            (SourceKind::Telegram, Some("42")),
            (SourceKind::Twilio, Some("+15558675310")),
            (SourceKind::Stripe, Some("pi_n1")),
            (SourceKind::Github, Some("octo-org/shop#1347")),
            (SourceKind::Shopify, Some("orders/820982911946154508")),
            (SourceKind::Standard, None),
            (SourceKind::Hmac, None),
        ];
        for (kind, key) in expected {
            let event = sampled(kind);
            assert_eq!(key_of(kind, &event, None).as_deref(), key, "{kind:?}");
        }
        let pr = json!({"action": "closed", "pull_request": {"number": 7}, "repository": {"full_name": "o/r"}});
        let push = json!({"ref": "refs/heads/main", "repository": {"full_name": "o/r"}});
        let gh = |data: &Value| default_key(SourceKind::Github, "github.x", data);
        assert_eq!(gh(&pr).as_deref(), Some("o/r#7"));
        assert_eq!(
            gh(&push).as_deref(),
            Some("o/r"),
            "no number: the repository"
        );
        let gid = json!({"id": 5, "admin_graphql_api_id": "gid://shopify/Order/5"});
        let shop = default_key(SourceKind::Shopify, "shopify.orders/paid", &gid);
        assert_eq!(shop.as_deref(), Some("gid://shopify/Order/5"));
        let entry = json!({"entry_id": "1022", "field": "account_update", "value": {}});
        let wa = default_key(SourceKind::Whatsapp, "whatsapp.account_update", &entry);
        assert_eq!(wa.as_deref(), Some("1022"));
    }

    #[test]
    fn a_sources_expression_overrides_the_default_and_null_is_no_key() {
        let stripe = sampled(SourceKind::Stripe);
        let over = |e: &str| key_of(SourceKind::Stripe, &stripe, Some(e));
        assert_eq!(over("data.data.object.currency").as_deref(), Some("usd"));
        assert_eq!(over("data.data.object.amount").as_deref(), Some("2000"));
        assert_eq!(over("source").as_deref(), Some("src"), "the whole source");
        assert_eq!(over("data.nothing"), None, "null: no key");
        assert_eq!(over("data.data"), None, "an object is no key");
        let standard = sampled(SourceKind::Standard);
        let key = key_of(SourceKind::Standard, &standard, Some("data.data.invoice"));
        assert_eq!(key.as_deref(), Some("in_n1"));
    }

    /// Header values the provider did not sign are no ordering key: a replayed request could set
    /// them to hold another key's events.
    #[test]
    fn an_expression_reads_only_what_the_provider_signed() {
        let github = sampled(SourceKind::Github);
        assert!(
            !github.unsigned.is_empty(),
            "the sample has unsigned headers"
        );
        let (name, _) = github.unsigned.iter().next().unwrap();
        let expr = format!("unsigned.\"{name}\"");
        assert_eq!(key_of(SourceKind::Github, &github, Some(&expr)), None);
    }

    /// An expression whose cost grows with its own nesting (each multi-select and flatten can
    /// double the values), or that nests deeper than the parser should recurse, is refused on
    /// save, and gives no key if saved before.
    #[test]
    fn an_expression_too_costly_to_run_on_each_event_is_refused() {
        let stripe = sampled(SourceKind::Stripe);
        let fine = "join('/', [data.type, data.data.object.currency])";
        let mut p = vec![];
        check(fine, &mut p);
        assert!(p.is_empty(), "{p:?}");
        assert!(key_of(SourceKind::Stripe, &stripe, Some(fine)).is_some());
        let doubling = "[@,@][][@,@][][@,@][][@,@][][@,@][][@,@][][@,@][][@,@][][@,@][][@,@][]";
        for costly in [doubling, "((((((data.id))))))", "data.*.*.*.*.*.*.*.*.id"] {
            let mut p = vec![];
            check(costly, &mut p);
            let why = ["may use only", "nests deeper"];
            assert!(
                p.iter().any(|e| why.iter().any(|w| e.contains(w))),
                "{costly}: {p:?}"
            );
            assert_eq!(key_of(SourceKind::Stripe, &stripe, Some(costly)), None);
        }
    }

    /// The review's two expressions (sec42-final-1 finding 3): short, few brackets, yet one makes
    /// 216,000 copies of the envelope and the other a string 240 times the event. Refused on save,
    /// and no key (nothing evaluated) if saved before.
    #[test]
    fn wide_multi_selects_and_functions_are_refused() {
        let wide = |n: usize| format!("[{}][]", vec!["@"; n].join(","));
        let spread = [wide(60), wide(60), wide(60)].join(" | ");
        let repeated = format!("to_string([{}])", vec!["@"; 240].join(","));
        let stripe = sampled(SourceKind::Stripe);
        for costly in [spread.as_str(), repeated.as_str()] {
            assert!(costly.len() <= 500, "{}", costly.len());
            let mut p = vec![];
            check(costly, &mut p);
            assert!(p.iter().any(|e| e.contains("may use only")), "{p:?}");
            assert_eq!(key_of(SourceKind::Stripe, &stripe, Some(costly)), None);
        }
        let mut p = vec![];
        check("data.items[*].id", &mut p);
        check("{a: data.id}", &mut p);
        check("to_string(data.id)", &mut p);
        check(
            "join('/', [data.a, data.b, data.c, data.d, data.e, data.f, data.g, data.h, data.i])",
            &mut p,
        );
        check("join('/', [data.a, to_string(data.b)])", &mut p);
        check("join('/', [data.a]) && join('/', [data.b])", &mut p);
        assert_eq!(p.len(), 6, "{p:?}");
        for (e, why) in p.iter().zip([
            "projection",
            "multi-select hash",
            "function `to_string`",
            "1 to 8",
            "function `to_string`",
            "`&&`",
        ]) {
            assert!(e.contains(why), "{e} should name {why}");
        }
    }

    /// Each allowed form gives its key: a field, a path through fields and indices, a literal,
    /// and one `join` of up to 8 field paths.
    #[test]
    fn a_key_from_each_allowed_form_works() {
        let mut stripe = sampled(SourceKind::Stripe);
        stripe.data["data"]["object"]["lines"] = json!([{"id": "il_1"}, {"id": "il_2"}]);
        let kind = stripe.data["type"].as_str().unwrap().to_string();
        let joined = "join('/', [source, data.type, data.data.object.currency, data.data.object.id, source, source, source, source])";
        let forms = [
            ("source", "src".to_string()),
            ("data.data.object.currency", "usd".to_string()),
            ("data.data.object.lines[1].id", "il_2".to_string()),
            ("data.data.object.lines[-1].id", "il_2".to_string()),
            ("data.data | object.id", "pi_n1".to_string()),
            ("'everything'", "everything".to_string()),
            ("`7`", "7".to_string()),
            ("data.livemode", "false".to_string()),
            ("data.data.object.amount", "2000".to_string()),
            (joined, format!("src/{kind}/usd/pi_n1/src/src/src/src")),
        ];
        for (expr, key) in forms {
            let mut p = vec![];
            check(expr, &mut p);
            assert!(p.is_empty(), "{expr}: {p:?}");
            assert_eq!(
                key_of(SourceKind::Stripe, &stripe, Some(expr)).as_deref(),
                Some(key.as_str()),
                "{expr}"
            );
        }
    }

    #[test]
    fn a_long_key_becomes_its_digest_and_a_short_one_stays() {
        let exact = "k".repeat(MAX_KEY);
        assert_eq!(bounded(exact.clone()), exact);
        let long = bounded("k".repeat(MAX_KEY + 1));
        assert!(long.starts_with("h:") && long.len() == 42, "{long}");
        assert_eq!(long, bounded("k".repeat(MAX_KEY + 1)), "stable");
        assert_ne!(long, bounded("j".repeat(MAX_KEY + 1)));
    }

    #[test]
    fn an_expression_that_does_not_compile_is_refused_on_save() {
        let mut p = vec![];
        check("data.object.id", &mut p);
        assert!(p.is_empty());
        check("data.[", &mut p);
        check("  ", &mut p);
        assert_eq!(p.len(), 2, "{p:?}");
        assert!(p[0].starts_with("`ordering_key`"));
    }
}
