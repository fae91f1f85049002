//! Local allowances leased from the tenant's limiter. With a large limit, the limiter charges a
//! slice of it (1/50) to this isolate for a second, and requests within the slice are admitted here
//! without a Durable Object round trip. The limit's promise holds (leased units were charged, so
//! never more than the limit); unused units are refunded with the next admission. Small limits
//! (where a slice would matter) and requests with per-visitor checks always ask the object.

use crate::core::limits::rate::Decision;
use crate::edge::durable::{Adjust, Admitted, Check};
use std::cell::RefCell;
use std::collections::{HashMap, HashSet};

const LEASE_MS: u64 = 1_000;
const SHARE: u64 = 50;
/// Requests per minute below which every request asks the limiter (exact under any concurrency).
const MIN_RPM: u64 = 1_000;

struct Lease {
    granted_ms: u64,
    keys: Vec<String>,
    windows: Vec<u64>,
    left: Vec<u64>,
    decisions: Vec<Decision>,
    /// Targets whose breaker was closed when the lease was granted.
    closed: HashSet<String>,
}

thread_local! {
    static LEASES: RefCell<HashMap<String, Lease>> = RefCell::new(HashMap::new());
}

/// The extra units to ask for with these checks, if leasing applies to them.
pub fn ask(checks: &[Check]) -> Option<Vec<u64>> {
    let mut extra = Vec::new();
    for c in checks {
        let slice = c.limit / SHARE;
        let ok = match c.key.as_str() {
            "rpm" => c.limit >= MIN_RPM,
            "tpm" => slice >= c.cost.saturating_mul(4),
            _ => false,
        };
        if !ok {
            return None;
        }
        extra.push(slice);
    }
    Some(extra)
}

/// Admits from a live lease whose first target is known closed.
pub fn take(gate: &str, checks: &[Check], first_target: &str, now: u64) -> Option<Admitted> {
    LEASES.with(|l| {
        let mut l = l.borrow_mut();
        let lease = l.get_mut(gate)?;
        let fits = lease.granted_ms + LEASE_MS > now
            && lease.closed.contains(first_target)
            && lease.keys.len() == checks.len()
            && checks
                .iter()
                .zip(&lease.keys)
                .zip(&lease.left)
                .all(|((c, k), left)| &c.key == k && *left >= c.cost);
        if !fits {
            return None;
        }
        for (left, c) in lease.left.iter_mut().zip(checks) {
            *left -= c.cost;
        }
        let decisions = lease
            .decisions
            .iter()
            .zip(&lease.left)
            .map(|(d, left)| Decision {
                remaining: d.remaining + left,
                ..d.clone()
            })
            .collect();
        Some(Admitted {
            allowed: true,
            decisions,
            target: Some(0),
            retry_at_ms: None,
            probe: false,
            leased: None,
            closed: vec![],
        })
    })
}

/// Keeps the lease the limiter just granted; a previous one's leftovers become refunds.
pub fn keep(gate: &str, checks: &[Check], a: &Admitted, names: &[String], now: u64) -> Vec<Adjust> {
    let Some(leased) = &a.leased else {
        return vec![];
    };
    let lease = Lease {
        granted_ms: now,
        keys: checks.iter().map(|c| c.key.clone()).collect(),
        windows: checks.iter().map(|c| c.window_ms).collect(),
        left: leased.clone(),
        decisions: a.decisions.clone(),
        closed: names
            .iter()
            .zip(&a.closed)
            .filter(|(_, c)| **c)
            .map(|(n, _)| n.clone())
            .collect(),
    };
    LEASES
        .with(|l| l.borrow_mut().insert(gate.to_string(), lease))
        .map(refunds)
        .unwrap_or_default()
}

/// The leftovers of this gate's lease if it has run out, as refunds for the next admission.
pub fn expired(gate: &str, now: u64) -> Vec<Adjust> {
    LEASES
        .with(|l| {
            let mut l = l.borrow_mut();
            let over = l.get(gate).is_some_and(|x| x.granted_ms + LEASE_MS <= now);
            over.then(|| l.remove(gate)).flatten()
        })
        .map(refunds)
        .unwrap_or_default()
}

/// A target failed: admit nothing more locally until the limiter has heard of it.
pub fn forget(gate: &str) -> Vec<Adjust> {
    LEASES
        .with(|l| l.borrow_mut().remove(gate))
        .map(refunds)
        .unwrap_or_default()
}

fn refunds(lease: Lease) -> Vec<Adjust> {
    lease
        .keys
        .into_iter()
        .zip(lease.windows)
        .zip(lease.left)
        .filter(|(_, left)| *left > 0)
        .map(|((key, window_ms), left)| Adjust {
            key,
            window_ms,
            charged: left,
            actual: 0,
            at_ms: lease.granted_ms,
        })
        .collect()
}
