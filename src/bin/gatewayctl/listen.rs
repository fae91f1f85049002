//! `gatewayctl listen`: a local receiver for the gateway's webhook deliveries, as `stripe listen`
//! is for Stripe's. Each delivery's Standard Webhooks signature is checked with the destination's
//! secret(s) by the gateway's own verifier and the event printed; paths under `/telegram`,
//! `/slack`, `/whatsapp` and `/twilio` stand in for those providers' APIs (listen::stand_in), so a
//! channel whose `base_url` points here sends without leaving the machine. One thread per
//! connection (at most [`MAX_CONNECTIONS`] at once), one request per connection, one deadline
//! for the whole request, every line flushed as it is printed. Only the gateway and curl are
//! answered: a request a web page could send (it carries `Origin` or `Sec-Fetch-Site`, or a Host
//! other than this listener's) gets a 403, so a page open in a browser cannot post deliveries or
//! forge a stand-in's line.

mod request;
mod stand_in;

use crate::config;
use crate::escape::{json_text, line};
use edge_gateway::core::webhook::verify::{standard, SignedRequest, VerifyError};
use request::{read_body, read_head, response, Head, Refused, Timed, BODY_MAX};
use serde_json::{json, Value};
use std::io::{BufReader, Write};
use std::net::{IpAddr, Shutdown, SocketAddr, TcpListener, TcpStream, ToSocketAddrs};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// How far a delivery's signed timestamp may be from now, as the Standard Webhooks libraries allow.
const TOLERANCE_S: u64 = 300;
/// How long a connection may take to send its whole request, head and body.
const REQUEST_DEADLINE: Duration = Duration::from_secs(10);
/// How long writing an answer may take.
const WRITE_TIMEOUT: Duration = Duration::from_secs(10);
/// Connections served at once; one more is answered 503 and closed at once, so a flood of
/// connections costs a bounded number of threads.
const MAX_CONNECTIONS: usize = 64;

#[derive(clap::Args)]
pub struct ListenArgs {
    /// The port to listen on; 0 picks a free one (the first line prints it).
    #[arg(long, default_value_t = 9999)]
    port: u16,
    /// The address to listen on; one other than this machine needs --insecure.
    #[arg(long, default_value = "127.0.0.1")]
    host: String,
    /// The destination's signing secret (whsec_...; several, space separated, while one is
    /// rotated): `-` reads it from stdin (or GATEWAY_DESTINATION_SECRET).
    #[arg(
        long = "secret",
        id = "destination_secret",
        value_name = "SECRET",
        env = "GATEWAY_DESTINATION_SECRET",
        hide_env_values = true
    )]
    secret: Option<String>,
    /// Exits after answering this many requests.
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..))]
    count: Option<u64>,
    /// Answers every verified delivery with this status instead of 200 (to try retries and
    /// dead letters).
    #[arg(long, value_parser = clap::value_parser!(u16).range(200..=599))]
    status: Option<u16>,
}

/// What deliveries are checked with and answered.
pub struct DeliveryCheck {
    pub secrets: Vec<String>,
    pub status: u16,
}

/// One request, as printed.
#[derive(Debug, Clone, PartialEq)]
pub enum Report {
    Delivery {
        /// The `webhook-id` header (the sender's claim until verified).
        id: Option<String>,
        method: String,
        path: String,
        size: usize,
        status: u16,
        /// The event (its body as JSON, or as text if it is not JSON), or why it was refused.
        verdict: Result<Value, String>,
    },
    Channel(stand_in::Answer),
    /// A request a web page could have sent, refused with a 403 (see [`browser_refusal`]).
    Refused {
        method: String,
        path: String,
        reason: String,
    },
    /// A request that could not be read.
    Unreadable {
        status: u16,
        reason: String,
    },
}

