//! Guardrails: rules a tenant (or one of its routes) sets on what may pass through the LLM proxy,
//! in the request and in the answer. Each rule names a detector (built in, a deny-list, or the
//! tenant's own linear-time regex) and an action per direction: `block` the request (an error in
//! the client's dialect naming the detector, never the text it found), `redact` the finding
//! (a typed placeholder, the same value getting the same placeholder within a request), or `log`
//! it (counted only). Findings are counted by detector and action for the request's log line.
//! Every text is of a kind (`TextKind`): what people write, thinking, tool-call arguments, tool
//! results, documents; a rule may skip kinds.

pub mod detect;
mod json_text;
pub mod stream;
pub mod walk;

pub use detect::Detector;
use regex_lite::Regex;
use serde::{Deserialize, Serialize};
use std::cell::Cell;
use std::collections::{BTreeMap, HashMap};
use std::ops::Range;

/// A rule as configured.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rule {
    pub detector: Detector,
    /// `deny`: the terms (case-insensitive).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub terms: Vec<String>,
    /// `regex`: its name (in placeholders, errors and log lines) and pattern.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pattern: Option<String>,
    /// What to do with a finding in the client's request, and in the answer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request: Option<Action>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub response: Option<Action>,
    /// The kinds of text this rule leaves alone.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub skip: Vec<TextKind>,
}

/// The kinds of text the guardrails scan: in requests and in answers, JSON and streamed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TextKind {
    /// Message content, system prompts and instructions, refusals.
    Text,
    /// Thinking and reasoning (Anthropic `thinking`, `reasoning_content`, Gemini thoughts,
    /// Responses reasoning items).
    Reasoning,
    /// Tool-call arguments (their values, the arguments staying valid JSON) and tool inputs.
    ToolArguments,
    /// What a tool answered: `tool` messages, `tool_result` blocks, `function_call_output`.
    ToolResults,
    /// Anthropic `document` blocks with a text source (their text, title and context), and
    /// what an answer cites of them.
    Documents,
}

impl TextKind {
    pub const ALL: [TextKind; 5] = [
        TextKind::Text,
        TextKind::Reasoning,
        TextKind::ToolArguments,
        TextKind::ToolResults,
        TextKind::Documents,
    ];

    /// `kinds` as a set of bits.
    fn mask(kinds: &[TextKind]) -> u8 {
        kinds.iter().fold(0, |m, k| m | 1 << *k as u8)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    Block,
    Redact,
    Log,
}

impl Action {
    fn name(self) -> &'static str {
        match self {
            Action::Block => "block",
            Action::Redact => "redact",
            Action::Log => "log",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    Request,
    Response,
}

const MAX_RULES: usize = 32;
const MAX_TERMS: usize = 500;
const MAX_TERM_LEN: usize = 200;
const MAX_PATTERN_LEN: usize = 500;

/// The problems of a rule list at `at` (`guardrails` or `routes.{alias}.guardrails`).
pub fn check_rules(rules: &[Rule], at: &str, p: &mut Vec<String>) {
    if rules.len() > MAX_RULES {
        p.push(format!("`{at}` may hold at most {MAX_RULES} rules"));
    }
    for (i, r) in rules.iter().enumerate() {
        let at = format!("{at}[{i}]");
        if TextKind::mask(&r.skip) == TextKind::mask(&TextKind::ALL) {
            p.push(format!("`{at}.skip` leaves no text for the rule to scan"));
        }
        if r.request.is_none() && r.response.is_none() {
            p.push(format!(
                "`{at}` needs an action for `request`, `response` or both"
            ));
        }
        let (needs_terms, needs_regex) =
            (r.detector == Detector::Deny, r.detector == Detector::Regex);
        if needs_terms == r.terms.is_empty() {
            p.push(match needs_terms {
                true => format!("`{at}.terms` must list the denied terms"),
                false => format!("`{at}.terms` is only for the `deny` detector"),
            });
        }
        let too_long = |t: &String| t.trim().is_empty() || t.len() > MAX_TERM_LEN;
        if r.terms.len() > MAX_TERMS || r.terms.iter().any(too_long) {
            p.push(format!(
                "`{at}.terms`: at most {MAX_TERMS} terms, each 1-{MAX_TERM_LEN} characters"
            ));
        }
        match (needs_regex, r.name.is_some(), r.pattern.is_some()) {
            (true, true, true) | (false, false, false) => {}
            (true, _, _) => p.push(format!(
                "`{at}` needs a `name` and a `pattern` for the `regex` detector"
            )),
            (false, _, _) => p.push(format!(
                "`{at}.name` and `.pattern` are only for the `regex` detector"
            )),
        }
        if let Some(name) = &r.name {
            let ok = (1..=32).contains(&name.len())
                && name
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
            if !ok {
                p.push(format!("`{at}.name` must be 1-32 of a-z, 0-9 and _"));
            }
        }
        if let Some(pattern) = &r.pattern {
            if pattern.len() > MAX_PATTERN_LEN {
                p.push(format!(
                    "`{at}.pattern` may be at most {MAX_PATTERN_LEN} characters"
                ));
            } else if let Err(e) = Regex::new(pattern) {
                p.push(format!("`{at}.pattern` is not a valid regex: {e}"));
            } else if Regex::new(pattern).is_ok_and(|re| re.is_match("")) {
                p.push(format!("`{at}.pattern` matches the empty text"));
            }
        }
    }
}

/// A rule ready to run.
struct Compiled {
    label: String,
    kind: Kind,
    request: Option<Action>,
    response: Option<Action>,
    /// The kinds of text skipped (`TextKind::mask`).
    skip: u8,
}

enum Kind {
    Builtin(Detector),
    Pattern(Regex),
}

impl Compiled {
    fn find(&self, text: &str) -> Vec<Range<usize>> {
        match &self.kind {
            Kind::Builtin(b) => b.find(text),
            Kind::Pattern(re) => detect::spans(re, text, |m| !m.is_empty()),
        }
    }

