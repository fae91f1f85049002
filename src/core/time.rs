//! Civil-date arithmetic for the few places that read or write dates (HTTP-dates, ISO 8601,
//! date transforms), without a date library: Howard Hinnant's days-from-civil algorithms. And
//! the units the API shows times in: Unix seconds, whatever a record keeps.

use crate::core::error::ApiError;

/// Days since 1970-01-01 of a proleptic Gregorian date.
pub fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = if y >= 0 { y } else { y - 399 } / 400;
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146097 + doe - 719468
}

/// (year, month, day) of a day count since 1970-01-01.
pub fn days_to_civil(z: i64) -> (i64, i64, i64) {
    let z = z + 719468;
    let era = if z >= 0 { z } else { z - 146096 } / 146097;
    let doe = z - era * 146097;
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (if m <= 2 { y + 1 } else { y }, m, d)
}

/// `2026-11-29T15:46:18Z` of Unix seconds.
pub fn iso8601(secs: u64) -> String {
    let (y, m, d) = days_to_civil((secs / 86_400) as i64);
    let t = secs % 86_400;
    let (h, mi, s) = (t / 3600, t / 60 % 60, t % 60);
    format!("{y:04}-{m:02}-{d:02}T{h:02}:{mi:02}:{s:02}Z")
}

/// Epoch ms as the API shows a time whose order within a second matters (a delivery attempt, a
/// dead letter): Unix seconds with a millisecond fraction, `1796014360.123`.
pub fn ms_to_s_frac(ms: u64) -> f64 {
    // Correctly rounded, so JSON writes it back with at most three decimals.
    ms as f64 / 1000.0
}

/// `field` of the JSON object `v`, epoch ms, as Unix seconds with a millisecond fraction.
pub fn ms_field_in_seconds(v: &mut serde_json::Value, field: &str) {
    if let Some(ms) = v.get(field).and_then(serde_json::Value::as_u64) {
        v[field] = serde_json::json!(ms_to_s_frac(ms));
    }
}

/// Unix seconds of a stored time written in either unit (records from before the API moved to
/// seconds kept epoch ms). Magnitude tells them apart: seconds stay under 1e11 until the year
/// 5138, and ms are over it for any time after March 1973.
pub fn seconds_of(t: u64) -> u64 {
    if t >= 100_000_000_000 {
        t / 1000
    } else {
        t
    }
}

/// How far ahead a time given to the API may lie: a century.
const MAX_AHEAD_S: u64 = 100 * 366 * 86_400;

/// A time the API takes in Unix seconds (`field`) must lie within a century of `now_s`: one in
/// milliseconds reads as a date tens of thousands of years away (it would never come, or wrap
/// once made ms), and is refused, saying what it looks like.
pub fn check_unix_seconds(field: &str, at_s: u64, now_s: u64) -> Result<(), ApiError> {
    if at_s <= now_s.saturating_add(MAX_AHEAD_S) {
        return Ok(());
    }
    Err(ApiError::validation(format!(
        "`{field}` ({at_s}) is more than 100 years ahead: it looks like milliseconds; give Unix seconds"
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn iso8601_of_unix_seconds() {
        assert_eq!(iso8601(0), "1970-01-01T00:00:00Z");
        assert_eq!(iso8601(1_795_967_178), "2026-11-29T15:46:18Z");
    }

    #[test]
    fn api_times_are_seconds_with_at_most_a_millisecond_fraction() {
        let json = |x: f64| serde_json::to_string(&x).unwrap();
        assert_eq!(json(ms_to_s_frac(1_796_014_360_123)), "1796014360.123");
        assert_eq!(json(ms_to_s_frac(1_796_014_360_001)), "1796014360.001");
        assert_eq!(ms_to_s_frac(1_796_014_360_000), 1_796_014_360.0);
        // Seconds as they are, legacy ms cut to seconds.
        assert_eq!(seconds_of(1_796_014_360), 1_796_014_360);
        assert_eq!(seconds_of(1_796_014_360_999), 1_796_014_360);
        assert_eq!(seconds_of(0), 0);
        assert_eq!(seconds_of(99_999_999_999), 99_999_999_999);
    }

    #[test]
    fn round_trips_and_known_dates() {
        assert_eq!(days_from_civil(1970, 1, 1), 0);
        assert_eq!(days_from_civil(2000, 3, 1), 11017);
        assert_eq!(days_to_civil(19675), (2023, 11, 14));
        for z in (-800_000..800_000).step_by(997) {
            let (y, m, d) = days_to_civil(z);
            assert_eq!(days_from_civil(y, m, d), z);
        }
    }
}
