//! The built-in detectors: where in a text an email address, a phone number, a payment card
//! number, an IBAN, a US SSN, an IP address or a secret credential is. Candidates are found by
//! linear-time patterns, then checked (Luhn, mod-97, SSN ranges, octets, address syntax), so
//! numbers that merely look alike (an order number, a date, a version) are not taken.
//!
//! Every pattern is bounded (`Matcher::reach`), so that a stream can tell, from a bounded
//! stretch of text, that a match will not change: a run that would otherwise match for ever
//! (an address whose domain never ends) is cut at its bound. A secret is the exception: a token
//! (or a private key's body) longer than its pattern's bound runs on to its end (`Matcher::run`),
//! so no byte of it is left out.

use regex_lite::Regex;
use serde::{Deserialize, Serialize};
use std::ops::Range;

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

/// A set of bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Bytes([u64; 4]);

impl Bytes {
    /// The bytes of `ranges` (inclusive).
    pub fn of(ranges: &[(u8, u8)]) -> Bytes {
        let mut set = [0u64; 4];
        for &(lo, hi) in ranges {
            for b in lo..=hi {
                set[usize::from(b / 64)] |= 1 << (b % 64);
            }
        }
        Bytes(set)
    }

    pub fn has(&self, b: u8) -> bool {
        self.0[usize::from(b / 64)] & (1 << (b % 64)) != 0
    }
}

/// Where a run that begins at a byte of a text ends, and whether more text could make it
/// longer (it reaches the end of the text).
type Run = fn(&str, usize) -> (usize, bool);

/// One pattern of a rule, with what a stream needs to know of its matches.
#[derive(Debug, Clone)]
pub struct Matcher {
    re: Regex,
    /// The finding in a match (a range of it), if the match is one.
    check: fn(&str) -> Option<Range<usize>>,
    /// The longest match, in bytes.
    reach: usize,
    /// The longest text that can begin a match without being one yet: text further back that
    /// holds no match never will, whatever comes after it.
    lead: usize,
    /// The bytes a match may hold (`None`: any): no match spans another byte, so a match
    /// followed by one will not change.
    keeps: Option<Bytes>,
    /// For a match whose text runs on past the pattern's bound (a secret): from a match's end,
    /// where the run ends in `text`, and whether more text could make it longer.
    run: Option<Run>,
    /// Whether `text` can hold a match at all: a cheap test before the pattern.
    needle: Option<fn(&str) -> bool>,
}

/// What `Matcher::search` found in a text, as far as the text decides it.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Searched {
    /// The findings that more text will not change.
    pub found: Vec<Range<usize>>,
    /// A finding whose run reaches the end of the text: it may go on.
    pub open: Option<Range<usize>>,
    /// A match that more text could still change or cancel.
    pub pending: Option<Range<usize>>,
    /// Where the next search starts: a match starting before it is found or pending.
    pub next: usize,
    /// The bytes the pattern was run over (for tests of a stream's cost).
    pub searched: usize,
}

/// A tenant pattern's matches are decided on this much text (a stream holds back as much).
pub const TENANT_REACH: usize = 252;

impl Matcher {
    /// A tenant's pattern (a `regex` rule, or a `deny` rule's terms): any match not empty,
    /// decided within `reach` bytes; `keeps`: the bytes its matches may hold, if known.
    pub fn tenant(re: Regex, reach: usize, keeps: Option<Bytes>) -> Matcher {
        Matcher {
            re,
            check: |m| (!m.is_empty()).then_some(0..m.len()),
            reach,
            lead: reach,
            keeps,
            run: None,
            needle: None,
        }
    }

