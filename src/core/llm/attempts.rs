//! The attempt loop of one LLM request, as a state machine: fed the limiter's admissions and each
//! attempt's outcome, it says what to do next (send to a target, after a wait; claim a later
//! target's breaker; answer an error) and keeps what the breakers must hear. The shell performs
//! each step and feeds back what happened.
//!
//! A failing target falls over to the next of the route's own; a provider's context-length
//! refusal moves on to the next target whose window is larger (context fallbacks included), so
//! the same payload never goes to a window known to be too small.

use super::routing::{self, AfterAttempt, AttemptOutcome, Target};
use crate::core::error::{ApiError, ErrorKind};
use crate::core::limits::limiter::{Admitted, TargetOutcome};

/// What the shell does next.
#[derive(Debug, Clone, PartialEq)]
pub enum AttemptStep {
    /// Send the request to `chain[target]`, after waiting `after_ms`.
    Send { target: usize, after_ms: u64 },
    /// Ask the limiter for the first of `targets` (breaker names) whose breaker lets a call
    /// through (`AdmitCmd::claim` from 0), and feed its answer to `claimed`.
    Claim { targets: Vec<String> },
    /// Answer this error.
    Fail(ApiError),
}

/// One request's attempts over its chain of targets.
#[derive(Debug)]
pub struct Attempts {
    names: Vec<String>,
    retries: Vec<u32>,
    /// Each target's context window, where the catalog knows it.
    windows: Vec<Option<u64>>,
    /// The targets called for size only (a route's context fallbacks).
    context_only: Vec<bool>,
    /// The largest window a provider said the request does not fit: none as small is tried.
    too_small: Option<u64>,
    /// The chain's positions of the targets the pending claim is among.
    claiming: Vec<usize>,
    /// The target being tried, and how many times it has been.
    at: usize,
    tries_here: u32,
    total: u32,
    /// When the earliest open breaker lets a probe through.
    retry_at_ms: Option<u64>,
    last_error: Option<ApiError>,
    /// The target admitted as a half-open probe, whose outcome its breaker waits for.
    probe: Option<usize>,
    outcomes: Vec<TargetOutcome>,
}

impl Attempts {
    /// A request's attempts over `chain`; they begin with the limiter's admission of it (which
    /// claimed a target among `targets()`, or none), fed to `claimed`.
    pub fn new(chain: &[Target]) -> Self {
        Attempts {
            names: chain.iter().map(Target::key).collect(),
            retries: chain.iter().map(|t| t.retries).collect(),
            windows: vec![None; chain.len()],
            context_only: vec![false; chain.len()],
            too_small: None,
            claiming: (0..chain.len()).collect(),
            at: 0,
            tries_here: 0,
            total: 0,
            retry_at_ms: None,
            last_error: None,
            probe: None,
            outcomes: Vec::new(),
        }
    }

    /// The chain's context windows, and which of its targets are context fallbacks; those
    /// are claimed from the start only when the route's own were `sized_out` (too small).
    pub fn with_windows(
        mut self,
        windows: Vec<Option<u64>>,
        context_only: Vec<bool>,
        sized_out: bool,
    ) -> Self {
        let n = self.names.len();
        if windows.len() == n && context_only.len() == n {
            self.claiming = (0..n).filter(|i| sized_out || !context_only[*i]).collect();
            (self.windows, self.context_only) = (windows, context_only);
        }
        self
    }

    /// The breaker names of the targets the first admission claims among, in order.
    pub fn targets(&self) -> Vec<String> {
        self.claiming
            .iter()
            .map(|i| self.names[*i].clone())
            .collect()
    }

    /// A claim among the chain's positions `among`, or the end when there is none.
    fn claim(&mut self, among: Vec<usize>, now: u64) -> AttemptStep {
        if among.is_empty() {
            return AttemptStep::Fail(self.exhausted(now));
        }
        self.claiming = among;
        AttemptStep::Claim {
            targets: self.targets(),
        }
    }

    /// The targets after the current one that may take the request next: the route's own after
    /// a failure, any larger window after a context-length refusal; never a window as small as
    /// one the request did not fit (an unknown window may be larger).
    fn next(&self, for_size: bool) -> Vec<usize> {
        let larger = |i: usize| match (self.windows[i], self.too_small) {
            (Some(w), Some(small)) => w > small,
            _ => true,
        };
        (self.at + 1..self.names.len())
            .filter(|i| (for_size || !self.context_only[*i]) && larger(*i))
            .collect()
    }

