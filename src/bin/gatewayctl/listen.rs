//! `gatewayctl listen`: a local receiver for the gateway's webhook deliveries, as `stripe listen`
//! is for Stripe's. Each delivery's Standard Webhooks signature is checked with the destination's
//! secret(s) by the gateway's own verifier and the event printed; paths under `/telegram`,
//! `/slack`, `/whatsapp` and `/twilio` stand in for those providers' APIs (listen::stand_in), so a
//! channel whose `base_url` points here sends without leaving the machine. One thread per
//! connection, one request per connection, every line flushed as it is printed.

mod request;
mod stand_in;

use crate::config;
use crate::escape::{json_text, line};
use edge_gateway::core::webhook::verify::{standard, SignedRequest, VerifyError};
use request::{read_body, read_head, response, Head, Refused, BODY_MAX};
use serde_json::{json, Value};
use std::io::{BufReader, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream, ToSocketAddrs};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// How far a delivery's signed timestamp may be from now, as the Standard Webhooks libraries allow.
const TOLERANCE_S: u64 = 300;
/// How long a connection may take to send its request or read the answer.
const IO_TIMEOUT: Duration = Duration::from_secs(10);

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
pub struct Config {
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
    let shared = Arc::new(Shared {
        config: Config {
            secrets,
            status: args.status.unwrap_or(200),
        },
        json_lines,
        count: args.count.map(|c| c as usize),
        messages: AtomicU64::new(0),
        claimed: AtomicUsize::new(0),
        answered: AtomicUsize::new(0),
    });
    for stream in listener.incoming() {
        match stream {
            Ok(stream) => {
                let shared = Arc::clone(&shared);
                std::thread::spawn(move || serve(stream, &shared));
            }
            // A connection reset before it was accepted, or out of file descriptors for a moment.
            Err(_) => std::thread::sleep(Duration::from_millis(10)),
        }
    }
    Ok(())
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
        .map(|p| format!("/{p}"))
        .collect();
    format!(
        "Ready: http://{bound} (deliveries: {deliveries}; channels: {})\n",
        channels.join(" ")
    )
}

struct Shared {
    config: Config,
    json_lines: bool,
    count: Option<usize>,
    /// Numbers the stand-ins' message ids.
    messages: AtomicU64,
    /// Requests given a line (and an answer); with --count, those past it are turned away.
    claimed: AtomicUsize,
    answered: AtomicUsize,
}

fn serve(stream: TcpStream, shared: &Shared) {
    stream.set_read_timeout(Some(IO_TIMEOUT)).ok();
    stream.set_write_timeout(Some(IO_TIMEOUT)).ok();
    let Ok(read_half) = stream.try_clone() else {
        return;
    };
    let mut reader = BufReader::new(read_half);
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
        Ok((head, body)) => {
            let n = shared.messages.fetch_add(1, Ordering::Relaxed) + 1;
            handle(&head, &body, &shared.config, now_s, n)
        }
    };
    if let Some(count) = shared.count {
        if shared.claimed.fetch_add(1, Ordering::SeqCst) >= count {
            let busy = json!({"error": "the listener is stopping (--count reached)"}).to_string();
            writer.write_all(&response(503, &busy)).ok();
            return;
        }
    }
    let printed = if shared.json_lines {
        format!("{}\n", report.json(now_s))
    } else {
        report.text(&clock(now_s))
    };
    emit(&printed);
    writer.write_all(&response(status, &answer)).ok();
    writer.flush().ok();
    writer.shutdown(Shutdown::Write).ok();
    let answered = shared.answered.fetch_add(1, Ordering::SeqCst) + 1;
    if shared.count.is_some_and(|c| answered >= c) {
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
    config: &Config,
    now_s: u64,
    n: u64,
) -> (u16, String, Report) {
    if let Some((provider, rest)) = stand_in::provider_of(head.path()) {
        let a = stand_in::answer(provider, rest, head, body, n, now_s);
        return (a.status, a.receipt.to_string(), Report::Channel(a));
    }
    let signed = SignedRequest {
        url: &head.target,
        headers: &head.headers,
        body,
        now_s,
    };
    let verdict = standard::verify(&config.secrets, &signed, TOLERANCE_S).map_err(|e| match e {
        VerifyError::Mismatch => "no signature matches".to_string(),
        VerifyError::NoSecret => {
            "no secret to verify with (GATEWAY_DESTINATION_SECRET)".to_string()
        }
        other => other.reason(),
    });
    let (status, answer) = match &verdict {
        Ok(()) => (config.status, "{}".to_string()),
        Err(why) => (401, json!({"error": why}).to_string()),
    };
    let report = Report::Delivery {
        id: head
            .header("webhook-id")
            .or(head.header("svix-id"))
            .map(String::from),
        method: head.method.clone(),
        path: head.path().to_string(),
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
            } => {
                let id = line(id.as_deref().unwrap_or("-")).into_owned();
                match verdict {
                    Ok(event) => {
                        let ty = event["type"].as_str().unwrap_or("-");
                        let mut out = format!(
                            "{clock}  verified  {id}  {}  {}  {}",
                            line(ty),
                            line(&format!("{method} {path}")),
                            shown_size(*size)
                        );
                        if *status != 200 {
                            out.push_str(&format!("  answered {status}"));
                        }
                        out.push('\n');
                        let body = match event {
                            Value::String(text) => crate::escape::lines(text).into_owned(),
                            v => json_text(&serde_json::to_string_pretty(v).unwrap_or_default())
                                .into_owned(),
                        };
                        for l in body.lines() {
                            out.push_str(&format!("  {l}\n"));
                        }
                        out
                    }
                    Err(why) => format!("{clock}  REJECTED  {id}  {why}\n"),
                }
            }
            Report::Channel(a) => match &a.outcome {
                Ok(sent) => {
                    let mut what = Vec::new();
                    if let Some(text) = &sent.text {
                        what.push(quoted(text));
                    }
                    what.extend(sent.extras.iter().map(|x| line(x).into_owned()));
                    let mut out = format!(
                        "{clock}  {}  {}  {}",
                        a.provider,
                        line(&sent.method),
                        line(&sent.to)
                    );
                    if !what.is_empty() {
                        out.push_str(&format!(": {}", what.join(" ")));
                    }
                    out.push('\n');
                    out
                }
                Err(why) => format!(
                    "{clock}  {}  REJECTED  {}  {why} ({})\n",
                    a.provider,
                    line(&a.path),
                    a.status
                ),
            },
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
                let mut v =
                    json!({"at": at, "kind": a.provider, "path": a.path, "status": a.status});
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
            Report::Unreadable { status, reason } => {
                json!({"at": at, "kind": "request", "status": status, "reason": reason})
            }
        };
        json_text(&v.to_string()).into_owned()
    }
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
