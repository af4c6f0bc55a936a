//! `webhook_signature`: structured input for Standard Webhooks signature verification, and the
//! webhook channel's inbound body parsing.

use arbitrary::{Arbitrary, Unstructured};
use switchboard_channel_webhook::signature::{SignatureError, sign, verify};
use switchboard_channel_webhook::{WebhookCsat, WebhookMessage, decode_secret, to_envelope};
use switchboard_core::{Contract, Envelope};

/// One request as a source could send it, plus the receiver's key, clock and tolerance.
#[derive(Debug, Arbitrary)]
struct Request<'a> {
    key: &'a [u8],
    id: Option<&'a str>,
    timestamp: Option<&'a str>,
    signatures: Option<&'a str>,
    now: i64,
    tolerance: u64,
    /// Where a correctly signed copy is tampered with: a body byte and a non-zero bit mask.
    flip_at: usize,
    flip_mask: u8,
    /// Other `webhook-signature` entries sent next to the correct one.
    others: &'a str,
    secret: &'a str,
    body: &'a [u8],
}

/// Verifies arbitrary headers; a signature from `sign` verifies (also among others) and stops
/// verifying when any body byte changes; the body, as the channel parses it, becomes a valid
/// envelope or an error.
pub fn run(data: &[u8]) {
    let Ok(r) = Request::arbitrary_take_rest(Unstructured::new(data)) else { return };
    let _ = verify(r.key, r.id, r.timestamp, r.signatures, r.body, r.now, r.tolerance);
    let _ = decode_secret(r.secret);

    let id = r.id.filter(|id| !id.is_empty()).unwrap_or("msg_1");
    let signature = sign(r.key, id, r.now, r.body);
    let ts = r.now.to_string();
    let check =
        |signatures: &str, body: &[u8]| verify(r.key, Some(id), Some(&ts), Some(signatures), body, r.now, r.tolerance);
    assert_eq!(check(&signature, r.body), Ok(()), "our own signature is refused");
    let among = format!("{} {signature} {}", r.others, r.others);
    assert_eq!(check(&among, r.body), Ok(()), "our signature among others is refused");
    if !r.body.is_empty() {
        let mut tampered = r.body.to_vec();
        tampered[r.flip_at % r.body.len()] ^= r.flip_mask.max(1);
        assert_eq!(check(&signature, &tampered), Err(SignatureError::Mismatch), "a changed body verifies");
    }

    inbound_body(r.body);
}

/// The inbound handler's parsing: a survey answer, or a message that becomes an envelope.
fn inbound_body(body: &[u8]) {
    let _ = serde_json::from_slice::<WebhookCsat>(body);
    let Ok(message) = serde_json::from_slice::<WebhookMessage>(body) else { return };
    let Ok(envelope) = to_envelope("fuzz", message) else { return };
    // The contract may still refuse it (publishing answers 400 then), but not a valid one's JSON.
    if envelope.validate().is_ok() {
        let again = Envelope::from_json(&serde_json::to_vec(&envelope).unwrap_or_default());
        assert_eq!(again.as_ref(), Ok(&envelope), "the envelope does not survive its JSON");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The seeds were written for arbitrary's encoding (fields in order, lengths from the end);
    /// if that encoding changes, they would silently become noise.
    #[test]
    fn the_spec_example_seed_is_a_validly_signed_request() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../fuzz/corpus/webhook_signature/spec_example");
        let data = std::fs::read(path).unwrap_or_else(|e| panic!("{path}: {e}"));
        let r = Request::arbitrary_take_rest(Unstructured::new(&data)).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(r.id, Some("msg_p5jXN8AQM9LWM0D4loKWxJek"));
        assert_eq!(r.body, br#"{"test": 2432232314}"#);
        assert_eq!(verify(r.key, r.id, r.timestamp, r.signatures, r.body, r.now, r.tolerance), Ok(()));
    }
}