    /// The limiter's answer to a claim.
    pub fn claimed(&mut self, a: &Admitted, now: u64) -> AttemptStep {
        self.retry_at_ms = a.retry_at_ms.into_iter().chain(self.retry_at_ms).min();
        let at = a.target.and_then(|i| self.claiming.get(i).copied());
        match at {
            Some(i) => {
                if a.probe {
                    self.probe = Some(i);
                }
                self.at = i;
                self.tries_here = 0;
                self.total += 1;
                AttemptStep::Send {
                    target: i,
                    after_ms: 0,
                }
            }
            _ => AttemptStep::Fail(self.exhausted(now)),
        }
    }

    /// The attempt at the current target failed with `outcome`.
    pub fn failed(&mut self, outcome: AttemptOutcome, error: ApiError, now: u64) -> AttemptStep {
        if outcome != AttemptOutcome::Ours {
            self.record(!outcome.is_failure());
        }
        if outcome == AttemptOutcome::TooLong {
            // The window is too small (or the catalog overstates it): nothing as small again.
            self.too_small = self.too_small.max(self.windows[self.at]);
            self.last_error = Some(error);
            let larger = self.next(true);
            return self.claim(larger, now);
        }
        match routing::after(outcome, self.tries_here, self.retries[self.at]) {
            AfterAttempt::Retry { delay_ms } => {
                self.tries_here += 1;
                self.total += 1;
                AttemptStep::Send {
                    target: self.at,
                    after_ms: delay_ms,
                }
            }
            AfterAttempt::GiveUp => AttemptStep::Fail(error),
            AfterAttempt::NextTarget | AfterAttempt::Done => {
                self.last_error = Some(error);
                let next = self.next(false);
                self.claim(next, now)
            }
        }
    }

    /// The attempt at the current target answered.
    pub fn succeeded(&mut self) {
        self.record(true);
    }

    fn record(&mut self, success: bool) {
        self.outcomes.push(TargetOutcome {
            target: self.names[self.at].clone(),
            success,
            probe: self.probe == Some(self.at),
        });
    }

    /// Attempts made so far.
    pub fn total(&self) -> u32 {
        self.total
    }

    /// A target failed: its breaker must hear it before the answer goes out.
    pub fn any_failure(&self) -> bool {
        self.outcomes.iter().any(|o| !o.success)
    }

    /// Every attempt's outcome, for the breakers (a closed one judges a failure rate, so it
    /// counts successes too), taken once.
    pub fn take_outcomes(&mut self) -> Vec<TargetOutcome> {
        std::mem::take(&mut self.outcomes)
    }

