//! Load balancing: the order in which a route's targets are tried, by the route's strategy. The
//! first target in the order whose breaker lets a call through is called; the others remain the
//! fallbacks, in the same order. Open breakers are skipped by the limiter's claim, so a weighted
//! draw without replacement spreads traffic by weight among the targets that are healthy.

use super::routing::{Resolved, Target};
use crate::core::llm::config::Strategy;
use std::collections::HashMap;

/// The request's chain: the route's targets in the order its strategy gives.
pub fn arrange(route: Resolved, inputs: &Inputs) -> Vec<Target> {
    let mut slots: Vec<Option<Target>> = route.targets.into_iter().map(Some).collect();
    order(route.strategy, slots.len(), inputs)
        .into_iter()
        .filter_map(|i| slots[i].take())
        .collect()
}

/// The session a sticky draw follows: the `x-gateway-session` header, else the end user the
/// request names. Long ids are cut (only their digest matters).
pub fn session<'a>(header: Option<&'a str>, end_user: Option<&'a str>) -> Option<&'a str> {
    header.filter(|s| !s.is_empty()).or(end_user)
}

/// What a strategy weighs, one entry per target of the route, in the route's order.
#[derive(Debug, Clone, Default)]
pub struct Inputs {
    /// `weighted`: each target's weight (at least 1, checked when the config was saved).
    pub weights: Vec<u32>,
    /// `lowest_cost`: the request's estimated cost at each target (`None`: no price known).
    pub costs: Vec<Option<f64>>,
    /// `lowest_latency`: each target's recent time to first byte (`None`: not measured yet).
    pub latencies: Vec<Option<f64>>,
    /// `weighted`: the draw's seed (random per request, or the session's digest: sticky).
    pub seed: u64,
}

/// The order of the route's `n` targets under `strategy`.
pub fn order(strategy: Strategy, n: usize, inputs: &Inputs) -> Vec<usize> {
    let mut idx: Vec<usize> = (0..n).collect();
    match strategy {
        Strategy::Ordered => idx,
        Strategy::Weighted => weighted(n, &inputs.weights, inputs.seed),
        // Targets without a known figure go last (cost) or first (latency: measured once, then
        // ranked); ties keep the route's order (the sort is stable).
        Strategy::LowestCost => {
            let cost = |i: usize| inputs.costs.get(i).copied().flatten();
            idx.sort_by(|&a, &b| rank(cost(a), cost(b), f64::INFINITY));
            idx
        }
        Strategy::LowestLatency => {
            let lat = |i: usize| inputs.latencies.get(i).copied().flatten();
            idx.sort_by(|&a, &b| rank(lat(a), lat(b), f64::NEG_INFINITY));
            idx
        }
    }
}

fn rank(a: Option<f64>, b: Option<f64>, unknown: f64) -> std::cmp::Ordering {
    a.unwrap_or(unknown).total_cmp(&b.unwrap_or(unknown))
}

/// A draw without replacement: each next target is chosen among the rest with probability
/// proportional to its weight.
fn weighted(n: usize, weights: &[u32], seed: u64) -> Vec<usize> {
    let mut rest: Vec<usize> = (0..n).collect();
    let mut out = Vec::with_capacity(n);
    let mut rng = SplitMix(seed);
    while !rest.is_empty() {
        let w = |i: usize| u64::from(weights.get(i).copied().unwrap_or(1).max(1));
        let total: u64 = rest.iter().map(|&i| w(i)).sum();
        let mut point = rng.next() % total;
        let mut pick = rest.len() - 1;
        for (k, &i) in rest.iter().enumerate() {
            if point < w(i) {
                pick = k;
                break;
            }
            point -= w(i);
        }
        out.push(rest.remove(pick));
    }
    out
}

/// SplitMix64: a small, well-mixed generator for a seeded draw (not for secrets).
struct SplitMix(u64);

impl SplitMix {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
}

