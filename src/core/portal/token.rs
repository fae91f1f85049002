//! The portal's two signed tokens (`core::sign::token`): the link the operator mints (`Link`,
//! spent once for a session) and the session the page then sends on every call (`Session`), each
//! under a label of its own, so a link is never taken as a session (nor either as a connect's
//! state). What a token binds (the tenant's incarnation) is the flow's to compare with the
//! tenant as it is now.

use super::capability::Capability;
pub use crate::core::sign::token::{Refused, Signed};
use serde::{Deserialize, Serialize};

/// What a portal link binds: which tenant (in which incarnation) and what its session may do.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Link {
    pub tenant: String,
    pub incarnation: String,
    pub capabilities: Vec<Capability>,
    /// Random (hex): what the session exchange spends once.
    pub nonce: String,
    /// Unix seconds.
    pub expires_at: u64,
}

/// What a portal session binds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Session {
    pub tenant: String,
    pub incarnation: String,
    pub capabilities: Vec<Capability>,
    /// Random (hex): names the session in logs, never a key to anything.
    pub session: String,
    /// Unix seconds.
    pub expires_at: u64,
}

impl Signed for Link {
    const LABEL: &'static [u8] = b"portal-link\x1f";
    fn expires_at(&self) -> u64 {
        self.expires_at
    }
}

impl Signed for Session {
    const LABEL: &'static [u8] = b"portal-session\x1f";
    fn expires_at(&self) -> u64 {
        self.expires_at
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::integration::connect::state::ConnectState;
    use crate::core::sign::token::tag;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use base64::Engine;

    const KEY: [u8; 32] = [7; 32];
    const OLD: [u8; 32] = [9; 32];

    fn link() -> Link {
        Link {
            tenant: "acme".into(),
            incarnation: "i1".into(),
            capabilities: vec![Capability::Events, Capability::Keys],
            nonce: "ab".repeat(16),
            expires_at: 2_000,
        }
    }

    fn session() -> Session {
        Session {
            tenant: "acme".into(),
            incarnation: "i1".into(),
            capabilities: vec![Capability::Usage],
            session: "cd".repeat(16),
            expires_at: 5_000,
        }
    }

    #[test]
    fn a_token_opens_under_any_ring_key_until_it_expires() {
        let signed = link().sign(&OLD);
        assert_eq!(Link::open(&[KEY, OLD], &signed, 1_000), Ok(link()));
        assert_eq!(Link::open(&[KEY, OLD], &signed, 1_999), Ok(link()));
        assert_eq!(
            Link::open(&[KEY, OLD], &signed, 2_000),
            Err(Refused::Expired)
        );
        assert_eq!(Link::open(&[KEY], &signed, 1_000), Err(Refused::Forged));
        let s = session().sign(&KEY);
        assert_eq!(Session::open(&[KEY], &s, 4_999), Ok(session()));
        assert_eq!(Session::open(&[KEY], &s, 5_000), Err(Refused::Expired));
        assert_eq!(Session::open(&[OLD], &s, 1), Err(Refused::Forged));
    }

    #[test]
    fn a_changed_token_is_refused() {
        let signed = link().sign(&KEY);
        let (payload, tag) = signed.split_once('.').unwrap();
        // Another tenant, or a capability added, under the original tag.
        let mut other = link();
        other.tenant = "other".into();
        let mut more = link();
        more.capabilities.push(Capability::Destinations);
        let mut later = link();
        later.expires_at += 3_600;
        for changed in [other, more, later] {
            let moved = changed.sign(&KEY).split_once('.').unwrap().0.to_string();
            let forged = format!("{moved}.{tag}");
            assert_eq!(Link::open(&[KEY], &forged, 1_000), Err(Refused::Forged));
        }
        // A tag flipped by one character.
        let mut flipped = tag.to_string().into_bytes();
        flipped[0] = if flipped[0] == b'0' { b'1' } else { b'0' };
        let flipped = format!("{payload}.{}", String::from_utf8(flipped).unwrap());
        assert_eq!(Link::open(&[KEY], &flipped, 1_000), Err(Refused::Forged));
    }

    #[test]
    fn a_link_is_never_a_session_nor_a_connect_state_and_the_reverse() {
        let l = link().sign(&KEY);
        let s = session().sign(&KEY);
        assert_eq!(Session::open(&[KEY], &l, 1_000), Err(Refused::Forged));
        assert_eq!(Link::open(&[KEY], &s, 1_000), Err(Refused::Forged));
        // A connect state, signed under the same key: its label is another.
        let state = ConnectState {
            nonce: "00".repeat(16),
            tenant: "acme".into(),
            incarnation: "i1".into(),
            integration: "crm".into(),
            return_url: "https://x.example/".into(),
            expires_at: 2_000,
        }
        .sign(&KEY);
        assert_eq!(Link::open(&[KEY], &state, 1_000), Err(Refused::Forged));
        assert_eq!(Session::open(&[KEY], &state, 1_000), Err(Refused::Forged));
    }

    #[test]
    fn malformed_text_is_refused_never_a_panic() {
        let long = "a".repeat(3_000);
        let bad_json = {
            let p = URL_SAFE_NO_PAD.encode(b"[1,2]");
            format!("{p}.{}", tag(Link::LABEL, &KEY, &p))
        };
        let bad_b64 = format!("!!.{}", tag(Link::LABEL, &KEY, "!!"));
        // Signed by us with a field too many: a different shape, refused.
        let extra = {
            let mut v = serde_json::to_value(link()).unwrap();
            v["admin"] = true.into();
            let p = URL_SAFE_NO_PAD.encode(v.to_string());
            format!("{p}.{}", tag(Link::LABEL, &KEY, &p))
        };
        // An unknown capability, signed.
        let unknown = {
            let mut v = serde_json::to_value(link()).unwrap();
            v["capabilities"] = serde_json::json!(["events", "root"]);
            let p = URL_SAFE_NO_PAD.encode(v.to_string());
            format!("{p}.{}", tag(Link::LABEL, &KEY, &p))
        };
        for t in [
            "", ".", "x", "x.y.z", &long, &bad_json, &bad_b64, &extra, &unknown,
        ] {
            let r = Link::open(&[KEY], t, 1_000);
            assert!(
                matches!(r, Err(Refused::Malformed | Refused::Forged)),
                "{t}: {r:?}"
            );
        }
        for t in [&bad_json, &bad_b64, &extra, &unknown] {
            assert_eq!(Link::open(&[KEY], t, 1_000), Err(Refused::Malformed));
        }
        assert_eq!(
            Link::open(&[], &link().sign(&KEY), 1_000),
            Err(Refused::Forged)
        );
    }
}
