//! The built-in detectors: where in a text an email address, a phone number, a payment card
//! number, an IBAN, a US SSN, an IP address or a secret credential is. Candidates are found by
//! linear-time patterns, then checked (Luhn, mod-97, SSN ranges, octets, address syntax), so
//! numbers that merely look alike (an order number, a date, a version) are not taken.

use regex_lite::Regex;
use serde::{Deserialize, Serialize};
use std::ops::Range;
use std::sync::OnceLock;

/// What a rule looks for: a built-in kind of sensitive text, the tenant's denied terms, or the
/// tenant's own pattern (those two are compiled from the rule, `super::compile`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Detector {
    Email,
    Phone,
    Card,
    Iban,
    Ssn,
    Ip,
    Secret,
    Deny,
    Regex,
}

macro_rules! pattern {
    ($re:expr) => {{
        static CELL: OnceLock<Regex> = OnceLock::new();
        CELL.get_or_init(|| Regex::new($re).expect("a built-in pattern compiles"))
    }};
}

impl Detector {
    /// Where this built-in kind occurs in `text`, in order, not overlapping (nothing for `deny`
    /// and `regex`, which are the rule's own patterns).
    pub fn find(self, text: &str) -> Vec<Range<usize>> {
        match self {
            Detector::Deny | Detector::Regex => Vec::new(),
            Detector::Email => spans(
                pattern!(r"(?i)\b[a-z0-9._%+-]+@[a-z0-9-]+(?:\.[a-z0-9-]+)*\.[a-z]{2,}\b"),
                text,
                |_| true,
            ),
            Detector::Phone => spans(
                pattern!(
                    r"\+\d{1,3}[ .-]?(?:\(\d{1,4}\)[ .-]?)?\d(?:[ .-]?\d){5,13}\b|(?:\(\d{3}\) ?|\b\d{3}[ .-])\d{3}[ .-]\d{4}\b"
                ),
                text,
                |m| (8..=15).contains(&digits(m).len()) || !m.starts_with('+'),
            ),
            Detector::Card => spans(pattern!(r"\b\d(?:[ -]?\d){12,18}\b"), text, |m| {
                let d = digits(m);
                luhn(&d) && d.bytes().any(|b| b != d.as_bytes()[0])
            }),
            Detector::Iban => ibans(text),
            Detector::Ssn => spans(pattern!(r"\b\d{3}-\d{2}-\d{4}\b"), text, valid_ssn),
            Detector::Ip => {
                let mut found = spans(pattern!(r"\b(?:\d{1,3}\.){3}\d{1,3}\b"), text, |m| {
                    m.parse::<std::net::Ipv4Addr>().is_ok()
                });
                found.extend(spans(
                    pattern!(r"(?i)(?:[0-9a-f]{0,4}:){2,7}[0-9a-f]{0,4}"),
                    text,
                    |m| m.matches(':').count() >= 2 && m.parse::<std::net::Ipv6Addr>().is_ok(),
                ));
                found.sort_by_key(|r| r.start);
                found
            }
            Detector::Secret => spans(
                pattern!(
                    r"\bsk-(?:ant-|proj-)?[A-Za-z0-9_-]{20,}|\b(?:AKIA|ASIA)[0-9A-Z]{16}\b|(?i:\bbearer\s+)[A-Za-z0-9._~+/=-]{20,}|\bgh[pousr]_[A-Za-z0-9]{36,}\b|\bxox[abprs]-[A-Za-z0-9-]{10,}|\bAIza[0-9A-Za-z_-]{35}\b|-----BEGIN [A-Z ]*PRIVATE KEY-----"
                ),
                text,
                |_| true,
            ),
        }
    }

    /// The name used in config, errors and log lines.
    pub fn name(self) -> &'static str {
        match self {
            Detector::Email => "email",
            Detector::Phone => "phone",
            Detector::Card => "card",
            Detector::Iban => "iban",
            Detector::Ssn => "ssn",
            Detector::Ip => "ip",
            Detector::Secret => "secret",
            Detector::Deny => "deny",
            Detector::Regex => "regex",
        }
    }

    /// What a finding is called in a placeholder and an error.
    pub fn describe(self) -> &'static str {
        match self {
            Detector::Email => "an email address",
            Detector::Phone => "a phone number",
            Detector::Card => "a payment card number",
            Detector::Iban => "an IBAN",
            Detector::Ssn => "a US social security number",
            Detector::Ip => "an IP address",
            Detector::Secret => "a secret credential",
            Detector::Deny => "a denied term",
            Detector::Regex => "text matching a pattern",
        }
    }
}

/// The matches of `re` in `text` that `valid` accepts.
pub fn spans(re: &Regex, text: &str, valid: impl Fn(&str) -> bool) -> Vec<Range<usize>> {
    re.find_iter(text)
        .filter(|m| valid(m.as_str()))
        .map(|m| m.range())
        .collect()
}

fn digits(s: &str) -> String {
    s.chars().filter(char::is_ascii_digit).collect()
}

/// The Luhn checksum of a card number's digits.
pub fn luhn(digits: &str) -> bool {
    let mut sum = 0;
    for (i, b) in digits.bytes().rev().enumerate() {
        let mut d = u32::from(b - b'0');
        if i % 2 == 1 {
            d *= 2;
            if d > 9 {
                d -= 9;
            }
        }
        sum += d;
    }
    !digits.is_empty() && sum % 10 == 0
}

fn valid_ssn(m: &str) -> bool {
    let (area, rest) = m.split_at(3);
    let (group, serial) = (&rest[1..3], &rest[4..]);
    area != "000" && area != "666" && !area.starts_with('9') && group != "00" && serial != "0000"
}

