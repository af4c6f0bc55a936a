//! Agents working from their mailbox (endpoint kind `email`): offers, new customer messages and
//! updates arrive as mail whose reply address carries a token signed for that agent and that
//! conversation; the agent's answer comes back through the watched mailbox and becomes commands.
//! Only mail from the agent's configured address with a token signed for that agent acts.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Arc;
use std::time::Duration;

use lettre::Message;
use lettre::message::header::ContentType;
use lettre::message::{Mailbox, SinglePart};
use switchboard_adapter::{RuntimeConfig, SendError, Verdict, derived_command_id, send_command};
use switchboard_bus::{Bus, BusError, Delivery, HandlerError};
use switchboard_core::agent::HistoryEntry;
use switchboard_core::contract::{streams, subjects};
use switchboard_core::{AgentCommand, AgentDelivery, CommandAction, Contract};
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};
use uuid::Uuid;

use crate::error::EmailError;
use crate::outbound::Sender;
use crate::outcome::Outcome;
use crate::parse::{AgentEmailCommand, ParsedMail, parse_agent_command, reply_address};
use crate::smtp::Mailer;
use crate::token::message_id;

/// The endpoint kind this crate serves: subject `sb.agent.out.email`.
pub const ENDPOINT_KIND: &str = "email";

/// How long an agent's command waits for the router's verdict before the agent is not told.
const VERDICT_WAIT: Duration = Duration::from_secs(3);

/// Agents on email: their addresses, and how to write to them.
#[derive(Clone)]
pub struct AgentMail(Arc<Inner>);

struct Inner {
    /// Agent id by address (lower case).
    by_address: BTreeMap<String, String>,
    /// Address by agent id.
    addresses: BTreeMap<String, String>,
    sender: Sender,
    mailer: Mailer,
    /// Retries of deliveries to agents: `[channels.email.runtime]`, shared with replies to customers.
    runtime: RuntimeConfig,
}

impl AgentMail {
    /// Agents by id with their addresses, and the retry settings of deliveries to them.
    pub fn new(agents: BTreeMap<String, String>, sender: Sender, mailer: Mailer, runtime: RuntimeConfig) -> AgentMail {
        let by_address = agents.iter().map(|(id, a)| (a.trim().to_lowercase(), id.clone())).collect();
        AgentMail(Arc::new(Inner { by_address, addresses: agents, sender, mailer, runtime }))
    }

    /// Consumes `sb.agent.out.email` until `shutdown`: each delivery is mailed to its agent,
    /// acked once the relay accepted it, retried or dead-lettered (`sb.dlq.agent-email`) otherwise.
    pub async fn run(self, bus: Bus, shutdown: CancellationToken) -> Result<(), BusError> {
        let spec = self
            .0
            .runtime
            .consumer_spec("agent-email", streams::AGENT, "agent-email", &subjects::agent_out(ENDPOINT_KIND))
            .also(&subjects::agent_out_filter(ENDPOINT_KIND));
        bus.run_consumer(spec, shutdown, move |d: Delivery| {
            let this = self.clone();
            async move {
                let delivery: AgentDelivery = d.decode()?;
                this.deliver(&delivery).await.map_err(HandlerError::from)
            }
        })
        .await
    }

    /// Mails one delivery to its agent.
    pub async fn deliver(&self, delivery: &AgentDelivery) -> Result<(), SendError> {
        let message = self.compose(delivery)?;
        self.0.mailer.send(message).await
    }

