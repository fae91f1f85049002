//! Webhooks: verification of inbound signatures and signing of outbound deliveries.

pub mod bus;
pub mod dedupe;
pub mod default_destination;
pub mod delivery;
pub mod destination;
pub mod destination_checks;
pub mod endpoints;
pub mod event_log;
pub mod event_types;
pub mod fanout;
pub mod flow;
pub mod handshake;
pub mod health;
pub mod ingress;
pub mod log_admin;
pub mod normalize;
pub mod ordering_key;
pub mod rotation;
pub mod sample_flow;
pub mod samples;
pub mod source;
pub mod source_kind;
pub mod target;
pub mod verify;

use base64::engine::general_purpose::STANDARD;
use base64::Engine;

/// The key bytes of a Standard Webhooks secret: base64 after the `whsec_` prefix.
pub fn standard_secret_bytes(secret: &str) -> Option<Vec<u8>> {
    let b = STANDARD.decode(secret.strip_prefix("whsec_")?).ok()?;
    (24..=64).contains(&b.len()).then_some(b)
}

#[cfg(test)]
mod tests {
    #[test]
    fn standard_secret() {
        // The secret used throughout the Standard Webhooks reference test suite.
        assert_eq!(
            super::standard_secret_bytes("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")
                .unwrap()
                .len(),
            24
        );
        assert!(super::standard_secret_bytes("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").is_none());
        assert!(super::standard_secret_bytes("whsec_!!").is_none());
    }
}