/// IBANs: a country code, two check digits and 11-30 letters or digits, grouped by spaces or
/// not, whose ISO 7064 mod-97 checksum holds. A greedy candidate that swallowed a following word
/// is shortened group by group until it holds.
fn ibans(text: &str) -> Vec<Range<usize>> {
    let re = pattern!(r"\b[A-Z]{2}\d{2}(?: ?[A-Z0-9]){11,30}\b");
    let mut out = Vec::new();
    for m in re.find_iter(text) {
        let mut end = m.end();
        loop {
            let candidate = &text[m.start()..end];
            let compact: String = candidate.chars().filter(|c| *c != ' ').collect();
            if (15..=34).contains(&compact.len()) && mod97(&compact) == 1 {
                out.push(m.start()..end);
                break;
            }
            match candidate.rfind(' ') {
                Some(cut) if cut > 4 => end = m.start() + cut,
                _ => break,
            }
        }
    }
    out
}

fn mod97(iban: &str) -> u32 {
    let (head, tail) = iban.split_at(4);
    let mut rem: u32 = 0;
    for c in tail.chars().chain(head.chars()) {
        let v = match c {
            '0'..='9' => c as u32 - '0' as u32,
            'A'..='Z' => c as u32 - 'A' as u32 + 10,
            _ => return 0,
        };
        rem = if v >= 10 {
            (rem * 100 + v) % 97
        } else {
            (rem * 10 + v) % 97
        };
    }
    rem
}

#[cfg(test)]
mod tests {
    use super::*;

    fn found(kind: Detector, text: &str) -> Vec<&str> {
        kind.find(text).into_iter().map(|r| &text[r]).collect()
    }

    #[test]
    fn emails() {
        assert_eq!(
            found(
                Detector::Email,
                "write to Jane.Doe+tag@mail.example.co.uk, not to @home"
            ),
            vec!["Jane.Doe+tag@mail.example.co.uk"]
        );
        assert!(found(Detector::Email, "user@localhost and a@b.c").is_empty());
    }

    #[test]
    fn phone_numbers_but_not_order_numbers_or_dates() {
        assert_eq!(
            found(
                Detector::Phone,
                "call +1 415 555 2671, (415) 555-2671, 415.555.2671 or +442071838750"
            ),
            vec![
                "+1 415 555 2671",
                "(415) 555-2671",
                "415.555.2671",
                "+442071838750"
            ]
        );
        for not in [
            "order 4155552671 shipped",
            "order #2023-1115-0042",
            "on 2024-11-29 at 10:30",
            "tracking 1Z999AA10123456784",
            "version 1.2.3",
        ] {
            assert!(found(Detector::Phone, not).is_empty(), "{not}");
        }
    }

    #[test]
    fn card_numbers_pass_luhn() {
        assert_eq!(
            found(
                Detector::Card,
                "visa 4111 1111 1111 1111, amex 378282246310005, mc 5555-5555-5555-4444"
            ),
            vec![
                "4111 1111 1111 1111",
                "378282246310005",
                "5555-5555-5555-4444"
            ]
        );
        for not in [
            "4111 1111 1111 1112",
            "order 1234567890123456",
            "0000000000000000",
            "phone 4155552671",
        ] {
            assert!(found(Detector::Card, not).is_empty(), "{not}");
        }
        assert!(luhn("79927398713") && !luhn("79927398710"));
    }

    #[test]
    fn ibans_pass_mod_97() {
        assert_eq!(
            found(
                Detector::Iban,
                "pay DE89 3704 0044 0532 0130 00 or GB82WEST12345698765432 NOW"
            ),
            vec!["DE89 3704 0044 0532 0130 00", "GB82WEST12345698765432"]
        );
        assert!(found(Detector::Iban, "DE89 3704 0044 0532 0130 01").is_empty());
        assert!(found(Detector::Iban, "SKU AB12CDEFGHIJKLMNOP").is_empty());
    }

    #[test]
    fn ssns_in_valid_ranges() {
        assert_eq!(
            found(Detector::Ssn, "ssn 123-45-6789, 078-05-1120"),
            vec!["123-45-6789", "078-05-1120"]
        );
        for not in [
            "000-12-3456",
            "666-12-3456",
            "912-34-5678",
            "123-00-4567",
            "123-45-0000",
        ] {
            assert!(found(Detector::Ssn, not).is_empty(), "{not}");
        }
    }

    #[test]
    fn ip_addresses() {
        assert_eq!(
            found(
                Detector::Ip,
                "from 203.0.113.7 and 2001:db8::8a2e:370:7334, not 999.1.1.1"
            ),
            vec!["203.0.113.7", "2001:db8::8a2e:370:7334"]
        );
        assert!(found(Detector::Ip, "at 10:30:45 on 1.2.3").is_empty());
    }

    #[test]
    fn secrets() {
        let text = "keys sk-proj-abcdefghijklmnopqrstuvwx AKIAIOSFODNN7EXAMPLE Authorization: Bearer eyJhbGciOiJIUzI1NiJ9.payload ghp_0123456789abcdefghijklmnopqrstuvwxyz";
        assert_eq!(
            found(Detector::Secret, text),
            vec![
                "sk-proj-abcdefghijklmnopqrstuvwx",
                "AKIAIOSFODNN7EXAMPLE",
                "Bearer eyJhbGciOiJIUzI1NiJ9.payload",
                "ghp_0123456789abcdefghijklmnopqrstuvwxyz"
            ]
        );
        assert!(found(Detector::Secret, "the sk-short key and a bearer of news").is_empty());
    }
}
