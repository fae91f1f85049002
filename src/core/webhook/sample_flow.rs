//! The console's "send a signed sample": a sample of the source's kind (`samples`), signed with
//! the source's own first secret, goes through ingress exactly as the provider's request would,
//! and the answer says what ingress made of it. The operator never handles the secret, and an
//! accepted sample is a real event, delivered to the source's destinations.

use super::flow::{receive, Webhook};
use super::ingress::signed_url;
use super::samples::{sample, Signing};
use crate::core::config::document::{open_secret, RecordRef};
use crate::core::config::seal::Sealer;
use crate::core::error::ApiError;
use crate::core::flow::Co;
use crate::core::http::{url_origin, HttpResponse};
use crate::core::jobs::wire::QueueSettings;
use crate::core::platform::RecordKind;
use crate::core::upstream::Trail;
use crate::core::webhook::source::SourceConfig;
use crate::core::Entropy;
use serde_json::{json, Value};

/// Which source, and where the admin request came in (its origin is the gateway's).
pub struct SampleAt<'a> {
    pub tenant: &'a str,
    pub source: &'a str,
    pub admin_url: &'a str,
    pub trail: Trail,
}

pub async fn send(
    co: Co,
    sealer: &Sealer,
    rng: &mut dyn Entropy,
    settings: QueueSettings,
    at: SampleAt<'_>,
) -> Result<HttpResponse, ApiError> {
    let (tenant, source) = (at.tenant, at.source);
    let cfg: SourceConfig = co
        .config(&RecordKind::Source.kv_key(tenant, Some(source)))
        .await?
        .ok_or_else(|| {
            ApiError::not_found(format!("tenant `{tenant}` has no source `{source}`"))
        })?;
    let first = cfg.secrets.first().ok_or_else(|| {
        ApiError::validation(format!(
            "source `{source}` has no secret to sign a sample with"
        ))
    })?;
    let record = RecordKind::Source.seal_record(Some(source));
    let sealed_at = RecordRef {
        tenant,
        record: &record,
    };
    let secret = open_secret(sealer, &sealed_at, "/secrets/0", first)?;
    let url = format!("{}/v1/webhooks/{tenant}/{source}", url_origin(at.admin_url));
    let mut nonce = [0u8; 8];
    rng.fill(&mut nonce);
    let signing = Signing {
        secret: &secret,
        url: &signed_url(cfg.public_url.as_deref(), &url),
        scheme: cfg.hmac.as_ref(),
        now_s: co.now() / 1000,
        nonce: &hex::encode(nonce),
    };
    let signed = sample(cfg.kind, &signing).map_err(ApiError::validation)?;
    // Names only: a Telegram sample's header is the secret itself.
    let headers: Vec<&str> = signed.headers.iter().map(|(k, _)| k.as_str()).collect();
    let headers = json!(headers);
    let w = Webhook {
        tenant,
        source,
        handshake: false,
        url: &url,
        headers: signed.headers,
        body: signed.body.into_bytes(),
        trail: at.trail,
    };
    let answer = match receive(co.clone(), sealer, settings, w).await {
        Ok(r) => {
            let body = r.body.unwrap_or_default();
            let body = serde_json::from_slice::<Value>(&body)
                .unwrap_or_else(|_| json!(String::from_utf8_lossy(&body)));
            json!({"status": r.status, "body": body})
        }
        // The gateway's own failure stays a 500 with its detail in the log only.
        Err(e) if e.is_internal() => return Err(e),
        Err(e) => {
            json!({"status": e.status(), "body": {"error": {"type": e.kind.type_name(), "message": e.message}}})
        }
    };
    HttpResponse::json(
        200,
        &json!({"source": source, "kind": cfg.kind.name(), "url": url, "headers": headers, "answer": answer}),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::flow::{drive, Effect, Flow, Outcome};
    use crate::core::testing::{sealer, stored, Counter};
    use crate::core::webhook::dedupe::SeenResult;

    const NOW_MS: u64 = 1_764_460_800_000;

    /// Sends the sample of a source stored as `doc` (its secrets sealed as an admin PUT seals
    /// them); returns the answer and what the flow asked of the platform.
    fn send_for(doc: Value) -> (Result<Value, ApiError>, Vec<Effect>) {
        let cfg = stored(RecordKind::Source, "t1", Some("src"), doc);
        let sealer = sealer();
        let mut rng = Counter(7);
        let at = SampleAt {
            tenant: "t1",
            source: "src",
            admin_url: "https://gw.example/v1/admin/tenants/t1/sources/src/sample",
            trail: Trail::default(),
        };
        let flow = Flow::new(|co| send(co, &sealer, &mut rng, QueueSettings::default(), at));
        let (out, seen) = drive(flow, NOW_MS, |e| match e {
            Effect::Config { .. } => Ok(Outcome::Doc(Some(cfg.clone()))),
            Effect::Ask { body, .. } if body.starts_with(r#"{"seen_many""#) => {
                let cmd: Value = serde_json::from_str(body).unwrap();
                let ids: Vec<String> =
                    serde_json::from_value(cmd["seen_many"]["ids"].clone()).unwrap();
                let seen = SeenResult {
                    new_ids: ids,
                    duplicates: 0,
                    order: vec![],
                };
                Ok(Outcome::Text(serde_json::to_string(&seen).unwrap()))
            }
            _ => Ok(Outcome::Text("null".into())),
        });
        let out = out.map(|r| serde_json::from_slice(&r.body.unwrap()).unwrap());
        (out, seen)
    }

    #[test]
    fn each_kinds_sample_passes_ingress_and_is_queued_as_an_event() {
        let hmac = json!({"header": "X-Signature", "algorithm": "sha256", "encoding": "hex"});
        for kind in crate::core::webhook::source::SourceKind::ALL {
            let secret = match kind.name() {
                "standard" => "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
                _ => "s3cret-signing-key",
            };
            let doc = json!({"kind": kind.name(), "secrets": [secret], "hmac": hmac});
            let (out, seen) = send_for(doc);
            let out = out.unwrap();
            assert_eq!(out["answer"]["status"], 200, "{kind:?}: {out}");
            assert_eq!(out["url"], "https://gw.example/v1/webhooks/t1/src");
            let queued = seen.iter().any(|e| matches!(e, Effect::Send { .. }));
            assert!(queued, "{kind:?}: the sample became a queued event");
            assert!(
                !out.to_string().contains(secret),
                "{kind:?}: no secret shown"
            );
        }
    }

    #[test]
    fn a_source_without_a_secret_or_an_absent_one_is_refused() {
        let (out, _) = send_for(json!({"kind": "github", "secrets": []}));
        assert_eq!(out.unwrap_err().status(), 422);
        let sealer = sealer();
        let mut rng = Counter(0);
        let at = SampleAt {
            tenant: "t1",
            source: "nope",
            admin_url: "https://gw.example/",
            trail: Trail::default(),
        };
        let flow = Flow::new(|co| send(co, &sealer, &mut rng, QueueSettings::default(), at));
        let (out, _) = drive(flow, NOW_MS, |_| Ok(Outcome::Doc(None)));
        assert_eq!(out.unwrap_err().status(), 404);
    }
}
