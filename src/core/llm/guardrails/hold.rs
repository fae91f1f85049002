//! A text the rules read as it grows (a stream's content, a streamed tool-call argument's
//! value), or whole. Each pattern resumes where the text stopped deciding it, so each byte is
//! searched a bounded number of times; a finding is counted (or blocks) as soon as the text
//! settles it. What may go is released redacted: all but the last `HOLD_BACK` bytes, never part
//! of a finding still being written. Held text never grows past `HOLD_CAP`: past it, a finding
//! still being written (a secret that does not end) goes out as a finding as far as the cut,
//! and the rest of it is dropped as it comes.

use super::{back_out_of, floor_char_boundary, Action, Blocked, Direction, Guard, TextKind};
use std::ops::Range;

/// How much of a text is held back: a built-in finding up to this long is never split, and a
/// tenant pattern is decided within this much text.
pub const HOLD_BACK: usize = 256;

/// The most text held: a finding still being written when the held text reaches this goes out
/// as far as it came.
pub const HOLD_CAP: usize = 4096;

/// One reading of texts by the rules: which rules act (direction, kind of text), and whether
/// findings are counted (not when a copy is rewritten as the client already saw it).
#[derive(Debug, Clone, Copy)]
pub struct Scan {
    pub dir: Direction,
    pub kind: TextKind,
    pub count: bool,
}

/// A finding to redact in `Hold::text`; `sent`: its placeholder went out, the rest is dropped.
#[derive(Debug, Clone)]
struct Finding {
    rule: usize,
    at: Range<usize>,
    sent: bool,
}

/// Where one pattern of an acting rule is in the text.
#[derive(Debug, Clone)]
struct Reader {
    rule: usize,
    matcher: usize,
    /// Where its next search starts.
    next: usize,
    /// A finding that reaches the end of the text and may go on (and whether it was sent).
    open: Option<(Range<usize>, bool)>,
}

pub struct Hold {
    scan: Scan,
    /// The text not yet released, after `ctx` bytes already released (the character before,
    /// for the patterns' look-behind).
    text: String,
    ctx: usize,
    /// `None` until the first release.
    readers: Option<Vec<Reader>>,
    found: Vec<Finding>,
}

impl Hold {
    pub fn new(scan: Scan) -> Hold {
        Hold {
            scan,
            text: String::new(),
            ctx: 0,
            readers: None,
            found: Vec::new(),
        }
    }

    /// How many bytes are held.
    pub fn held(&self) -> usize {
        self.text.len() - self.ctx
    }

    /// Adds `more`, and takes what may go now, redacted: all of it if `all` (the text ends).
    pub fn release(&mut self, guard: &mut Guard, more: &str, all: bool) -> Result<String, Blocked> {
        self.text.push_str(more);
        let scan = self.scan;
        let ctx = self.ctx;
        let mut readers = self.readers.take().unwrap_or_else(|| {
            let mut r = Vec::new();
            for (rule, c) in guard.rules.iter().enumerate() {
                if c.acting(scan.dir, scan.kind).is_some() {
                    r.extend((0..c.matchers.len()).map(|matcher| Reader {
                        rule,
                        matcher,
                        next: ctx,
                        open: None,
                    }));
                }
            }
            r
        });
        let read = self.read(guard, &mut readers, all);
        self.readers = Some(readers);
        let pending = read?;
        self.cut(guard, pending, all)
    }

    /// Runs each reader over what is new; the matches not yet decided.
    fn read(
        &mut self,
        guard: &mut Guard,
        readers: &mut [Reader],
        all: bool,
    ) -> Result<Vec<(usize, Range<usize>)>, Blocked> {
        let mut pending = Vec::new();
        for r in readers.iter_mut() {
            let m = &guard.rules[r.rule].matchers[r.matcher];
            if let Some((open, sent)) = r.open.take() {
                let (end, more) = m.go_on(&self.text, &open, all);
                guard.count_searched(end - open.end);
                if more {
                    r.open = Some((open.start..end, sent));
                    continue;
                }
                if guard.rules[r.rule].acting(self.scan.dir, self.scan.kind) == Some(Action::Redact)
                {
                    self.found.push(Finding {
                        rule: r.rule,
                        at: open.start..end,
                        sent,
                    });
                }
                r.next = end;
            }
            let s = m.search(&self.text, r.next, all);
            guard.count_searched(s.searched);
            for at in s.found {
                if guard.decide(self.scan, r.rule)? == Action::Redact {
                    self.found.push(Finding {
                        rule: r.rule,
                        at,
                        sent: false,
                    });
                }
            }
            if let Some(open) = s.open {
                guard.decide(self.scan, r.rule)?;
                r.open = Some((open, false));
            }
            if let Some(p) = s.pending {
                pending.push((r.rule, p));
            }
            r.next = s.next;
        }
        Ok(pending)
    }

