//! The scheduled upkeep (the cron trigger): jobs that keep stored state bounded, each idempotent,
//! bounded in time (a run that stops early leaves the rest to the next one) and logged with what
//! it did. Today: dead letters past their retention are forgotten, tenant by tenant.

use crate::core::config::RecordKind;
use crate::core::error::ApiError;
use crate::core::flow::Co;
use crate::core::jobs::ExpireLetters;
use crate::core::objects::protocol::DeadLetters;
use crate::core::objects::Object;
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

/// Runs every job; returns their report (also logged, one line per job).
pub async fn run(co: Co, u: Upkeep) -> Result<Value, ApiError> {
    let report = expire_dead_letters(&co, u).await?;
    co.log(report.clone()).await;
    Ok(report)
}

async fn expire_dead_letters(co: &Co, u: Upkeep) -> Result<Value, ApiError> {
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
        "upkeep": "dead_letters_expired",
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

    const NOW: u64 = 1_795_967_178_000;

    fn upkeep(tenants: usize, budget_ms: u64) -> (Value, Vec<Effect>) {
        let u = Upkeep {
            dead_letter_retention_ms: 1_000,
            budget_ms,
        };
        let names: Vec<_> = (0..tenants)
            .map(|i| RecordKind::Tenant.kv_key(&format!("t{i}"), None))
            .collect();
        let flow = Flow::new(|co| run(co, u));
        let (out, seen) = drive(flow, NOW, |e| match e {
            Effect::ListConfig(_) => Ok(Outcome::Keys(names.clone())),
            Effect::Ask { .. } => Ok(Outcome::Text("2".into())),
            _ => Ok(Outcome::Done),
        });
        (out.unwrap(), seen)
    }

    #[test]
    fn each_tenants_old_dead_letters_are_expired_and_counted() {
        let (report, seen) = upkeep(3, 60_000);
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
}
