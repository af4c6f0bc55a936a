//! Switchboard's email channel.
//!
//! Inbound, it watches IMAP mailboxes (IDLE, with polling as the fallback), turns each message into
//! an envelope and marks it handled only after JetStream stored the envelope. Outbound, it sends
//! replies over SMTP threaded into the customer's mail client. Agents can work conversations from
//! their own mailbox. It never decides routing and never logs message bodies or secrets.

pub mod parse;