    /// Releases what may go.
    fn cut(
        &mut self,
        guard: &mut Guard,
        pending: Vec<(usize, Range<usize>)>,
        all: bool,
    ) -> Result<String, Blocked> {
        let n = self.text.len();
        let readers = self.readers.as_mut().expect("read before the cut");
        let redacts = |rule: usize| {
            guard.rules[rule].acting(self.scan.dir, self.scan.kind) == Some(Action::Redact)
        };
        let mut cut = n;
        if !all {
            cut = floor_char_boundary(&self.text, n.saturating_sub(HOLD_BACK)).max(self.ctx);
            // Not past where a match could still begin.
            let undecided = readers.iter().filter(|r| r.open.is_none()).map(|r| r.next);
            cut = cut.min(undecided.min().unwrap_or(n)).max(self.ctx);
            let mut spans: Vec<Range<usize>> = self.found.iter().map(|f| f.at.clone()).collect();
            spans.extend(pending.iter().map(|(_, p)| p.clone()));
            spans.extend(
                readers
                    .iter()
                    .filter(|r| redacts(r.rule))
                    .filter_map(|r| r.open.as_ref().map(|(o, _)| o.start..n + 1)),
            );
            let safe = back_out_of(&spans, cut);
            if n - safe > HOLD_CAP {
                cut = self.force(guard, cut, &pending)?;
            } else {
                cut = safe;
            }
        }
        Ok(self.emit(guard, cut))
    }

    /// Past the cap: the findings crossing `cut` go out as far as it, as findings, and the
    /// rest of each is dropped as it comes.
    fn force(
        &mut self,
        guard: &mut Guard,
        cut: usize,
        pending: &[(usize, Range<usize>)],
    ) -> Result<usize, Blocked> {
        let scan = self.scan;
        let readers = self.readers.as_mut().expect("read before the cut");
        for r in readers.iter_mut() {
            r.next = r.next.max(cut);
            let redacts = guard.rules[r.rule].acting(scan.dir, scan.kind) == Some(Action::Redact);
            if let Some((open, sent)) = r.open.as_mut() {
                if open.start < cut {
                    if redacts {
                        self.found.push(Finding {
                            rule: r.rule,
                            at: open.start..cut,
                            sent: *sent,
                        });
                    }
                    open.start = cut;
                    *sent = true;
                }
            }
        }
        let mut rest = Vec::new();
        for f in self
            .found
            .iter_mut()
            .filter(|f| f.at.start < cut && f.at.end > cut)
        {
            rest.push(Finding {
                rule: f.rule,
                at: cut..f.at.end,
                sent: true,
            });
            f.at.end = cut;
        }
        self.found.extend(rest);
        for (rule, p) in pending.iter().filter(|(_, p)| p.start < cut) {
            if guard.decide(scan, *rule)? == Action::Redact {
                self.found.push(Finding {
                    rule: *rule,
                    at: p.start..cut.min(p.end),
                    sent: false,
                });
            }
        }
        Ok(cut)
    }

