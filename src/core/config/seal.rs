//! Credential sealing: every secret in KV is AES-256-GCM under a master key, with the tenant id,
//! the record and the field path as associated data, so a ciphertext copied into another tenant's
//! record (or another field) does not open.
//!
//! The master keys are a keyring (`MASTER_KEYS`, or the one `MASTER_KEY`): the first seals, every
//! one opens. A sealed value names the key that sealed it (`v2.{key id}.{ciphertext}`), so a
//! rotation knows what is left to re-seal (`core::tenant::reseal`). A key's id is a digest of the
//! key, never chosen by hand, so it cannot name the wrong key. Values sealed before key ids
//! (`v1.`) are tried under every key.

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine;
use hmac::{Hmac, Mac};
use sha2::Sha256;

/// Sealed before values carried their key's id.
const UNLABELLED: &str = "v1.";
const LABELLED: &str = "v2.";
/// Master keys a keyring may hold: a rotation needs two; more only slows every unlabelled open.
const MAX_KEYS: usize = 4;

/// One master key: its cipher, its id, and the key it derives for signed identifiers.
struct MasterKey {
    id: String,
    cipher: Aes256Gcm,
    /// A key of its own for the gateway's signed identifiers (widget conversation ids), derived
    /// from the master key so no second secret must be managed.
    id_key: [u8; 32],
    /// A key of its own for digests of secrets that name stored state (OAuth token keys): a
    /// digest anyone could recompute would let a reader of those names test guesses offline.
    digest_key: [u8; 32],
}

impl MasterKey {
    /// 64 hex characters or standard base64 of 32 bytes.
    fn parse(text: &str) -> Result<Self, SealError> {
        let s = text.trim();
        let bytes = if s.len() == 64 && s.bytes().all(|b| b.is_ascii_hexdigit()) {
            hex::decode(s).map_err(|_| SealError::BadMasterKey)?
        } else {
            STANDARD.decode(s).map_err(|_| SealError::BadMasterKey)?
        };
        if bytes.len() != 32 {
            return Err(SealError::BadMasterKey);
        }
        let cipher = Aes256Gcm::new_from_slice(&bytes).map_err(|_| SealError::BadMasterKey)?;
        let mac = |label: &[u8]| -> [u8; 32] {
            let mut m = <Hmac<Sha256> as Mac>::new_from_slice(&bytes)
                .expect("HMAC takes keys of any length");
            m.update(label);
            m.finalize().into_bytes().into()
        };
        Ok(MasterKey {
            id: hex::encode(&mac(b"edge-gateway/key-id/v1")[..4]),
            cipher,
            id_key: mac(b"edge-gateway/ids/v1"),
            digest_key: mac(b"edge-gateway/digests/v1"),
        })
    }

    fn open(&self, ctx: &SealContext, raw: &[u8]) -> Result<String, SealError> {
        if raw.len() < 12 + 16 {
            return Err(SealError::CannotOpen);
        }
        let (nonce, ct) = raw.split_at(12);
        let payload = Payload {
            msg: ct,
            aad: &ctx.aad(),
        };
        let pt = self
            .cipher
            .decrypt(Nonce::from_slice(nonce), payload)
            .map_err(|_| SealError::CannotOpen)?;
        String::from_utf8(pt).map_err(|_| SealError::CannotOpen)
    }
}

/// The master keys: the first seals, every one opens.
pub struct Sealer {
    keys: Vec<MasterKey>,
    id_keys: Vec<[u8; 32]>,
    digest_keys: Vec<[u8; 32]>,
}

#[derive(Debug, PartialEq, Eq)]
pub enum SealError {
    /// A master key is not 32 bytes as base64 or hex, or there are none or too many.
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

/// A sealed value that opened, and the id of the key it was sealed under.
pub struct Opened {
    pub plaintext: String,
    pub key_id: String,
}

impl Sealer {
    /// The keyring from `MASTER_KEYS` (keys separated by commas or white space, the sealing one
    /// first) or from a single `MASTER_KEY`; each is 64 hex characters or base64 of 32 bytes.
    pub fn new(master_keys: &str) -> Result<Self, SealError> {
        let mut keys: Vec<MasterKey> = Vec::new();
        for text in master_keys.split(|c: char| c == ',' || c.is_whitespace()) {
            if text.is_empty() {
                continue;
            }
            let key = MasterKey::parse(text)?;
            if !keys.iter().any(|k| k.id == key.id) {
                keys.push(key);
            }
        }
        if keys.is_empty() || keys.len() > MAX_KEYS {
            return Err(SealError::BadMasterKey);
        }
        let id_keys = keys.iter().map(|k| k.id_key).collect();
        let digest_keys = keys.iter().map(|k| k.digest_key).collect();
        Ok(Sealer {
            keys,
            id_keys,
            digest_keys,
        })
    }

