//! The route table: method + path -> a typed route, or a 404/405/400 that says why.
//! Pure, so every route's matching is unit-tested and the shell only dispatches.

use super::error::{ApiError, ErrorKind};
use super::http::valid_id;
use super::integration::connect::app::OPERATOR;
use super::platform::RecordKind;
use super::tenant::key_settings::Scope;
use super::usage::{Counted, Family};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InboundMethod {
    Get,
    Head,
    Post,
    Put,
    Patch,
    Delete,
    Options,
    Other,
}

impl InboundMethod {
    pub fn parse(m: &str) -> InboundMethod {
        match m {
            "GET" => InboundMethod::Get,
            "HEAD" => InboundMethod::Head,
            "POST" => InboundMethod::Post,
            "PUT" => InboundMethod::Put,
            "PATCH" => InboundMethod::Patch,
            "DELETE" => InboundMethod::Delete,
            "OPTIONS" => InboundMethod::Options,
            _ => InboundMethod::Other,
        }
    }
    pub fn as_str(self) -> &'static str {
        match self {
            InboundMethod::Get => "GET",
            InboundMethod::Head => "HEAD",
            InboundMethod::Post => "POST",
            InboundMethod::Put => "PUT",
            InboundMethod::Patch => "PATCH",
            InboundMethod::Delete => "DELETE",
            InboundMethod::Options => "OPTIONS",
            InboundMethod::Other => "OTHER",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Route {
    Health,
    OpenApi,
    /// The event catalog (`core::webhook::catalog`): public, like the OpenAPI document.
    EventTypes,
    /// The calling tenant, as its key authenticates it.
    Me,
    /// The calling tenant's usage (`core::usage`).
    Usage,
    /// Send a message through one of the tenant's channels.
    ChannelSend {
        channel: String,
    },
    /// The status of a send that went through the retry queue.
    Delivery {
        id: String,
    },
    /// Execute an endpoint of one of the tenant's integrations.
    IntegrationExecute {
        id: String,
        endpoint: String,
    },
    /// Run the integration's test call and report.
    IntegrationTest {
        id: String,
    },
    IntegrationInstall,
    IntegrationGet {
        id: String,
    },
    IntegrationDelete {
        id: String,
    },
    /// Begin connecting an integration through its provider's consent page.
    IntegrationConnect {
        id: String,
    },
    /// Disconnect an integration: revoke at the provider, forget the tokens.
    IntegrationDisconnect {
        id: String,
    },
    /// Where providers send the user back with a code (public: the signed state says whose).
    ConnectCallback,
    /// The hosted page a connect's user sees before the provider's (public, as the callback).
    ConnectPage,
    /// Search the marketplace's templates.
    Marketplace,
    /// A provider's webhook: POST deliveries, GET handshakes.
    Webhook {
        tenant: String,
        source: String,
    },
    Admin(AdminRoute),
    /// Every tenant's id.
    Tenants,
    /// The master keyring: which key seals, and how many secrets each key sealed.
    MasterKeys,
    /// One bounded pass re-sealing every secret under the current master key.
    Reseal,
    /// This isolate's memory and caches, for an operator watching for a leak.
    Runtime,
    /// The tenant's MCP server (`core::mcp`): one JSON-RPC message per POST.
    Mcp,
    /// The MCP endpoint's protected-resource metadata (RFC 9728).
    McpResourceMetadata,
    /// OpenAI Chat Completions through the LLM proxy.
    ChatCompletions,
    /// Anthropic Messages through the LLM proxy.
    Messages,
    /// OpenAI Responses through the LLM proxy.
    Responses,
    /// A stored response (`/v1/responses/{id}...`): the gateway keeps none.
    StoredResponse,
    /// OpenAI embeddings through the LLM proxy.
    Embeddings,
    /// The models (aliases and provider/model names) the tenant can use.
    Models,
    /// The embeddable chat widget script.
    WidgetScript,
    /// A page embedding the widget for the seeded demo tenant (not in production).
    Demo,
    /// The operator's console: its page (`None`) or one of its files (`core::console`).
    Console(Option<String>),
    /// The tenant portal (`core::portal`): its page, its API, its session exchange.
    Portal(PortalRoute),
    /// One of the console's files, as the portal's page loads it (served wherever the portal is).
    PortalFile(String),
    /// The marketplace's templates, for the console's install form.
    AdminMarketplace,
    /// CORS preflight for the widget's API.
    WidgetPreflight,
    WidgetConfig,
    WidgetChat,
    WidgetConversation {
        id: String,
    },
}

/// A portal route (`match_route`); what each needs and reads is `core::portal`'s.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PortalRoute {
    /// `GET /portal?link=`: the page.
    Page,
    /// `GET /portal/connected`: where a connect from the portal comes back.
    Connected,
    /// `POST /v1/portal/session`: a link for a session.
    Session,
    /// `GET /v1/portal/me`: the session's tenant and capabilities, for the page.
    Me,
    /// A call of the portal API.
    Api(PortalAction),
}

/// What a portal API call does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PortalAction {
    /// What the admin API does at the same path after `/v1/admin/tenants/{t}/`.
    Admin(AdminAction),
    /// `GET /v1/portal/marketplace`, as `GET /v1/marketplace`.
    Marketplace,
    /// `POST /v1/portal/integrations/{id}/connect`, as `POST /v1/integrations/{id}/connect`
    /// but coming back to the portal.
    Connect(String),
    /// `DELETE /v1/portal/integrations/{id}/connection`.
    Disconnect(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AdminRoute {
    pub tenant: String,
    pub action: AdminAction,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AdminAction {
    PutRecord(RecordKind, Option<String>),
    GetRecord(RecordKind, Option<String>),
    DeleteRecord(RecordKind, Option<String>),
    ListRecords(RecordKind),
    CreateKey,
    CreateWidgetKey,
    ListKeys,
    GetKey(String),
    PatchKey(String),
    DeleteKey(String),
    /// A new key with the same settings (and budget); both work until the old one is revoked or
    /// expires.
    RotateKey(String),
    ListDeadLetters,
    ReplayDeadLetter(String),
    /// The tenant's usage, as `GET /v1/usage` shows a tenant its own.
    Usage,
    /// The event log, filtered, a page at a time.
    ListEvents,
    /// One event with its deliveries and every attempt.
    GetEvent(String),
    /// Delivers an event again: to `?destination=`, or wherever it did not get through.
    RetryEvent(String),
    /// The tenant's MCP tool calls (`mcp::tool_calls`), filtered, a page at a time.
    ListToolCalls,
    /// Delivers again every dead letter of a destination since `?since=`, paced.
    RetryDestination(String),
    /// A new secret for a destination; the current one signs beside it until it expires.
    RotateDestinationSecret(String),
    /// Installs a marketplace template, as `POST /v1/integrations` does for a tenant.
    InstallIntegration,
    /// Runs an integration's test call and records its health.
    TestIntegration(String),
    /// Signs a sample webhook of the source's kind with its own secret and runs it through
    /// ingress (`core::webhook::samples::send`).
    SendSample(String),
    /// Mints a link to the tenant portal (`core::portal::mint`).
    MintPortalLink,
}

/// Who may call a route: the shell authenticates accordingly before the handler runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Anyone (health, the API description, the widget script, the demo page).
    Public,
    /// A tenant's secret key (any scope).
    Tenant,
    /// A tenant's secret key with this scope.
    Scoped(Scope),
    /// The operator's admin token.
    Admin,
    /// A tenant's publishable key from an allowed origin (checked by the widget routes).
    Widget,
    /// The provider's signature over the request (checked by webhook ingress).
    Signed,
    /// A portal link or session, checked by the portal's flow (`core::portal`).
    Portal,
}

impl Route {
    /// What the request is counted as in the tenant's usage (`None`: it is not counted).
    pub fn usage(&self) -> Option<Counted> {
        let (family, subject) = match self {
            Route::ChatCompletions
            | Route::Messages
            | Route::Responses
            | Route::StoredResponse
            | Route::Embeddings
            | Route::Models => (Family::Llm, None),
            Route::Webhook { source, .. } => (Family::Webhook, Some(source.clone())),
            Route::ChannelSend { channel } => (Family::Channel, Some(channel.clone())),
            Route::Delivery { .. } => (Family::Channel, None),
            Route::IntegrationExecute { id, .. }
            | Route::IntegrationTest { id }
            | Route::IntegrationGet { id }
            | Route::IntegrationDelete { id }
            | Route::IntegrationConnect { id }
            | Route::IntegrationDisconnect { id } => (Family::Integration, Some(id.clone())),
            Route::IntegrationInstall | Route::Marketplace => (Family::Integration, None),
            // The tool is known once the message is read (`Call::subject`).
            Route::Mcp => (Family::Mcp, None),
            Route::WidgetConfig | Route::WidgetChat | Route::WidgetConversation { .. } => {
                (Family::Widget, None)
            }
            Route::Me | Route::Usage => (Family::System, None),
            // Unauthenticated or operator's requests are not a tenant's usage.
            Route::Health
            | Route::OpenApi
            | Route::EventTypes
            | Route::McpResourceMetadata
            | Route::ConnectCallback
            | Route::ConnectPage
            | Route::WidgetScript
            | Route::Demo
            | Route::Console(_)
            | Route::Portal(_)
            | Route::PortalFile(_)
            | Route::AdminMarketplace
            | Route::WidgetPreflight
            | Route::Admin(_)
            | Route::Tenants
            | Route::MasterKeys
            | Route::Reseal
            | Route::Runtime => return None,
        };
        Some(Counted {
            family,
            subject,
            proven_by_answer: self.access() == Access::Signed,
        })
    }

    pub fn access(&self) -> Access {
        match self {
            // The console's files hold nothing secret; what it shows comes from the admin API.
            Route::Health
            | Route::OpenApi
            | Route::EventTypes
            | Route::McpResourceMetadata
            | Route::ConnectCallback
            | Route::ConnectPage
            | Route::WidgetScript
            | Route::Demo
            | Route::Console(_)
            | Route::PortalFile(_) => Access::Public,
            Route::Portal(_) => Access::Portal,
            Route::Me | Route::Usage => Access::Tenant,
            Route::ChannelSend { .. } => Access::Scoped(Scope::Channels),
            Route::Delivery { .. } => Access::Scoped(Scope::Deliveries),
            Route::IntegrationExecute { .. }
            | Route::IntegrationTest { .. }
            | Route::IntegrationInstall
            | Route::IntegrationGet { .. }
            | Route::IntegrationDelete { .. }
            | Route::IntegrationConnect { .. }
            | Route::IntegrationDisconnect { .. }
            | Route::Marketplace => Access::Scoped(Scope::Integrations),
            Route::Mcp => Access::Scoped(Scope::Mcp),
            Route::ChatCompletions
            | Route::Messages
            | Route::Responses
            | Route::StoredResponse
            | Route::Embeddings
            | Route::Models => Access::Scoped(Scope::Llm),
            Route::Webhook { .. } => Access::Signed,
            Route::Admin(_)
            | Route::AdminMarketplace
            | Route::Tenants
            | Route::MasterKeys
            | Route::Reseal
            | Route::Runtime => Access::Admin,
            Route::WidgetPreflight
            | Route::WidgetConfig
            | Route::WidgetChat
            | Route::WidgetConversation { .. } => Access::Widget,
        }
    }

    /// The route's template, for logs and metrics: never contains ids.
    pub fn name(&self) -> &'static str {
        match self {
            Route::Health => "/healthz",
            Route::OpenApi => "/openapi.json",
            Route::EventTypes => "/v1/event-types",
            Route::Me => "/v1/me",
            Route::Usage => "/v1/usage",
            Route::Mcp => "/v1/mcp",
            Route::McpResourceMetadata => "/.well-known/oauth-protected-resource/v1/mcp",
            Route::ChatCompletions => "/v1/chat/completions",
            Route::Messages => "/v1/messages",
            Route::Responses => "/v1/responses",
            Route::StoredResponse => "/v1/responses/{id}",
            Route::Embeddings => "/v1/embeddings",
            Route::Models => "/v1/models",
            Route::WidgetScript => "/widget.js",
            Route::Demo => "/demo",
            Route::Console(_) => "/console",
            Route::PortalFile(_) => "/portal/{file}",
            Route::Portal(p) => p.name(),
            Route::AdminMarketplace => "/v1/admin/marketplace",
            Route::WidgetPreflight => "OPTIONS /v1/widget/*",
            Route::WidgetConfig => "/v1/widget/config",
            Route::WidgetChat => "/v1/widget/chat",
            Route::WidgetConversation { .. } => "/v1/widget/conversations/{id}",
            Route::Webhook { .. } => "/v1/webhooks/{t}/{source}",
            Route::ChannelSend { .. } => "/v1/channels/{channel}/messages",
            Route::Delivery { .. } => "/v1/deliveries/{id}",
            Route::IntegrationExecute { .. } => "/v1/integrations/{id}/{endpoint}",
            Route::IntegrationTest { .. } => "/v1/integrations/{id}/test",
            Route::IntegrationInstall => "/v1/integrations",
            Route::IntegrationGet { .. } | Route::IntegrationDelete { .. } => {
                "/v1/integrations/{id}"
            }
            Route::IntegrationConnect { .. } => "/v1/integrations/{id}/connect",
            Route::IntegrationDisconnect { .. } => "/v1/integrations/{id}/connection",
            Route::ConnectCallback => "/v1/connect/callback",
            Route::ConnectPage => "/v1/connect/start",
            Route::Marketplace => "/v1/marketplace",
            Route::MasterKeys => "/v1/admin/master-keys",
            Route::Reseal => "/v1/admin/master-keys/reseal",
            Route::Runtime => "/v1/admin/runtime",
            Route::Tenants => "/v1/admin/tenants",
            Route::Admin(a) => match &a.action {
                AdminAction::PutRecord(k, _)
                | AdminAction::GetRecord(k, _)
                | AdminAction::DeleteRecord(k, _) => match k {
                    RecordKind::Tenant => "/v1/admin/tenants/{t}",
                    RecordKind::Llm => "/v1/admin/tenants/{t}/llm",
                    RecordKind::Source => "/v1/admin/tenants/{t}/sources/{source}",
                    RecordKind::Channel => "/v1/admin/tenants/{t}/channels/{channel}",
                    RecordKind::Integration => "/v1/admin/tenants/{t}/integrations/{id}",
                    RecordKind::Destination => "/v1/admin/tenants/{t}/destinations/{destination}",
                    RecordKind::McpServer => "/v1/admin/tenants/{t}/mcp-servers/{server}",
                    RecordKind::OauthApp if a.tenant == OPERATOR => "/v1/admin/oauth-apps/{app}",
                    RecordKind::OauthApp => "/v1/admin/tenants/{t}/oauth-apps/{app}",
                },
                AdminAction::ListRecords(k) => match k {
                    RecordKind::Source => "/v1/admin/tenants/{t}/sources",
                    RecordKind::Channel => "/v1/admin/tenants/{t}/channels",
                    RecordKind::Destination => "/v1/admin/tenants/{t}/destinations",
                    RecordKind::McpServer => "/v1/admin/tenants/{t}/mcp-servers",
                    RecordKind::OauthApp if a.tenant == OPERATOR => "/v1/admin/oauth-apps",
                    RecordKind::OauthApp => "/v1/admin/tenants/{t}/oauth-apps",
                    _ => "/v1/admin/tenants/{t}/integrations",
                },
                AdminAction::CreateKey | AdminAction::ListKeys => "/v1/admin/tenants/{t}/keys",
                AdminAction::GetKey(_) | AdminAction::PatchKey(_) | AdminAction::DeleteKey(_) => {
                    "/v1/admin/tenants/{t}/keys/{key_id}"
                }
                AdminAction::RotateKey(_) => "/v1/admin/tenants/{t}/keys/{key_id}/rotate",
                AdminAction::CreateWidgetKey => "/v1/admin/tenants/{t}/widget-keys",
                AdminAction::ListDeadLetters => "/v1/admin/tenants/{t}/dead-letters",
                AdminAction::Usage => "/v1/admin/tenants/{t}/usage",
                AdminAction::ReplayDeadLetter(_) => {
                    "/v1/admin/tenants/{t}/dead-letters/{id}/replay"
                }
                AdminAction::ListEvents => "/v1/admin/tenants/{t}/events",
                AdminAction::GetEvent(_) => "/v1/admin/tenants/{t}/events/{event_id}",
                AdminAction::RetryEvent(_) => "/v1/admin/tenants/{t}/events/{event_id}/retry",
                AdminAction::ListToolCalls => "/v1/admin/tenants/{t}/tool-calls",
                AdminAction::RetryDestination(_) => {
                    "/v1/admin/tenants/{t}/destinations/{destination}/retry"
                }
                AdminAction::RotateDestinationSecret(_) => {
                    "/v1/admin/tenants/{t}/destinations/{destination}/rotate-secret"
                }
                AdminAction::InstallIntegration => "/v1/admin/tenants/{t}/integrations",
                AdminAction::TestIntegration(_) => "/v1/admin/tenants/{t}/integrations/{id}/test",
                AdminAction::SendSample(_) => "/v1/admin/tenants/{t}/sources/{source}/sample",
                AdminAction::MintPortalLink => "/v1/admin/tenants/{t}/portal-links",
            },
        }
    }

    /// The LLM routes answer errors in their provider's format.
    pub fn dialect(&self) -> Option<crate::core::llm::Dialect> {
        match self {
            Route::ChatCompletions => Some(crate::core::llm::Dialect::OpenAi),
            Route::Messages => Some(crate::core::llm::Dialect::Anthropic),
            Route::Responses | Route::StoredResponse => Some(crate::core::llm::Dialect::Responses),
            Route::Embeddings => Some(crate::core::llm::Dialect::Embeddings),
            _ => None,
        }
    }

    pub fn tenant(&self) -> Option<&str> {
        match self {
            Route::Admin(a) => Some(&a.tenant),
            Route::Webhook { tenant, .. } => Some(tenant),
            _ => None,
        }
    }
}

fn not_allowed(method: InboundMethod, allowed: &[&str]) -> ApiError {
    let mut e = ApiError::new(
        ErrorKind::MethodNotAllowed,
        format!(
            "method {} is not allowed here; allowed: {}",
            method.as_str(),
            allowed.join(", ")
        ),
    );
    e.allow = Some(allowed.join(", "));
    e
}

fn id(kind: &str, s: &str) -> Result<String, ApiError> {
    if valid_id(s) {
        Ok(s.to_string())
    } else {
        Err(ApiError::bad_request(format!(
            "invalid {kind} id: use 1-64 letters, digits, `-`, `_` or `.`, starting with a letter or digit"
        )))
    }
}

/// Matches a request. `path` is the URL path as received (still percent-encoded).
pub fn match_route(method: InboundMethod, path: &str) -> Result<Route, ApiError> {
    let segs: Vec<&str> = path.trim_end_matches('/').split('/').skip(1).collect();
    let get_only = |r: Route| match method {
        InboundMethod::Get | InboundMethod::Head => Ok(r),
        _ => Err(not_allowed(method, &["GET", "HEAD"])),
    };
    match segs.as_slice() {
        ["healthz"] => get_only(Route::Health),
        ["openapi.json"] => get_only(Route::OpenApi),
        ["v1", "event-types"] => get_only(Route::EventTypes),
        ["v1", "me"] => get_only(Route::Me),
        ["v1", "usage"] => get_only(Route::Usage),
        ["v1", "chat", "completions"] => match method {
            InboundMethod::Post => Ok(Route::ChatCompletions),
            _ => Err(not_allowed(method, &["POST"])),
        },
        ["v1", "messages"] => match method {
            InboundMethod::Post => Ok(Route::Messages),
            _ => Err(not_allowed(method, &["POST"])),
        },
        ["v1", "responses"] => match method {
            InboundMethod::Post => Ok(Route::Responses),
            _ => Err(not_allowed(method, &["POST"])),
        },
        ["v1", "responses", _, ..] => Ok(Route::StoredResponse),
        // GET (a server-sent stream) and DELETE (a session) are for servers that keep them.
        ["v1", "mcp"] => match method {
            InboundMethod::Post => Ok(Route::Mcp),
            _ => Err(not_allowed(method, &["POST"])),
        },
        [".well-known", "oauth-protected-resource", "v1", "mcp"] => {
            get_only(Route::McpResourceMetadata)
        }
        ["v1", "embeddings"] => match method {
            InboundMethod::Post => Ok(Route::Embeddings),
            _ => Err(not_allowed(method, &["POST"])),
        },
        ["v1", "models"] => get_only(Route::Models),
        ["widget.js"] => get_only(Route::WidgetScript),
        ["demo"] => get_only(Route::Demo),
        ["console"] => get_only(Route::Console(None)),
        ["console", file] => get_only(Route::Console(Some(file.to_string()))),
        ["portal"] => get_only(Route::Portal(PortalRoute::Page)),
        ["portal", "connected"] => get_only(Route::Portal(PortalRoute::Connected)),
        ["portal", file] => get_only(Route::PortalFile(file.to_string())),
        ["v1", "portal", rest @ ..] => portal_route(method, rest).map(Route::Portal),
        ["v1", "widget", ..] if method == InboundMethod::Options => Ok(Route::WidgetPreflight),
        ["v1", "widget", "config"] => get_only(Route::WidgetConfig),
        ["v1", "widget", "chat"] => match method {
            InboundMethod::Post => Ok(Route::WidgetChat),
            _ => Err(not_allowed(method, &["POST"])),
        },
        ["v1", "widget", "conversations", c] => get_only(Route::WidgetConversation {
            id: id("conversation", c)?,
        }),
        ["v1", "channels", c, "messages"] => match method {
            InboundMethod::Post => Ok(Route::ChannelSend {
                channel: id("channel", c)?,
            }),
            _ => Err(not_allowed(method, &["POST"])),
        },
        ["v1", "marketplace"] => get_only(Route::Marketplace),
        ["v1", "integrations"] => match method {
            InboundMethod::Post => Ok(Route::IntegrationInstall),
            _ => Err(not_allowed(method, &["POST"])),
        },
        ["v1", "integrations", i] => match method {
            InboundMethod::Get | InboundMethod::Head => Ok(Route::IntegrationGet {
                id: id("integration", i)?,
            }),
            InboundMethod::Delete => Ok(Route::IntegrationDelete {
                id: id("integration", i)?,
            }),
            _ => Err(not_allowed(method, &["GET", "DELETE"])),
        },
        ["v1", "integrations", i, "test"] => match method {
            InboundMethod::Post => Ok(Route::IntegrationTest {
                id: id("integration", i)?,
            }),
            _ => Err(not_allowed(method, &["POST"])),
        },
        ["v1", "integrations", i, "connect"] => match method {
            InboundMethod::Post => Ok(Route::IntegrationConnect {
                id: id("integration", i)?,
            }),
            _ => Err(not_allowed(method, &["POST"])),
        },
        ["v1", "integrations", i, "connection"] => match method {
            InboundMethod::Delete => Ok(Route::IntegrationDisconnect {
                id: id("integration", i)?,
            }),
            _ => Err(not_allowed(method, &["DELETE"])),
        },
        ["v1", "connect", "callback"] => get_only(Route::ConnectCallback),
        ["v1", "connect", "start"] => get_only(Route::ConnectPage),
        ["v1", "integrations", i, e] => match method {
            InboundMethod::Post => Ok(Route::IntegrationExecute {
                id: id("integration", i)?,
                endpoint: id("endpoint", e)?,
            }),
            _ => Err(not_allowed(method, &["POST"])),
        },
        ["v1", "deliveries", d] => get_only(Route::Delivery {
            id: id("delivery", d)?,
        }),
        ["v1", "webhooks", t, source] => match method {
            InboundMethod::Get | InboundMethod::Post => Ok(Route::Webhook {
                tenant: id("tenant", t)?,
                source: id("source", source)?,
            }),
            _ => Err(not_allowed(method, &["GET", "POST"])),
        },
        ["v1", "admin", "master-keys"] => get_only(Route::MasterKeys),
        ["v1", "admin", "runtime"] => get_only(Route::Runtime),
        ["v1", "admin", "tenants"] => get_only(Route::Tenants),
        ["v1", "admin", "marketplace"] => get_only(Route::AdminMarketplace),
        ["v1", "admin", "master-keys", "reseal"] => match method {
            InboundMethod::Post => Ok(Route::Reseal),
            _ => Err(not_allowed(method, &["POST"])),
        },
        // The operator's OAuth apps, kept as records of a tenant no tenant can be.
        ["v1", "admin", "oauth-apps", rest @ ..] => {
            let rest: Vec<&str> = ["oauth-apps"]
                .into_iter()
                .chain(rest.iter().copied())
                .collect();
            let action = admin_action(method, &rest)?;
            let tenant = OPERATOR.to_string();
            Ok(Route::Admin(AdminRoute { tenant, action }))
        }
        ["v1", "admin", "tenants", t, rest @ ..] => {
            let tenant = id("tenant", t)?;
            let action = admin_action(method, rest)?;
            Ok(Route::Admin(AdminRoute { tenant, action }))
        }
        _ => Err(ApiError::not_found(format!(
            "no route for {} {}",
            method.as_str(),
            safe_path(path)
        ))),
    }
}

/// `/v1/portal/...`: the session exchange, the page's `me`, and the portal API, whose paths
/// are the admin API's after `/v1/admin/tenants/{t}/` (and the marketplace and connect routes).
fn portal_route(method: InboundMethod, rest: &[&str]) -> Result<PortalRoute, ApiError> {
    let only = |m: InboundMethod, r: PortalRoute| match method == m {
        true => Ok(r),
        false => Err(not_allowed(method, &[m.as_str()])),
    };
    let api = |a: PortalAction| Ok(PortalRoute::Api(a));
    match rest {
        ["session"] => only(InboundMethod::Post, PortalRoute::Session),
        ["me"] => only(InboundMethod::Get, PortalRoute::Me),
        ["marketplace"] => only(
            InboundMethod::Get,
            PortalRoute::Api(PortalAction::Marketplace),
        ),
        ["integrations", i, "connect"] => match method {
            InboundMethod::Post => api(PortalAction::Connect(id("integration", i)?)),
            _ => Err(not_allowed(method, &["POST"])),
        },
        ["integrations", i, "connection"] => match method {
            InboundMethod::Delete => api(PortalAction::Disconnect(id("integration", i)?)),
            _ => Err(not_allowed(method, &["DELETE"])),
        },
        _ => api(PortalAction::Admin(admin_action(method, rest)?)),
    }
}

fn admin_action(method: InboundMethod, rest: &[&str]) -> Result<AdminAction, ApiError> {
    use AdminAction::*;
    let record = |kind: RecordKind, name: Option<String>| match method {
        InboundMethod::Put => Ok(PutRecord(kind, name)),
        InboundMethod::Get | InboundMethod::Head => Ok(GetRecord(kind, name)),
        InboundMethod::Delete => Ok(DeleteRecord(kind, name)),
        _ => Err(not_allowed(method, &["GET", "PUT", "DELETE"])),
    };
    let kind_of = |s: &str| match s {
        "sources" => Some(RecordKind::Source),
        "channels" => Some(RecordKind::Channel),
        "integrations" => Some(RecordKind::Integration),
        "destinations" => Some(RecordKind::Destination),
        "mcp-servers" => Some(RecordKind::McpServer),
        "oauth-apps" => Some(RecordKind::OauthApp),
        _ => None,
    };
    match rest {
        [] => record(RecordKind::Tenant, None),
        ["llm"] => record(RecordKind::Llm, None),
        ["keys"] => match method {
            InboundMethod::Post => Ok(CreateKey),
            InboundMethod::Get => Ok(ListKeys),
            _ => Err(not_allowed(method, &["GET", "POST"])),
        },
        ["keys", k] => match method {
            InboundMethod::Get | InboundMethod::Head => Ok(GetKey(id("key", k)?)),
            InboundMethod::Patch => Ok(PatchKey(id("key", k)?)),
            InboundMethod::Delete => Ok(DeleteKey(id("key", k)?)),
            _ => Err(not_allowed(method, &["GET", "PATCH", "DELETE"])),
        },
        ["keys", k, "rotate"] => match method {
            InboundMethod::Post => Ok(RotateKey(id("key", k)?)),
            _ => Err(not_allowed(method, &["POST"])),
        },
        ["dead-letters"] => match method {
            InboundMethod::Get => Ok(ListDeadLetters),
            _ => Err(not_allowed(method, &["GET"])),
        },
        ["dead-letters", d, "replay"] => match method {
            InboundMethod::Post => Ok(ReplayDeadLetter(id("dead letter", d)?)),
            _ => Err(not_allowed(method, &["POST"])),
        },
        ["events"] => match method {
            InboundMethod::Get | InboundMethod::Head => Ok(ListEvents),
            _ => Err(not_allowed(method, &["GET"])),
        },
        ["events", e] => match method {
            InboundMethod::Get | InboundMethod::Head => Ok(GetEvent(id("event", e)?)),
            _ => Err(not_allowed(method, &["GET"])),
        },
        ["events", e, "retry"] => match method {
            InboundMethod::Post => Ok(RetryEvent(id("event", e)?)),
            _ => Err(not_allowed(method, &["POST"])),
        },
        ["tool-calls"] => match method {
            InboundMethod::Get | InboundMethod::Head => Ok(ListToolCalls),
            _ => Err(not_allowed(method, &["GET"])),
        },
        ["destinations", d, "retry"] => match method {
            InboundMethod::Post => Ok(RetryDestination(id("destination", d)?)),
            _ => Err(not_allowed(method, &["POST"])),
        },
        ["destinations", d, "rotate-secret"] => match method {
            InboundMethod::Post => Ok(RotateDestinationSecret(id("destination", d)?)),
            _ => Err(not_allowed(method, &["POST"])),
        },
        ["usage"] => match method {
            InboundMethod::Get | InboundMethod::Head => Ok(Usage),
            _ => Err(not_allowed(method, &["GET"])),
        },
        ["portal-links"] => match method {
            InboundMethod::Post => Ok(MintPortalLink),
            _ => Err(not_allowed(method, &["POST"])),
        },
        ["widget-keys"] => match method {
            InboundMethod::Post => Ok(CreateWidgetKey),
            _ => Err(not_allowed(method, &["POST"])),
        },
        ["integrations"] => match method {
            InboundMethod::Get => Ok(ListRecords(RecordKind::Integration)),
            InboundMethod::Post => Ok(InstallIntegration),
            _ => Err(not_allowed(method, &["GET", "POST"])),
        },
        ["integrations", i, "test"] => match method {
            InboundMethod::Post => Ok(TestIntegration(id("integration", i)?)),
            _ => Err(not_allowed(method, &["POST"])),
        },
        ["sources", s, "sample"] => match method {
            InboundMethod::Post => Ok(SendSample(id("source", s)?)),
            _ => Err(not_allowed(method, &["POST"])),
        },
        [coll] if kind_of(coll).is_some() => match method {
            InboundMethod::Get => Ok(ListRecords(kind_of(coll).unwrap_or(RecordKind::Source))),
            _ => Err(not_allowed(method, &["GET"])),
        },
        [coll, name] if kind_of(coll).is_some() => {
            let kind = kind_of(coll).unwrap_or(RecordKind::Source);
            record(kind, Some(id(kind.label(), name)?))
        }
        _ => Err(ApiError::not_found("no such admin resource")),
    }
}

/// A path fit to echo in an error message: bounded, printable.
fn safe_path(path: &str) -> String {
    path.chars().take(200).filter(|c| !c.is_control()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn admin(path: &str, m: InboundMethod) -> AdminAction {
        match match_route(m, path).unwrap() {
            Route::Admin(a) => a.action,
            r => panic!("{r:?}"),
        }
    }

    #[test]
    fn public_routes() {
        assert_eq!(
            match_route(InboundMethod::Get, "/healthz").unwrap(),
            Route::Health
        );
        assert_eq!(
            match_route(InboundMethod::Get, "/healthz/").unwrap(),
            Route::Health
        );
        assert_eq!(
            match_route(InboundMethod::Get, "/openapi.json").unwrap(),
            Route::OpenApi
        );
        let catalog = match_route(InboundMethod::Get, "/v1/event-types").unwrap();
        assert_eq!(catalog, Route::EventTypes);
        assert_eq!(catalog.access(), Access::Public);
        assert!(catalog.usage().is_none(), "no tenant's usage");
        let post = match_route(InboundMethod::Post, "/v1/event-types").unwrap_err();
        assert_eq!(post.status(), 405);
        let allow = |e: &ApiError| e.head().1.into_iter().find(|(k, _)| *k == "allow");
        assert_eq!(allow(&post), Some(("allow", "GET, HEAD".to_string())));
        let get_mcp = match_route(InboundMethod::Get, "/v1/mcp").unwrap_err();
        assert_eq!(
            allow(&get_mcp),
            Some(("allow", "POST".to_string())),
            "MCP clients read it"
        );
        assert_eq!(
            match_route(InboundMethod::Post, "/healthz")
                .unwrap_err()
                .status(),
            405
        );
        assert_eq!(
            match_route(InboundMethod::Get, "/nope")
                .unwrap_err()
                .status(),
            404
        );
        assert_eq!(
            match_route(InboundMethod::Post, "/v1/webhooks/acme/wa").unwrap(),
            Route::Webhook {
                tenant: "acme".into(),
                source: "wa".into()
            }
        );
        assert_eq!(
            match_route(InboundMethod::Put, "/v1/webhooks/acme/wa")
                .unwrap_err()
                .status(),
            405
        );
        assert_eq!(
            match_route(InboundMethod::Post, "/v1/webhooks/acme/..")
                .unwrap_err()
                .status(),
            400
        );
    }

    #[test]
    fn a_webhook_counts_only_once_its_signature_proved_its_tenant() {
        let hook = match_route(InboundMethod::Post, "/v1/webhooks/acme/shop").unwrap();
        let c = hook.usage().unwrap();
        assert_eq!(
            (c.family, c.subject.as_deref()),
            (Family::Webhook, Some("shop"))
        );
        assert!(c.counts(202) && !c.counts(401) && !c.counts(404));
        let chat = match_route(InboundMethod::Post, "/v1/chat/completions").unwrap();
        assert!(
            chat.usage().unwrap().counts(429),
            "a keyed request counts whatever it got"
        );
        let admin = match_route(InboundMethod::Get, "/v1/admin/tenants/acme").unwrap();
        assert_eq!(admin.usage(), None);
    }

    #[test]
    fn admin_routes() {
        use AdminAction::*;
        assert_eq!(
            admin("/v1/admin/tenants/acme", InboundMethod::Put),
            PutRecord(RecordKind::Tenant, None)
        );
        assert_eq!(
            admin("/v1/admin/tenants/acme/llm", InboundMethod::Get),
            GetRecord(RecordKind::Llm, None)
        );
        assert_eq!(
            admin("/v1/admin/tenants/acme/sources/wa", InboundMethod::Delete),
            DeleteRecord(RecordKind::Source, Some("wa".into()))
        );
        assert_eq!(
            admin("/v1/admin/tenants/acme/channels", InboundMethod::Get),
            ListRecords(RecordKind::Channel)
        );
        assert_eq!(
            admin("/v1/admin/tenants/acme/keys", InboundMethod::Post),
            CreateKey
        );
        let calls = "/v1/admin/tenants/acme/tool-calls";
        assert_eq!(admin(calls, InboundMethod::Get), ListToolCalls);
        let r = match_route(InboundMethod::Get, calls).unwrap();
        assert_eq!(r.access(), Access::Admin);
        assert_eq!(r.name(), "/v1/admin/tenants/{t}/tool-calls");
        let post = match_route(InboundMethod::Post, calls).unwrap_err();
        assert_eq!(post.status(), 405);
        assert_eq!(
            admin("/v1/admin/tenants/acme/keys/key_1", InboundMethod::Delete),
            DeleteKey("key_1".into())
        );
        assert_eq!(
            admin("/v1/admin/tenants/acme/keys/key_1", InboundMethod::Patch),
            PatchKey("key_1".into())
        );
        assert_eq!(
            admin(
                "/v1/admin/tenants/acme/keys/key_1/rotate",
                InboundMethod::Post
            ),
            RotateKey("key_1".into())
        );
        let rotate = "/v1/admin/tenants/acme/destinations/crm/rotate-secret";
        assert_eq!(
            admin(rotate, InboundMethod::Post),
            RotateDestinationSecret("crm".into())
        );
        let r = match_route(InboundMethod::Post, rotate).unwrap();
        assert_eq!(r.access(), Access::Admin);
        assert_eq!(
            r.name(),
            "/v1/admin/tenants/{t}/destinations/{destination}/rotate-secret"
        );
        let get = match_route(InboundMethod::Get, rotate).unwrap_err();
        assert_eq!(get.status(), 405);
        assert_eq!(
            admin("/v1/admin/tenants/acme/widget-keys", InboundMethod::Post),
            CreateWidgetKey
        );
        assert_eq!(
            match_route(InboundMethod::Post, "/v1/admin/tenants/acme")
                .unwrap_err()
                .status(),
            405
        );
        assert_eq!(
            match_route(InboundMethod::Get, "/v1/admin/tenants/acme/bogus/x")
                .unwrap_err()
                .status(),
            404
        );
        let keys = match_route(InboundMethod::Get, "/v1/admin/master-keys").unwrap();
        assert_eq!((keys.access(), keys.usage()), (Access::Admin, None));
        let reseal = match_route(InboundMethod::Post, "/v1/admin/master-keys/reseal").unwrap();
        assert_eq!((reseal, keys), (Route::Reseal, Route::MasterKeys));
        let get = match_route(InboundMethod::Get, "/v1/admin/master-keys/reseal");
        assert_eq!(get.unwrap_err().status(), 405);
        let runtime = match_route(InboundMethod::Get, "/v1/admin/runtime").unwrap();
        assert_eq!((runtime.access(), runtime.usage()), (Access::Admin, None));
        let tenants = match_route(InboundMethod::Get, "/v1/admin/tenants").unwrap();
        assert_eq!((tenants.access(), tenants.usage()), (Access::Admin, None));
        assert_eq!(tenants, Route::Tenants);
        let post = match_route(InboundMethod::Post, "/v1/admin/tenants");
        assert_eq!(post.unwrap_err().status(), 405);
        let dests = match_route(InboundMethod::Get, "/v1/admin/tenants/acme/destinations").unwrap();
        assert_eq!(
            dests,
            Route::Admin(AdminRoute {
                tenant: "acme".into(),
                action: AdminAction::ListRecords(RecordKind::Destination)
            })
        );
    }

    #[test]
    fn the_consoles_routes() {
        use AdminAction::*;
        let at = |m, p| admin(p, m);
        let install = at(InboundMethod::Post, "/v1/admin/tenants/acme/integrations");
        assert_eq!(install, InstallIntegration);
        let test = at(
            InboundMethod::Post,
            "/v1/admin/tenants/acme/integrations/crm/test",
        );
        assert_eq!(test, TestIntegration("crm".into()));
        let sample = at(
            InboundMethod::Post,
            "/v1/admin/tenants/acme/sources/wa/sample",
        );
        assert_eq!(sample, SendSample("wa".into()));
        let get = match_route(
            InboundMethod::Get,
            "/v1/admin/tenants/acme/sources/wa/sample",
        );
        assert_eq!(get.unwrap_err().status(), 405);
        let bad = match_route(
            InboundMethod::Post,
            "/v1/admin/tenants/acme/sources/../sample",
        );
        assert_eq!(bad.unwrap_err().status(), 400);
        let market = match_route(InboundMethod::Get, "/v1/admin/marketplace").unwrap();
        assert_eq!((market.access(), market.usage()), (Access::Admin, None));
        for (path, file) in [
            ("/console", None),
            ("/console/", None),
            ("/console/app.js", Some("app.js")),
        ] {
            let r = match_route(InboundMethod::Get, path).unwrap();
            assert_eq!(r, Route::Console(file.map(String::from)), "{path}");
            assert_eq!((r.access(), r.usage()), (Access::Public, None));
        }
        let post = match_route(InboundMethod::Post, "/console");
        assert_eq!(post.unwrap_err().status(), 405);
    }

    #[test]
    fn the_portals_routes_are_the_admin_apis_paths_for_the_sessions_tenant() {
        use super::{PortalAction as P, PortalRoute as R};
        let portal = |m, p: &str| match match_route(m, p).unwrap() {
            Route::Portal(r) => r,
            r => panic!("{p}: {r:?}"),
        };
        let api = |m, p: &str| match portal(m, p) {
            R::Api(a) => a,
            r => panic!("{p}: {r:?}"),
        };
        let admin = |a| P::Admin(a);
        use AdminAction::*;
        use InboundMethod::{Delete, Get, Post, Put};
        assert_eq!(portal(Get, "/portal"), R::Page);
        assert_eq!(portal(Get, "/portal/connected"), R::Connected);
        assert_eq!(portal(Post, "/v1/portal/session"), R::Session);
        assert_eq!(portal(Get, "/v1/portal/me"), R::Me);
        let file = match_route(Get, "/portal/app.js").unwrap();
        assert_eq!(file, Route::PortalFile("app.js".into()));
        assert_eq!((file.access(), file.usage()), (Access::Public, None));
        for (m, p, want) in [
            (
                Get,
                "/v1/portal/destinations",
                admin(ListRecords(RecordKind::Destination)),
            ),
            (
                Put,
                "/v1/portal/destinations/crm",
                admin(PutRecord(RecordKind::Destination, Some("crm".into()))),
            ),
            (
                Post,
                "/v1/portal/destinations/crm/retry",
                admin(RetryDestination("crm".into())),
            ),
            (Get, "/v1/portal/events", admin(ListEvents)),
            (
                Get,
                "/v1/portal/events/evt_1",
                admin(GetEvent("evt_1".into())),
            ),
            (
                Post,
                "/v1/portal/events/evt_1/retry",
                admin(RetryEvent("evt_1".into())),
            ),
            (Get, "/v1/portal/dead-letters", admin(ListDeadLetters)),
            (
                Post,
                "/v1/portal/dead-letters/d1/replay",
                admin(ReplayDeadLetter("d1".into())),
            ),
            (
                Get,
                "/v1/portal/integrations",
                admin(ListRecords(RecordKind::Integration)),
            ),
            (
                Get,
                "/v1/portal/integrations/crm",
                admin(GetRecord(RecordKind::Integration, Some("crm".into()))),
            ),
            (Get, "/v1/portal/usage", admin(Usage)),
            (Get, "/v1/portal/keys", admin(ListKeys)),
            (Post, "/v1/portal/keys", admin(CreateKey)),
            (
                Delete,
                "/v1/portal/keys/key_1",
                admin(DeleteKey("key_1".into())),
            ),
            (
                Post,
                "/v1/portal/keys/key_1/rotate",
                admin(RotateKey("key_1".into())),
            ),
            (Get, "/v1/portal/marketplace", P::Marketplace),
            (
                Post,
                "/v1/portal/integrations/crm/connect",
                P::Connect("crm".into()),
            ),
            (
                Delete,
                "/v1/portal/integrations/crm/connection",
                P::Disconnect("crm".into()),
            ),
            // What the portal never offers still parses, and is refused by capability (403).
            (
                Get,
                "/v1/portal",
                admin(GetRecord(RecordKind::Tenant, None)),
            ),
            (Post, "/v1/portal/portal-links", admin(MintPortalLink)),
        ] {
            assert_eq!(api(m, p), want, "{p}");
            let r = match_route(m, p).unwrap();
            assert_eq!(
                (r.access(), r.usage(), r.tenant()),
                (Access::Portal, None, None),
                "{p}"
            );
            assert!(r.name().starts_with("/v1/portal"), "{p}");
        }
        assert_eq!(
            admin_name("/v1/admin/tenants/acme/portal-links"),
            "/v1/admin/tenants/{t}/portal-links"
        );
        for (m, p, status) in [
            (Get, "/v1/portal/session", 405),
            (Post, "/v1/portal/me", 405),
            (Get, "/v1/portal/integrations/crm/connect", 405),
            (Get, "/v1/portal/events/../x", 404),
            (Get, "/v1/portal/events/a:b", 400),
            (Get, "/v1/portal/nope/x", 404),
            (Post, "/portal", 405),
        ] {
            assert_eq!(match_route(m, p).unwrap_err().status(), status, "{p}");
        }
    }

    fn admin_name(p: &str) -> &'static str {
        match_route(InboundMethod::Post, p).unwrap().name()
    }

    #[test]
    fn ids_that_walk_paths_are_refused() {
        for p in [
            "/v1/admin/tenants/../sources",
            "/v1/admin/tenants/%2e%2e",
            "/v1/admin/tenants/a:b",
            "/v1/admin/tenants/acme/sources/..%2f",
        ] {
            assert_eq!(
                match_route(InboundMethod::Get, p).unwrap_err().status(),
                400,
                "{p}"
            );
        }
    }

    #[test]
    fn names_never_hold_ids() {
        let r = match_route(
            InboundMethod::Get,
            "/v1/admin/tenants/acme/sources/secret-name",
        )
        .unwrap();
        assert_eq!(r.name(), "/v1/admin/tenants/{t}/sources/{source}");
        assert_eq!(r.tenant(), Some("acme"));
    }
}