    /// The mail for one delivery: subject and body by kind, reply address signed for the agent.
    pub fn compose(&self, delivery: &AgentDelivery) -> Result<Message, SendError> {
        let (id, agent, conversation) = match delivery {
            AgentDelivery::Offer(o) => (o.id, &o.agent_id, o.conversation_id),
            AgentDelivery::Message(m) => (m.id, &m.agent_id, m.conversation_id),
            AgentDelivery::Update(u) => (u.id, &u.agent_id, u.conversation_id),
        };
        let address = self
            .0
            .addresses
            .get(agent)
            .ok_or_else(|| SendError::permanent(format!("agent {agent} has no email endpoint")))?;
        let short = delivery.label().to_string();
        let (subject, body) = match delivery {
            AgentDelivery::Offer(o) => {
                let mut body = String::new();
                let who = o.customer.name.clone().unwrap_or_else(|| o.customer.id.clone());
                let _ = writeln!(body, "New conversation from {who} on {}.", o.channel);
                let _ = writeln!(
                    body,
                    "Priority {}, tier {:?}, first reply due {}.",
                    o.priority.0,
                    o.tier,
                    o.sla_deadline.format("%Y-%m-%d %H:%M UTC")
                );
                if o.actions.iter().any(|a| a == "accept") {
                    let _ = writeln!(
                        body,
                        "Answer by {} or it goes to someone else.",
                        o.offer_deadline.format("%H:%M UTC")
                    );
                }
                let _ = writeln!(body, "\n{}", history(&o.history));
                let _ = writeln!(
                    body,
                    "Reply to this mail: the first line may be a command, the rest goes to the customer."
                );
                let _ = writeln!(
                    body,
                    "  #accept  #decline [reason]  #resolve  #transfer <team> [note]  #escalate [note]  #note <text>  #t <saved reply>"
                );
                if !o.suggested_replies.is_empty() {
                    let names: Vec<String> = o.suggested_replies.iter().map(|n| format!("#t {n}")).collect();
                    let _ = writeln!(body, "Saved replies that may fit: {}", names.join(", "));
                }
                let fresh = if o.reopened { "Reopened conversation" } else { "New conversation" };
                let topic = o.subject.clone().unwrap_or_else(|| fresh.into());
                (format!("[{short}] {topic}"), body)
            }
            AgentDelivery::Message(m) => (format!("[{short}] New message"), history(std::slice::from_ref(&m.entry))),
            AgentDelivery::Update(u) => {
                let change = change_words(&u.change);
                let mut body = format!("Conversation {short}: {change}.\n");
                if let Some(note) = &u.note {
                    let _ = writeln!(body, "\nNote: {note}");
                }
                if !u.history.is_empty() {
                    let _ = writeln!(body, "\n{}", history(&u.history));
                }
                (format!("[{short}] {change}"), body)
            }
        };
        let token = self.0.sender.key.agent_token(agent, conversation);
        let s = &self.0.sender;
        let reply_to: Mailbox = reply_address(&s.address, &token)
            .ok_or_else(|| SendError::permanent("cannot build the agent reply address"))?
            .parse()
            .map_err(|e| SendError::permanent(format!("agent reply address: {e}")))?;
        let to: Mailbox =
            address.parse().map_err(|e| SendError::permanent(format!("agent address `{address}`: {e}")))?;
        // One root per conversation so the agent's mail client threads its mails together.
        let root = format!("<conversation.{}@{}>", conversation.simple(), s.domain);
        Message::builder()
            .from(s.from()?)
            .reply_to(reply_to)
            .to(to)
            .subject(subject)
            .message_id(Some(format!("<{}>", message_id(id, conversation, &token, &s.domain))))
            .references(root)
            .singlepart(SinglePart::builder().header(ContentType::TEXT_PLAIN).body(body))
            .map_err(|e| SendError::permanent(format!("cannot build the mail: {e}")))
    }

    /// An agent's reply to one of our mails, carrying agent token `token`: check the sender and
    /// the token, read the command line, and send the commands to the router.
    pub async fn handle_reply(&self, bus: &Bus, mail: &ParsedMail, token: &str) -> Result<Outcome, EmailError> {
        let from = mail.from.address.trim().to_lowercase();
        let Some(agent) = self.0.by_address.get(&from) else {
            warn!("agent token in mail from an address that is not an agent's; ignored");
            return Ok(Outcome::Ignored("agent token from a non-agent address".into()));
        };
        let Some(conversation) = self.0.sender.key.verify_agent_token(agent, token) else {
            warn!(agent = %agent, "agent token not signed for this agent; ignored");
            return Ok(Outcome::Ignored("agent token not valid for this agent".into()));
        };
        let actions = match parse_agent_command(&mail.new_text) {
            Ok(parsed) => actions(parsed, &mail.new_text),
            Err(e) => {
                self.tell(agent, conversation, &format!("Nothing was done: {e}.")).await;
                return Ok(Outcome::Ignored(format!("agent command: {e}")));
            }
        };
        for (i, action) in actions.into_iter().enumerate() {
            let command = AgentCommand {
                id: derived_command_id(&format!("email:{}:{i}", mail.dedupe_id())),
                agent_id: agent.clone(),
                conversation_id: Some(conversation),
                issued_at: chrono::Utc::now(),
                action,
            };
            if let Err(e) = command.validate() {
                self.tell(agent, conversation, &format!("Nothing was done: {e}.")).await;
                return Ok(Outcome::Ignored(e.to_string()));
            }
            info!(agent = %agent, command = %command.id, "agent command from email");
            match send_command(bus, &command, VERDICT_WAIT).await {
                Ok(Verdict::Rejected(reason)) => {
                    self.tell(agent, conversation, &format!("Your mail was not applied: {reason}.")).await;
                    break;
                }
                Ok(_) => {}
                Err(e) => return Ok(Outcome::Retry(e.to_string())),
            }
        }
        Ok(Outcome::AgentCommands)
    }