    /// The id of the key that seals.
    pub fn current_key_id(&self) -> &str {
        &self.keys[0].id
    }

    /// Every key's id, the sealing one first.
    pub fn key_ids(&self) -> Vec<&str> {
        self.keys.iter().map(|k| k.id.as_str()).collect()
    }

    /// The keys that sign identifiers the gateway issues: the first signs, every one verifies.
    pub fn id_keys(&self) -> &[[u8; 32]] {
        &self.id_keys
    }

    /// The key that signs what the gateway issues now (a ring always has one: `new` refuses
    /// an empty one).
    pub fn id_key(&self) -> &[u8; 32] {
        &self.id_keys[0]
    }

    /// The keys of keyed digests of secrets (`core::integration::oauth::token_keys`): the first
    /// makes them, each names what the ring's other keys made.
    pub fn digest_keys(&self) -> &[[u8; 32]] {
        &self.digest_keys
    }

    /// Seals under the current key with a caller-supplied random 96-bit nonce (core has no
    /// randomness of its own).
    pub fn seal(&self, ctx: &SealContext, plaintext: &str, nonce: &[u8; 12]) -> String {
        let key = &self.keys[0];
        let ct = key
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
        format!("{LABELLED}{}.{}", key.id, URL_SAFE_NO_PAD.encode(out))
    }

    pub fn open(&self, ctx: &SealContext, sealed: &str) -> Result<String, SealError> {
        self.open_labelled(ctx, sealed).map(|o| o.plaintext)
    }

    /// Opens a value and says which key sealed it: what a rotation counts and re-seals.
    pub fn open_labelled(&self, ctx: &SealContext, sealed: &str) -> Result<Opened, SealError> {
        let decode = |b64: &str| {
            URL_SAFE_NO_PAD
                .decode(b64)
                .map_err(|_| SealError::CannotOpen)
        };
        let opened = |k: &MasterKey, plaintext| Opened {
            plaintext,
            key_id: k.id.clone(),
        };
        if let Some(rest) = sealed.strip_prefix(LABELLED) {
            let (id, b64) = rest.split_once('.').ok_or(SealError::CannotOpen)?;
            let key = self.keys.iter().find(|k| k.id == id);
            let key = key.ok_or(SealError::CannotOpen)?;
            return Ok(opened(key, key.open(ctx, &decode(b64)?)?));
        }
        let raw = decode(
            sealed
                .strip_prefix(UNLABELLED)
                .ok_or(SealError::CannotOpen)?,
        )?;
        self.keys
            .iter()
            .find_map(|k| k.open(ctx, &raw).ok().map(|p| opened(k, p)))
            .ok_or(SealError::CannotOpen)
    }

    /// Whether `sealed` names the current key (else a rotation re-seals it).
    pub fn is_current(&self, sealed: &str) -> bool {
        sealed
            .strip_prefix(LABELLED)
            .and_then(|rest| rest.split_once('.'))
            .is_some_and(|(id, _)| id == self.current_key_id())
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
        let s = Sealer::new(KEY).unwrap();
        let sealed = s.seal(&ctx("acme", "/secrets/0"), "whsec_abc", &[1; 12]);
        assert!(sealed.starts_with(&format!("v2.{}.", s.current_key_id())));
        assert!(!sealed.contains("whsec_abc"));
        assert_eq!(
            s.open(&ctx("acme", "/secrets/0"), &sealed).unwrap(),
            "whsec_abc"
        );
    }

    #[test]
    fn does_not_open_under_another_tenant_field_or_key() {
        let s = Sealer::new(KEY).unwrap();
        let sealed = s.seal(&ctx("acme", "/secrets/0"), "whsec_abc", &[1; 12]);
        assert_eq!(
            s.open(&ctx("globex", "/secrets/0"), &sealed),
            Err(SealError::CannotOpen)
        );
        assert_eq!(
            s.open(&ctx("acme", "/secrets/1"), &sealed),
            Err(SealError::CannotOpen)
        );
        let other = Sealer::new(&"ff".repeat(32)).unwrap();
        assert_eq!(
            other.open(&ctx("acme", "/secrets/0"), &sealed),
            Err(SealError::CannotOpen)
        );
    }

