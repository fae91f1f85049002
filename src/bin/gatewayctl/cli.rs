//! The commands, their flags, and what each one calls. Credentials and the URL come from
//! flags, else the environment, else the config file; a credential given as `-` is read from
//! stdin (crate::config).

use crate::api::{check_url, Api, As};
use crate::config;
use crate::escape::{json_text, line, lines};
use crate::output::{print, Format};
use clap::{CommandFactory, FromArgMatches, Parser, Subcommand};
use edge_gateway::core::webhook::samples::{sample, Signing};
use edge_gateway::core::webhook::source::{HmacScheme, SourceKind};
use serde_json::{json, Value};
use std::io::{BufRead, BufReader, Read, Write};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

#[derive(Parser)]
#[command(
    name = "gatewayctl",
    version,
    about = "Run an edge-gateway from the terminal"
)]
pub struct Args {
    /// The gateway's URL (default http://localhost:8787).
    #[arg(long, env = "GATEWAY_URL", global = true)]
    url: Option<String>,
    /// The admin token (admin commands); `-` reads it from stdin. Prefer GATEWAY_ADMIN_TOKEN
    /// or the config file: a flag's value shows in `ps` and shell history.
    #[arg(
        long,
        env = "GATEWAY_ADMIN_TOKEN",
        hide_env_values = true,
        global = true
    )]
    admin_token: Option<String>,
    /// A tenant's secret key (chat, usage); `-` reads it from stdin (or GATEWAY_KEY, the config
    /// file).
    #[arg(long, env = "GATEWAY_KEY", hide_env_values = true, global = true)]
    key: Option<String>,
    /// Allows a plain http:// URL to a host other than this machine (GATEWAY_INSECURE=1), which
    /// sends the credential unencrypted, and `listen` on an address other machines reach: only
    /// on a network you trust.
    #[arg(
        long,
        env = "GATEWAY_INSECURE",
        global = true,
        value_parser = clap::builder::BoolishValueParser::new()
    )]
    insecure: bool,
    /// How answers are printed: json (the default) or table. `listen` prints a line per
    /// request, or with json one JSON object per line.
    #[arg(long, value_enum, global = true)]
    output: Option<Format>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Tenants: list, get, put (create or replace) and delete.
    Tenants {
        #[command(subcommand)]
        op: TenantOp,
    },
    /// A tenant's API keys: list, mint (shown once) and revoke.
    Keys {
        #[command(subcommand)]
        op: KeyOp,
    },
    /// A tenant's webhook sources.
    Sources {
        #[command(subcommand)]
        op: DocOp,
    },
    /// A tenant's webhook destinations.
    Destinations {
        #[command(subcommand)]
        op: DocOp,
    },
    /// A tenant's channels.
    Channels {
        #[command(subcommand)]
        op: DocOp,
    },
    /// A tenant's integrations.
    Integrations {
        #[command(subcommand)]
        op: DocOp,
    },
    /// A tenant's LLM configuration.
    Llm {
        #[command(subcommand)]
        op: LlmOp,
    },
    /// Posts a realistic webhook of KIND to a source, signed as its provider signs it.
    SendSample {
        /// whatsapp, slack, telegram, twilio, stripe, github, shopify, standard or hmac.
        kind: String,
        #[arg(long)]
        tenant: String,
        #[arg(long)]
        source: String,
        /// The source's signing secret (for telegram, its secret token): `-` reads it from
        /// stdin (or GATEWAY_SOURCE_SECRET). Left out, the gateway signs with the source's own
        /// secret (this needs the admin token).
        #[arg(long, env = "GATEWAY_SOURCE_SECRET", hide_env_values = true)]
        secret: Option<String>,
    },
    /// The event log: list events, or follow new ones.
    Events {
        #[command(subcommand)]
        op: EventOp,
    },
    /// Dead letters: list, or replay one.
    DeadLetters {
        #[command(subcommand)]
        op: DeadLetterOp,
    },
    /// Queues a destination's dead-lettered events again.
    Retry {
        tenant: String,
        #[arg(long)]
        destination: String,
        /// Dead-lettered at or after this epoch second.
        #[arg(long)]
        since: Option<u64>,
        #[arg(long)]
        per_second: Option<u32>,
        /// Follows the retried events with a progress bar until each has reached the destination.
        #[arg(long)]
        wait: bool,
    },
    /// Streams an answer from the LLM proxy to the terminal.
    Chat {
        message: String,
        #[arg(long, default_value = "default")]
        model: String,
    },
    /// The tenant's usage (with --tenant and the admin token: any tenant's).
    Usage {
        #[arg(long)]
        tenant: Option<String>,
        #[arg(long)]
        from: Option<String>,
        #[arg(long)]
        to: Option<String>,
        /// Rows by `day`, `model`, `provider`, `key`... (comma-separated, as the API takes them).
        #[arg(long)]
        group_by: Option<String>,
    },
    /// Mints a link to the tenant portal and prints its URL (with --output json, the answer):
    /// whoever opens it first gets a session of these capabilities for the tenant. Share it as
    /// you would a password, until it is opened or expires.
    PortalLink {
        tenant: String,
        /// Comma separated: destinations, events, integrations, usage, keys.
        #[arg(long, value_delimiter = ',', required = true)]
        capabilities: Vec<String>,
        /// Seconds the link may wait to be opened: 60 to 3600 (default 900).
        #[arg(long)]
        ttl: Option<u64>,
    },
    /// Receives deliveries on this machine, and stands in for the channel providers.
    ///
    /// Verifies each delivery's Standard Webhooks signature with the destination's secret and
    /// prints the event (401 when no signature matches). Under /telegram, /slack, /whatsapp and
    /// /twilio it answers as those providers' APIs do: a channel whose base_url is
    /// http://127.0.0.1:9999/telegram (and so on) sends here, and the listener prints what was
    /// sent, never a token. A request a web page could send (with Origin or Sec-Fetch-Site, or
    /// naming another Host) is refused with a 403.
    Listen(crate::listen::ListenArgs),
}

