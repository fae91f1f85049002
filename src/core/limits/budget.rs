//! Spend budgets: USD a tenant or one of its keys may spend per calendar day or month (UTC). A
//! request reserves its estimated cost when it is admitted and is charged its real cost when it
//! settles. A request is admitted while the budget has room left (spent and reserved below the
//! limit), so however many arrive at once, the budget is overshot by at most one request's cost.
//! Money is counted in nano-USD: sums of many small costs stay exact.

use crate::core::time::{days_from_civil, days_to_civil};
use serde::{Deserialize, Serialize};

/// US dollars × 10⁹.
pub type Nanos = u64;

pub fn nanos(usd: f64) -> Nanos {
    if usd.is_finite() && usd > 0.0 {
        (usd * 1e9).round() as Nanos
    } else {
        0
    }
}

pub fn usd(n: Nanos) -> f64 {
    n as f64 / 1e9
}

const DAY_MS: u64 = 86_400_000;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Period {
    Day,
    Month,
}

impl Period {
    pub fn name(self) -> &'static str {
        match self {
            Period::Day => "daily",
            Period::Month => "monthly",
        }
    }

    /// When the period holding `now_ms` began (midnight UTC; the month's first day).
    pub fn start(self, now_ms: u64) -> u64 {
        let day = now_ms / DAY_MS;
        match self {
            Period::Day => day * DAY_MS,
            Period::Month => {
                let (y, m, _) = days_to_civil(day as i64);
                days_from_civil(y, m, 1) as u64 * DAY_MS
            }
        }
    }

    /// When the period holding `now_ms` ends (the next one's start).
    pub fn end(self, now_ms: u64) -> u64 {
        match self {
            Period::Day => self.start(now_ms) + DAY_MS,
            Period::Month => {
                let (y, m, _) = days_to_civil((now_ms / DAY_MS) as i64);
                let (y, m) = if m == 12 { (y + 1, 1) } else { (y, m + 1) };
                days_from_civil(y, m, 1) as u64 * DAY_MS
            }
        }
    }
}

/// A budget as configured (the tenant's `limits.budget`, a key's `budget`): USD per calendar
/// month and/or per day (UTC), and the share of it from which the period's alert is raised.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BudgetSpec {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub monthly_usd: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub daily_usd: Option<f64>,
    /// A share in (0, 1], for example 0.8.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alert_at: Option<f64>,
}

impl BudgetSpec {
    /// What is wrong with it, if anything (`at` names the field).
    pub fn problems(&self, at: &str) -> Vec<String> {
        let mut p = Vec::new();
        let positive = |v: Option<f64>| v.is_none_or(|v| v.is_finite() && v > 0.0);
        if self.monthly_usd.is_none() && self.daily_usd.is_none() {
            p.push(format!("`{at}` needs `monthly_usd` or `daily_usd`"));
        }
        if !positive(self.monthly_usd) || !positive(self.daily_usd) {
            p.push(format!("`{at}` amounts must be positive numbers of USD"));
        }
        if !self.alert_at.is_none_or(|a| a > 0.0 && a <= 1.0) {
            p.push(format!("`{at}.alert_at` must be a share in (0, 1]"));
        }
        p
    }

    /// The checks a request of estimated cost `cost` makes against this payer's budgets.
    pub fn checks(&self, payer: &Payer, cost: Nanos) -> Vec<BudgetCheck> {
        [
            (Period::Month, self.monthly_usd),
            (Period::Day, self.daily_usd),
        ]
        .into_iter()
        .filter_map(|(period, limit)| {
            let limit = nanos(limit?);
            Some(BudgetCheck {
                id: BudgetId {
                    payer: payer.clone(),
                    period,
                },
                limit,
                cost,
                alert_from: self.alert_at.map(|a| (limit as f64 * a).round() as Nanos),
            })
        })
        .collect()
    }
}

