//! The attempt loop of one LLM request, as a state machine: fed the limiter's admissions and each
//! attempt's outcome, it says what to do next (send to a target, after a wait; claim a later
//! target's breaker; answer an error) and keeps what the breakers must hear. The shell performs
//! each step and feeds back what happened.

use super::routing::{self, AfterAttempt, AttemptOutcome, Target};
use crate::core::error::{ApiError, ErrorKind};
use crate::core::limits::limiter::{Admitted, TargetOutcome};

/// What the shell does next.
#[derive(Debug, Clone, PartialEq)]
pub enum AttemptStep {
    /// Send the request to `chain[target]`, after waiting `after_ms`.
    Send { target: usize, after_ms: u64 },
    /// Ask the limiter for the first target from `from` on whose breaker lets a call through
    /// (`AdmitCmd::claim`), and feed its answer to `claimed`.
    Claim { from: usize },
    /// Answer this error.
    Fail(ApiError),
}

/// One request's attempts over its chain of targets.
#[derive(Debug)]
pub struct Attempts {
    names: Vec<String>,
    retries: Vec<u32>,
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
    /// claimed a target, or none), fed to `claimed`.
    pub fn new(chain: &[Target]) -> Self {
        Attempts {
            names: chain.iter().map(Target::key).collect(),
            retries: chain.iter().map(|t| t.retries).collect(),
            at: 0,
            tries_here: 0,
            total: 0,
            retry_at_ms: None,
            last_error: None,
            probe: None,
            outcomes: Vec::new(),
        }
    }

    /// The breaker names of the chain, in order.
    pub fn targets(&self) -> &[String] {
        &self.names
    }

    /// The limiter's answer to a claim.
    pub fn claimed(&mut self, a: &Admitted, now: u64) -> AttemptStep {
        self.retry_at_ms = a.retry_at_ms.into_iter().chain(self.retry_at_ms).min();
        match a.target {
            Some(i) if i < self.names.len() => {
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
                if self.at + 1 < self.names.len() {
                    AttemptStep::Claim { from: self.at + 1 }
                } else {
                    AttemptStep::Fail(self.exhausted(now))
                }
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
        assert_eq!(step, AttemptStep::Claim { from: 1 });
        assert_eq!(
            a.claimed(&admitted(Some(1), false, None), T0),
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
            AttemptStep::Claim { from: 1 }
        );
        a.claimed(&admitted(Some(1), false, None), T0);
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
    fn a_probes_result_reaches_its_breaker_even_on_success() {
        let (mut a, _) = start(&chain(&[0, 0]), &admitted(Some(0), false, None), T0);
        a.failed(AttemptOutcome::Network, err("reset"), T0);
        a.claimed(&admitted(Some(1), true, None), T0);
        a.succeeded();
        let told = a.take_outcomes();
        assert_eq!(told.len(), 2);
        assert!(!told[0].success && !told[0].probe);
        assert!(told[1].success && told[1].probe && told[1].target == "p1/m");
        assert!(a.take_outcomes().is_empty(), "taken once");
    }
}