#[derive(Subcommand)]
enum TenantOp {
    List,
    Get {
        tenant: String,
    },
    /// Creates or replaces a tenant from a JSON file (`-` for stdin).
    Put {
        tenant: String,
        #[arg(long)]
        file: String,
    },
    /// Deletes a tenant and everything it holds.
    Delete {
        tenant: String,
        /// Confirms the deletion.
        #[arg(long)]
        yes: bool,
    },
}

#[derive(Subcommand)]
enum KeyOp {
    List {
        tenant: String,
    },
    /// One key's settings and its budget's spend (never the key).
    Get {
        tenant: String,
        key_id: String,
    },
    /// Mints a secret key with these settings; the key is shown once.
    Mint {
        tenant: String,
        #[command(flatten)]
        settings: KeySettings,
    },
    /// Changes a key's settings: each one given replaces the key's (a JSON merge patch).
    Update {
        tenant: String,
        key_id: String,
        #[command(flatten)]
        settings: KeySettings,
    },
    Revoke {
        tenant: String,
        key_id: String,
    },
}

/// A key's settings (README: "Key settings"); one left out is the default, or unchanged by update.
#[derive(clap::Args)]
struct KeySettings {
    #[arg(long)]
    name: Option<String>,
    /// Required for mint. Comma separated: llm, channels, integrations, deliveries, mcp, or * for
    /// every scope.
    #[arg(long, value_delimiter = ',')]
    scopes: Vec<String>,
    /// The key's own LLM requests per minute.
    #[arg(long)]
    rpm: Option<u64>,
    /// The key's own LLM tokens per minute.
    #[arg(long)]
    tpm: Option<u64>,
    #[arg(long)]
    monthly_usd: Option<f64>,
    #[arg(long)]
    daily_usd: Option<f64>,
    /// Comma separated model names or aliases, `*` matching any run of characters.
    #[arg(long, value_delimiter = ',')]
    allowed_models: Vec<String>,
    /// Unix seconds.
    #[arg(long)]
    expires_at: Option<u64>,
}

