//! What a destination record must be to be saved: its URL, secrets, bounds, filter, transform,
//! and its bus's own fields (`webhook::bus::check`). Apart from the record's types, so that the
//! buses can read a destination without the destination reading them back.

use super::destination::{DestinationConfig, EventFilter, Shape, MAX_PREVIOUS_SECRETS};
use crate::core::config::document::{check_http_url, check_len, Check, Secret};
use crate::core::integration::mapping::compile;
use crate::core::integration::transforms;

impl Check for DestinationConfig {
    fn check(&self, p: &mut Vec<String>) {
        check_http_url("url", &self.url, p);
        check_whsec("secret", &self.secret, p);
        if self.previous_secrets.len() > MAX_PREVIOUS_SECRETS {
            p.push(format!(
                "`previous_secrets` holds at most {MAX_PREVIOUS_SECRETS} secrets"
            ));
        }
        for (i, s) in self.previous_secrets.iter().enumerate() {
            check_whsec(&format!("previous_secrets[{i}].secret"), &s.secret, p);
            // In epoch ms it would keep the old secret signing for millennia (no clock here).
            if s.expires_at >= 10_000_000_000 {
                p.push(format!("`previous_secrets[{i}].expires_at` is in Unix seconds; this value is in milliseconds"));
            }
        }
        if let Some(t) = self.timeout_ms {
            if !(100..=30_000).contains(&t) {
                p.push("`timeout_ms` must be between 100 and 30000".into());
            }
        }
        if let Some(r) = self.rate_limit_per_second {
            if !(1..=10_000).contains(&r) {
                p.push("`rate_limit_per_second` must be between 1 and 10000".into());
            }
        }
        if let Some(n) = self.max_attempts {
            if !(1..=50).contains(&n) {
                p.push("`max_attempts` must be between 1 and 50".into());
            }
        }
        if let Some(s) = self.disable_after_seconds {
            if !(1..=30 * 86_400).contains(&s) {
                p.push("`disable_after_seconds` must be between 1 and 2592000".into());
            }
        }
        if let Some(d) = &self.description {
            check_len("description", d, 500, p);
        }
        self.filter.check(p);
        if let Some(s) = &self.transform {
            s.check(p);
        }
        super::bus::check(self, p);
    }
}

fn check_whsec(field: &str, s: &Secret, p: &mut Vec<String>) {
    if let Secret::Plain(s) = s {
        if !s.starts_with("whsec_") || super::standard_secret_bytes(s).is_none() {
            p.push(format!(
                "`{field}` must be `whsec_` followed by base64 (24 to 64 bytes)"
            ));
        }
    }
}

impl Check for EventFilter {
    fn check(&self, p: &mut Vec<String>) {
        if self.types.len() > 100 {
            p.push("`filter.types` lists at most 100 patterns".into());
        }
        for (i, t) in self.types.iter().enumerate() {
            let allowed = |c: char| c.is_ascii_alphanumeric() || "._-/*:".contains(c);
            if t.is_empty() || t.len() > 200 || !t.chars().all(allowed) {
                p.push(format!("`filter.types[{i}]` must be an event type of letters, digits and `._-/:`, with `*` for any run of them"));
            }
        }
        if let Some(c) = &self.condition {
            if let Err(e) = compile(c.trim()) {
                p.push(format!("`filter.condition`: {}", e.0));
            }
        }
    }
}

impl Check for Shape {
    fn check(&self, p: &mut Vec<String>) {
        if self.field_mappings.is_empty() && self.data_path.is_none() {
            p.push("`transform` needs `data_path` or `field_mappings`".into());
        }
        let paths = self.data_path.iter().map(|d| ("data_path".to_string(), d));
        let fields = self
            .field_mappings
            .iter()
            .map(|(k, v)| (format!("field_mappings.{k}"), v));
        for (at, expr) in paths.chain(fields) {
            if let Err(e) = compile(expr.trim()) {
                p.push(format!("`transform.{at}`: {}", e.0));
            }
        }
        for (field, steps) in &self.transforms {
            if !self.field_mappings.contains_key(field) {
                p.push(format!(
                    "`transform.transforms.{field}` has no field mapping"
                ));
            }
            for step in steps {
                if let Err(e) = transforms::check(step) {
                    p.push(format!("`transform.transforms.{field}`: {}", e.0));
                }
            }
        }
    }
}