    /// The text up to `cut`, redacted; it leaves the held text (but for the character before
    /// `cut`, kept for look-behind).
    fn emit(&mut self, guard: &mut Guard, cut: usize) -> String {
        let mut taken: Vec<Finding> = Vec::new();
        self.found.retain(|f| match f.at.start < cut {
            true => {
                taken.push(f.clone());
                false
            }
            false => true,
        });
        taken.sort_by_key(|f| f.at.start);
        let mut out = String::with_capacity(cut - self.ctx);
        let mut at = self.ctx;
        let mut i = 0;
        while i < taken.len() {
            // Overlapping findings (of several rules or patterns) are one region, named by
            // the first rule listed.
            let (start, mut end) = (taken[i].at.start, taken[i].at.end);
            let (mut rule, mut sent) = (taken[i].rule, taken[i].sent);
            i += 1;
            while i < taken.len() && taken[i].at.start < end {
                end = end.max(taken[i].at.end);
                rule = rule.min(taken[i].rule);
                sent &= taken[i].sent;
                i += 1;
            }
            let start = start.max(at);
            out.push_str(&self.text[at..start]);
            if !sent {
                let p = guard.placeholder(rule, &self.text[start..end]);
                out.push_str(&p);
            }
            at = end;
        }
        if at < cut {
            out.push_str(&self.text[at..cut]);
        }
        let keep = match cut {
            0 => 0,
            c => floor_char_boundary(&self.text, c - 1),
        };
        self.text.drain(..keep);
        for f in &mut self.found {
            f.at = f.at.start - keep..f.at.end - keep;
        }
        for r in self.readers.iter_mut().flatten() {
            // A finding a rule only counts may have been cut through.
            r.next = r.next.max(cut) - keep;
            if let Some((o, _)) = r.open.as_mut() {
                *o = o.start.max(cut) - keep..o.end.max(cut) - keep;
            }
        }
        self.ctx = cut - keep;
        out
    }
}

#[cfg(test)]
mod tests {
    use super::super::Rule;
    use super::*;
    use serde_json::json;

    /// Every kind of rule; `strict`: secrets and addresses refused, cards only counted.
    fn guard(strict: bool) -> Guard {
        let (secret, card) = match strict {
            false => ("redact", "redact"),
            true => ("block", "log"),
        };
        let rules = json!([
            {"detector": "email", "response": "redact"},
            {"detector": "phone", "response": "redact"},
            {"detector": "card", "response": card},
            {"detector": "secret", "response": secret},
            {"detector": "ip", "response": "log"},
            {"detector": "deny", "terms": ["Project Zeus"], "response": "redact"},
            {"detector": "regex", "name": "order", "pattern": "ORD-\\d+", "response": "redact"}
        ]);
        Guard::new(&serde_json::from_value::<Vec<Rule>>(rules).unwrap()).unwrap()
    }

    const SCAN: Scan = Scan {
        dir: Direction::Response,
        kind: TextKind::Text,
        count: true,
    };

    #[test]
    fn a_text_streamed_in_any_pieces_reads_as_it_does_whole() {
        // Texts shorter than the cap, of findings and near misses, cut at random: what the
        // client gets is the text redacted whole, and what is held stays within the cap.
        let mut next = crate::core::testing::pseudo_random(0x9999_8888_7777);
        let atoms = [
            "ana.lopez@example.com",
            "a@b",
            ".co",
            " ",
            "\n",
            "é",
            "😀",
            "(415) 555-2671",
            "4111 1111 1111 1111",
            "Bearer ",
            "abcdefghij0123456789",
            "sk-proj-",
            "-----BEGIN RSA PRIVATE KEY-----\nMIIEow",
            "+/=\n",
            "-----END RSA PRIVATE KEY-----",
            "10.0.0.1",
            "project zeus",
            "ORD-",
            "123456",
            "x",
            "DE89 3704 0044 0532 0130 00",
            "ghp_0123456789abcdefghijklmnopqrstuvwxyz",
            "xoxb-1234567890",
            "AKIAIOSFODNN7EXAMPLE",
            "2001:db8::1",
            "078-05-1120",
            ".example",
            "-",
            "_",
        ];
        for i in 0..600 {
            let strict = i % 4 == 3;
            let mut text = String::new();
            for _ in 0..next() % 60 {
                text.push_str(atoms[next() % atoms.len()]);
            }
            let mut g = guard(strict);
            let whole = g.scan(Direction::Response, TextKind::Text, &text);
            let whole = whole.map(|w| w.unwrap_or_else(|| text.clone()));
            let mut g = guard(strict);
            let mut h = Hold::new(SCAN);
            let mut got = String::new();
            let mut rest = text.as_str();
            let got = loop {
                if rest.is_empty() {
                    break h.release(&mut g, "", true).map(|end| got + &end);
                }
                let mut n = (next() % 9 + 1).min(rest.len());
                while !rest.is_char_boundary(n) {
                    n += 1;
                }
                match h.release(&mut g, &rest[..n], false) {
                    Ok(part) => got += &part,
                    Err(b) => break Err(b),
                }
                assert!(h.held() <= HOLD_CAP + 9, "{} held", h.held());
                rest = &rest[n..];
            };
            assert_eq!(got, whole, "{text:?}");
        }
    }
}