/// Starts listening and answers until interrupted (or --count requests have been answered).
pub fn run(args: &ListenArgs, insecure: bool, json_lines: bool) -> Result<(), String> {
    let secrets: Vec<String> = config::or_stdin(args.secret.clone(), "destination secret")?
        .map(|s| s.split_whitespace().map(String::from).collect())
        .unwrap_or_default();
    check_secrets(&secrets)?;
    let addrs: Vec<SocketAddr> = (args.host.as_str(), args.port)
        .to_socket_addrs()
        .map_err(|e| format!("cannot listen on {}: {e}", line(&args.host)))?
        .collect();
    check_host(&args.host, &addrs, insecure)?;
    let listener = TcpListener::bind(&addrs[..])
        .map_err(|e| format!("cannot listen on {}:{}: {e}", line(&args.host), args.port))?;
    let bound = listener.local_addr().map_err(|e| e.to_string())?;
    emit(&ready(bound, secrets.len()));
    let state = Arc::new(ListenerState {
        check: DeliveryCheck {
            secrets,
            status: args.status.unwrap_or(200),
        },
        json_lines,
        count: args.count.map(|c| c as usize),
        bound,
        deadline: REQUEST_DEADLINE,
        max_connections: MAX_CONNECTIONS,
        open: AtomicUsize::new(0),
        out: Box::new(emit),
        next_message_no: AtomicU64::new(1),
        claimed: AtomicUsize::new(0),
        answered: AtomicUsize::new(0),
    });
    accept(&listener, &state);
    Ok(())
}

/// Serves each connection `listener` accepts on a thread of its own, until the process ends.
fn accept(listener: &TcpListener, state: &Arc<ListenerState>) {
    for stream in listener.incoming() {
        let Ok(stream) = stream else {
            // A connection reset before it was accepted, or out of file descriptors for a moment.
            std::thread::sleep(Duration::from_millis(10));
            continue;
        };
        let Some(slot) = Slot::take(state) else {
            turn_away(&stream, state.max_connections);
            continue;
        };
        let spawned = std::thread::Builder::new()
            .name("listen-connection".into())
            .spawn(move || serve(stream, &slot.0));
        if let Err(e) = spawned {
            // The closure, with the connection and its slot, is dropped: the client sees it close.
            eprintln!(
                "gatewayctl: listen: a connection was closed unanswered: no thread for it ({e})"
            );
        }
    }
}

/// A connection's place among the `max_connections` served at once, given back when dropped.
struct Slot(Arc<ListenerState>);

impl Slot {
    fn take(state: &Arc<ListenerState>) -> Option<Slot> {
        if state.open.fetch_add(1, Ordering::SeqCst) >= state.max_connections {
            state.open.fetch_sub(1, Ordering::SeqCst);
            return None;
        }
        Some(Slot(Arc::clone(state)))
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.0.open.fetch_sub(1, Ordering::SeqCst);
    }
}

/// Answers a connection over the cap with a 503 and closes it without waiting on it: the answer
/// fits the socket's buffer, and a client that does not read it only loses it. Nothing is
/// printed, so a flood does not flood the terminal.
fn turn_away(mut stream: &TcpStream, cap: usize) {
    stream.set_nonblocking(true).ok();
    let busy = json!({"error": format!("the listener is serving {cap} connections: try again")});
    stream.write_all(&response(503, &busy.to_string())).ok();
}

/// Each secret must give a Standard Webhooks key; the error never quotes one.
fn check_secrets(secrets: &[String]) -> Result<(), String> {
    for (i, s) in secrets.iter().enumerate() {
        if standard::key(s).is_none_or(|k| k.is_empty()) {
            return Err(format!(
                "destination secret {} of {} is not a Standard Webhooks secret: whsec_ followed by \
                 base64 (GATEWAY_DESTINATION_SECRET or --secret -)",
                i + 1,
                secrets.len()
            ));
        }
    }
    Ok(())
}

/// Listening where other machines can connect lets them post deliveries and read what channels
/// send: only with --insecure.
fn check_host(host: &str, addrs: &[SocketAddr], insecure: bool) -> Result<(), String> {
    if addrs.is_empty() {
        return Err(format!("{} names no address", line(host)));
    }
    if !insecure && addrs.iter().any(|a| !a.ip().is_loopback()) {
        return Err(format!(
            "{} is reachable from other machines, which could post deliveries and read what \
             channels send: add --insecure to listen there, or use 127.0.0.1",
            line(host)
        ));
    }
    Ok(())
}

fn ready(bound: SocketAddr, secrets: usize) -> String {
    let deliveries = match secrets {
        0 => "refused: no secret (GATEWAY_DESTINATION_SECRET)".to_string(),
        1 => "verified with 1 secret".to_string(),
        n => format!("verified with {n} secrets"),
    };
    let channels: Vec<String> = stand_in::PROVIDERS
        .iter()
        .map(|p| format!("/{}", p.name()))
        .collect();
    format!(
        "Ready: http://{bound} (deliveries: {deliveries}; channels: {})\n",
        channels.join(" ")
    )
}