    fn describe(&self) -> String {
        match &self.kind {
            Kind::Builtin(b) => b.describe().to_string(),
            Kind::Pattern(_) if self.label == "deny" => "a denied term".into(),
            Kind::Pattern(_) => format!("text matching `{}`", self.label),
        }
    }
}

/// Why a text was refused: the rule's detector, and what it found (never the text itself).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Blocked {
    pub detector: String,
    pub what: String,
}

impl Blocked {
    /// What the client reads, in an error or a stream's error event: what was found, never the
    /// text.
    pub fn message(&self, dir: Direction) -> String {
        let whose = match dir {
            Direction::Request => "the request contains",
            Direction::Response => "the answer contained",
        };
        format!(
            "blocked by the gateway's guardrails: {whose} {} (`{}`)",
            self.what, self.detector
        )
    }

    /// The client's error for a refused request or whole answer.
    pub fn error(&self, dir: Direction) -> crate::core::error::ApiError {
        crate::core::error::ApiError::bad_request(self.message(dir))
    }
}

/// The guardrails of one request: its rules compiled, the placeholders handed out so far (the
/// same value gets the same one in the request and in the answer) and the findings counted.
pub struct Guard {
    rules: Vec<Compiled>,
    placeholders: HashMap<(usize, String), String>,
    issued: HashMap<String, u32>,
    findings: BTreeMap<String, BTreeMap<&'static str, u32>>,
    /// How many bytes the rules have searched, each rule counting the bytes it was given: the
    /// work a stream costs, for its tests.
    scanned: Cell<usize>,
}

impl Guard {
    /// `None` when there is nothing to do. The rules were checked when saved; one that no longer
    /// compiles is skipped.
    pub fn new(rules: &[Rule]) -> Option<Guard> {
        let compiled: Vec<Compiled> = rules.iter().filter_map(compile).collect();
        (!compiled.is_empty()).then(|| Guard {
            rules: compiled,
            placeholders: HashMap::new(),
            issued: HashMap::new(),
            findings: BTreeMap::new(),
            scanned: Cell::new(0),
        })
    }

    #[cfg(test)]
    pub(crate) fn scanned(&self) -> usize {
        self.scanned.get()
    }

    /// Where rule `i` finds something in `text`.
    fn find_by(&self, i: usize, text: &str) -> Vec<Range<usize>> {
        self.scanned.set(self.scanned.get() + text.len());
        self.rules[i].find(text)
    }

    /// Whether any rule acts in `dir`.
    pub fn acts_on(&self, dir: Direction) -> bool {
        self.rules.iter().any(|r| r.action(dir).is_some())
    }

    /// Whether a rule may change or refuse a text in `dir` (not only count it).
    pub fn rewrites(&self, dir: Direction) -> bool {
        self.rules
            .iter()
            .any(|r| matches!(r.action(dir), Some(Action::Redact | Action::Block)))
    }

    /// Applies the rules of `dir` for texts of kind `kind` to `text`: the redacted text if any
    /// rule redacted, or why it is blocked. Every finding is counted.
    pub fn scan(
        &mut self,
        dir: Direction,
        kind: TextKind,
        text: &str,
    ) -> Result<Option<String>, Blocked> {
        self.apply(dir, kind, text, true)
    }

    /// `text` as the client saw it (the same placeholders), for a copy kept elsewhere (a
    /// conversation's history, a stream's closing events); nothing is counted again.
    pub fn as_seen(&mut self, dir: Direction, kind: TextKind, text: &str) -> String {
        match self.apply(dir, kind, text, false) {
            Ok(redacted) => redacted.unwrap_or_else(|| text.to_string()),
            Err(b) => format!("[{}]", b.detector.to_uppercase()),
        }
    }

