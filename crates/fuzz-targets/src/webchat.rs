//! `webchat_session`: bytes as a web chat session token, a file-link signature and a host-signed
//! identity claim.

use switchboard_channel_webchat::session::{ClaimedIdentity, Sessions, is_session_id};

/// Verifies `data` as the web chat's signed values: only what this server (or the host site)
/// signed verifies, and what it signs always does.
pub fn run(data: &[u8]) {
    let sessions = Sessions::new(b"fuzz-session-key-0123456789abcdef".to_vec(), Some(b"fuzz-identity-key".to_vec()));
    let text = String::from_utf8_lossy(data);
    if let Some(session) = sessions.verify(&text) {
        assert!(is_session_id(&session), "a verified token names {session:?}");
    }
    let _ = sessions.verify_sig("file", "object", &text);
    assert!(sessions.verify_sig("file", &text, &sessions.sign("file", &text)), "our own file signature is refused");
    if is_session_id(&text) {
        assert_eq!(sessions.verify(&sessions.token_for(&text)).as_deref(), Some(&*text), "our own token is refused");
    }
    if let Ok(claim) = serde_json::from_slice::<ClaimedIdentity>(data)
        && let Some(user) = sessions.verify_identity(&claim)
    {
        assert_eq!(user, claim.user_id);
    }
}