/// What every connection's thread shares.
struct ListenerState {
    check: DeliveryCheck,
    json_lines: bool,
    count: Option<usize>,
    /// The address listened on: the only Host a request may name (see [`browser_refusal`]).
    bound: SocketAddr,
    /// For each request, head and body.
    deadline: Duration,
    max_connections: usize,
    /// Connections being served.
    open: AtomicUsize,
    /// Where the lines go: stdout, flushed ([`emit`]); a test's buffer.
    out: Box<dyn Fn(&str) + Send + Sync>,
    /// The next number for the stand-ins' message ids.
    next_message_no: AtomicU64,
    /// Two counters, since requests are served concurrently: `claimed` decides, before a request
    /// is printed, whether it is within --count (so exactly that many are printed and answered,
    /// and any past it get a 503), and `answered` counts those whose answer has gone out, so the
    /// process exits after the last one counted is answered, not when the last one claimed (which
    /// may still be writing) is.
    claimed: AtomicUsize,
    answered: AtomicUsize,
}

/// Reads one request (under the deadline), prints its line and answers it.
fn serve(stream: TcpStream, state: &ListenerState) {
    stream.set_write_timeout(Some(WRITE_TIMEOUT)).ok();
    let Ok(read_half) = stream.try_clone() else {
        return;
    };
    let mut reader = BufReader::new(Timed::new(read_half, Instant::now() + state.deadline));
    let mut writer = stream;
    let now = SystemTime::now();
    let now_s = now.duration_since(UNIX_EPOCH).unwrap_or_default().as_secs();
    let read = read_head(&mut reader).and_then(|head| {
        let announced = head
            .header("content-length")
            .and_then(|l| l.parse::<u64>().ok());
        if head.expects_continue() && announced.is_some_and(|n| n <= BODY_MAX as u64) {
            writer.write_all(b"HTTP/1.1 100 Continue\r\n\r\n").ok();
        }
        let body = read_body(&mut reader, &head)?;
        Ok((head, body))
    });
    let (status, answer, report) = match read {
        Err(Refused::Closed) => return,
        Err(refused) => unreadable(&refused),
        Ok((head, body)) => match browser_refusal(&head, state.bound) {
            Some(reason) => refused(&head, reason),
            None => {
                let message_no = state.next_message_no.fetch_add(1, Ordering::Relaxed);
                handle(&head, &body, &state.check, now_s, message_no)
            }
        },
    };
    // A refused browser request is not one of --count's: a page cannot stop the listener.
    let counted = !matches!(report, Report::Refused { .. });
    if let Some(count) = state.count.filter(|_| counted) {
        if state.claimed.fetch_add(1, Ordering::SeqCst) >= count {
            let busy = json!({"error": "the listener is stopping (--count reached)"}).to_string();
            writer.write_all(&response(503, &busy)).ok();
            return;
        }
    }
    let printed = if state.json_lines {
        format!("{}\n", report.json(now_s))
    } else {
        report.text(&clock(now_s))
    };
    (state.out)(&printed);
    writer.write_all(&response(status, &answer)).ok();
    writer.flush().ok();
    writer.shutdown(Shutdown::Write).ok();
    if !counted {
        return;
    }
    let answered = state.answered.fetch_add(1, Ordering::SeqCst) + 1;
    if state.count.is_some_and(|c| answered >= c) {
        // Exiting from this thread is safe: every line was flushed as it was printed, and every
        // request within the count has been answered (`answered` reached it); any other one is
        // past the count and owed only a 503, or not read yet.
        std::process::exit(0);
    }
}

/// Writes `text` to stdout at once (lines of concurrent requests never interleave) and flushes
/// it, since whoever reads it may be waiting for it.
fn emit(text: &str) {
    let mut out = std::io::stdout().lock();
    out.write_all(text.as_bytes()).ok();
    out.flush().ok();
}