    fn exhausted(&mut self, now: u64) -> ApiError {
        match self.last_error.take() {
            Some(e) if self.total > 1 => ApiError::new(
                e.kind,
                format!("all {} attempts failed; last: {}", self.total, e.message),
            ),
            Some(e) => e,
            None => {
                let wait = self
                    .retry_at_ms
                    .map(|t| t.saturating_sub(now).div_ceil(1000).max(1))
                    .unwrap_or(30);
                ApiError::new(
                    ErrorKind::Unavailable,
                    "every target of this model is unavailable (circuit open); retry later",
                )
                .with_retry_after(wait)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::llm::config::ProviderKind;

    const T0: u64 = 1_700_000_000_000;

    fn chain(retries: &[u32]) -> Vec<Target> {
        retries
            .iter()
            .enumerate()
            .map(|(i, r)| Target {
                provider: format!("p{i}"),
                kind: ProviderKind::OpenaiCompatible,
                model: "m".into(),
                timeout_ms: 1_000,
                retries: *r,
                base_url: None,
                api_version: None,
                bearer: false,
                weight: 1,
                catalog: "m".into(),
                family: ProviderKind::OpenaiCompatible,
                place: Default::default(),
            })
            .collect()
    }

    fn admitted(target: Option<usize>, probe: bool, retry_at_ms: Option<u64>) -> Admitted {
        Admitted {
            allowed: true,
            decisions: vec![],
            target,
            retry_at_ms,
            probe,
            leased: None,
            closed: vec![],
            budgets: vec![],
        }
    }

    fn err(m: &str) -> ApiError {
        ApiError::new(ErrorKind::Upstream, m)
    }

    fn start(chain: &[Target], admitted: &Admitted, now: u64) -> (Attempts, AttemptStep) {
        let mut a = Attempts::new(chain);
        let step = a.claimed(admitted, now);
        (a, step)
    }

    const SEND_0: AttemptStep = AttemptStep::Send {
        target: 0,
        after_ms: 0,
    };

    fn claim(targets: &[&str]) -> AttemptStep {
        AttemptStep::Claim {
            targets: targets.iter().map(|t| t.to_string()).collect(),
        }
    }

    fn too_long() -> ApiError {
        ApiError::new(
            ErrorKind::ContextLength,
            "p/m answered 400: prompt is too long",
        )
    }

    /// A chain of `windows`, the last `fallbacks` of them context fallbacks.
    fn sized(windows: &[Option<u64>], fallbacks: usize, sized_out: bool) -> Attempts {
        let n = windows.len();
        let only = (0..n).map(|i| i >= n - fallbacks).collect();
        Attempts::new(&chain(&vec![2; n])).with_windows(windows.to_vec(), only, sized_out)
    }

    #[test]
    fn a_success_at_the_first_target_is_told_to_its_breaker() {
        let (mut a, step) = start(&chain(&[1]), &admitted(Some(0), false, None), T0);
        assert_eq!(step, SEND_0);
        a.succeeded();
        assert_eq!(a.total(), 1);
        assert!(!a.any_failure());
        let told = a.take_outcomes();
        assert_eq!(
            told.len(),
            1,
            "a closed breaker judges a failure rate: it counts successes"
        );
        assert!(told[0].success && !told[0].probe && told[0].target == "p0/m");
    }

    #[test]
    fn the_gateways_own_failure_ends_the_request_and_its_breaker_hears_nothing() {
        let (mut a, _) = start(&chain(&[1, 0]), &admitted(Some(0), false, None), T0);
        let step = a.failed(
            AttemptOutcome::Ours,
            ApiError::internal("the key could not be opened"),
            T0,
        );
        assert!(matches!(step, AttemptStep::Fail(e) if e.is_internal()));
        assert!(a.take_outcomes().is_empty(), "no outcome for the target");
    }

    #[test]
    fn a_server_error_is_retried_then_falls_over_to_the_next_claimed_target() {
        let (mut a, _) = start(&chain(&[1, 0]), &admitted(Some(0), false, None), T0);
        let step = a.failed(AttemptOutcome::Status(503, None), err("first"), T0);
        assert!(matches!(step, AttemptStep::Send { target: 0, after_ms } if after_ms > 0));
        let step = a.failed(AttemptOutcome::Status(503, None), err("second"), T0);
        assert_eq!(step, claim(&["p1/m"]));
        // The limiter answers a position among the targets it was given.
        assert_eq!(
            a.claimed(&admitted(Some(0), false, None), T0),
            AttemptStep::Send {
                target: 1,
                after_ms: 0
            }
        );
        a.succeeded();
        assert_eq!(a.total(), 3);
        let told: Vec<_> = a
            .take_outcomes()
            .into_iter()
            .map(|o| (o.target, o.success))
            .collect();
        let (p0, p1) = ("p0/m".to_string(), "p1/m".to_string());
        assert_eq!(told, vec![(p0.clone(), false), (p0, false), (p1, true)]);
    }

    #[test]
    fn a_wait_the_upstream_asks_for_is_honoured_when_short() {
        let (mut a, _) = start(&chain(&[2]), &admitted(Some(0), false, None), T0);
        let step = a.failed(AttemptOutcome::Status(429, Some(700)), err("slow down"), T0);
        assert_eq!(
            step,
            AttemptStep::Send {
                target: 0,
                after_ms: 700
            }
        );
        let told = a.take_outcomes();
        assert!(
            told.len() == 1 && told[0].success,
            "a rate limit does not count against the breaker"
        );
    }

    #[test]
    fn a_client_error_is_answered_without_another_target() {
        let (mut a, _) = start(&chain(&[1, 1]), &admitted(Some(0), false, None), T0);
        let step = a.failed(AttemptOutcome::Status(400, None), err("bad tools"), T0);
        assert_eq!(step, AttemptStep::Fail(err("bad tools")));
    }

    #[test]
    fn every_attempt_failing_names_the_count_and_the_last_error() {
        let (mut a, _) = start(&chain(&[0, 0]), &admitted(Some(0), false, None), T0);
        assert_eq!(
            a.failed(AttemptOutcome::Timeout, err("p0 timed out"), T0),
            claim(&["p1/m"])
        );
        a.claimed(&admitted(Some(0), false, None), T0);
        let AttemptStep::Fail(e) = a.failed(AttemptOutcome::Network, err("p1 reset"), T0) else {
            panic!("the chain is exhausted")
        };
        assert_eq!(e.message, "all 2 attempts failed; last: p1 reset");
        assert!(a.any_failure());
    }

    #[test]
    fn open_breakers_everywhere_answer_unavailable_with_the_wait() {
        let (_, step) = start(&chain(&[1]), &admitted(None, false, Some(T0 + 12_500)), T0);
        let AttemptStep::Fail(e) = step else { panic!() };
        assert_eq!(e.kind, ErrorKind::Unavailable);
        assert_eq!(e.retry_after, Some(13));
    }

    #[test]
    fn the_later_targets_breakers_being_open_ends_with_the_last_error() {
        let (mut a, _) = start(&chain(&[0, 0]), &admitted(Some(0), false, None), T0);
        a.failed(AttemptOutcome::Status(502, None), err("bad gateway"), T0);
        let step = a.claimed(&admitted(None, false, Some(T0 + 5_000)), T0);
        assert_eq!(step, AttemptStep::Fail(err("bad gateway")));
    }

    #[test]
    fn a_context_length_refusal_moves_to_a_larger_window_at_once_and_is_no_failure() {
        let mut a = sized(
            &[Some(8_000), Some(8_000), Some(4_000), None, Some(128_000)],
            0,
            false,
        );
        assert_eq!(a.claimed(&admitted(Some(0), false, None), T0), SEND_0);
        // Not retried, whatever `retries` allows; no window as small is claimed.
        let step = a.failed(AttemptOutcome::TooLong, too_long(), T0);
        assert_eq!(
            step,
            claim(&["p3/m", "p4/m"]),
            "unknown windows may be larger"
        );
        // The limiter's answer is among those: its position maps back to the chain.
        assert_eq!(
            a.claimed(&admitted(Some(1), false, None), T0),
            AttemptStep::Send {
                target: 4,
                after_ms: 0
            }
        );
        a.succeeded();
        let told = a.take_outcomes();
        assert!(told.iter().all(|o| o.success), "no breaker hears a failure");
        assert_eq!(a.total(), 2);
    }

    #[test]
    fn a_refusal_with_nothing_larger_left_answers_it() {
        let mut a = sized(&[Some(8_000), Some(4_000)], 0, false);
        a.claimed(&admitted(Some(0), false, None), T0);
        let AttemptStep::Fail(e) = a.failed(AttemptOutcome::TooLong, too_long(), T0) else {
            panic!("nothing larger")
        };
        assert_eq!((e.status(), e.kind), (400, ErrorKind::ContextLength));
        // After a larger window refused too, the smaller one skipped before is not tried.
        let mut a = sized(
            &[Some(8_000), Some(4_000), Some(16_000), Some(12_000)],
            0,
            false,
        );
        a.claimed(&admitted(Some(0), false, None), T0);
        assert_eq!(
            a.failed(AttemptOutcome::TooLong, too_long(), T0),
            claim(&["p2/m", "p3/m"])
        );
        a.claimed(&admitted(Some(0), false, None), T0);
        let AttemptStep::Fail(e) = a.failed(AttemptOutcome::TooLong, too_long(), T0) else {
            panic!("12k is smaller than 16k")
        };
        assert!(
            e.message.starts_with("all 2 attempts failed"),
            "{}",
            e.message
        );
    }

    #[test]
    fn context_fallbacks_serve_size_only() {
        // The route's targets fit: its fallbacks are not claimed first, nor after a failure.
        let mut a = sized(&[Some(8_000), Some(8_000), Some(200_000)], 1, false);
        assert_eq!(a.targets(), vec!["p0/m", "p1/m"]);
        a.claimed(&admitted(Some(0), false, None), T0);
        assert_eq!(
            a.failed(AttemptOutcome::Timeout, err("slow"), T0),
            claim(&["p1/m"])
        );
        a.claimed(&admitted(Some(0), false, None), T0);
        let step = a.failed(AttemptOutcome::Timeout, err("down"), T0);
        assert!(matches!(step, AttemptStep::Fail(e) if e.message.contains("down")));
        // A context-length refusal reaches them.
        let mut a = sized(&[Some(8_000), Some(200_000)], 1, false);
        a.claimed(&admitted(Some(0), false, None), T0);
        assert_eq!(
            a.failed(AttemptOutcome::TooLong, too_long(), T0),
            claim(&["p1/m"])
        );
        // A route's target too small for the request: they stand in from the first claim.
        let a = sized(&[Some(200_000)], 1, true);
        assert_eq!(a.targets(), vec!["p0/m"]);
    }

    #[test]
    fn a_probes_result_reaches_its_breaker_even_on_success() {
        let (mut a, _) = start(&chain(&[0, 0]), &admitted(Some(0), false, None), T0);
        a.failed(AttemptOutcome::Network, err("reset"), T0);
        a.claimed(&admitted(Some(0), true, None), T0);
        a.succeeded();
        let told = a.take_outcomes();
        assert_eq!(told.len(), 2);
        assert!(!told[0].success && !told[0].probe);
        assert!(told[1].success && told[1].probe && told[1].target == "p1/m");
        assert!(a.take_outcomes().is_empty(), "taken once");
    }
}
