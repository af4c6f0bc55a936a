//! Switchboard's email channel.
//!
//! Inbound, it watches IMAP mailboxes (IDLE, with polling as the fallback), turns each message into
//! an envelope and marks it handled only after JetStream stored the envelope; bounces become
//! `delivery_failed` events on their conversation, auto-replies and list mail are never routed,
//! unreadable mail becomes a dead letter with the reason; each fetched mail's outcome is counted
//! once (`switchboard_inbound_total{channel="email"}`). Outbound, it sends replies over SMTP
//! threaded into the customer's mail client. Agents can work conversations from their own
//! mailbox (endpoint kind `email`). It never decides routing and never logs message bodies or
//! secrets.

mod agent;
mod config;
mod error;
mod handle;
mod imap;
mod inbound;
mod outbound;
mod outcome;
pub mod parse;
pub mod replay;
mod smtp;
pub mod token;

use switchboard_adapter::{AdapterError, Channel, Inbound, SendError, SendReceipt};
use switchboard_bus::BusSlot;
use switchboard_core::OutboundMessage;

pub use agent::{AgentMail, ENDPOINT_KIND};
pub use config::{AgentMailConfig, EmailConfig, EmailConfigError, MailboxConfig, Security, SmtpConfig};
pub use error::EmailError;
pub use handle::{CHANNEL, DLQ_COMPONENT, Handler, Outcome};
pub use imap::Connector;
pub use inbound::{Cursor, MailboxWatcher, cursor_key};
pub use outbound::Sender;
pub use smtp::Mailer;

use crate::config::{read_secret, split_address};
use crate::parse::ParseLimits;
use crate::token::{TokenKey, csat_key_of, thread_key_of};

/// The email channel: mailboxes in, SMTP out.
pub struct EmailChannel {
    sender: Sender,
    mailer: Mailer,
    handler: Handler,
    connectors: Vec<Connector>,
    /// The largest file a reply carries (the same limit as files received).
    max_attachment_bytes: usize,
}

/// Who we are and how mail leaves, from the configuration.
fn sender_and_mailer(cfg: &EmailConfig) -> Result<(Sender, Mailer), EmailError> {
    cfg.validate()?;
    let secret = read_secret(&cfg.token_secret_env, &cfg.token_secret_file, "token_secret_env")?;
    let key = TokenKey::new(secret.as_bytes()).map_err(|e| EmailError::config("token_secret_env", e))?;
    let (_, domain) = split_address(&cfg.address).ok_or_else(|| EmailError::config("address", "not an address"))?;
    let sender =
        Sender { address: cfg.address.trim().to_string(), domain, display_name: cfg.display_name.clone(), key };
    Ok((sender, Mailer::new(&cfg.smtp)?))
}

/// The deliverer for agents who work from email, when the configuration has any.
pub fn agent_mail(cfg: &EmailConfig) -> Result<Option<AgentMail>, EmailError> {
    if cfg.agents.is_empty() {
        return Ok(None);
    }
    let (sender, mailer) = sender_and_mailer(cfg)?;
    let addresses = cfg.agents.iter().map(|(id, a)| (id.clone(), a.address.clone())).collect();
    Ok(Some(AgentMail::new(addresses, sender, mailer, cfg.runtime.clone())))
}

impl EmailChannel {
    /// Builds the channel. Reads every secret and certificate now, so a bad setting stops the
    /// start with the key named.
    pub fn new(cfg: &EmailConfig, bus: BusSlot) -> Result<EmailChannel, EmailError> {
        let (sender, mailer) = sender_and_mailer(cfg)?;
        let mut ours = vec![cfg.address.trim().to_lowercase()];
        ours.extend(cfg.own_addresses.iter().map(|a| a.trim().to_lowercase()));
        let limits = ParseLimits {
            max_message_bytes: cfg.max_message_bytes,
            max_attachment_bytes: cfg.max_attachment_bytes,
            ..ParseLimits::default()
        };
        let handler = Handler::new(bus, limits, &cfg.address, ours, agent_mail(cfg)?);
        let connectors = cfg.mailboxes.iter().map(|(name, m)| Connector::new(name, m)).collect::<Result<_, _>>()?;
        let max_attachment_bytes = cfg.max_attachment_bytes;
        Ok(EmailChannel { sender, mailer, handler, connectors, max_attachment_bytes })
    }
}

impl Channel for EmailChannel {
    fn name(&self) -> &str {
        CHANNEL
    }

    /// Mailboxes are watched by one process at a time (the others stand by): two watchers of
    /// one mailbox would fetch and mark the same messages.
    fn exclusive_inbound(&self) -> bool {
        true
    }

    async fn run_inbound(&self, inbound: Inbound) -> Result<(), AdapterError> {
        let watchers: Vec<_> = self
            .connectors
            .iter()
            .map(|c| {
                let watcher = MailboxWatcher::new(c.clone(), self.handler.clone());
                let inbound = inbound.clone();
                tokio::spawn(async move { watcher.run(inbound).await })
            })
            .collect();
        // Replayed dead letters are mail too: handled by whoever watches the mailboxes.
        let replays = tokio::spawn(replay::run(self.handler.clone(), inbound.clone()));
        for w in watchers {
            w.await.map_err(|e| AdapterError::Other(format!("mailbox watcher: {e}")))?;
        }
        match replays.await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(AdapterError::Other(format!("mail replays: {e}"))),
            Err(e) => Err(AdapterError::Other(format!("mail replays: {e}"))),
        }
    }

    async fn send(&self, message: &OutboundMessage) -> Result<SendReceipt, SendError> {
        let mut files = Vec::new();
        for a in message.attachments.iter().filter(|a| a.skipped.is_none() && !a.object.is_empty()) {
            let bus = self.handler.bus().map_err(|e| SendError::retryable(e.to_string()))?;
            let bytes = switchboard_adapter::read_attachment(bus, &a.object, self.max_attachment_bytes as u64).await?;
            files.push((a, bytes));
        }
        let (mail, token) = self.sender.reply_with(message, files)?;
        // Remember the thread before the mail leaves, so the customer's answer always finds it.
        let kv =
            self.handler.channels().await.map_err(|e| SendError::retryable(format!("channel state bucket: {e}")))?;
        kv.put(thread_key_of(&token), message.to.thread_key.clone().into())
            .await
            .map_err(|e| SendError::retryable(format!("store the thread token: {e}")))?;
        if outbound::survey_of(message).is_some() {
            kv.put(csat_key_of(message.id), message.conversation_id.to_string().into())
                .await
                .map_err(|e| SendError::retryable(format!("mark the survey: {e}")))?;
        }
        let id = mail.headers().get_raw("Message-ID").map(str::to_string);
        self.mailer.send(mail).await?;
        Ok(SendReceipt { provider_message_id: id })
    }
}