impl BudgetSpec {
    /// The budgets' state for a report: per period its limit, what is spent and reserved, what
    /// is left and when it resets (`spends` as the limiter reported them for `ids()`).
    pub fn report(&self, spends: &[Spend], now_ms: u64) -> serde_json::Value {
        let mut out = serde_json::Map::new();
        for (period, limit) in [
            (Period::Month, self.monthly_usd),
            (Period::Day, self.daily_usd),
        ] {
            let Some(limit) = limit else { continue };
            let s = spends.iter().find(|s| s.id.period == period);
            let (spent, reserved) = s.map_or((0, 0), |s| (s.spent, s.reserved));
            let left = nanos(limit).saturating_sub(spent.saturating_add(reserved));
            out.insert(
                period.name().into(),
                serde_json::json!({
                    "limit_usd": limit,
                    "spent_usd": usd(spent),
                    "reserved_usd": usd(reserved),
                    "remaining_usd": usd(left),
                    "resets_at": crate::core::time::iso8601(period.end(now_ms) / 1000),
                }),
            );
        }
        if let Some(a) = self.alert_at {
            out.insert("alert_at".into(), serde_json::json!(a));
        }
        serde_json::Value::Object(out)
    }

    /// The budgets this spec sets for `payer`.
    pub fn ids(&self, payer: &Payer) -> Vec<BudgetId> {
        self.checks(payer, 0).into_iter().map(|c| c.id).collect()
    }
}

/// Who pays: the tenant, or one of its keys (by the id its rotations share).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Payer {
    Tenant,
    Key(String),
}

/// One budget: a payer's spend in one kind of period.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct BudgetId {
    pub payer: Payer,
    pub period: Period,
}

impl BudgetId {
    /// How a client is told which budget refused it.
    pub fn describe(&self) -> String {
        let whose = match &self.payer {
            Payer::Tenant => "the tenant's".to_string(),
            Payer::Key(_) => "this API key's".to_string(),
        };
        format!("{whose} {} budget", self.period.name())
    }
}

/// A request's charge against one budget, asked at admission.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BudgetCheck {
    pub id: BudgetId,
    pub limit: Nanos,
    /// The request's estimated cost, reserved until it settles.
    pub cost: Nanos,
    /// Spend (with reservations) from which the budget's one alert of the period is raised, if any.
    #[serde(default)]
    pub alert_from: Option<Nanos>,
}

/// What the budget said.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BudgetDecision {
    pub id: BudgetId,
    pub allowed: bool,
    pub limit: Nanos,
    /// Spent and reserved, after this request's reservation when it was allowed.
    pub spent: Nanos,
    pub reserved: Nanos,
    pub reset_ms: u64,
    /// This request took the budget past its alert share: the period's one alert.
    #[serde(default)]
    pub alert: bool,
}

/// The real cost of a request that reserved `reserved` at `at_ms`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Charge {
    pub id: BudgetId,
    pub reserved: Nanos,
    pub actual: Nanos,
    pub at_ms: u64,
}

/// A budget's period so far.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Spend {
    pub id: BudgetId,
    pub start_ms: u64,
    pub spent: Nanos,
    pub reserved: Nanos,
    #[serde(default)]
    pub alerted: bool,
}

impl Spend {
    fn new(id: BudgetId, now_ms: u64) -> Self {
        Spend {
            start_ms: id.period.start(now_ms),
            id,
            spent: 0,
            reserved: 0,
            alerted: false,
        }
    }

    fn current(&self, now_ms: u64) -> bool {
        self.start_ms == self.id.period.start(now_ms)
    }
}

/// Every budget of one tenant, in its limiter.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Budgets {
    spends: Vec<Spend>,
}

impl Budgets {
    /// The budget's spend this period (a new period starts from nothing).
    fn now(&self, id: &BudgetId, now_ms: u64) -> Spend {
        self.spends
            .iter()
            .find(|s| &s.id == id && s.current(now_ms))
            .cloned()
            .unwrap_or_else(|| Spend::new(id.clone(), now_ms))
    }

    /// Decides every check without changing anything: the decisions, and the spends to keep if
    /// the request is admitted.
    pub fn trial(&self, checks: &[BudgetCheck], now_ms: u64) -> (Vec<BudgetDecision>, Vec<Spend>) {
        let mut decisions = Vec::new();
        let mut spends = Vec::new();
        for c in checks {
            let mut s = self.now(&c.id, now_ms);
            let allowed = s.spent.saturating_add(s.reserved) < c.limit;
            let mut alert = false;
            if allowed {
                s.reserved = s.reserved.saturating_add(c.cost);
                let committed = s.spent.saturating_add(s.reserved);
                alert = !s.alerted && c.alert_from.is_some_and(|from| committed >= from);
                s.alerted |= alert;
            }
            decisions.push(BudgetDecision {
                id: c.id.clone(),
                allowed,
                limit: c.limit,
                spent: s.spent,
                reserved: s.reserved,
                reset_ms: c.id.period.end(now_ms),
                alert,
            });
            spends.push(s);
        }
        (decisions, spends)
    }