impl KeySettings {
    fn body(&self) -> Value {
        let mut b = serde_json::Map::new();
        let mut set = |k: &str, v: Value| {
            if !v.is_null() {
                b.insert(k.into(), v);
            }
        };
        set("name", json!(self.name));
        if !self.scopes.is_empty() {
            set("scopes", json!(self.scopes));
        }
        set("rpm", json!(self.rpm));
        set("tpm", json!(self.tpm));
        if self.monthly_usd.is_some() || self.daily_usd.is_some() {
            let mut budget = serde_json::Map::new();
            if let Some(m) = self.monthly_usd {
                budget.insert("monthly_usd".into(), json!(m));
            }
            if let Some(d) = self.daily_usd {
                budget.insert("daily_usd".into(), json!(d));
            }
            set("budget", Value::Object(budget));
        }
        if !self.allowed_models.is_empty() {
            set("allowed_models", json!(self.allowed_models));
        }
        set("expires_at", json!(self.expires_at));
        Value::Object(b)
    }
}

#[derive(Subcommand)]
enum DocOp {
    List {
        tenant: String,
    },
    Get {
        tenant: String,
        id: String,
    },
    /// Creates or replaces it from a JSON file (`-` for stdin).
    Put {
        tenant: String,
        id: String,
        #[arg(long)]
        file: String,
    },
    Delete {
        tenant: String,
        id: String,
    },
}

#[derive(Subcommand)]
enum LlmOp {
    Get {
        tenant: String,
    },
    Put {
        tenant: String,
        #[arg(long)]
        file: String,
    },
    Delete {
        tenant: String,
    },
}

#[derive(Subcommand)]
enum EventOp {
    List {
        tenant: String,
        #[arg(long)]
        source: Option<String>,
        #[arg(long = "type")]
        event_type: Option<String>,
        #[arg(long)]
        status: Option<String>,
    },
    /// Prints events as they arrive, until interrupted (or --count have been printed).
    Tail {
        tenant: String,
        #[arg(long, default_value_t = 2)]
        interval: u64,
        #[arg(long)]
        count: Option<usize>,
    },
}

#[derive(Subcommand)]
enum DeadLetterOp {
    List { tenant: String },
    Replay { tenant: String, id: String },
}

/// The command line, with a warning on stderr for each secret given as a flag's value.
pub fn parse() -> Args {
    let matches = Args::command().get_matches();
    for warning in config::argv_warnings(&matches) {
        eprintln!("gatewayctl: warning: {warning}");
    }
    Args::from_arg_matches(&matches).unwrap_or_else(|e| e.exit())
}

fn tenant_path(tenant: &str) -> String {
    format!("/v1/admin/tenants/{}", seg(tenant))
}

