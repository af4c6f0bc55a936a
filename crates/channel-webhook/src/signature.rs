//! Standard Webhooks signatures: `v1,<base64 HMAC-SHA256 of "{id}.{timestamp}.{body}">`.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, Mac};
use sha2::Sha256;

/// Header carrying the message id.
pub const ID: &str = "webhook-id";
/// Header carrying the Unix timestamp in seconds.
pub const TIMESTAMP: &str = "webhook-timestamp";
/// Header carrying one or more space-separated `v1,<base64>` signatures.
pub const SIGNATURE: &str = "webhook-signature";

/// Why a signature was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    /// A required header is absent or not text.
    #[error("missing header {0}")]
    MissingHeader(&'static str),
    /// The timestamp is not an integer.
    #[error("webhook-timestamp is not a Unix timestamp")]
    BadTimestamp,
    /// The timestamp is outside the tolerance: a replay or a badly wrong clock.
    #[error("webhook-timestamp is {0} s away from now, outside the tolerance")]
    StaleTimestamp(i64),
    /// No signature matched.
    #[error("no signature matches")]
    Mismatch,
}

fn mac(key: &[u8], id: &str, timestamp: i64, body: &[u8]) -> Hmac<Sha256> {
    // HMAC accepts keys of any length, so this cannot fail.
    let mut mac =
        <Hmac<Sha256> as Mac>::new_from_slice(key).unwrap_or_else(|_| unreachable!("HMAC takes any key length"));
    mac.update(id.as_bytes());
    mac.update(b".");
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    mac
}

/// The `webhook-signature` value for a message.
pub fn sign(key: &[u8], id: &str, timestamp: i64, body: &[u8]) -> String {
    format!("v1,{}", STANDARD.encode(mac(key, id, timestamp, body).finalize().into_bytes()))
}

/// The `webhook-signature` value with one signature per key, space-separated: during a secret
/// rotation a receiver holding either the old or the new secret finds one that matches.
pub fn sign_all(keys: &[&[u8]], id: &str, timestamp: i64, body: &[u8]) -> String {
    keys.iter().map(|key| sign(key, id, timestamp, body)).collect::<Vec<_>>().join(" ")
}

/// Verifies headers and body against `key`, with `now` and `tolerance_secs` bounding the
/// timestamp. The comparison is constant-time.
pub fn verify(
    key: &[u8],
    id: Option<&str>,
    timestamp: Option<&str>,
    signatures: Option<&str>,
    body: &[u8],
    now: i64,
    tolerance_secs: u64,
) -> Result<(), SignatureError> {
    verify_any(&[key], id, timestamp, signatures, body, now, tolerance_secs)
}

/// Like [`verify`], accepting a signature made with any of `keys`: the current secret and, while
/// it is being rotated, the previous one.
pub fn verify_any(
    keys: &[&[u8]],
    id: Option<&str>,
    timestamp: Option<&str>,
    signatures: Option<&str>,
    body: &[u8],
    now: i64,
    tolerance_secs: u64,
) -> Result<(), SignatureError> {
    let id = id.filter(|v| !v.is_empty()).ok_or(SignatureError::MissingHeader(ID))?;
    let timestamp = timestamp.ok_or(SignatureError::MissingHeader(TIMESTAMP))?;
    let signatures = signatures.ok_or(SignatureError::MissingHeader(SIGNATURE))?;
    let ts: i64 = timestamp.trim().parse().map_err(|_| SignatureError::BadTimestamp)?;
    let skew = now.saturating_sub(ts);
    if skew.unsigned_abs() > tolerance_secs {
        return Err(SignatureError::StaleTimestamp(skew));
    }
    let expected: Vec<_> = keys.iter().map(|key| mac(key, id, ts, body)).collect();
    let matched = signatures
        .split_whitespace()
        .filter_map(|s| s.strip_prefix("v1,"))
        .filter_map(|b64| STANDARD.decode(b64).ok())
        .any(|sig| expected.iter().any(|mac| mac.clone().verify_slice(&sig).is_ok()));
    if matched { Ok(()) } else { Err(SignatureError::Mismatch) }
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &[u8] = b"0123456789abcdef0123456789abcdef";

    #[test]
    fn signs_and_verifies() {
        let sig = sign(KEY, "msg_1", 1_700_000_000, b"{}");
        let check = |sigs: &str, body: &[u8], now: i64| {
            verify(KEY, Some("msg_1"), Some("1700000000"), Some(sigs), body, now, 300)
        };
        assert_eq!(check(&sig, b"{}", 1_700_000_000), Ok(()));
        assert_eq!(check(&format!("v1,AAAA {sig}"), b"{}", 1_700_000_100), Ok(()), "any of several signatures");
        assert_eq!(check(&sig, b"{ }", 1_700_000_000), Err(SignatureError::Mismatch));
        assert_eq!(check(&sig.replace("v1,", "v2,"), b"{}", 1_700_000_000), Err(SignatureError::Mismatch));
        assert_eq!(check(&sig, b"{}", 1_700_000_301), Err(SignatureError::StaleTimestamp(301)));
        assert_eq!(check(&sig, b"{}", 1_699_999_600), Err(SignatureError::StaleTimestamp(-400)));
        assert_eq!(verify(KEY, None, Some("1"), Some(&sig), b"{}", 1, 300), Err(SignatureError::MissingHeader(ID)));
        assert_eq!(verify(KEY, Some("a"), Some("x"), Some(&sig), b"{}", 1, 300), Err(SignatureError::BadTimestamp));
    }

    #[test]
    fn a_rotation_accepts_either_key_and_signs_with_both() {
        const OLD: &[u8] = b"fedcba9876543210fedcba9876543210";
        let keys: &[&[u8]] = &[KEY, OLD];
        let check = |sigs: &str, keys: &[&[u8]]| {
            verify_any(keys, Some("msg_1"), Some("1700000000"), Some(sigs), b"{}", 1_700_000_000, 300)
        };
        let by_old = sign(OLD, "msg_1", 1_700_000_000, b"{}");
        let by_new = sign(KEY, "msg_1", 1_700_000_000, b"{}");
        assert_eq!(check(&by_old, keys), Ok(()));
        assert_eq!(check(&by_new, keys), Ok(()));
        assert_eq!(check(&by_old, &[KEY]), Err(SignatureError::Mismatch), "the old key alone is no longer enough");
        let both = sign_all(keys, "msg_1", 1_700_000_000, b"{}");
        assert_eq!(both, format!("{by_new} {by_old}"));
        assert_eq!(check(&both, &[OLD]), Ok(()), "a receiver still on the old secret");
        assert_eq!(check(&both, &[KEY]), Ok(()), "a receiver already on the new secret");
        assert_eq!(check(&both, &[b"another-key-0123456789"]), Err(SignatureError::Mismatch));
    }

    /// The example from the Standard Webhooks specification's reference implementations.
    #[test]
    fn matches_the_specification_example() {
        let key = STANDARD.decode("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap();
        let body = br#"{"test": 2432232314}"#;
        assert_eq!(
            sign(&key, "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, body),
            "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
        );
    }
}