    /// The findings in `text` from `from` on, and how far they are decided; `whole`: no more
    /// text will come.
    pub fn search(&self, text: &str, from: usize, whole: bool) -> Searched {
        let n = text.len();
        let mut out = Searched::default();
        // Where a match that more text could still make begins, at the earliest.
        let undecided = match whole {
            true => n,
            false => {
                let past_lead = n.saturating_sub(self.lead + 4);
                let broken = self.keeps.and_then(|k| {
                    text.as_bytes()[from..]
                        .iter()
                        .rposition(|&b| !k.has(b))
                        .map(|i| from + i + 1)
                });
                super::floor_char_boundary(text, from.max(past_lead).max(broken.unwrap_or(0)))
            }
        };
        if self.needle.is_some_and(|has| !has(&text[from..])) {
            out.next = undecided;
            return out;
        }
        // Where the search is: the matches before it are settled, as a search of the whole
        // text would have them (it resumes after each, never inside one).
        let mut at = from;
        loop {
            let Some(m) = self.re.find_at(text, at) else {
                out.searched += n - at;
                out.next = undecided.max(at);
                return out;
            };
            out.searched += m.end() - at;
            debug_assert!(
                self.keeps
                    .is_none_or(|k| m.as_str().bytes().all(|b| k.has(b))),
                "a match of `{}` holds a byte its `keeps` lacks",
                self.re
            );
            let settled = whole
                || self.run.is_some()
                || m.start() + self.reach + 4 <= n
                || self
                    .keeps
                    .is_some_and(|k| text.as_bytes()[m.end()..].iter().any(|&b| !k.has(b)));
            if !settled {
                out.pending = Some(m.range());
                out.next = m.start().min(undecided.max(at));
                return out;
            }
            at = match m.is_empty() {
                true if m.end() == n => {
                    out.next = undecided.max(at);
                    return out;
                }
                true => next_char(text, m.end()),
                false => m.end(),
            };
            let Some(f) = (self.check)(m.as_str()) else {
                continue;
            };
            let f = m.start() + f.start..m.start() + f.end;
            let Some(run) = self.run else {
                out.found.push(f);
                continue;
            };
            let (end, more) = run(text, f.end);
            out.searched += end - f.end;
            if more && !whole {
                out.open = Some(f.start..end);
                out.next = end;
                return out;
            }
            out.found.push(f.start..end);
            at = end;
        }
    }

    /// An open finding (`Searched::open`) after more text came: where it ends now, and
    /// whether it may still go on.
    pub fn go_on(&self, text: &str, open: &Range<usize>, whole: bool) -> (usize, bool) {
        match self.run {
            Some(run) => {
                let (end, more) = run(text, open.end);
                (end, more && !whole)
            }
            None => (open.end, false),
        }
    }

    /// The findings in a whole `text`.
    pub fn find(&self, text: &str) -> Vec<Range<usize>> {
        self.search(text, 0, true).found
    }
}

fn next_char(text: &str, i: usize) -> usize {
    text[i..].chars().next().map_or(i + 1, |c| i + c.len_utf8())
}

fn every(m: &str) -> Option<Range<usize>> {
    Some(0..m.len())
}

/// A pattern whose matches are at most `reach` bytes of `keeps`; `check` says which are findings.
fn bounded(
    re: &Regex,
    reach: usize,
    keeps: &[(u8, u8)],
    check: fn(&str) -> Option<Range<usize>>,
) -> Matcher {
    Matcher {
        re: re.clone(),
        check,
        reach,
        lead: reach,
        keeps: Some(Bytes::of(keeps)),
        run: None,
        needle: None,
    }
}

/// A secret: a prefix (which `needle` looks for) and a run, matched by `re` up to `reach` bytes
/// and followed by `run` to its end; `lead`: the longest text that can begin a match.
fn token(re: &Regex, (reach, lead): (usize, usize), needle: fn(&str) -> bool, run: Run) -> Matcher {
    Matcher {
        re: re.clone(),
        check: every,
        reach,
        lead,
        keeps: None,
        run: Some(run),
        needle: Some(needle),
    }
}

/// From `from`, the end of the run of bytes `class` takes, and whether the run reaches the end
/// of `text` (more may follow).
fn run_of(text: &str, from: usize, class: fn(u8) -> bool) -> (usize, bool) {
    match text.as_bytes()[from..].iter().position(|&b| !class(b)) {
        Some(i) => (from + i, false),
        None => (text.len(), true),
    }
}

/// An IBAN in a match: a greedy match that swallowed a following word is shortened group by
/// group until its mod-97 checksum holds.
fn iban(m: &str) -> Option<Range<usize>> {
    let mut end = m.len();
    loop {
        let compact: String = m[..end].chars().filter(|c| *c != ' ').collect();
        if (15..=34).contains(&compact.len()) && mod97(&compact) == 1 {
            return Some(0..end);
        }
        match m[..end].rfind(' ') {
            Some(cut) if cut > 4 => end = cut,
            _ => return None,
        }
    }
}

