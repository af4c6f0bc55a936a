//! Slack's request signing, version `v0`: `X-Slack-Signature: v0=<hex HMAC-SHA256>` over
//! `v0:<X-Slack-Request-Timestamp>:<raw body>` with the app's signing secret
//! (<https://api.slack.com/authentication/verifying-requests-from-slack>). Checked before anything
//! reads the body as JSON or a form; the comparison is constant-time (`Mac::verify_slice`).

use hmac::{Hmac, Mac};
use sha2::Sha256;

/// The header with the request's signature.
pub const SIGNATURE_HEADER: &str = "X-Slack-Signature";
/// The header with the request's Unix timestamp (seconds).
pub const TIMESTAMP_HEADER: &str = "X-Slack-Request-Timestamp";

/// Why a request's signature was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    /// No signature or timestamp header.
    #[error("missing X-Slack-Signature or X-Slack-Request-Timestamp")]
    Missing,
    /// A header that is not `v0=<64 hex digits>` or a timestamp that is not a number.
    #[error("malformed signature or timestamp")]
    Malformed,
    /// A timestamp further from now than the tolerance: a replay, or a clock far off.
    #[error("timestamp outside the tolerance")]
    Stale,
    /// The signature does not match the body with this secret.
    #[error("signature does not match")]
    Mismatch,
}

/// The `v0=<hex>` signature of `body` sent at `timestamp` (what Slack puts in the header).
pub fn sign(secret: &[u8], timestamp: &str, body: &[u8]) -> String {
    format!("v0={}", hex::encode(mac(secret, timestamp, body).finalize().into_bytes()))
}

fn mac(secret: &[u8], timestamp: &str, body: &[u8]) -> Hmac<Sha256> {
    // HMAC takes a key of any length.
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(secret).expect("HMAC accepts any key length");
    mac.update(b"v0:");
    mac.update(timestamp.as_bytes());
    mac.update(b":");
    mac.update(body);
    mac
}

/// Verifies a request: the timestamp within `tolerance_secs` of `now` (Unix seconds), then the
/// signature over the raw body, compared in constant time.
pub fn verify(
    secret: &[u8],
    timestamp: Option<&str>,
    signature: Option<&str>,
    body: &[u8],
    now: i64,
    tolerance_secs: u64,
) -> Result<(), SignatureError> {
    let (Some(timestamp), Some(signature)) = (timestamp, signature) else { return Err(SignatureError::Missing) };
    let at: i64 = timestamp.trim().parse().map_err(|_| SignatureError::Malformed)?;
    if now.abs_diff(at) > tolerance_secs {
        return Err(SignatureError::Stale);
    }
    let hex_part = signature.strip_prefix("v0=").ok_or(SignatureError::Malformed)?;
    let given = hex::decode(hex_part).map_err(|_| SignatureError::Malformed)?;
    if given.len() != 32 {
        return Err(SignatureError::Malformed);
    }
    mac(secret, timestamp.trim(), body).verify_slice(&given).map_err(|_| SignatureError::Mismatch)
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &[u8] = b"8f742231b10e8888abcd99yyyzzz85a5";

    #[test]
    fn slack_documented_example_verifies() {
        // The worked example of Slack's "Verifying requests from Slack" page.
        let body = b"token=xyzz0WbapA4vBCDEFasx0q6G&team_id=T1DC2JH3J&team_domain=testteamnow&channel_id=G8PSS9T3V&channel_name=foobar&user_id=U2CERLKJA&user_name=roadrunner&command=%2Fwebhook-collect&text=&response_url=https%3A%2F%2Fhooks.slack.com%2Fcommands%2FT1DC2JH3J%2F397700885554%2F96rGlfmibIGlgcZRskXaIFfN&trigger_id=398738663015.47445629121.803a0bc887a14d10d2c447fce8b6703c";
        let signature = "v0=a2114d57b48eac39b9ad189dd8316235a7b4a8d21a10bd27519666489c69b503";
        assert_eq!(sign(SECRET, "1531420618", body), signature);
        assert_eq!(verify(SECRET, Some("1531420618"), Some(signature), body, 1531420618 + 10, 300), Ok(()));
    }

    #[test]
    fn wrong_secret_tampered_body_stale_and_malformed_are_refused() {
        let body = br#"{"type":"event_callback"}"#;
        let now = 1_800_000_000;
        let ts = now.to_string();
        let good = sign(SECRET, &ts, body);
        assert_eq!(verify(SECRET, Some(&ts), Some(&good), body, now, 300), Ok(()));
        let other = sign(b"another secret of the same len", &ts, body);
        assert_eq!(verify(SECRET, Some(&ts), Some(&other), body, now, 300), Err(SignatureError::Mismatch));
        let tampered = br#"{"type":"event_callback "}"#;
        assert_eq!(verify(SECRET, Some(&ts), Some(&good), tampered, now, 300), Err(SignatureError::Mismatch));
        // Five minutes and one second old; and as far in the future.
        assert_eq!(verify(SECRET, Some(&ts), Some(&good), body, now + 301, 300), Err(SignatureError::Stale));
        assert_eq!(verify(SECRET, Some(&ts), Some(&good), body, now - 301, 300), Err(SignatureError::Stale));
        // The same signature with another timestamp header is not valid: the timestamp is signed.
        let later = (now + 1).to_string();
        assert_eq!(verify(SECRET, Some(&later), Some(&good), body, now, 300), Err(SignatureError::Mismatch));
        assert_eq!(verify(SECRET, None, Some(&good), body, now, 300), Err(SignatureError::Missing));
        assert_eq!(verify(SECRET, Some(&ts), None, body, now, 300), Err(SignatureError::Missing));
        assert_eq!(verify(SECRET, Some("soon"), Some(&good), body, now, 300), Err(SignatureError::Malformed));
        assert_eq!(verify(SECRET, Some(&ts), Some(&good[3..]), body, now, 300), Err(SignatureError::Malformed));
        assert_eq!(verify(SECRET, Some(&ts), Some("v0=abcd"), body, now, 300), Err(SignatureError::Malformed));
        assert_eq!(verify(SECRET, Some(&ts), Some("v1=zz"), body, now, 300), Err(SignatureError::Malformed));
    }
}