/// A path segment, percent-encoded.
fn seg(s: &str) -> String {
    form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

fn query(pairs: &[(&str, Option<String>)]) -> String {
    let mut q = form_urlencoded::Serializer::new(String::new());
    for (k, v) in pairs {
        if let Some(v) = v {
            q.append_pair(k, v);
        }
    }
    match q.finish() {
        s if s.is_empty() => s,
        s => format!("?{s}"),
    }
}

fn read_json(file: &str) -> Result<Value, String> {
    let text = if file == "-" {
        config::take_stdin()?;
        let mut s = String::new();
        std::io::stdin()
            .read_to_string(&mut s)
            .map_err(|e| e.to_string())?;
        s
    } else {
        std::fs::read_to_string(file).map_err(|e| format!("{file}: {e}"))?
    };
    serde_json::from_str(&text).map_err(|e| format!("{file} is not JSON: {e}"))
}

/// What flags and the environment leave unset, from the config file (crate::config) holding
/// `{"url", "admin_token", "key"}` (any of them); then a credential given as `-`, from stdin.
fn credentials(args: &mut Args) -> Result<(), String> {
    let cfg = match config::path() {
        Some(path) => config::read(&path)?.unwrap_or(Value::Null),
        None => Value::Null,
    };
    let field = |name: &str| cfg.get(name).and_then(Value::as_str).map(String::from);
    // An empty flag or variable counts as unset.
    for v in [&mut args.url, &mut args.admin_token, &mut args.key] {
        *v = v.take().filter(|s| !s.is_empty());
    }
    args.url = args.url.take().or_else(|| field("url"));
    args.admin_token = config::or_stdin(
        args.admin_token.take().or_else(|| field("admin_token")),
        "admin token",
    )?;
    args.key = config::or_stdin(args.key.take().or_else(|| field("key")), "tenant key")?;
    Ok(())
}

pub fn run(mut args: Args) -> Result<(), String> {
    // The listener calls no gateway: it needs neither a URL nor a credential.
    if let Command::Listen(listen) = &args.command {
        return crate::listen::run(listen, args.insecure, args.output == Some(Format::Json));
    }
    credentials(&mut args)?;
    let url = args.url.as_deref().unwrap_or("http://localhost:8787");
    check_url(url, args.insecure)?;
    let api = Api::new(url, args.admin_token, args.key);
    let out = args.output.unwrap_or(Format::Json);
    let show = |v: Option<Value>, columns: &[&str]| match v {
        Some(v) => print(&v, out, columns),
        None => println!("done"),
    };
    match args.command {
        Command::Tenants { op } => match op {
            TenantOp::List => show(
                api.call("GET", "/v1/admin/tenants", As::Admin, None)?,
                &["id"],
            ),
            TenantOp::Get { tenant } => show(
                api.call("GET", &tenant_path(&tenant), As::Admin, None)?,
                &[],
            ),
            TenantOp::Put { tenant, file } => {
                let doc = read_json(&file)?;
                show(
                    api.call("PUT", &tenant_path(&tenant), As::Admin, Some(&doc))?,
                    &[],
                )
            }
            TenantOp::Delete { tenant, yes } => {
                if !yes {
                    return Err(format!(
                        "deleting tenant `{tenant}` erases everything it holds: add --yes"
                    ));
                }
                let path = format!(
                    "{}{}",
                    tenant_path(&tenant),
                    query(&[("confirm", Some(tenant.clone()))])
                );
                show(api.call("DELETE", &path, As::Admin, None)?, &[])
            }
        },
        Command::Keys { op } => match op {
            KeyOp::List { tenant } => {
                let path = format!("{}/keys", tenant_path(&tenant));
                show(
                    api.call("GET", &path, As::Admin, None)?,
                    &["id", "name", "scopes", "created_at", "revoked"],
                )
            }
            KeyOp::Get { tenant, key_id } => {
                let path = format!("{}/keys/{}", tenant_path(&tenant), seg(&key_id));
                show(api.call("GET", &path, As::Admin, None)?, &[])
            }
            KeyOp::Mint { tenant, settings } => {
                let path = format!("{}/keys", tenant_path(&tenant));
                let body = settings.body();
                show(api.call("POST", &path, As::Admin, Some(&body))?, &[])
            }
            KeyOp::Update {
                tenant,
                key_id,
                settings,
            } => {
                let path = format!("{}/keys/{}", tenant_path(&tenant), seg(&key_id));
                let body = settings.body();
                show(api.call("PATCH", &path, As::Admin, Some(&body))?, &[])
            }
            KeyOp::Revoke { tenant, key_id } => {
                let path = format!("{}/keys/{}", tenant_path(&tenant), seg(&key_id));
                show(api.call("DELETE", &path, As::Admin, None)?, &[])
            }
        },
        Command::Sources { op } => doc(&api, "sources", op, out)?,
        Command::Destinations { op } => doc(&api, "destinations", op, out)?,
        Command::Channels { op } => doc(&api, "channels", op, out)?,
        Command::Integrations { op } => doc(&api, "integrations", op, out)?,
        Command::Llm { op } => {
            let (method, tenant, body) = match op {
                LlmOp::Get { tenant } => ("GET", tenant, None),
                LlmOp::Put { tenant, file } => ("PUT", tenant, Some(read_json(&file)?)),
                LlmOp::Delete { tenant } => ("DELETE", tenant, None),
            };
            let path = format!("{}/llm", tenant_path(&tenant));
            show(api.call(method, &path, As::Admin, body.as_ref())?, &[])
        }
        Command::SendSample {
            kind,
            tenant,
            source,
            secret,
        } => match config::or_stdin(secret, "signing secret")? {
            Some(secret) => send_sample(&api, &kind, &tenant, &source, &secret)?,
            None => signed_by_gateway(&api, &kind, &tenant, &source)?,
        },
        Command::Events { op } => match op {
            EventOp::List {
                tenant,
                source,
                event_type,
                status,
            } => {
                let q = query(&[("source", source), ("type", event_type), ("status", status)]);
                let path = format!("{}/events{q}", tenant_path(&tenant));
                show(
                    api.call("GET", &path, As::Admin, None)?,
                    &["id", "type", "source", "status", "received_at"],
                )
            }
            EventOp::Tail {
                tenant,
                interval,
                count,
            } => tail(&api, &tenant, interval, count, out)?,
        },
        Command::DeadLetters { op } => match op {
            DeadLetterOp::List { tenant } => {
                let path = format!("{}/dead-letters", tenant_path(&tenant));
                show(
                    api.call("GET", &path, As::Admin, None)?,
                    &["id", "kind", "reason", "dead_at"],
                )
            }
            DeadLetterOp::Replay { tenant, id } => {
                let path = format!("{}/dead-letters/{}/replay", tenant_path(&tenant), seg(&id));
                show(api.call("POST", &path, As::Admin, None)?, &[])
            }
        },
        Command::Retry {
            tenant,
            destination,
            since,
            per_second,
            wait,
        } => {
            let q = query(&[
                ("since", since.map(|s| s.to_string())),
                ("per_second", per_second.map(|p| p.to_string())),
            ]);
            let path = format!(
                "{}/destinations/{}/retry{q}",
                tenant_path(&tenant),
                seg(&destination)
            );
            let events = if wait {
                dead_for(&api, &tenant, &destination, since)?
            } else {
                Vec::new()
            };
            let answer = api.call("POST", &path, As::Admin, None)?;
            if wait {
                let pace = answer
                    .as_ref()
                    .and_then(|a| a["over_seconds"].as_u64())
                    .unwrap_or(0);
                follow_retry(&api, &tenant, &destination, &events, pace)?;
            }
            show(answer, &[])
        }
        Command::PortalLink {
            tenant,
            capabilities,
            ttl,
        } => {
            let path = format!("{}/portal-links", tenant_path(&tenant));
            let mut body = json!({ "capabilities": capabilities });
            if let Some(ttl) = ttl {
                body["ttl_s"] = json!(ttl);
            }
            let answer = api.call("POST", &path, As::Admin, Some(&body))?;
            let answer = answer.unwrap_or(Value::Null);
            // Asked for no format: the URL alone, to paste or pipe.
            match (args.output, answer["url"].as_str()) {
                (None, Some(url)) => println!("{}", line(url)),
                _ => print(&answer, out, &["url", "expires_at"]),
            }
        }
        // Run above, before any credential is read.
        Command::Listen(_) => {}
        Command::Chat { message, model } => chat(&api, &message, &model)?,
        Command::Usage {
            tenant,
            from,
            to,
            group_by,
        } => {
            let q = query(&[("from", from), ("to", to), ("group_by", group_by)]);
            let v = match tenant {
                Some(t) => api.call(
                    "GET",
                    &format!("{}/usage{q}", tenant_path(&t)),
                    As::Admin,
                    None,
                )?,
                None => api.call("GET", &format!("/v1/usage{q}"), As::Tenant, None)?,
            }
            .unwrap_or(Value::Null);
            // The groups first, then the figures a reader looks for.
            let groups = v["group_by"].as_array().into_iter().flatten();
            let figures = [
                "requests",
                "input_tokens",
                "output_tokens",
                "cache_read_tokens",
                "cache_write_tokens",
                "reasoning_tokens",
                "cost_usd",
                "cached",
                "failed",
                "p50_ms",
                "p95_ms",
            ];
            let columns: Vec<&str> = groups.filter_map(Value::as_str).chain(figures).collect();
            print(&v, out, &columns)
        }
    }
    Ok(())
}

/// list, get, put and delete of a tenant's documents of one kind.
fn doc(api: &Api, kind: &str, op: DocOp, out: Format) -> Result<(), String> {
    let at = |tenant: &str, id: Option<&str>| match id {
        Some(id) => format!("{}/{kind}/{}", tenant_path(tenant), seg(id)),
        None => format!("{}/{kind}", tenant_path(tenant)),
    };
    let answer = match op {
        DocOp::List { tenant } => api.call("GET", &at(&tenant, None), As::Admin, None)?,
        DocOp::Get { tenant, id } => api.call("GET", &at(&tenant, Some(&id)), As::Admin, None)?,
        DocOp::Put { tenant, id, file } => {
            let body = read_json(&file)?;
            api.call("PUT", &at(&tenant, Some(&id)), As::Admin, Some(&body))?
        }
        DocOp::Delete { tenant, id } => {
            api.call("DELETE", &at(&tenant, Some(&id)), As::Admin, None)?
        }
    };
    match answer {
        Some(v) => print(&v, out, &[]),
        None => println!("done"),
    }
    Ok(())
}

fn now() -> Duration {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
}

/// Signs a sample of `kind` as its provider would and posts it to the source's webhook URL.
/// An `hmac` source's scheme, and a source's public URL (which Twilio signs), are read from the
/// source's configuration when the admin token is at hand.
/// The gateway signs the sample with the source's own secret and runs it through ingress.
fn signed_by_gateway(api: &Api, kind: &str, tenant: &str, source: &str) -> Result<(), String> {
    let path = format!("{}/sources/{}", tenant_path(tenant), seg(source));
    let cfg = api
        .call("GET", &path, As::Admin, None)?
        .unwrap_or(Value::Null);
    let actual = cfg.get("source").unwrap_or(&cfg)["kind"].clone();
    if actual != kind {
        return Err(format!(
            "source `{source}` is a {actual} source, not {kind}"
        ));
    }
    let sent = api
        .call("POST", &format!("{path}/sample"), As::Admin, None)?
        .unwrap_or(Value::Null);
    let status = sent["answer"]["status"].as_u64().unwrap_or(0);
    println!("{status} {}", line(&sent["answer"]["body"].to_string()));
    if !(200..300).contains(&status) {
        return Err(format!("the gateway refused the {kind} sample ({status})"));
    }
    Ok(())
}

fn send_sample(
    api: &Api,
    kind: &str,
    tenant: &str,
    source: &str,
    secret: &str,
) -> Result<(), String> {
    let kind: SourceKind = serde_json::from_value(json!(kind))
        .map_err(|_| format!("unknown kind `{kind}`: whatsapp, slack, telegram, twilio, stripe, github, shopify, standard or hmac"))?;
    let path = format!("/v1/webhooks/{}/{}", seg(tenant), seg(source));
    let cfg = match api.call(
        "GET",
        &format!("{}/sources/{}", tenant_path(tenant), seg(source)),
        As::Admin,
        None,
    ) {
        Ok(Some(v)) => v,
        Ok(None) => Value::Null,
        // Without the admin token the sample is still signed; only an hmac source needs more.
        Err(e) if kind == SourceKind::Hmac => {
            return Err(format!("reading the source's hmac scheme: {e}"))
        }
        Err(_) => Value::Null,
    };
    let doc = cfg.get("source").unwrap_or(&cfg);
    let scheme: Option<HmacScheme> = doc
        .get("hmac")
        .and_then(|h| serde_json::from_value(h.clone()).ok());
    let url = doc
        .get("public_url")
        .and_then(Value::as_str)
        .map(String::from)
        .unwrap_or_else(|| api.url(&path));
    let t = now();
    // Fixed width, so two samples are the same size (the README compares the listener's line).
    let nonce = format!("{:x}{:08x}", t.as_secs(), t.subsec_nanos());
    let signing = Signing {
        secret,
        url: &url,
        scheme: scheme.as_ref(),
        now_s: t.as_secs(),
        nonce: &nonce,
    };
    let s = sample(kind, &signing)?;
    let (status, body) = api.post_raw(&path, &s.headers, &s.body)?;
    println!("{status} {}", line(&body));
    if !(200..300).contains(&status) {
        return Err(format!(
            "the gateway refused the {} sample ({status})",
            kind.name()
        ));
    }
    Ok(())
}

/// The events whose delivery to `destination` is dead-lettered (at or after `since`, epoch
/// seconds): what a retry queues again.
fn dead_for(
    api: &Api,
    tenant: &str,
    destination: &str,
    since: Option<u64>,
) -> Result<Vec<String>, String> {
    let suffix = format!(".{destination}");
    let letters = api
        .call(
            "GET",
            &format!("{}/dead-letters", tenant_path(tenant)),
            As::Admin,
            None,
        )?
        .unwrap_or(Value::Null);
    // Unix seconds with a millisecond fraction; an older gateway answered epoch ms.
    let seconds = |t: f64| if t > 1e11 { t / 1000.0 } else { t };
    Ok(letters["data"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|l| {
            since.is_none_or(|s| {
                l["dead_at"]
                    .as_f64()
                    .is_some_and(|t| seconds(t) >= s as f64)
            })
        })
        .filter_map(|l| l["id"].as_str()?.strip_suffix(&suffix).map(String::from))
        .collect())
}

/// Shows a progress bar on stderr while the retried events reach `destination`.
fn follow_retry(
    api: &Api,
    tenant: &str,
    destination: &str,
    events: &[String],
    pace_s: u64,
) -> Result<(), String> {
    let deadline = now() + Duration::from_secs(pace_s + 60);
    let total = events.len();
    let mut err = std::io::stderr();
    let mut delivered = std::collections::HashSet::new();
    loop {
        let waiting: Vec<&String> = events
            .iter()
            .filter(|id| !delivered.contains(*id))
            .collect();
        for id in waiting {
            let path = format!("{}/events/{}", tenant_path(tenant), seg(id));
            let event = api
                .call("GET", &path, As::Admin, None)?
                .unwrap_or(Value::Null);
            let event = event.get("event").unwrap_or(&event);
            let arrived = event["deliveries"]
                .as_array()
                .into_iter()
                .flatten()
                .any(|d| d["destination"] == destination && d["state"] == "delivered");
            if arrived {
                delivered.insert(id.clone());
            }
        }
        let done = delivered.len();
        let filled = (done * 30).checked_div(total).unwrap_or(30);
        let bar: String = (0..30)
            .map(|i| if i < filled { '#' } else { '.' })
            .collect();
        write!(err, "\r[{bar}] {done}/{total} retried").ok();
        if done >= total {
            writeln!(err).ok();
            return Ok(());
        }
        if now() > deadline {
            writeln!(err).ok();
            return Err(format!(
                "{} of {total} not delivered yet; see events list",
                total - done
            ));
        }
        std::thread::sleep(Duration::from_millis(500));
    }
}

/// Follows the event log: every `interval` seconds, prints the events not printed yet.
fn tail(
    api: &Api,
    tenant: &str,
    interval: u64,
    count: Option<usize>,
    out: Format,
) -> Result<(), String> {
    let mut seen = std::collections::HashSet::new();
    let mut printed = 0;
    loop {
        let page = api
            .call(
                "GET",
                &format!("{}/events", tenant_path(tenant)),
                As::Admin,
                None,
            )?
            .unwrap_or(Value::Null);
        let mut fresh: Vec<&Value> = page["data"]
            .as_array()
            .map(|rows| {
                rows.iter()
                    .filter(|e| !seen.contains(&e["id"].to_string()))
                    .collect()
            })
            .unwrap_or_default();
        // Oldest first, as a tail reads.
        fresh.reverse();
        for e in fresh {
            seen.insert(e["id"].to_string());
            match out {
                Format::Json => println!("{}", json_text(&e.to_string())),
                Format::Table => print!(
                    "{}",
                    crate::output::table(
                        std::slice::from_ref(e),
                        &["id", "type", "source", "status", "received_at"]
                    )
                ),
            }
            printed += 1;
            if count.is_some_and(|c| printed >= c) {
                return Ok(());
            }
        }
        std::io::stdout().flush().ok();
        std::thread::sleep(Duration::from_secs(interval.max(1)));
    }
}

/// Streams a chat completion's text to stdout as it arrives.
fn chat(api: &Api, message: &str, model: &str) -> Result<(), String> {
    let body =
        json!({"model": model, "stream": true, "messages": [{"role": "user", "content": message}]});
    let reader = BufReader::new(api.stream("/v1/chat/completions", &body)?);
    let mut stdout = std::io::stdout();
    for line in reader.lines() {
        let line = line.map_err(|e| e.to_string())?;
        let Some(data) = line.strip_prefix("data:").map(str::trim) else {
            continue;
        };
        if data == "[DONE]" {
            break;
        }
        let chunk: Value = serde_json::from_str(data)
            .map_err(|_| "the stream sent something other than JSON".to_string())?;
        if let Some(e) = chunk.get("error") {
            return Err(e["message"]
                .as_str()
                .unwrap_or("the stream failed")
                .to_string());
        }
        if let Some(text) = chunk["choices"][0]["delta"]["content"].as_str() {
            // A model's text is the provider's: its lines are kept, its escape sequences shown.
            write!(stdout, "{}", lines(text)).map_err(|e| e.to_string())?;
            stdout.flush().ok();
        }
    }
    writeln!(stdout).ok();
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn warnings(argv: &[&str]) -> Vec<String> {
        let matches = Args::command().try_get_matches_from(argv).unwrap();
        config::argv_warnings(&matches)
    }

    #[test]
    fn a_secret_given_as_a_flags_value_is_warned_about_once() {
        let ws = warnings(&["gatewayctl", "tenants", "list", "--admin-token", "tok"]);
        assert_eq!(
            ws,
            [
                "a value given to --admin-token shows in `ps` and shell history: use \
              GATEWAY_ADMIN_TOKEN, or --admin-token - to read it from stdin"
            ]
        );
        let ws = warnings(&[
            "gatewayctl",
            "--key",
            "k",
            "send-sample",
            "stripe",
            "--tenant",
            "t",
            "--source",
            "s",
            "--secret",
            "whsec_x",
        ]);
        assert_eq!(ws.len(), 2, "{ws:?}");
        assert!(ws[0].contains("GATEWAY_KEY") && ws[1].contains("GATEWAY_SOURCE_SECRET"));
        // The listener's secret is the destination's, with its own variable.
        let ws = warnings(&["gatewayctl", "listen", "--secret", "whsec_x"]);
        assert_eq!(
            ws,
            [
                "a value given to --secret shows in `ps` and shell history: use \
              GATEWAY_DESTINATION_SECRET, or --secret - to read it from stdin"
            ]
        );
    }

    #[test]
    fn stdin_or_nothing_on_the_command_line_is_no_warning() {
        for argv in [
            &["gatewayctl", "tenants", "list"][..],
            &["gatewayctl", "tenants", "list", "--admin-token", "-"],
            &["gatewayctl", "usage", "--key", ""],
            &["gatewayctl", "listen", "--secret", "-"],
            &[
                "gatewayctl",
                "send-sample",
                "x",
                "--tenant",
                "t",
                "--source",
                "s",
                "--secret",
                "-",
            ],
        ] {
            assert_eq!(warnings(argv), Vec::<String>::new(), "{argv:?}");
        }
    }
}