const AZ09: [(u8, u8); 3] = [(b'A', b'Z'), (b'a', b'z'), (b'0', b'9')];

fn alnum(b: u8) -> bool {
    b.is_ascii_alphanumeric()
}

/// A private key's body, from the end of its `BEGIN` line through its `END` line: base64,
/// white space and the headers of an encrypted key (`Proc-Type: 4,ENCRYPTED`). Without an `END`
/// line the body ends at the first byte that is none of these.
fn pem_body(text: &str, from: usize) -> (usize, bool) {
    const END: &str = "-----END ";
    let end_line = pattern!(r"\A-----END [A-Z ]{0,32}PRIVATE KEY-----");
    let b = text.as_bytes();
    let mut i = from;
    while i < b.len() {
        if text[i..].starts_with(END) || END.starts_with(&text[i..]) {
            if let Some(m) = end_line.find(&text[i..]) {
                return (i + m.end(), false);
            }
            // An `END` line still being written.
            let rest = &text[i..];
            if rest.len() < 60
                && rest
                    .bytes()
                    .skip(END.len())
                    .all(|c| c.is_ascii_uppercase() || c == b' ' || c == b'-')
            {
                return (i, true);
            }
        }
        let body =
            b[i].is_ascii_alphanumeric() || b[i].is_ascii_whitespace() || b"+/=:,-".contains(&b[i]);
        if !body {
            return (i, false);
        }
        i += 1;
    }
    (i, true)
}

