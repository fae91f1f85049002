//! Guardrails: rules a tenant (or one of its routes) sets on what may pass through the LLM proxy,
//! in the request and in the answer. Each rule names a detector (built in, a deny-list, or the
//! tenant's own linear-time regex) and an action per direction: `block` the request (an error in
//! the client's dialect naming the detector, never the text it found), `redact` the finding
//! (a typed placeholder, the same value getting the same placeholder within a request), or `log`
//! it (counted only). Findings are counted by detector and action for the request's log line.
//! Every text is of a kind (`TextKind`): what people write, thinking, tool-call arguments, tool
//! results, documents; a rule may skip kinds.

pub mod detect;
mod hold;
mod json_text;
pub mod stream;
pub mod walk;

pub use detect::Detector;
use detect::Matcher;
use hold::Hold;
pub use hold::{Scan, HOLD_BACK, HOLD_CAP};
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
    /// What a finding is called in an error.
    what: String,
    matchers: Vec<Matcher>,
    request: Option<Action>,
    response: Option<Action>,
    /// The kinds of text skipped (`TextKind::mask`).
    skip: u8,
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

    /// Whether any rule acts in `dir`.
    pub fn acts_on(&self, dir: Direction) -> bool {
        self.rules.iter().any(|r| r.action(dir).is_some())
    }

    /// Whether a rule reads texts of kind `kind` in `dir`.
    pub fn reads(&self, dir: Direction, kind: TextKind) -> bool {
        self.rules.iter().any(|r| r.acting(dir, kind).is_some())
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
        self.whole(
            Scan {
                dir,
                kind,
                count: true,
            },
            text,
        )
    }

    /// `text` as the client saw it (the same placeholders), for a copy kept elsewhere (a
    /// conversation's history, a stream's closing events); nothing is counted again.
    pub fn as_seen(&mut self, dir: Direction, kind: TextKind, text: &str) -> String {
        let scan = Scan {
            dir,
            kind,
            count: false,
        };
        match self.whole(scan, text) {
            Ok(redacted) => redacted.unwrap_or_else(|| text.to_string()),
            Err(b) => format!("[{}]", b.detector.to_uppercase()),
        }
    }

    /// A whole text read by `scan`: the redacted text if it changed.
    fn whole(&mut self, scan: Scan, text: &str) -> Result<Option<String>, Blocked> {
        if !self.reads(scan.dir, scan.kind) {
            return Ok(None);
        }
        let out = Hold::new(scan).release(self, text, true)?;
        Ok((out != text).then_some(out))
    }

    /// A finding of rule `rule` in a text read by `scan`: counted (unless `scan` counts
    /// nothing), and refused if the rule blocks. The rule's action.
    fn decide(&mut self, scan: Scan, rule: usize) -> Result<Action, Blocked> {
        let r = &self.rules[rule];
        let action = r.acting(scan.dir, scan.kind).unwrap_or(Action::Log);
        if scan.count {
            *self
                .findings
                .entry(r.label.clone())
                .or_default()
                .entry(action.name())
                .or_default() += 1;
        }
        match action {
            Action::Block => Err(Blocked {
                detector: r.label.clone(),
                what: r.what.clone(),
            }),
            action => Ok(action),
        }
    }

    fn count_searched(&self, bytes: usize) {
        self.scanned.set(self.scanned.get() + bytes);
    }

    /// The placeholder of `value` found by `rule`: the same value (its first
    /// `PLACEHOLDER_KEY` bytes: a secret cut at a stream's cap is the same secret) gets the same.
    fn placeholder(&mut self, rule: usize, value: &str) -> String {
        let key = (
            rule,
            value[..floor_char_boundary(value, value.len().min(PLACEHOLDER_KEY))].to_string(),
        );
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

/// How much of a found value says which placeholder it gets.
const PLACEHOLDER_KEY: usize = 512;

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
    let (label, what, matchers) = match r.detector {
        Detector::Deny => {
            let terms: Vec<&str> = r.terms.iter().map(|t| t.trim()).collect();
            let escaped: Vec<String> = terms.iter().map(|t| regex_lite::escape(t)).collect();
            let re = Regex::new(&format!("(?i){}", escaped.join("|"))).ok()?;
            // The bytes of the terms, in either case (the match is ASCII case-insensitive).
            let mut bytes = Vec::new();
            for b in terms.iter().flat_map(|t| t.bytes()) {
                bytes.push((b.to_ascii_lowercase(), b.to_ascii_lowercase()));
                bytes.push((b.to_ascii_uppercase(), b.to_ascii_uppercase()));
            }
            let reach = terms.iter().map(|t| t.len()).max().unwrap_or(0);
            let m = Matcher::tenant(re, reach, Some(detect::Bytes::of(&bytes)));
            ("deny".to_string(), "a denied term".to_string(), vec![m])
        }
        Detector::Regex => {
            let name = r.name.clone()?;
            let re = Regex::new(r.pattern.as_deref()?).ok()?;
            let what = format!("text matching `{name}`");
            (
                name,
                what,
                vec![Matcher::tenant(re, detect::TENANT_REACH, None)],
            )
        }
        builtin => (
            builtin.name().to_string(),
            builtin.describe().to_string(),
            builtin.matchers(),
        ),
    };
    Some(Compiled {
        label,
        what,
        matchers,
        request: r.request,
        response: r.response,
        skip: TextKind::mask(&r.skip),
    })
}

#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_cost;
#[cfg(test)]
mod tests_shapes;
#[cfg(test)]
mod tests_support;
#[cfg(test)]
mod tests_tools;