    #[test]
    fn tampering_any_byte_fails() {
        let s = Sealer::new(KEY).unwrap();
        let sealed = s.seal(&ctx("acme", "/f"), "secret", &[3; 12]);
        let (label, b64) = sealed.rsplit_once('.').unwrap();
        let raw = URL_SAFE_NO_PAD.decode(b64).unwrap();
        for i in 0..raw.len() {
            let mut t = raw.clone();
            t[i] ^= 0x01;
            let forged = format!("{label}.{}", URL_SAFE_NO_PAD.encode(&t));
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
        assert!(Sealer::new(&STANDARD.encode([5u8; 32])).is_ok());
        assert_eq!(Sealer::new("short").err(), Some(SealError::BadMasterKey));
        assert_eq!(
            Sealer::new(&STANDARD.encode([5u8; 16])).err(),
            Some(SealError::BadMasterKey)
        );
    }

    #[test]
    fn keyring_keys_are_listed_with_digest_ids() {
        let (old, new) = (KEY, "ff".repeat(32));
        let ring = Sealer::new(&format!("{new}, {old}\n{new}")).unwrap();
        let (o, n) = (Sealer::new(old).unwrap(), Sealer::new(&new).unwrap());
        assert_eq!(ring.key_ids(), vec![n.current_key_id(), o.current_key_id()]);
        assert_eq!(ring.current_key_id().len(), 8);
        assert!(!KEY.contains(o.current_key_id()));
        assert_eq!(
            ring.id_keys(),
            &[*n.id_keys().first().unwrap(), o.id_keys()[0]]
        );
        assert_eq!(Sealer::new(" , ").err(), Some(SealError::BadMasterKey));
        let five: Vec<String> = (1..=5u8).map(|i| hex::encode([i; 32])).collect();
        assert_eq!(
            Sealer::new(&five.join(",")).err(),
            Some(SealError::BadMasterKey)
        );
        assert_eq!(
            Sealer::new(&format!("{old},short")).err(),
            Some(SealError::BadMasterKey)
        );
    }

    /// A rotation: values sealed under the old key open under the ring of both, are re-sealed
    /// under the new one, and then open under the new key alone.
    #[test]
    fn rotation_reseals_under_the_first_key() {
        let new = "ff".repeat(32);
        let old_only = Sealer::new(KEY).unwrap();
        let ring = Sealer::new(&format!("{new},{KEY}")).unwrap();
        let new_only = Sealer::new(&new).unwrap();
        let at = ctx("acme", "/secrets/0");
        let before = old_only.seal(&at, "whsec_abc", &[1; 12]);
        let opened = ring.open_labelled(&at, &before).unwrap();
        assert_eq!(
            (opened.plaintext.as_str(), opened.key_id.as_str()),
            ("whsec_abc", old_only.current_key_id())
        );
        assert!(!ring.is_current(&before));
        let after = ring.seal(&at, &opened.plaintext, &[2; 12]);
        assert!(ring.is_current(&after));
        assert_eq!(new_only.open(&at, &after).unwrap(), "whsec_abc");
        assert_eq!(new_only.open(&at, &before), Err(SealError::CannotOpen));
        // A label naming a key the ring lacks does not open, even with the right bytes.
        let relabelled = before.replace(old_only.current_key_id(), new_only.current_key_id());
        assert_eq!(ring.open(&at, &relabelled), Err(SealError::CannotOpen));
    }

    /// Values sealed before key ids (`v1.` + nonce and ciphertext) open under whichever key of
    /// the ring sealed them, and count as not current.
    #[test]
    fn unlabelled_values_open_under_any_key_of_the_ring() {
        let at = ctx("acme", "/f");
        let cipher = Aes256Gcm::new_from_slice(&hex::decode(KEY).unwrap()).unwrap();
        let payload = Payload {
            msg: b"legacy".as_slice(),
            aad: &at.aad(),
        };
        let ct = cipher
            .encrypt(Nonce::from_slice(&[7; 12]), payload)
            .unwrap();
        let legacy = format!(
            "v1.{}",
            URL_SAFE_NO_PAD.encode([[7u8; 12].as_slice(), &ct].concat())
        );
        let ring = Sealer::new(&format!("{},{KEY}", "ff".repeat(32))).unwrap();
        let opened = ring.open_labelled(&at, &legacy).unwrap();
        assert_eq!(opened.plaintext, "legacy");
        assert_eq!(opened.key_id, ring.key_ids()[1]);
        assert!(!ring.is_current(&legacy));
        assert_eq!(
            Sealer::new(&"ff".repeat(32)).unwrap().open(&at, &legacy),
            Err(SealError::CannotOpen)
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