/// The seed of a sticky session: the same session always draws the same order (FNV-1a of the
/// tenant and the session id, so two tenants' sessions of the same name are unrelated).
pub fn session_seed(tenant: &str, session: &str) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in tenant.bytes().chain([0]).chain(session.bytes()) {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

/// An observation's weight in the running estimate.
const ALPHA: f64 = 0.3;
/// An estimate halves every minute without news, so a target once slow is tried again.
const HALF_LIFE_MS: f64 = 60_000.0;
/// Targets remembered per isolate; the least recently observed is forgotten first.
const MAX_TARGETS: usize = 4_096;

/// Recent time to first byte per target, kept per isolate (keys name the tenant).
#[derive(Debug, Default)]
pub struct LatencyBook {
    seen: HashMap<String, (f64, u64)>,
}

impl LatencyBook {
    /// The decayed estimate for `key` at `now_ms`, if it was ever observed.
    pub fn estimate(&self, key: &str, now_ms: u64) -> Option<f64> {
        let &(ms, at) = self.seen.get(key)?;
        let age = now_ms.saturating_sub(at) as f64;
        Some(ms * 0.5f64.powf(age / HALF_LIFE_MS))
    }

    /// One attempt at `key` took `ms` to its first byte.
    pub fn observe(&mut self, key: &str, ms: u64, now_ms: u64) {
        let ms = ms as f64;
        let next = match self.estimate(key, now_ms) {
            Some(old) => old + ALPHA * (ms - old),
            None => ms,
        };
        if !self.seen.contains_key(key) && self.seen.len() >= MAX_TARGETS {
            if let Some(oldest) = self
                .seen
                .iter()
                .min_by_key(|(_, &(_, at))| at)
                .map(|(k, _)| k.clone())
            {
                self.seen.remove(&oldest);
            }
        }
        self.seen.insert(key.to_string(), (next, now_ms));
    }
}

/// The book's key of a tenant's target.
pub fn latency_key(tenant: &str, target: &str) -> String {
    format!("{tenant}\n{target}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn draws(weights: &[u32], n: u64) -> Vec<u64> {
        let inputs = Inputs {
            weights: weights.to_vec(),
            ..Default::default()
        };
        let mut firsts = vec![0; weights.len()];
        for seed in 0..n {
            let i = Inputs {
                seed,
                ..inputs.clone()
            };
            firsts[order(Strategy::Weighted, weights.len(), &i)[0]] += 1;
        }
        firsts
    }

    #[test]
    fn weighted_first_choices_follow_the_weights() {
        let n = 100_000;
        let firsts = draws(&[70, 20, 10], n);
        for (got, want) in firsts.iter().zip([0.7, 0.2, 0.1]) {
            let share = *got as f64 / n as f64;
            assert!((share - want).abs() < 0.01, "{firsts:?}");
        }
    }

    #[test]
    fn weighted_fallbacks_follow_the_weights_of_the_rest() {
        // When the first choice is open, the second is drawn by weight among the others: with
        // weights 1:1:2 and target 2 first, targets 0 and 1 come second equally often.
        let inputs = Inputs {
            weights: vec![1, 1, 2],
            ..Default::default()
        };
        let (mut zero, mut one) = (0, 0);
        for seed in 0..50_000 {
            let o = order(
                Strategy::Weighted,
                3,
                &Inputs {
                    seed,
                    ..inputs.clone()
                },
            );
            if o[0] == 2 {
                match o[1] {
                    0 => zero += 1,
                    _ => one += 1,
                }
            }
        }
        let ratio = zero as f64 / one as f64;
        assert!((0.9..1.1).contains(&ratio), "{zero} vs {one}");
    }

    #[test]
    fn every_order_is_a_permutation() {
        for strategy in [
            Strategy::Ordered,
            Strategy::Weighted,
            Strategy::LowestCost,
            Strategy::LowestLatency,
        ] {
            for seed in 0..200 {
                let inputs = Inputs {
                    weights: vec![3, 1, 5, 1],
                    costs: vec![Some(2.0), None, Some(1.0), Some(2.0)],
                    latencies: vec![Some(50.0), Some(10.0), None, Some(10.0)],
                    seed,
                };
                let mut o = order(strategy, 4, &inputs);
                o.sort();
                assert_eq!(o, vec![0, 1, 2, 3], "{strategy:?}");
            }
        }
    }

    #[test]
    fn a_session_draws_the_same_order_every_time() {
        let inputs = |seed| Inputs {
            weights: vec![1, 1, 1, 1, 1],
            seed,
            ..Default::default()
        };
        let a = session_seed("t1", "conversation-42");
        assert_eq!(a, session_seed("t1", "conversation-42"));
        assert_ne!(a, session_seed("t2", "conversation-42"));
        let first = order(Strategy::Weighted, 5, &inputs(a));
        for _ in 0..10 {
            assert_eq!(order(Strategy::Weighted, 5, &inputs(a)), first);
        }
        // Different sessions spread over the targets.
        let mut used = std::collections::BTreeSet::new();
        for s in 0..100 {
            let seed = session_seed("t1", &format!("s{s}"));
            used.insert(order(Strategy::Weighted, 5, &inputs(seed))[0]);
        }
        assert_eq!(used.len(), 5);
    }

    #[test]
    fn lowest_cost_puts_unpriced_targets_last_and_keeps_ties_in_route_order() {
        let inputs = Inputs {
            costs: vec![Some(3.0), None, Some(1.0), Some(3.0)],
            ..Default::default()
        };
        assert_eq!(order(Strategy::LowestCost, 4, &inputs), vec![2, 0, 3, 1]);
    }

    #[test]
    fn lowest_latency_measures_unknown_targets_first_then_ranks() {
        let inputs = Inputs {
            latencies: vec![Some(80.0), Some(20.0), None],
            ..Default::default()
        };
        assert_eq!(order(Strategy::LowestLatency, 3, &inputs), vec![2, 1, 0]);
    }

    #[test]
    fn ordered_keeps_the_route() {
        assert_eq!(
            order(Strategy::Ordered, 3, &Inputs::default()),
            vec![0, 1, 2]
        );
    }

    #[test]
    fn a_slowed_target_loses_its_rank_and_is_retried_once_its_estimate_decays() {
        let mut book = LatencyBook::default();
        let (a, b) = (latency_key("t", "a/m"), latency_key("t", "b/m"));
        book.observe(&a, 20, 0);
        book.observe(&b, 40, 0);
        let rank = |book: &LatencyBook, now| {
            let inputs = Inputs {
                latencies: vec![book.estimate(&a, now), book.estimate(&b, now)],
                ..Default::default()
            };
            order(Strategy::LowestLatency, 2, &inputs)[0]
        };
        assert_eq!(rank(&book, 0), 0);
        // `a` slows down: a few slow answers move traffic to `b`.
        for t in 1..=3 {
            book.observe(&a, 500, t);
        }
        assert_eq!(rank(&book, 3), 1);
        // `b` keeps answering; `a` hears nothing and decays until it is tried again.
        let mut now = 3;
        while rank(&book, now) == 1 {
            now += 1_000;
            book.observe(&b, 40, now);
            assert!(now < 10 * 60_000, "never retried");
        }
        assert!(now > 60_000, "retried too soon, at {now} ms");
    }

    #[test]
    fn the_book_is_bounded() {
        let mut book = LatencyBook::default();
        for i in 0..(MAX_TARGETS + 10) {
            book.observe(&format!("k{i}"), 10, i as u64);
        }
        assert_eq!(book.seen.len(), MAX_TARGETS);
        assert!(book.estimate("k0", 0).is_none(), "the oldest went first");
        assert!(book.estimate(&format!("k{}", MAX_TARGETS + 9), 0).is_some());
    }
}
