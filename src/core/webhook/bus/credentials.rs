//! A bus destination's credentials, opened for one attempt: its AWS key, its Kafka proxy's, or
//! an access token for its service account, held by the destination's `OauthTokens` object.

use crate::core::config::document::{open_secret, RecordRef, Secret};
use crate::core::config::seal::Sealer;
use crate::core::error::{ApiError, ErrorKind};
use crate::core::flow::Co;
use crate::core::integration::oauth::Holder;
use crate::core::integration::tokens::{access_token, OauthSecrets, TokenFor};
use crate::core::platform::RecordKind;
use crate::core::sign::AwsCredentials;
use crate::core::upstream::Trail;
use crate::core::webhook::delivery::DeliveryOutcome;
use crate::core::webhook::destination::DestinationKind;
use crate::core::webhook::endpoints::Endpoint;

/// A bus's opened credentials (never logged: `Debug` names the kind only).
#[derive(Clone, PartialEq, Eq)]
pub enum Credentials {
    Aws(AwsCredentials),
    /// An access token the destination's token object fetched (Pub/Sub's): renewed once when
    /// the bus refuses it.
    AccessToken(String),
    /// A fixed token the tenant gave (a Kafka proxy's): never renewed, a refusal is final.
    Bearer(String),
    Basic {
        username: String,
        password: String,
    },
    None,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Credentials::Aws(c) => c.fmt(f),
            Credentials::AccessToken(_) => f.write_str("AccessToken(..)"),
            Credentials::Bearer(_) => f.write_str("Bearer(..)"),
            Credentials::Basic { username, .. } => write!(f, "Basic({username}, ..)"),
            Credentials::None => f.write_str("None"),
        }
    }
}

/// The opened credentials of `ep`'s bus: its AWS key, its Kafka proxy's, or an access token for
/// its service account (the destination's `OauthTokens` object fetches one when none is held;
/// `rejected` is one the bus just refused). A token that cannot be had is an attempt that
/// failed, tried again later.
pub async fn open(
    co: &Co,
    sealer: &Sealer,
    tenant: &str,
    ep: &Endpoint,
    trail: &Trail,
    rejected: Option<&str>,
) -> Result<Result<Credentials, DeliveryOutcome>, ApiError> {
    let cfg = &ep.cfg;
    let record = RecordKind::Destination.seal_record(Some(&ep.name));
    let at = RecordRef {
        tenant,
        record: &record,
    };
    let open = |field: &str, s: &Secret| open_secret(sealer, &at, field, s);
    if let (DestinationKind::Sqs | DestinationKind::Eventbridge, Some(aws)) = (cfg.kind, &cfg.aws) {
        let keys = aws.keys.open(|f, s| open(&format!("/aws/{f}"), s))?;
        return Ok(Ok(Credentials::Aws(keys)));
    }
    if let (DestinationKind::Kafka, Some(auth)) =
        (cfg.kind, cfg.kafka.as_ref().and_then(|k| k.auth.as_ref()))
    {
        return Ok(Ok(match (&auth.username, &auth.password, &auth.token) {
            (Some(u), Some(p), _) => Credentials::Basic {
                username: u.clone(),
                password: open("/kafka/auth/password", p)?,
            },
            (_, _, Some(t)) => Credentials::Bearer(open("/kafka/auth/token", t)?),
            _ => Credentials::None,
        }));
    }
    let (DestinationKind::Pubsub, Some(g)) = (cfg.kind, &cfg.google) else {
        return Ok(Ok(Credentials::None));
    };
    let sa = &g.service_account;
    let key = sa
        .private_key
        .as_ref()
        .ok_or_else(|| ApiError::internal("a stored service account has no private key"))?;
    let secrets = OauthSecrets {
        client_secret: open("/google/service_account/private_key", key)?,
        refresh_token: None,
    };
    let auth = super::pubsub::token_auth(sa);
    let token_for = TokenFor {
        sealer,
        tenant,
        holder: Holder::Destination {
            name: &ep.name,
            url: &cfg.url,
            auth: &auth,
        },
        secrets: &secrets,
        trail: trail.clone(),
    };
    match access_token(co, &token_for, rejected).await {
        Ok(token) => Ok(Ok(Credentials::AccessToken(token))),
        // The token object's own words (an endpoint's status, a key it cannot sign with) name
        // no secret and quote nothing of the endpoint's answer.
        Err(e) if e.kind == ErrorKind::Upstream => Ok(Err(DeliveryOutcome::Retry {
            retry_after_s: None,
            reason: format!("no access token for the service account ({})", e.message),
        })),
        Err(e) => Err(e),
    }
}
