//! Real servers for Switchboard's tests, started on free ports and cleaned up on drop.
//!
//! Tests talk to real servers, never mocks: a NATS JetStream server ([`NatsServer`]) and dovecot
//! with OpenSMTPD for mail ([`MailServer`]). When a server binary is missing the harness panics
//! with the command that installs it: a test must never pass by skipping its server.

mod mail;
mod nats;
mod wait;

pub use mail::{MAIL_DOMAIN, MailConfig, MailServer};
pub use nats::NatsServer;
pub use wait::{free_port, wait_until};
