//! The PKCE pair (RFC 7636, S256) of a connect and the `state` the provider carries back to the
//! callback.
//!
//! The state is signed, not secret (`core::sign::token`, under its own label): the tenant, its
//! incarnation, the integration, the return URL the tenant registered, an expiry, and a random
//! nonce. The nonce is what a callback spends once (its single use is kept where the
//! verifier waits, never in the state: the verifier does not leave the gateway).

pub use crate::core::sign::token::{Refused, Signed};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// How long a user may take between the authorization URL and the callback.
pub const STATE_TTL_S: u64 = 10 * 60;

/// A PKCE pair: the verifier stays with the gateway, the challenge goes to the provider.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pkce {
    pub verifier: String,
    pub challenge: String,
}

impl Pkce {
    /// From 32 random bytes: a 43-character verifier of the unreserved characters.
    pub fn new(random: &[u8; 32]) -> Pkce {
        let verifier = URL_SAFE_NO_PAD.encode(random);
        let challenge = s256(&verifier);
        Pkce {
            verifier,
            challenge,
        }
    }
}

/// `code_challenge` for `code_challenge_method=S256`: BASE64URL(SHA256(verifier)), unpadded.
pub fn s256(verifier: &str) -> String {
    URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()))
}

/// What a connect's state binds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConnectState {
    /// Random (hex): the connect attempt, spent once.
    pub nonce: String,
    pub tenant: String,
    pub incarnation: String,
    pub integration: String,
    pub return_url: String,
    /// Unix seconds.
    pub expires_at: u64,
}

impl Signed for ConnectState {
    const LABEL: &'static [u8] = b"connect-state\x1f";
    fn expires_at(&self) -> u64 {
        self.expires_at
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 7636, Appendix B: the verifier of those 32 octets and its S256 challenge.
    #[test]
    fn the_pkce_pair_is_rfc_7636s_example() {
        let octets: [u8; 32] = [
            116, 24, 223, 180, 151, 153, 224, 37, 79, 250, 96, 125, 216, 173, 187, 186, 22, 212,
            37, 77, 105, 214, 191, 240, 91, 88, 5, 88, 83, 132, 141, 121,
        ];
        let p = Pkce::new(&octets);
        assert_eq!(p.verifier, "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk");
        assert_eq!(p.challenge, "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM");
    }

    fn state() -> ConnectState {
        ConnectState {
            nonce: "00".repeat(16),
            tenant: "acme".into(),
            incarnation: "i1".into(),
            integration: "crm".into(),
            return_url: "https://app.acme.example/connected".into(),
            expires_at: 1_000 + STATE_TTL_S,
        }
    }

    const KEY: [u8; 32] = [7; 32];
    const OLD: [u8; 32] = [9; 32];

    #[test]
    fn a_state_comes_back_as_signed_under_any_ring_key_until_it_expires() {
        let signed = state().sign(&OLD);
        assert_eq!(ConnectState::open(&[KEY, OLD], &signed, 1_000), Ok(state()));
        let expiry = state().expires_at;
        let late = ConnectState::open(&[KEY, OLD], &signed, expiry);
        assert_eq!(late, Err(Refused::Expired));
        // Still ours when late: the callback sends the user back to its return URL.
        assert_eq!(ConnectState::open_signed(&[KEY, OLD], &signed), Ok(state()));
        let other = ConnectState::open(&[KEY], &signed, 1_000);
        assert_eq!(other, Err(Refused::Forged), "not our key's");
        assert_eq!(
            ConnectState::open_signed(&[KEY], &signed),
            Err(Refused::Forged)
        );
    }

    #[test]
    fn a_state_changed_on_its_way_or_not_ours_is_refused() {
        let signed = state().sign(&KEY);
        let (payload, tag) = signed.split_once('.').unwrap();
        let mut moved = state();
        moved.tenant = "other".into();
        let moved_payload = moved.sign(&KEY).split_once('.').unwrap().0.to_string();
        let refused = |s: &str| ConnectState::open(&[KEY], s, 1_000).unwrap_err();
        assert_eq!(refused(&format!("{moved_payload}.{tag}")), Refused::Forged);
        assert_eq!(
            refused(&format!("{payload}.{}", "0".repeat(32))),
            Refused::Forged
        );
        assert_eq!(refused(payload), Refused::Malformed);
        assert_eq!(refused(""), Refused::Malformed);
        assert_eq!(refused(&"a".repeat(3000)), Refused::Malformed);
        // Signed by us, but not a state: still refused, never a panic.
        let odd = URL_SAFE_NO_PAD.encode(b"[1,2]");
        assert_eq!(
            refused(&format!("{odd}.{}", tag_of(&odd))),
            Refused::Malformed
        );
    }

    fn tag_of(payload: &str) -> String {
        crate::core::sign::token::tag(ConnectState::LABEL, &KEY, payload)
    }
}