    /// Keeps an admitted request's reservations, and forgets the budgets of past periods.
    pub fn keep(&mut self, spends: Vec<Spend>, now_ms: u64) {
        for s in spends {
            match self.spends.iter_mut().find(|k| k.id == s.id) {
                Some(k) => *k = s,
                None => self.spends.push(s),
            }
        }
        self.spends.retain(|s| s.current(now_ms));
    }

    /// Replaces reservations by real costs. A request is charged to the period it was admitted
    /// in: once that period has ended, its budget is gone and so is the charge.
    pub fn settle(&mut self, charges: &[Charge]) {
        for c in charges {
            let Some(s) = self
                .spends
                .iter_mut()
                .find(|s| s.id == c.id && s.start_ms == s.id.period.start(c.at_ms))
            else {
                continue;
            };
            s.reserved = s.reserved.saturating_sub(c.reserved);
            s.spent = s.spent.saturating_add(c.actual);
        }
    }

    /// Each budget's spend this period, for reports.
    pub fn report(&self, ids: &[BudgetId], now_ms: u64) -> Vec<Spend> {
        ids.iter().map(|id| self.now(id, now_ms)).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// 2026-01-31T23:00:00Z.
    const JAN_31_23H: u64 = 1_769_900_400_000;
    const HOUR: u64 = 3_600_000;

    fn tenant(period: Period) -> BudgetId {
        BudgetId {
            payer: Payer::Tenant,
            period,
        }
    }

    fn check(limit: Nanos, cost: Nanos) -> BudgetCheck {
        BudgetCheck {
            id: tenant(Period::Month),
            limit,
            cost,
            alert_from: None,
        }
    }

    fn admit(b: &mut Budgets, checks: &[BudgetCheck], now: u64) -> Vec<BudgetDecision> {
        let (d, spends) = b.trial(checks, now);
        if d.iter().all(|d| d.allowed) {
            b.keep(spends, now);
        }
        d
    }

    fn charge(cost: Nanos, actual: Nanos, at_ms: u64) -> Charge {
        Charge {
            id: tenant(Period::Month),
            reserved: cost,
            actual,
            at_ms,
        }
    }

    #[test]
    fn periods_are_utc_calendar_days_and_months() {
        assert_eq!(Period::Month.start(JAN_31_23H), 1_767_225_600_000); // 2026-01-01
        assert_eq!(Period::Month.end(JAN_31_23H), JAN_31_23H + HOUR); // 2026-02-01
        assert_eq!(Period::Day.start(JAN_31_23H), JAN_31_23H - 23 * HOUR);
        assert_eq!(Period::Day.end(JAN_31_23H), JAN_31_23H + HOUR);
        // December rolls into the next year; February 2028 has 29 days.
        let dec_15_2026 = days_from_civil(2026, 12, 15) as u64 * DAY_MS;
        assert_eq!(
            Period::Month.end(dec_15_2026),
            days_from_civil(2027, 1, 1) as u64 * DAY_MS
        );
        let feb_2028 = days_from_civil(2028, 2, 10) as u64 * DAY_MS;
        assert_eq!(
            Period::Month.end(feb_2028) - Period::Month.start(feb_2028),
            29 * DAY_MS
        );
    }

    #[test]
    fn concurrent_reservations_overshoot_by_at_most_one_request() {
        let mut b = Budgets::default();
        // Each request may cost up to 30; the budget is 100: four get in (0, 30, 60, 90 < 100).
        let admitted = (0..100)
            .filter(|_| admit(&mut b, &[check(100, 30)], JAN_31_23H)[0].allowed)
            .count();
        assert_eq!(admitted, 4);
        // They each cost what they estimated: 120 spent, one request's estimate over.
        let charges: Vec<_> = (0..4).map(|_| charge(30, 30, JAN_31_23H)).collect();
        b.settle(&charges);
        let s = &b.report(&[tenant(Period::Month)], JAN_31_23H)[0];
        assert_eq!((s.spent, s.reserved), (120, 0));
        assert!(!admit(&mut b, &[check(100, 1)], JAN_31_23H)[0].allowed);
    }

    #[test]
    fn a_correction_frees_what_was_reserved_and_a_refund_frees_it_all() {
        let mut b = Budgets::default();
        admit(&mut b, &[check(100, 60)], JAN_31_23H);
        admit(&mut b, &[check(100, 40)], JAN_31_23H);
        assert!(!admit(&mut b, &[check(100, 5)], JAN_31_23H)[0].allowed);
        // The first cost 10 of its 60; the second failed and costs nothing.
        b.settle(&[charge(60, 10, JAN_31_23H), charge(40, 0, JAN_31_23H)]);
        let d = admit(&mut b, &[check(100, 5)], JAN_31_23H);
        assert!(d[0].allowed);
        assert_eq!((d[0].spent, d[0].reserved), (10, 5));
    }

    #[test]
    fn a_new_month_starts_from_nothing_and_a_late_charge_of_the_old_one_is_dropped() {
        let mut b = Budgets::default();
        admit(&mut b, &[check(100, 50)], JAN_31_23H);
        admit(&mut b, &[check(100, 40)], JAN_31_23H);
        b.settle(&[charge(50, 60, JAN_31_23H)]);
        assert!(!admit(&mut b, &[check(100, 1)], JAN_31_23H + 1)[0].allowed);
        // The second request, admitted in January, settles in February: January's budget is
        // gone, and February's starts from nothing.
        let feb = JAN_31_23H + HOUR;
        let d = admit(&mut b, &[check(100, 20)], feb);
        assert!(d[0].allowed);
        assert_eq!((d[0].spent, d[0].reserved), (0, 20));
        assert_eq!(d[0].reset_ms, Period::Month.end(feb));
        b.settle(&[charge(40, 40, JAN_31_23H)]);
        let s = &b.report(&[tenant(Period::Month)], feb)[0];
        assert_eq!((s.spent, s.reserved), (0, 20));
        assert_eq!(b.spends.len(), 1, "January's spend was forgotten");
    }

    #[test]
    fn the_day_budget_rolls_at_midnight_while_the_month_goes_on() {
        let mut b = Budgets::default();
        let both = |cost| {
            [
                BudgetCheck {
                    id: tenant(Period::Day),
                    limit: 10,
                    cost,
                    alert_from: None,
                },
                check(1_000, cost),
            ]
        };
        let morning = JAN_31_23H - 2 * DAY_MS - 20 * HOUR;
        admit(&mut b, &both(10), morning);
        b.settle(&[
            Charge {
                id: tenant(Period::Day),
                reserved: 10,
                actual: 10,
                at_ms: morning,
            },
            charge(10, 10, morning),
        ]);
        let d = admit(&mut b, &both(1), morning + 1);
        assert_eq!((d[0].allowed, d[1].allowed), (false, true));
        let s = &b.report(&[tenant(Period::Month)], morning + 1)[0];
        assert_eq!(s.reserved, 0, "a refusal by one budget reserves in none");
        let next_morning = morning + DAY_MS;
        let d = admit(&mut b, &both(1), next_morning);
        assert!(d.iter().all(|d| d.allowed));
        assert_eq!((d[0].spent, d[1].spent), (0, 10));
    }

    #[test]
    fn the_alert_is_raised_once_per_period() {
        let mut b = Budgets::default();
        let c = |cost| BudgetCheck {
            alert_from: Some(80),
            ..check(100, cost)
        };
        assert!(!admit(&mut b, &[c(50)], JAN_31_23H)[0].alert);
        assert!(admit(&mut b, &[c(30)], JAN_31_23H)[0].alert);
        assert!(!admit(&mut b, &[c(10)], JAN_31_23H)[0].alert);
        assert!(admit(&mut b, &[c(90)], JAN_31_23H + HOUR)[0].alert);
    }

    #[test]
    fn money_is_counted_in_nanos() {
        assert_eq!(nanos(0.000_000_15), 150);
        assert_eq!(nanos(-1.0), 0);
        assert_eq!(nanos(f64::NAN), 0);
        assert_eq!(usd(nanos(12.5)), 12.5);
    }
}
