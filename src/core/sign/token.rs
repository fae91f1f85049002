//! Signed tokens the gateway hands out and takes back (a connect's state, a portal link, a
//! portal session): signed, not secret. `{payload}.{tag}`, the content as unpadded base64url
//! JSON and its HMAC-SHA256 (first 16 bytes, hex) under the keyring's id key, each kind under a
//! label of its own, so no kind is ever taken as another. Any ring key verifies, so a token
//! issued before a master key rotation still opens.

use crate::core::webhook::verify::{ct_eq, hmac_sha256};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde::de::DeserializeOwned;
use serde::Serialize;

/// The longest token taken (ours are a few hundred characters).
const MAX_TOKEN: usize = 2048;

/// Why a token is not taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refused {
    /// Not a token of this kind's shape.
    Malformed,
    /// Its tag is not one of our keys' over its content under this kind's label.
    Forged,
    /// Ours, but too late.
    Expired,
}

/// A signed token kind.
pub trait Signed: Serialize + DeserializeOwned {
    /// Separates this kind's tags from every other's made under the same key.
    const LABEL: &'static [u8];
    fn expires_at(&self) -> u64;

    fn sign(&self, key: &[u8; 32]) -> String {
        let payload = URL_SAFE_NO_PAD.encode(serde_json::to_vec(self).unwrap_or_default());
        let tag = tag(Self::LABEL, key, &payload);
        format!("{payload}.{tag}")
    }

    /// The token, if one of `keys` signed it as this kind and it has not expired at `now_s`.
    /// Never panics, whatever the text.
    fn open(keys: &[[u8; 32]], token: &str, now_s: u64) -> Result<Self, Refused> {
        let t = Self::open_signed(keys, token)?;
        if now_s >= t.expires_at() {
            return Err(Refused::Expired);
        }
        Ok(t)
    }

    /// The token, if one of `keys` signed it as this kind, expired or not (a connect's callback
    /// still sends the user back to an expired state's return URL).
    fn open_signed(keys: &[[u8; 32]], token: &str) -> Result<Self, Refused> {
        if token.len() > MAX_TOKEN {
            return Err(Refused::Malformed);
        }
        let (payload, given) = token.split_once('.').ok_or(Refused::Malformed)?;
        let signed = keys
            .iter()
            .any(|k| ct_eq(given.as_bytes(), tag(Self::LABEL, k, payload).as_bytes()));
        if !signed {
            return Err(Refused::Forged);
        }
        let bytes = URL_SAFE_NO_PAD
            .decode(payload)
            .map_err(|_| Refused::Malformed)?;
        serde_json::from_slice(&bytes).map_err(|_| Refused::Malformed)
    }
}

/// The tag of `payload` under `key` for a kind's `label`.
pub(crate) fn tag(label: &[u8], key: &[u8; 32], payload: &str) -> String {
    let mac = hmac_sha256(key, &[label, payload.as_bytes()]);
    hex::encode(&mac[..16])
}
