//! One Workers Analytics Engine data point per request, for operators' dashboards across tenants:
//! the tenant as the index (sampling keeps each tenant's share fair), what the request was in the
//! blobs, its figures in the doubles. The columns are fixed here, and the README's SQL reads them.

use super::{Counters, Dims};
use crate::core::limits::budget::usd;
use crate::core::platform::DataPoint;

/// The data point of a request of `tenant`: its dimensions, its status and latency, and what its
/// answer used (`counters`: tokens, cost, cache, the tokens' classes).
pub fn point(
    tenant: &str,
    dims: &Dims,
    status: u16,
    latency_ms: u64,
    used: &Counters,
) -> DataPoint {
    let text = |v: &Option<String>| v.clone().unwrap_or_default();
    DataPoint {
        index: tenant.to_string(),
        blobs: [
            dims.family.name().to_string(),
            format!("{}xx", status / 100),
            text(&dims.provider),
            text(&dims.model),
            text(&dims.key),
            text(&dims.subject),
        ],
        doubles: [
            f64::from(status),
            latency_ms as f64,
            used.input_tokens as f64,
            used.output_tokens as f64,
            usd(used.cost_nanos),
            used.cached.min(1) as f64,
            used.fresh_input_tokens as f64,
            used.cache_read_tokens as f64,
            used.cache_write_tokens as f64,
            used.reasoning_tokens as f64,
            used.media_tokens as f64,
        ],
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::usage::Family;

    #[test]
    fn a_point_has_the_tenant_as_index_and_fixed_columns() {
        let dims = Dims {
            hour: 0,
            family: Family::Llm,
            key: Some("key_1".into()),
            provider: Some("oai".into()),
            model: Some("gpt-4o".into()),
            subject: None,
        };
        let used = Counters {
            input_tokens: 13_050,
            output_tokens: 400,
            cost_nanos: 24_900_000,
            fresh_input_tokens: 50,
            cache_read_tokens: 10_000,
            cache_write_tokens: 3_000,
            reasoning_tokens: 120,
            media_tokens: 7,
            ..Counters::default()
        };
        let p = point("acme", &dims, 200, 37, &used);
        assert_eq!(p.index, "acme");
        assert_eq!(
            p.blobs,
            ["llm", "2xx", "oai", "gpt-4o", "key_1", ""].map(String::from)
        );
        // The classes come after the columns a dashboard had before them.
        assert_eq!(
            p.doubles,
            [200.0, 37.0, 13_050.0, 400.0, 0.0249, 0.0, 50.0, 10_000.0, 3_000.0, 120.0, 7.0]
        );
    }
}