    fn apply(
        &mut self,
        dir: Direction,
        kind: TextKind,
        text: &str,
        count: bool,
    ) -> Result<Option<String>, Blocked> {
        let mut current: Option<String> = None;
        for i in 0..self.rules.len() {
            let Some(action) = self.rules[i].acting(dir, kind) else {
                continue;
            };
            let source = current.as_deref().unwrap_or(text);
            let found = self.find_by(i, source);
            if found.is_empty() {
                continue;
            }
            let label = self.rules[i].label.clone();
            if count {
                *self
                    .findings
                    .entry(label.clone())
                    .or_default()
                    .entry(action.name())
                    .or_default() += found.len() as u32;
            }
            match action {
                Action::Log => {}
                Action::Block => {
                    return Err(Blocked {
                        detector: label,
                        what: self.rules[i].describe(),
                    })
                }
                Action::Redact => {
                    let mut out = String::with_capacity(source.len());
                    let mut at = 0;
                    for r in found {
                        out.push_str(&source[at..r.start]);
                        out.push_str(&self.placeholder(i, &source[r.clone()]));
                        at = r.end;
                    }
                    out.push_str(&source[at..]);
                    current = Some(out);
                }
            }
        }
        Ok(current)
    }

    /// Where the rules acting in `dir` on `kind` find something in `text`.
    pub fn find(&self, dir: Direction, kind: TextKind, text: &str) -> Vec<Range<usize>> {
        (0..self.rules.len())
            .filter(|&i| self.rules[i].acting(dir, kind).is_some())
            .flat_map(|i| self.find_by(i, text))
            .collect()
    }

    /// `cut` moved back (if need be) so that no finding of the rules acting in `dir` on `kind`
    /// spans it.
    pub fn safe_cut(&self, dir: Direction, kind: TextKind, text: &str, cut: usize) -> usize {
        back_out_of(&self.find(dir, kind, text), cut)
    }

    fn placeholder(&mut self, rule: usize, value: &str) -> String {
        let key = (rule, value.to_string());
        if let Some(p) = self.placeholders.get(&key) {
            return p.clone();
        }
        let label = self.rules[rule].label.to_uppercase();
        let n = self.issued.entry(label.clone()).or_default();
        *n += 1;
        let p = format!("[{label}_{n}]");
        self.placeholders.insert(key, p.clone());
        p
    }

    /// The findings so far: detector -> action -> count (`None`: none).
    pub fn findings(&self) -> Option<serde_json::Value> {
        (!self.findings.is_empty()).then(|| serde_json::json!(self.findings))
    }
}

impl Compiled {
    fn action(&self, dir: Direction) -> Option<Action> {
        match dir {
            Direction::Request => self.request,
            Direction::Response => self.response,
        }
    }

    /// Its action on texts of kind `kind` in `dir`, unless it skips them.
    fn acting(&self, dir: Direction, kind: TextKind) -> Option<Action> {
        self.action(dir)
            .filter(|_| self.skip & TextKind::mask(&[kind]) == 0)
    }
}

/// `i` (at most `s.len()`), or the char boundary before it.
fn floor_char_boundary(s: &str, mut i: usize) -> usize {
    while !s.is_char_boundary(i) {
        i -= 1;
    }
    i
}

/// `cut` moved back to the start of any of `spans` that crosses it, until none does.
fn back_out_of(spans: &[Range<usize>], mut cut: usize) -> usize {
    while let Some(r) = spans.iter().find(|r| r.start < cut && r.end > cut) {
        cut = r.start;
    }
    cut
}

fn compile(r: &Rule) -> Option<Compiled> {
    let kind = match r.detector {
        Detector::Deny => {
            let terms: Vec<String> = r
                .terms
                .iter()
                .map(|t| regex_lite::escape(t.trim()))
                .collect();
            Regex::new(&format!("(?i){}", terms.join("|")))
                .ok()
                .map(Kind::Pattern)
        }
        Detector::Regex => Regex::new(r.pattern.as_deref()?).ok().map(Kind::Pattern),
        builtin => Some(Kind::Builtin(builtin)),
    }?;
    let label = match (&kind, r.detector) {
        (Kind::Builtin(b), _) => b.name().to_string(),
        (_, Detector::Deny) => "deny".to_string(),
        _ => r.name.clone()?,
    };
    Some(Compiled {
        label,
        kind,
        request: r.request,
        response: r.response,
        skip: TextKind::mask(&r.skip),
    })
}

#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_shapes;
#[cfg(test)]
mod tests_support;