/// Why a request is refused as one a web page could have sent, if it is: the gateway's fetch and
/// curl send neither `Origin` nor `Sec-Fetch-Site` (a browser sends `Origin` with every POST, no-cors
/// ones too), and they name the host and port of the URL, which is this listener's (`localhost`
/// too); a page on a name rebound to 127.0.0.1 names its own. Listening for other machines
/// (`--insecure`), any Host is taken.
fn browser_refusal(head: &Head, bound: SocketAddr) -> Option<String> {
    for name in ["Origin", "Sec-Fetch-Site"] {
        if let Some(v) = head.header(&name.to_ascii_lowercase()) {
            return Some(format!("{name} {}", line(v)));
        }
    }
    if !bound.ip().is_loopback() {
        return None;
    }
    let Some(host) = head.header("host") else {
        return Some(format!("no Host (this listener is {bound})"));
    };
    let ip = match bound.ip() {
        IpAddr::V4(ip) => ip.to_string(),
        IpAddr::V6(ip) => format!("[{ip}]"),
    };
    let ours = |h: &str| h.eq_ignore_ascii_case(&ip) || h.eq_ignore_ascii_case("localhost");
    // A URL names the port unless it is http's own.
    let named = match host.rsplit_once(':') {
        Some((h, port)) if !h.is_empty() && !port.contains(']') => {
            ours(h) && port == bound.port().to_string()
        }
        _ => ours(host) && bound.port() == 80,
    };
    if named {
        return None;
    }
    Some(format!(
        "Host {} is not this listener ({bound})",
        line(host)
    ))
}

fn refused(head: &Head, reason: String) -> (u16, String, Report) {
    let answer = json!({"error": format!("refused: a request a web page could send ({reason})")});
    let report = Report::Refused {
        method: head.method.clone(),
        path: stand_in::shown_path(head.path()),
        reason,
    };
    (403, answer.to_string(), report)
}

fn unreadable(refused: &Refused) -> (u16, String, Report) {
    let reason = refused.reason();
    (
        refused.status(),
        json!({"error": reason}).to_string(),
        Report::Unreadable {
            status: refused.status(),
            reason,
        },
    )
}

/// The answer to one request (its status and body) and what is printed of it: a stand-in's
/// receipt under a provider's prefix, else a delivery checked with the destination's secrets.
pub fn handle(
    head: &Head,
    body: &[u8],
    check: &DeliveryCheck,
    now_s: u64,
    message_no: u64,
) -> (u16, String, Report) {
    if let Some((provider, rest)) = stand_in::provider_of(head.path()) {
        let a = stand_in::answer(provider, rest, head, body, message_no, now_s);
        return (a.status, a.receipt.to_string(), Report::Channel(a));
    }
    let signed = SignedRequest {
        url: &head.target,
        headers: &head.headers,
        body,
        now_s,
    };
    let verdict = standard::verify(&check.secrets, &signed, TOLERANCE_S).map_err(|e| match e {
        VerifyError::Mismatch => "no signature matches".to_string(),
        VerifyError::NoSecret => {
            "no secret to verify with (GATEWAY_DESTINATION_SECRET)".to_string()
        }
        other => other.reason(),
    });
    let (status, answer) = match &verdict {
        Ok(()) => (check.status, "{}".to_string()),
        Err(why) => (401, json!({"error": why}).to_string()),
    };
    let report = Report::Delivery {
        id: head
            .header("webhook-id")
            .or(head.header("svix-id"))
            .map(String::from),
        method: head.method.clone(),
        path: stand_in::shown_path(head.path()),
        size: body.len(),
        status,
        verdict: verdict.map(|()| {
            serde_json::from_slice(body)
                .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(body).into_owned()))
        }),
    };
    (status, answer, report)
}

impl Report {
    /// The lines printed for it (each ending in a newline): a summary, then a verified
    /// delivery's body as indented JSON. Every value from the request is escaped.
    pub fn text(&self, clock: &str) -> String {
        match self {
            Report::Delivery {
                id,
                method,
                path,
                size,
                status,
                verdict,
            } => delivery_text(
                clock,
                id.as_deref(),
                &format!("{method} {path}"),
                *size,
                *status,
                verdict,
            ),
            Report::Channel(a) => channel_text(clock, a),
            Report::Refused {
                method,
                path,
                reason,
            } => format!(
                "{clock}  REFUSED  browser request  {}  {reason} (403)\n",
                line(&format!("{method} {path}"))
            ),
            Report::Unreadable { status, reason } => {
                format!("{clock}  REJECTED  -  {reason} ({status})\n")
            }
        }
    }

