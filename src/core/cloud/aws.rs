//! AWS: access keys (Bedrock providers, SQS and EventBridge destinations), regions, and the
//! names of AWS's errors.

use crate::core::config::document::Secret;
use crate::core::sign::AwsCredentials;
use serde::{Deserialize, Serialize};

/// An AWS access key: the id in clear, the secret (and a temporary key's session token) sealed.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AwsKeys {
    pub access_key_id: String,
    pub secret_access_key: Secret,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session_token: Option<Secret>,
}

impl AwsKeys {
    /// The key opened for signing: `open` opens a sealed field by its name in the key's block
    /// (`secret_access_key`, `session_token`).
    pub fn open<E>(
        &self,
        mut open: impl FnMut(&str, &Secret) -> Result<String, E>,
    ) -> Result<AwsCredentials, E> {
        Ok(AwsCredentials {
            access_key_id: self.access_key_id.clone(),
            secret_access_key: open("secret_access_key", &self.secret_access_key)?,
            session_token: match &self.session_token {
                Some(t) => Some(open("session_token", t)?),
                None => None,
            },
        })
    }
}

/// An access key id as AWS issues them (`AKIA…`, `ASIA…`): 16 to 128 letters and digits.
pub fn valid_access_key_id(id: &str) -> bool {
    (16..=128).contains(&id.len()) && id.bytes().all(|b| b.is_ascii_alphanumeric())
}

/// An AWS region as AWS names them (`us-east-1`, `eu-central-2`, `us-gov-west-1`,
/// `ap-southeast-7`): a partition-area prefix, a direction, a number. Nothing else, since the
/// region makes the endpoint's host (`s3-external-1` would be another service's).
pub fn valid_region(r: &str) -> bool {
    let parts: Vec<&str> = r.split('-').collect();
    let letters = |s: &str, n: std::ops::RangeInclusive<usize>| {
        n.contains(&s.len()) && s.bytes().all(|b| b.is_ascii_lowercase())
    };
    let (area, rest) = match parts.as_slice() {
        [area, "gov" | "iso" | "isob", rest @ ..] | [area, rest @ ..] => (*area, rest),
        [] => return false,
    };
    matches!(rest, [direction, number]
        if letters(area, 2..=2)
            && letters(direction, 4..=9)
            && (1..=2).contains(&number.len())
            && number.bytes().all(|b| b.is_ascii_digit()))
}

/// An AWS error's name without its namespace (`com.amazonaws.sqs#QueueDoesNotExist`) or the
/// suffix `x-amzn-errortype` may carry (`ValidationException:http://…`).
pub fn error_name(raw: &str) -> &str {
    let t = raw.rsplit('#').next().unwrap_or(raw);
    t.split(':').next().unwrap_or_default().trim()
}
