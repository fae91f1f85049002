//! Request signatures the gateway computes for a cloud provider: AWS Signature Version 4 (Bedrock)
//! and the RS256 assertion a Google service account exchanges for an access token (Vertex AI).
//! Pure: the time comes in as a parameter.

pub mod jwt;
pub mod sigv4;
pub mod token;

/// An AWS access key, opened (never logged, never in an answer).
#[derive(Clone, PartialEq, Eq)]
pub struct AwsCredentials {
    pub access_key_id: String,
    pub secret_access_key: String,
    /// Temporary credentials (an `ASIA…` key) come with a session token.
    pub session_token: Option<String>,
}

impl std::fmt::Debug for AwsCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AwsCredentials")
            .field("access_key_id", &self.access_key_id)
            .finish_non_exhaustive()
    }
}