    /// One JSON object on one line (`--output json`), escaped as every JSON gatewayctl prints.
    pub fn json(&self, at: u64) -> String {
        let v = match self {
            Report::Delivery {
                id,
                method,
                path,
                size,
                status,
                verdict,
            } => {
                let mut v = json!({"at": at, "kind": "delivery", "verified": verdict.is_ok(), "id": id,
                    "method": method, "path": path, "size": size, "status": status});
                match verdict {
                    Ok(event) => {
                        v["type"] = event["type"].clone();
                        v["body"] = event.clone();
                    }
                    Err(why) => v["reason"] = why.clone().into(),
                }
                v
            }
            Report::Channel(a) => {
                let mut v = json!({"at": at, "kind": a.provider.name(), "path": a.path, "status": a.status});
                match &a.outcome {
                    Ok(s) => {
                        v["method"] = s.method.clone().into();
                        v["to"] = s.to.clone().into();
                        v["text"] = json!(s.text);
                        v["extras"] = json!(s.extras);
                        v["body"] = s.body.clone();
                    }
                    Err(why) => v["reason"] = why.clone().into(),
                }
                v
            }
            Report::Refused {
                method,
                path,
                reason,
            } => {
                json!({"at": at, "kind": "refused", "method": method, "path": path, "status": 403, "reason": reason})
            }
            Report::Unreadable { status, reason } => {
                json!({"at": at, "kind": "request", "status": status, "reason": reason})
            }
        };
        json_text(&v.to_string()).into_owned()
    }
}

/// A delivery's lines: `verified`, its id, type, request and size, then its body indented; or
/// `REJECTED`, its id and why.
fn delivery_text(
    clock: &str,
    id: Option<&str>,
    request: &str,
    size: usize,
    status: u16,
    verdict: &Result<Value, String>,
) -> String {
    let id = line(id.unwrap_or("-")).into_owned();
    let event = match verdict {
        Ok(event) => event,
        Err(why) => return format!("{clock}  REJECTED  {id}  {why}\n"),
    };
    let ty = event["type"].as_str().unwrap_or("-");
    let mut out = format!(
        "{clock}  verified  {id}  {}  {}  {}",
        line(ty),
        line(request),
        shown_size(size)
    );
    if status != 200 {
        out.push_str(&format!("  answered {status}"));
    }
    out.push('\n');
    let body = match event {
        Value::String(text) => crate::escape::lines(text).into_owned(),
        v => json_text(&serde_json::to_string_pretty(v).unwrap_or_default()).into_owned(),
    };
    for l in body.lines() {
        out.push_str(&format!("  {l}\n"));
    }
    out
}

/// A channel send's line: the provider, method, recipient and what was sent; or `REJECTED`, the
/// path and why, with the status the stand-in answered.
fn channel_text(clock: &str, a: &stand_in::Answer) -> String {
    let provider = a.provider.name();
    let sent = match &a.outcome {
        Ok(sent) => sent,
        Err(why) => {
            return format!(
                "{clock}  {provider}  REJECTED  {}  {why} ({})\n",
                line(&a.path),
                a.status
            )
        }
    };
    let mut what = Vec::new();
    if let Some(text) = &sent.text {
        what.push(quoted(text));
    }
    what.extend(sent.extras.iter().map(|x| line(x).into_owned()));
    let mut out = format!(
        "{clock}  {provider}  {}  {}",
        line(&sent.method),
        line(&sent.to)
    );
    if !what.is_empty() {
        out.push_str(&format!(": {}", what.join(" ")));
    }
    out.push('\n');
    out
}

/// A text as a JSON string: quoted, its quotes, newlines and hidden characters escaped.
fn quoted(text: &str) -> String {
    json_text(&serde_json::to_string(text).unwrap_or_default()).into_owned()
}

fn shown_size(n: usize) -> String {
    match n {
        n if n < 1024 => format!("{n} B"),
        n if n < 1024 * 1024 => format!("{:.1} KB", n as f64 / 1024.0),
        n => format!("{:.1} MB", n as f64 / 1024.0 / 1024.0),
    }
}

/// `HH:MM:SS` in the local time zone, as a terminal's other clocks show it.
fn clock(now_s: u64) -> String {
    let t = now_s as libc::time_t;
    // SAFETY: localtime_r writes only into `tm`, which we own; all-zero bytes are a valid `tm`
    // (its one pointer, the zone name, null).
    let mut tm: libc::tm = unsafe { std::mem::zeroed() };
    let local = unsafe { !libc::localtime_r(&t, &mut tm).is_null() };
    if local {
        format!("{:02}:{:02}:{:02}", tm.tm_hour, tm.tm_min, tm.tm_sec)
    } else {
        let s = now_s % 86_400;
        format!("{:02}:{:02}:{:02}", s / 3600, s / 60 % 60, s % 60)
    }
}

#[cfg(test)]
mod tests;
