//! Real servers for Switchboard's tests, started on free ports and cleaned up on drop.
//!
//! Tests talk to a real NATS JetStream server, never a mock. When the server binary is missing the
//! harness panics with the command that installs it: a test must never pass by skipping its server.

mod nats;
mod wait;

pub use nats::NatsServer;
pub use wait::{free_port, wait_until};