impl Detector {
    /// The patterns of a built-in kind (none for `deny` and `regex`, which are the rule's own).
    pub fn matchers(self) -> Vec<Matcher> {
        const PHONE: [(u8, u8); 6] = [
            (b'0', b'9'),
            (b' ', b' '),
            (b'.', b'.'),
            (b'(', b')'),
            (b'+', b'+'),
            (b'-', b'-'),
        ];
        match self {
            Detector::Deny | Detector::Regex => Vec::new(),
            // Local part, `@`, up to four labels and a top-level domain: at most 253 bytes.
            Detector::Email => vec![Matcher {
                needle: Some(|t| t.contains('@')),
                ..bounded(
                    pattern!(r"(?i)\b[a-z0-9._%+-]{1,64}@(?:[a-z0-9-]{1,40}\.){1,4}[a-z]{2,24}\b"),
                    253,
                    &[
                        AZ09[0],
                        AZ09[1],
                        AZ09[2],
                        (b'.', b'.'),
                        (b'_', b'_'),
                        (b'%', b'%'),
                        (b'+', b'+'),
                        (b'-', b'-'),
                        (b'@', b'@'),
                    ],
                    every,
                )
            }],
            Detector::Phone => vec![bounded(
                pattern!(
                    r"\+\d{1,3}[ .-]?(?:\(\d{1,4}\)[ .-]?)?\d(?:[ .-]?\d){5,13}\b|(?:\(\d{3}\) ?|\b\d{3}[ .-])\d{3}[ .-]\d{4}\b"
                ),
                40,
                &PHONE,
                |m| {
                    ((8..=15).contains(&digits(m).len()) || !m.starts_with('+'))
                        .then_some(0..m.len())
                },
            )],
            Detector::Card => vec![bounded(
                pattern!(r"\b\d(?:[ -]?\d){12,18}\b"),
                40,
                &[(b'0', b'9'), (b' ', b' '), (b'-', b'-')],
                |m| {
                    let d = digits(m);
                    (luhn(&d) && d.bytes().any(|b| b != d.as_bytes()[0])).then_some(0..m.len())
                },
            )],
            Detector::Iban => vec![bounded(
                pattern!(r"\b[A-Z]{2}\d{2}(?: ?[A-Z0-9]){11,30}\b"),
                64,
                &[(b'A', b'Z'), (b'0', b'9'), (b' ', b' ')],
                iban,
            )],
            Detector::Ssn => vec![bounded(
                pattern!(r"\b\d{3}-\d{2}-\d{4}\b"),
                11,
                &[(b'0', b'9'), (b'-', b'-')],
                |m| valid_ssn(m).then_some(0..m.len()),
            )],
            Detector::Ip => vec![
                bounded(
                    pattern!(r"\b(?:\d{1,3}\.){3}\d{1,3}\b"),
                    15,
                    &[(b'0', b'9'), (b'.', b'.')],
                    |m| {
                        m.parse::<std::net::Ipv4Addr>()
                            .is_ok()
                            .then_some(0..m.len())
                    },
                ),
                bounded(
                    pattern!(r"(?i)(?:[0-9a-f]{0,4}:){2,7}[0-9a-f]{0,4}"),
                    39,
                    &[(b'0', b'9'), (b'a', b'f'), (b'A', b'F'), (b':', b':')],
                    |m| {
                        (m.matches(':').count() >= 2 && m.parse::<std::net::Ipv6Addr>().is_ok())
                            .then_some(0..m.len())
                    },
                ),
            ],
            Detector::Secret => vec![
                token(
                    pattern!(r"\bsk-(?:ant-|proj-)?[A-Za-z0-9_-]{20,512}"),
                    (520, 27),
                    |t| t.contains("sk-"),
                    |t, i| run_of(t, i, |b| alnum(b) || b == b'_' || b == b'-'),
                ),
                Matcher {
                    needle: Some(|t| t.contains("AKIA") || t.contains("ASIA")),
                    ..bounded(
                        pattern!(r"\b(?:AKIA|ASIA)[0-9A-Z]{16}\b"),
                        20,
                        &[(b'A', b'Z'), (b'0', b'9')],
                        every,
                    )
                },
                token(
                    pattern!(r"(?i:\bbearer\s{1,8})[A-Za-z0-9._~+/=-]{20,512}"),
                    (526, 33),
                    |t| {
                        t.as_bytes()
                            .windows(6)
                            .any(|w| w.eq_ignore_ascii_case(b"bearer"))
                    },
                    |t, i| run_of(t, i, |b| alnum(b) || b"._~+/=-".contains(&b)),
                ),
                token(
                    pattern!(r"\bgh[pousr]_[A-Za-z0-9]{36,255}"),
                    (259, 39),
                    |t| t.contains("gh"),
                    |t, i| run_of(t, i, alnum),
                ),
                token(
                    pattern!(r"\bxox[abprs]-[A-Za-z0-9-]{10,255}"),
                    (260, 14),
                    |t| t.contains("xox"),
                    |t, i| run_of(t, i, |b| alnum(b) || b == b'-'),
                ),
                Matcher {
                    needle: Some(|t| t.contains("AIza")),
                    ..bounded(
                        pattern!(r"\bAIza[0-9A-Za-z_-]{35}\b"),
                        39,
                        &[AZ09[0], AZ09[1], AZ09[2], (b'_', b'_'), (b'-', b'-')],
                        every,
                    )
                },
                token(
                    pattern!(r"-----BEGIN [A-Z ]{0,32}PRIVATE KEY-----"),
                    (59, 58),
                    |t| t.contains("-----BEGIN"),
                    pem_body,
                ),
            ],
        }
    }

    /// Where this built-in kind occurs in a whole `text`, in order (nothing for `deny` and
    /// `regex`).
    pub fn find(self, text: &str) -> Vec<Range<usize>> {
        let mut found: Vec<Range<usize>> =
            self.matchers().iter().flat_map(|m| m.find(text)).collect();
        found.sort_by_key(|r| r.start);
        found
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

/// ISO 7064 mod-97 of an IBAN (its first four characters moved to the end).
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

    #[test]
    fn a_private_key_is_found_through_its_end_line() {
        let key = "-----BEGIN RSA PRIVATE KEY-----\nMIIEowIBAAKCAQEA0Z3VS5JJcds3xfn/ygWyF8PbnGy0AHB7Mhgw\nkTMHxvLHwB8zdp2cUk+Zb5E3Ufi1ZbMA8M0tS2yDt4Ye9e0PJbnX\n-----END RSA PRIVATE KEY-----";
        let text = format!("here it is:\n{key}\nkeep it safe.");
        assert_eq!(found(Detector::Secret, &text), vec![key]);
    }
}
