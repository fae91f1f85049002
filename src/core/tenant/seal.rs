//! Credential sealing: every secret in KV is AES-256-GCM under `MASTER_KEY`, with the tenant id,
//! the record and the field path as associated data, so a ciphertext copied into another tenant's
//! record (or another field) does not open.

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine;

const VERSION: &str = "v1.";

pub struct Sealer {
    cipher: Aes256Gcm,
    /// A key of its own for the gateway's signed identifiers (widget conversation ids), derived
    /// from `MASTER_KEY` so no second secret must be managed.
    id_key: [u8; 32],
}

#[derive(Debug, PartialEq, Eq)]
pub enum SealError {
    /// `MASTER_KEY` is not 32 bytes as base64 or hex.
    BadMasterKey,
    /// Wrong key, wrong tenant or field, or a tampered ciphertext: deliberately indistinguishable.
    CannotOpen,
}

/// Where a sealed value lives: the associated data binds it there.
pub struct SealContext<'a> {
    pub tenant: &'a str,
    /// The record, e.g. `source:whatsapp-main`.
    pub record: &'a str,
    /// The JSON pointer of the field, e.g. `/secrets/0`.
    pub field: &'a str,
}

impl SealContext<'_> {
    fn aad(&self) -> Vec<u8> {
        format!(
            "edge-gateway/seal/v1\x1f{}\x1f{}\x1f{}",
            self.tenant, self.record, self.field
        )
        .into_bytes()
    }
}

impl Sealer {
    /// `MASTER_KEY` as 64 hex characters or standard base64 of 32 bytes.
    pub fn from_master_key(master_key: &str) -> Result<Self, SealError> {
        let s = master_key.trim();
        let bytes = if s.len() == 64 && s.bytes().all(|b| b.is_ascii_hexdigit()) {
            hex::decode(s).map_err(|_| SealError::BadMasterKey)?
        } else {
            STANDARD.decode(s).map_err(|_| SealError::BadMasterKey)?
        };
        if bytes.len() != 32 {
            return Err(SealError::BadMasterKey);
        }
        let cipher = Aes256Gcm::new_from_slice(&bytes).map_err(|_| SealError::BadMasterKey)?;
        let id_key = crate::core::webhook::verify::hmac_sha256(&bytes, &[b"edge-gateway/ids/v1"]);
        Ok(Sealer { cipher, id_key })
    }

    /// The key that signs identifiers the gateway issues.
    pub fn id_key(&self) -> &[u8; 32] {
        &self.id_key
    }

    /// Seals with a caller-supplied random 96-bit nonce (core has no randomness of its own).
    pub fn seal(&self, ctx: &SealContext, plaintext: &str, nonce: &[u8; 12]) -> String {
        let ct = self
            .cipher
            .encrypt(
                Nonce::from_slice(nonce),
                Payload {
                    msg: plaintext.as_bytes(),
                    aad: &ctx.aad(),
                },
            )
            .expect("AES-GCM encryption of an in-memory buffer cannot fail");
        let mut out = Vec::with_capacity(12 + ct.len());
        out.extend_from_slice(nonce);
        out.extend_from_slice(&ct);
        format!("{VERSION}{}", URL_SAFE_NO_PAD.encode(out))
    }

