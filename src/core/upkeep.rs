//! The scheduled upkeep (the cron trigger): jobs that keep stored state bounded and current, each
//! idempotent, bounded in time (a run that stops early leaves the rest to the next one), logged
//! with what it did, and run whatever the others did:
//! - dead letters past their retention are forgotten, tenant by tenant;
//! - during a master key rotation (more than one key in the ring), secrets are re-sealed under
//!   the current key (`core::tenant::reseal`).

use crate::core::config::RecordKind;
use crate::core::error::ApiError;
use crate::core::flow::Co;
use crate::core::jobs::ExpireLetters;
use crate::core::objects::protocol::DeadLetters;
use crate::core::objects::Object;
use crate::core::tenant::reseal::{walk, Pass, Walk};
use crate::core::tenant::seal::Sealer;
use crate::core::Entropy;
use serde_json::{json, Value};

pub const DEFAULT_DEAD_LETTER_RETENTION_S: u64 = 30 * 86_400;

/// How a run is bounded and what it keeps.
#[derive(Debug, Clone, Copy)]
pub struct Upkeep {
    /// Dead letters older than this are forgotten.
    pub dead_letter_retention_ms: u64,
    /// A job stops starting new work after this long.
    pub budget_ms: u64,
}

/// Runs every job; returns their reports (also logged, one line per job). A job that fails is
/// reported as failed and the others still run.
pub async fn run(
    co: Co,
    u: Upkeep,
    sealer: &Sealer,
    rng: &mut dyn Entropy,
) -> Result<Vec<Value>, ApiError> {
    let mut reports = vec![expire_dead_letters(&co, u).await];
    if sealer.key_ids().len() > 1 {
        reports.push(reseal(&co, u, sealer, rng).await);
    }
    let mut out = Vec::new();
    for (job, report) in reports {
        let line = report.unwrap_or_else(|e| json!({"failed": e.message}));
        let line = json!({"upkeep": job, "report": line});
        co.log(line.clone()).await;
        out.push(line);
    }
    Ok(out)
}

type Report = (&'static str, Result<Value, ApiError>);

/// One bounded reseal pass from the start: a rotation completes within a few runs by itself.
async fn reseal(co: &Co, u: Upkeep, sealer: &Sealer, rng: &mut dyn Entropy) -> Report {
    let w = Walk {
        pass: Pass::Reseal,
        after: None,
        budget_ms: u.budget_ms,
    };
    let report = walk(co, sealer, rng, &w).await;
    ("secrets_resealed", report.map(|r| json!(r)))
}

async fn expire_dead_letters(co: &Co, u: Upkeep) -> Report {
    ("dead_letters_expired", expire_letters(co, u).await)
}

async fn expire_letters(co: &Co, u: Upkeep) -> Result<Value, ApiError> {
    let started = co.now();
    let before_ms = started.saturating_sub(u.dead_letter_retention_ms);
    let prefix = RecordKind::Tenant.kv_key("", None);
    let tenants = co.list(&prefix).await?;
    let (mut visited, mut expired) = (0u64, 0u64);
    for key in &tenants {
        if co.now().saturating_sub(started) > u.budget_ms {
            break;
        }
        let tenant = key.after(&prefix);
        let letters = Object::<DeadLetters>::tenant(tenant);
        expired += u64::from(co.ask(&letters, ExpireLetters { before_ms }).await?);
        visited += 1;
    }
    Ok(json!({
        "tenants": visited,
        "of": tenants.len(),
        "expired": expired,
        "complete": visited as usize == tenants.len(),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::flow::{drive, Effect, Flow, Outcome};
    use crate::core::testing::{stored, Counter, Kv};

    const NOW: u64 = 1_795_967_178_000;

    /// A run over `tenants` tenants (each with a sealed LLM key) whose dead letter objects each
    /// expire two letters, with the keyring `ring`.
    fn upkeep(tenants: usize, budget_ms: u64, ring: &str) -> (Vec<Value>, Vec<Effect>) {
        let u = Upkeep {
            dead_letter_retention_ms: 1_000,
            budget_ms,
        };
        let mut docs = Vec::new();
        for i in 0..tenants {
            let t = format!("t{i}");
            docs.push((RecordKind::Tenant.kv_key(&t, None), json!({"name": t})));
            let llm = json!({"providers": {"openai": {"api_key": "sk-1"}}});
            let llm = stored(RecordKind::Llm, &t, None, llm);
            docs.push((RecordKind::Llm.kv_key(&t, None), llm));
        }
        let kv = Kv::with(&docs);
        let sealer = Sealer::new(ring).unwrap();
        let mut rng = Counter(9);
        let flow = Flow::new(|co| async move { run(co, u, &sealer, &mut rng).await });
        let (out, seen) = drive(flow, NOW, |e| match e {
            Effect::Ask { .. } => Ok(Outcome::Text("2".into())),
            e => Ok(kv.answer(e).unwrap_or(Outcome::Done)),
        });
        (out.unwrap(), seen)
    }

    #[test]
    fn each_tenants_old_dead_letters_are_expired_and_counted() {
        let (reports, seen) = upkeep(3, 60_000, &"11".repeat(32));
        assert_eq!(reports.len(), 1, "one key: nothing to re-seal");
        let (job, report) = (&reports[0]["upkeep"], &reports[0]["report"]);
        assert_eq!(job, "dead_letters_expired");
        assert_eq!(report["expired"], 6);
        assert_eq!(
            (report["tenants"].clone(), report["complete"].clone()),
            (json!(3), json!(true))
        );
        let asked: Vec<_> = seen
            .iter()
            .filter_map(|e| match e {
                Effect::Ask { name, body, .. } => Some((name.clone(), body.clone())),
                _ => None,
            })
            .collect();
        assert_eq!(
            asked[0],
            (
                "t0".to_string(),
                format!(r#"{{"expire":{{"before_ms":{}}}}}"#, NOW - 1_000)
            )
        );
        assert!(seen
            .iter()
            .any(|e| matches!(e, Effect::Log(l) if l.contains("dead_letters_expired"))));
    }

    #[test]
    fn during_a_rotation_each_run_reseals() {
        let ring = format!("{},{}", "22".repeat(32), "11".repeat(32));
        let (reports, seen) = upkeep(2, 60_000, &ring);
        let reseal = &reports[1];
        assert_eq!(reseal["upkeep"], "secrets_resealed");
        assert_eq!(reseal["report"]["resealed"], 2);
        assert_eq!(reseal["report"]["old_keys_removable"], true);
        let writes = seen
            .iter()
            .filter(|e| matches!(e, Effect::PutConfig { .. }));
        assert_eq!(writes.count(), 2);
    }
}