    /// Tells an agent something went wrong with their mail (best effort: the agent's mail itself
    /// is handled either way).
    async fn tell(&self, agent: &str, conversation: Uuid, text: &str) {
        let update = AgentDelivery::Update(switchboard_core::agent::ConversationUpdate {
            id: Uuid::now_v7(),
            agent_id: agent.into(),
            conversation_id: conversation,
            code: String::new(),
            customer: None,
            channel: String::new(),
            change: "command_refused".into(),
            note: Some(text.into()),
            history: Vec::new(),
        });
        if let Err(e) = self.deliver(&update).await {
            warn!(agent = %agent, error = %e, "cannot tell the agent their command was refused");
        }
    }
}

/// The commands for one agent mail, in the order they must apply.
fn actions(parsed: Option<(AgentEmailCommand, String)>, whole: &str) -> Vec<CommandAction> {
    let reply = |text: &str| (!text.trim().is_empty()).then(|| CommandAction::reply(text.trim().to_string()));
    match parsed {
        None => reply(whole).into_iter().collect(),
        Some((AgentEmailCommand::Accept, rest)) => std::iter::once(CommandAction::Accept).chain(reply(&rest)).collect(),
        Some((AgentEmailCommand::Decline { reason }, _)) => vec![CommandAction::Decline { reason }],
        Some((AgentEmailCommand::Note { text }, _)) => vec![CommandAction::Note { text }],
        // The saved reply, then anything written below the command line as a reply of its own.
        Some((AgentEmailCommand::Template { name }, rest)) => {
            let template = CommandAction::Reply { text: String::new(), attachments: Vec::new(), template: Some(name) };
            std::iter::once(template).chain(reply(&rest)).collect()
        }
        // The answer first, then the conversation moves on or closes.
        Some((AgentEmailCommand::Resolve, rest)) => reply(&rest).into_iter().chain([CommandAction::Resolve]).collect(),
        Some((AgentEmailCommand::Transfer { team, note }, rest)) => reply(&rest)
            .into_iter()
            .chain([CommandAction::Transfer { to_agent: None, to_team: Some(team), note }])
            .collect(),
        Some((AgentEmailCommand::Escalate { note }, rest)) => {
            reply(&rest).into_iter().chain([CommandAction::Escalate { tier: None, note }]).collect()
        }
    }
}

/// An update's change in words an agent reads.
fn change_words(change: &str) -> String {
    match change {
        "assigned" => "assigned to you".into(),
        "offer_withdrawn" => "the offer was withdrawn".into(),
        "transferred" => "transferred away".into(),
        "resolved" => "resolved".into(),
        "delivery_failed" => "your reply was not delivered".into(),
        "message_edited" => "the customer edited a message".into(),
        "command_refused" => "your mail was not applied".into(),
        other => other.replace('_', " "),
    }
}

fn history(entries: &[HistoryEntry]) -> String {
    let mut out = String::new();
    for e in entries {
        let who = e.author_label();
        let _ = writeln!(out, "--- {} {who}:\n{}\n", e.at.format("%Y-%m-%d %H:%M"), e.text.trim());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands_apply_in_the_order_an_agent_means() {
        let parse = |t: &str| actions(parse_agent_command(t).unwrap(), t);
        assert_eq!(parse("Thanks, fixed."), [CommandAction::reply("Thanks, fixed.")]);
        assert_eq!(parse("#accept"), [CommandAction::Accept]);
        assert_eq!(parse("#accept\nOn it!"), [CommandAction::Accept, CommandAction::reply("On it!")]);
        assert_eq!(parse("#resolve\nDone."), [CommandAction::reply("Done."), CommandAction::Resolve]);
        assert_eq!(
            parse("#transfer billing refund over 100"),
            [CommandAction::Transfer {
                to_agent: None,
                to_team: Some("billing".into()),
                note: Some("refund over 100".into())
            }]
        );
        assert_eq!(parse("#note called them"), [CommandAction::Note { text: "called them".into() }]);
        let saved =
            CommandAction::Reply { text: String::new(), attachments: Vec::new(), template: Some("refund-done".into()) };
        assert_eq!(parse("#t refund-done"), std::slice::from_ref(&saved));
        assert_eq!(parse("#t refund-done\nP.S. see you"), [saved, CommandAction::reply("P.S. see you")]);
        assert!(parse_agent_command("#t").is_err());
    }
}
