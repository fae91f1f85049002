//! The cron trigger's run: `core::upkeep`'s jobs, performed like any flow.

use super::effects::{drive, Platform};
use super::platform::Csprng;
use super::store;
use crate::core::flow::Flow;
use crate::core::upkeep::{self, Upkeep, DEFAULT_DEAD_LETTER_RETENTION_S};
use worker::Env;

/// A run stops starting new work after this long (the trigger fires every five minutes).
const BUDGET_MS: u64 = 20_000;

pub async fn run(env: Env) {
    let retention_s = env
        .var("DEAD_LETTER_RETENTION_SECONDS")
        .ok()
        .and_then(|v| v.to_string().parse().ok())
        .unwrap_or(DEFAULT_DEAD_LETTER_RETENTION_S);
    let u = Upkeep {
        dead_letter_retention_ms: retention_s * 1000,
        budget_ms: BUDGET_MS,
    };
    let p = Platform {
        env: &env,
        ctx: None,
    };
    let sealer = match store::sealer(&env) {
        Ok(s) => s,
        Err(e) => {
            worker::console_error!("{}", serde_json::json!({"upkeep_failed": e.logged()}));
            return;
        }
    };
    let mut rng = Csprng;
    let flow = Flow::new(|co| upkeep::run(co, u, &sealer, &mut rng));
    if let Err(e) = drive(p, flow).await {
        worker::console_error!("{}", serde_json::json!({"upkeep_failed": e.logged()}));
    }
}
