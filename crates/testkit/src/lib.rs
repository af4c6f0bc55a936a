//! Real servers for Switchboard's tests, started on free ports and cleaned up on drop.
//!
//! Tests talk to real servers, never mocks: a NATS JetStream server ([`NatsServer`]) and dovecot
//! with OpenSMTPD for mail ([`MailServer`]). When a server binary is missing the harness panics
//! with the command that installs it: a test must never pass by skipping its server. The one
//! exception is Telegram, unreachable from CI: behind the `telegram` feature, `FakeBotApi` serves
//! the Bot API's real wire format and enforces its rules, for the real client to talk to.
//! Behind the `matrix` feature, [`Synapse`] is a real Matrix homeserver (SQLite, loopback only).
//! Behind the `whatsapp` feature, `FakeGraph` is a fake WhatsApp Cloud API (also unreachable from
//! CI), enforcing its documented rules, and signs webhook notifications as Meta does.

mod mail;
mod nats;
mod nats_cluster;
mod nats_configured;
#[cfg(feature = "slack")]
mod slack;
#[cfg(feature = "matrix")]
mod synapse;
#[cfg(feature = "matrix")]
mod synapse_client;
#[cfg(feature = "telegram")]
mod telegram;
#[cfg(feature = "vk")]
mod vk;
mod wait;
#[cfg(feature = "whatsapp")]
mod whatsapp;

pub use mail::{MAIL_DOMAIN, MailConfig, MailServer};
pub use nats::{NatsServer, TEST_MAX_FILE_STORE};
pub use nats_cluster::NatsCluster;
pub use nats_configured::ConfiguredNatsServer;
#[cfg(feature = "slack")]
pub use slack::{
    Answer as SlackAnswer, ApiCall as SlackCall, FAKE_BOT_USER_ID as FAKE_SLACK_BOT_USER, FakeSlack,
    Message as SlackMessage, SlackSigner, SocketAck, Upload as SlackUpload,
};
#[cfg(feature = "matrix")]
pub use synapse::{MatrixUser, SYNAPSE_SERVER_NAME, SYNAPSE_VERSION, Synapse};
#[cfg(feature = "matrix")]
pub use synapse_client::{MatrixTestClient, transcript};
#[cfg(feature = "telegram")]
pub use telegram::{
    AnsweredCallback, ApiRequest, EditedMessage, FAKE_BOT_FIRST_NAME, FAKE_BOT_USERNAME, FakeBotApi, FakeError,
    GetUpdatesCall, SentFile, SentMessage, Webhook,
};
#[cfg(feature = "vk")]
pub use vk::{FAKE_VK_VERSION, FakeVk, VkCall, VkSent, VkUpload};
pub use wait::{free_port, wait_until};
#[cfg(feature = "whatsapp")]
pub use whatsapp::{
    FAKE_GRAPH_VERSION, FakeGraph, GraphCall, GraphFault, SentWhatsApp, WhatsAppUpload,
    notification as whatsapp_notification,
};
