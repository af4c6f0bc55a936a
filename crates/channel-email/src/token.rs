//! Reply tokens: what goes into `support+<token>@domain`, the subject and our Message-IDs so that
//! a reply finds its way back even when the mail client drops `References`.
//!
//! A thread token (`t…`) names a customer's thread; its thread key is kept in KV under
//! [`thread_key_of`]. An agent token (`a…`) names a conversation and is signed for one agent, so
//! that mail from that agent's address can act on that conversation and nothing else.

use hmac::{Hmac, Mac};
use sha2::Sha256;
use subtle::ConstantTimeEq;
use uuid::Uuid;

type HmacSha256 = Hmac<Sha256>;

/// The key that signs tokens.
#[derive(Clone)]
pub struct TokenKey(Vec<u8>);

impl TokenKey {
    /// A key from the configured secret; at least 16 bytes.
    pub fn new(secret: &[u8]) -> Result<TokenKey, String> {
        if secret.len() < 16 {
            return Err(format!("the token secret is {} bytes; use at least 16", secret.len()));
        }
        Ok(TokenKey(secret.to_vec()))
    }

    fn mac(&self, parts: &[&[u8]]) -> [u8; 32] {
        let mut mac = <HmacSha256 as Mac>::new_from_slice(&self.0).expect("HMAC takes any key length");
        for p in parts {
            mac.update(&(p.len() as u64).to_be_bytes());
            mac.update(p);
        }
        mac.finalize().into_bytes().into()
    }

    /// The token of a customer thread: `t` and 20 hex digits, the same for the same thread.
    pub fn thread_token(&self, thread_key: &str) -> String {
        format!("t{}", hex(&self.mac(&[b"thread", thread_key.as_bytes()])[..10]))
    }

    /// The token an agent replies to for one conversation: `a`, the conversation, a 56-bit signature
    /// (47 characters: with `+` it fits an address's 64-byte local part).
    pub fn agent_token(&self, agent: &str, conversation: Uuid) -> String {
        let sig = self.mac(&[b"agent", agent.as_bytes(), conversation.as_bytes()]);
        format!("a{}{}", conversation.simple(), hex(&sig[..7]))
    }

    /// The conversation an agent token names, when it is signed for `agent`.
    pub fn verify_agent_token(&self, agent: &str, token: &str) -> Option<Uuid> {
        let rest = token.strip_prefix('a')?;
        if rest.len() != 46 {
            return None;
        }
        // `get`: the length is in bytes, and a token from elsewhere need not be ASCII.
        let conversation = Uuid::try_parse(rest.get(..32)?).ok()?;
        let expected = self.agent_token(agent, conversation);
        // Constant-time (the lengths are public): a forged token must not be guessable byte by byte.
        let same = bool::from(expected.as_bytes().ct_eq(token.as_bytes()));
        same.then_some(conversation)
    }
}

/// What a token is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Token {
    /// A customer thread token.
    Thread(String),
    /// An agent token (not yet verified).
    Agent(String),
}

/// Classifies a token string by its prefix.
pub fn token_kind(token: &str) -> Option<Token> {
    let ok = token.len() <= 48 && token.bytes().all(|b| b.is_ascii_alphanumeric());
    match token.as_bytes().first() {
        Some(b't') if ok && token.len() == 21 => Some(Token::Thread(token.to_string())),
        Some(b'a') if ok && token.len() == 47 => Some(Token::Agent(token.to_string())),
        _ => None,
    }
}

/// The KV key (bucket `sb_channels`) holding a thread token's thread key.
pub fn thread_key_of(token: &str) -> String {
    format!("email.thread.{token}")
}

/// The KV key (bucket `sb_channels`) marking one of our mails as the satisfaction survey, so
/// that only a reply to the survey itself is read as a rating.
pub fn csat_key_of(outbound: Uuid) -> String {
    format!("email.csat.{}", outbound.simple())
}

/// Our Message-ID for a message we send: its id, the conversation, then the thread token, so a
/// bounce names the conversation and a reply that only keeps `In-Reply-To` still names the thread.
pub fn message_id(outbound: Uuid, conversation: Uuid, token: &str, domain: &str) -> String {
    format!("{}.{}.{token}@{domain}", outbound.simple(), conversation.simple())
}

/// What one of our Message-IDs (without angle brackets) names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OurMessageId {
    /// The outbound message or delivery.
    pub outbound: Uuid,
    /// Its conversation.
    pub conversation: Uuid,
    /// The token it carried.
    pub token: String,
}

/// Reads one of our Message-IDs; `None` for anybody else's.
pub fn our_message_id(id: &str, domain: &str) -> Option<OurMessageId> {
    let id = id.trim().trim_start_matches('<').trim_end_matches('>');
    let (local, d) = id.rsplit_once('@')?;
    if !d.eq_ignore_ascii_case(domain) {
        return None;
    }
    let mut parts = local.splitn(3, '.');
    let outbound = Uuid::try_parse(parts.next()?).ok()?;
    let conversation = Uuid::try_parse(parts.next()?).ok()?;
    let token = parts.next()?;
    token_kind(token)?;
    Some(OurMessageId { outbound, conversation, token: token.to_string() })
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> TokenKey {
        TokenKey::new(b"0123456789abcdef-test").unwrap()
    }

    #[test]
    fn thread_tokens_are_stable_and_classified() {
        let t = key().thread_token("<root@example.com>");
        assert_eq!(t, key().thread_token("<root@example.com>"));
        assert_ne!(t, key().thread_token("<other@example.com>"));
        assert_eq!(token_kind(&t), Some(Token::Thread(t.clone())));
        let (o, c) = (Uuid::now_v7(), Uuid::now_v7());
        let id = message_id(o, c, &t, "example.test");
        let ours = our_message_id(&format!("<{id}>"), "EXAMPLE.test").expect("ours");
        assert_eq!(ours, OurMessageId { outbound: o, conversation: c, token: t.clone() });
        assert_eq!(our_message_id(&id, "elsewhere.test"), None);
        assert_eq!(our_message_id("CAF00.x.y@mail.gmail.com", "gmail.com"), None);
    }

    #[test]
    fn agent_tokens_verify_only_for_their_agent_and_conversation() {
        let c = Uuid::now_v7();
        let t = key().agent_token("alice", c);
        assert_eq!(t.len(), 47, "fits the parser's 48-character limit");
        assert_eq!(key().verify_agent_token("alice", &t), Some(c));
        assert_eq!(key().verify_agent_token("bob", &t), None, "signed for alice only");
        let mut forged = t.clone();
        forged.replace_range(46.., if t.ends_with('0') { "1" } else { "0" });
        assert_eq!(key().verify_agent_token("alice", &forged), None);
        let other = TokenKey::new(b"another-secret-key-16").unwrap();
        assert_eq!(other.verify_agent_token("alice", &t), None);
        assert_eq!(key().verify_agent_token("alice", "a-short"), None);
        // Found while writing the `mime` fuzz target: 46 bytes after `a`, but not 32 ASCII characters first.
        let multibyte = format!("a{}é{}", "0".repeat(31), "0".repeat(13));
        assert_eq!(multibyte.len(), 47);
        assert_eq!(key().verify_agent_token("alice", &multibyte), None);
        assert!(TokenKey::new(b"short").is_err());
    }
}