    pub fn open(&self, ctx: &SealContext, sealed: &str) -> Result<String, SealError> {
        let b64 = sealed.strip_prefix(VERSION).ok_or(SealError::CannotOpen)?;
        let raw = URL_SAFE_NO_PAD
            .decode(b64)
            .map_err(|_| SealError::CannotOpen)?;
        if raw.len() < 12 + 16 {
            return Err(SealError::CannotOpen);
        }
        let (nonce, ct) = raw.split_at(12);
        let pt = self
            .cipher
            .decrypt(
                Nonce::from_slice(nonce),
                Payload {
                    msg: ct,
                    aad: &ctx.aad(),
                },
            )
            .map_err(|_| SealError::CannotOpen)?;
        String::from_utf8(pt).map_err(|_| SealError::CannotOpen)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str = "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f";

    fn ctx<'a>(tenant: &'a str, field: &'a str) -> SealContext<'a> {
        SealContext {
            tenant,
            record: "source:main",
            field,
        }
    }

    #[test]
    fn round_trip() {
        let s = Sealer::from_master_key(KEY).unwrap();
        let sealed = s.seal(&ctx("acme", "/secrets/0"), "whsec_abc", &[1; 12]);
        assert!(sealed.starts_with("v1."));
        assert!(!sealed.contains("whsec_abc"));
        assert_eq!(
            s.open(&ctx("acme", "/secrets/0"), &sealed).unwrap(),
            "whsec_abc"
        );
    }

    #[test]
    fn does_not_open_under_another_tenant_field_or_key() {
        let s = Sealer::from_master_key(KEY).unwrap();
        let sealed = s.seal(&ctx("acme", "/secrets/0"), "whsec_abc", &[1; 12]);
        assert_eq!(
            s.open(&ctx("globex", "/secrets/0"), &sealed),
            Err(SealError::CannotOpen)
        );
        assert_eq!(
            s.open(&ctx("acme", "/secrets/1"), &sealed),
            Err(SealError::CannotOpen)
        );
        let other = Sealer::from_master_key(&"ff".repeat(32)).unwrap();
        assert_eq!(
            other.open(&ctx("acme", "/secrets/0"), &sealed),
            Err(SealError::CannotOpen)
        );
    }

    #[test]
    fn tampering_any_byte_fails() {
        let s = Sealer::from_master_key(KEY).unwrap();
        let sealed = s.seal(&ctx("acme", "/f"), "secret", &[3; 12]);
        let raw = URL_SAFE_NO_PAD.decode(&sealed[3..]).unwrap();
        for i in 0..raw.len() {
            let mut t = raw.clone();
            t[i] ^= 0x01;
            let forged = format!("v1.{}", URL_SAFE_NO_PAD.encode(&t));
            assert_eq!(
                s.open(&ctx("acme", "/f"), &forged),
                Err(SealError::CannotOpen),
                "byte {i}"
            );
        }
        assert_eq!(
            s.open(&ctx("acme", "/f"), "v1.AAAA"),
            Err(SealError::CannotOpen)
        );
        assert_eq!(
            s.open(&ctx("acme", "/f"), "plain"),
            Err(SealError::CannotOpen)
        );
    }

    #[test]
    fn master_key_formats() {
        assert!(Sealer::from_master_key(&STANDARD.encode([5u8; 32])).is_ok());
        assert_eq!(
            Sealer::from_master_key("short").err(),
            Some(SealError::BadMasterKey)
        );
        assert_eq!(
            Sealer::from_master_key(&STANDARD.encode([5u8; 16])).err(),
            Some(SealError::BadMasterKey)
        );
    }

    /// NIST SP 800-38D / McGrew-Viega test case 16 (AES-256, 96-bit IV, with AAD): proves the
    /// crate is wired as the standard algorithm, so keys sealed here open anywhere.
    #[test]
    fn aes_256_gcm_standard_vector() {
        let key = hex::decode("feffe9928665731c6d6a8f9467308308feffe9928665731c6d6a8f9467308308")
            .unwrap();
        let iv = hex::decode("cafebabefacedbaddecaf888").unwrap();
        let pt = hex::decode("d9313225f88406e5a55909c5aff5269a86a7a9531534f7da2e4c303d8a318a721c3c0c95956809532fcf0e2449a6b525b16aedf5aa0de657ba637b39").unwrap();
        let aad = hex::decode("feedfacedeadbeeffeedfacedeadbeefabaddad2").unwrap();
        let cipher = Aes256Gcm::new_from_slice(&key).unwrap();
        let out = cipher
            .encrypt(
                Nonce::from_slice(&iv),
                Payload {
                    msg: &pt,
                    aad: &aad,
                },
            )
            .unwrap();
        assert_eq!(
            hex::encode(out),
            "522dc1f099567d07f47f37a32a84427d643a8cdcbfe5c0c97598a2bd2555d1aa8cb08e48590dbb3da7b08b1056828838c5f61e6393ba7a0abcc9f662\
76fc6ece0f4e1768cddf8853bb2d551b"
        );
    }
}
