//! Visitor sessions: signed session tokens, and identities signed by the host site.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use sha2::Sha256;

type HmacSha256 = Hmac<Sha256>;

/// Length of a session id: 32 lowercase hex digits (a subject token as it is).
const SESSION_LEN: usize = 32;

/// Issues and checks session tokens `v1.<session id>.<signature>`.
#[derive(Clone)]
pub struct Sessions {
    key: Vec<u8>,
    identity_key: Option<Vec<u8>>,
}

/// A user of the host site, as the page vouched for them.
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize)]
pub struct ClaimedIdentity {
    /// The host site's user id.
    pub user_id: String,
    /// Hex HMAC-SHA256 of `user_id` with the shared identity key.
    pub hash: String,
    /// Display name, if the page gave one.
    #[serde(default)]
    pub name: Option<String>,
    /// Email, if the page gave one.
    #[serde(default)]
    pub email: Option<String>,
}

impl Sessions {
    /// Sessions signed with `key`; identities checked with `identity_key` when there is one.
    pub fn new(key: Vec<u8>, identity_key: Option<Vec<u8>>) -> Sessions {
        Sessions { key, identity_key }
    }

    fn mac(&self, session: &str) -> HmacSha256 {
        let mut mac = HmacSha256::new_from_slice(&self.key).expect("HMAC takes any key length");
        mac.update(b"switchboard-webchat-session:");
        mac.update(session.as_bytes());
        mac
    }

    /// A new session and its token.
    pub fn issue(&self) -> (String, String) {
        let session = uuid::Uuid::new_v4().simple().to_string();
        let token = self.token_for(&session);
        (session, token)
    }

    /// The token of an existing session.
    pub fn token_for(&self, session: &str) -> String {
        let sig = URL_SAFE_NO_PAD.encode(self.mac(session).finalize().into_bytes());
        format!("v1.{session}.{sig}")
    }

    /// A signature over `value` for `purpose` (e.g. a file link), URL-safe.
    pub fn sign(&self, purpose: &str, value: &str) -> String {
        URL_SAFE_NO_PAD.encode(self.purpose_mac(purpose, value).finalize().into_bytes())
    }

    /// Whether `sig` is this server's signature over `value` for `purpose` (constant time).
    pub fn verify_sig(&self, purpose: &str, value: &str, sig: &str) -> bool {
        URL_SAFE_NO_PAD.decode(sig).is_ok_and(|sig| self.purpose_mac(purpose, value).verify_slice(&sig).is_ok())
    }

    fn purpose_mac(&self, purpose: &str, value: &str) -> HmacSha256 {
        let mut mac = HmacSha256::new_from_slice(&self.key).expect("HMAC takes any key length");
        mac.update(b"switchboard-webchat-");
        mac.update(purpose.as_bytes());
        mac.update(b":");
        mac.update(value.as_bytes());
        mac
    }

    /// The session a token names, if this server signed it (checked in constant time).
    pub fn verify(&self, token: &str) -> Option<String> {
        let mut parts = token.split('.');
        let (Some("v1"), Some(session), Some(sig), None) = (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return None;
        };
        if !is_session_id(session) {
            return None;
        }
        let sig = URL_SAFE_NO_PAD.decode(sig).ok()?;
        self.mac(session).verify_slice(&sig).ok()?;
        Some(session.to_string())
    }

    /// The host site's user id when the page's claim is signed with the identity key; `None`
    /// when it is not, or when no identity key is configured.
    pub fn verify_identity(&self, claim: &ClaimedIdentity) -> Option<String> {
        let key = self.identity_key.as_ref()?;
        if claim.user_id.is_empty() || claim.user_id.len() > 200 {
            return None;
        }
        let expected = hex_decode(&claim.hash)?;
        let mut mac = HmacSha256::new_from_slice(key).expect("HMAC takes any key length");
        mac.update(claim.user_id.as_bytes());
        mac.verify_slice(&expected).ok()?;
        Some(claim.user_id.clone())
    }
}

/// Whether `s` has the form of a session id (which is also a valid subject token).
pub fn is_session_id(s: &str) -> bool {
    s.len() == SESSION_LEN && s.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// The signature a host site puts on a user id (`data-user-hash`): hex HMAC-SHA256.
pub fn sign_identity(identity_key: &[u8], user_id: &str) -> String {
    let mut mac = HmacSha256::new_from_slice(identity_key).expect("HMAC takes any key length");
    mac.update(user_id.as_bytes());
    mac.finalize().into_bytes().iter().map(|b| format!("{b:02x}")).collect()
}

fn hex_decode(s: &str) -> Option<Vec<u8>> {
    if s.len() != 64 {
        return None;
    }
    (0..s.len()).step_by(2).map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sessions() -> Sessions {
        Sessions::new(b"0123456789abcdef0123456789abcdef".to_vec(), Some(b"identity-key-0123".to_vec()))
    }

    #[test]
    fn tokens_verify_only_when_signed_here() {
        let s = sessions();
        let (session, token) = s.issue();
        assert_eq!(s.verify(&token).as_deref(), Some(session.as_str()));
        let other = Sessions::new(b"another key another key another k".to_vec(), None);
        assert_eq!(other.verify(&token), None);
        let forged = format!("v1.{}.{}", "0".repeat(32), token.rsplit('.').next().unwrap());
        assert_eq!(s.verify(&forged), None);
        for bad in ["", "v1", "v1..", "v2.x.y", &format!("{token}.x"), "v1.ABCDEF0123456789ABCDEF0123456789.xx"] {
            assert_eq!(s.verify(bad), None, "{bad}");
        }
    }

    #[test]
    fn identities_need_the_host_sites_signature() {
        let s = sessions();
        let hash = sign_identity(b"identity-key-0123", "42");
        let claim = ClaimedIdentity { user_id: "42".into(), hash: hash.clone(), name: None, email: None };
        assert_eq!(s.verify_identity(&claim).as_deref(), Some("42"));
        let wrong = ClaimedIdentity { user_id: "43".into(), hash, name: None, email: None };
        assert_eq!(s.verify_identity(&wrong), None);
        let garbage = ClaimedIdentity { user_id: "42".into(), hash: "zz".into(), name: None, email: None };
        assert_eq!(s.verify_identity(&garbage), None);
        let unkeyed = Sessions::new(b"0123456789abcdef0123456789abcdef".to_vec(), None);
        assert_eq!(unkeyed.verify_identity(&claim), None);
    }
}
