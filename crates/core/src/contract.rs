//! The bus contract's names: subjects, streams, buckets and headers, in one place.
//!
//! Changing anything here is a change of the public contract; see `docs/contract.md`.

/// Streams of the contract and the subjects each one captures.
pub mod streams {
    /// Inbound customer messages (`envelope/1`).
    pub const INBOUND: &str = "SB_INBOUND";
    /// Messages to customers (`outbound/1`).
    pub const OUTBOUND: &str = "SB_OUTBOUND";
    /// Deliveries to agents and agent commands.
    pub const AGENT: &str = "SB_AGENT";
    /// The audit log and the only input of metrics: single events (`event/1`) on
    /// `sb.events.<kind>` and the router's batches (`events/1`) on `sb.events.batch`.
    pub const EVENTS: &str = "SB_EVENTS";
    /// Dead letters: original message plus reason, component and attempts.
    pub const DLQ: &str = "SB_DLQ";
    /// The router's journal: every input it acted on, in order, per routing group. Internal to
    /// the router (its format is not part of the public contract), but its stream is.
    pub const ROUTER: &str = "SB_ROUTER";
    /// Web-chat transcripts, one subject per visitor session: what the widget shows, in order,
    /// and what it replays after a reload or a reconnect.
    pub const WEBCHAT: &str = "SB_WEBCHAT";
    /// Replayed raw provider items (a raw mail, a raw Telegram update), one subject per
    /// component, read only by that component's adapter, which handles them as if just fetched.
    pub const REPLAY: &str = "SB_REPLAY";

    /// Every stream with the subjects it captures.
    pub const ALL: &[(&str, &[&str])] = &[
        (INBOUND, &["sb.in.>"]),
        (OUTBOUND, &["sb.out.>"]),
        (AGENT, &["sb.agent.out.>", "sb.agent.in"]),
        (EVENTS, &["sb.events.>"]),
        (DLQ, &["sb.dlq.>"]),
        (ROUTER, &["sb.router.journal.>"]),
        (WEBCHAT, &["sb.webchat.>"]),
        (REPLAY, &["sb.replay.>"]),
    ];
}

/// Subject names; functions take an already validated token (channel, kind, component).
pub mod subjects {
    /// The endpoint kind of deliveries to an agent without endpoints, read by its own stream alone.
    pub const AGENT_STREAM_KIND: &str = "api";

    /// Agent commands (`command/1`).
    pub const AGENT_IN: &str = "sb.agent.in";

    /// Inbound messages of one channel: `sb.in.<channel>`.
    pub fn inbound(channel: &str) -> String {
        format!("sb.in.{channel}")
    }

    /// Messages to customers on one channel: `sb.out.<channel>`.
    pub fn outbound(channel: &str) -> String {
        format!("sb.out.{channel}")
    }

    /// Deliveries to agent endpoints of one kind, for agents whose id is no subject token (and
    /// as written before deliveries named their agent): `sb.agent.out.<kind>`. An endpoint's
    /// reader takes this and [`agent_out_filter`].
    pub fn agent_out(endpoint_kind: &str) -> String {
        format!("sb.agent.out.{endpoint_kind}")
    }

    /// Every delivery to endpoints of one kind that names its agent: `sb.agent.out.<kind>.>`.
    pub fn agent_out_filter(endpoint_kind: &str) -> String {
        format!("sb.agent.out.{endpoint_kind}.>")
    }

    /// Where a delivery to one of an agent's endpoints is written, once per endpoint kind:
    /// `sb.agent.out.<kind>.<agent id>`, or [`agent_out`] for ids that are no subject token
    /// ([`crate::agent::has_own_stream`]). An agent without endpoints has kind `api`.
    pub fn agent_delivery(endpoint_kind: &str, agent_id: &str) -> String {
        if crate::agent::has_own_stream(agent_id) {
            format!("sb.agent.out.{endpoint_kind}.{agent_id}")
        } else {
            agent_out(endpoint_kind)
        }
    }

    /// One agent's own delivery stream, read by `GET /v1/agent/events`: `sb.agent.out.*.<agent
    /// id>` (`*.*` for every agent) holds each delivery once, plus the copies for its further
    /// endpoint kinds, which carry [`super::headers::ENDPOINT_COPY`] and are skipped. Only for
    /// ids that [`crate::agent::has_own_stream`].
    pub fn agent_stream(agent_id: &str) -> String {
        format!("sb.agent.out.*.{agent_id}")
    }

    /// Events of one kind: `sb.events.<kind>`.
    pub fn event(kind: &str) -> String {
        format!("sb.events.{kind}")
    }

    /// Batches of events (`events/1`): the events of one router step, in one message. Inside
    /// `sb.events.>` so that every reader of events still sees them, and no event kind is
    /// `batch`. Read with [`crate::event_batch::decode_events`].
    pub const EVENT_BATCH: &str = "sb.events.batch";

    /// What an erasure left of a batch (`events/1` with `Sb-Rewrite-Of`): the others' events,
    /// published again. A subject of its own, so that readers that fold the stream from its start
    /// find them first and fold them where the original stood ([`crate::Rewrites`]), and readers
    /// that act on events pass them over.
    pub const EVENT_REWRITE: &str = "sb.events.rewritten";

    /// The router journal of one routing group: `sb.router.journal.<group>`.
    pub fn router_journal(group: &str) -> String {
        format!("sb.router.journal.{group}")
    }

    /// Core NATS (not stored): the outcome of one agent command, published by the router once
    /// it applied the command: `sb.router.result.<command id>`.
    pub fn router_result(command_id: &str) -> String {
        format!("sb.router.result.{command_id}")
    }

    /// Core NATS request-reply: the leading router of a group answers with its queue view:
    /// `sb.router.rpc.queue.<group>`.
    pub fn router_queue(group: &str) -> String {
        format!("sb.router.rpc.queue.{group}")
    }

    /// Core NATS request-reply: the leading router of a group answers with the open offers of
    /// one agent (the request body is its id; empty: every agent's), with their deadlines:
    /// `sb.router.rpc.offers.<group>`.
    pub fn router_offers(group: &str) -> String {
        format!("sb.router.rpc.offers.{group}")
    }

    /// Core NATS request-reply: the leading router of a group answers with every team's
    /// availability (online agents, within business hours): `sb.router.rpc.availability.<group>`.
    pub fn router_availability(group: &str) -> String {
        format!("sb.router.rpc.availability.{group}")
    }

    /// Core NATS request-reply: the leading router of a group explains one conversation (the
    /// request body is its id): `sb.router.rpc.explain.<group>`.
    pub fn router_explain(group: &str) -> String {
        format!("sb.router.rpc.explain.{group}")
    }

    /// Core NATS request-reply: the leading router of a group answers with every agent it knows
    /// (status, load, teams): `sb.router.rpc.agents.<group>`.
    pub fn router_agents(group: &str) -> String {
        format!("sb.router.rpc.agents.{group}")
    }

    /// Core NATS request-reply: the leading router of a group erases a person from its memory,
    /// journals that, saves a snapshot and answers with the erased conversations and the
    /// snapshot's sequence (`switchboard customers forget`): `sb.router.rpc.forget.<group>`.
    pub fn router_forget(group: &str) -> String {
        format!("sb.router.rpc.forget.{group}")
    }

    /// Core NATS request-reply: the leading router of a group ends the last-agent memory of
    /// customers silent since a cut-off (the retention sweep): `sb.router.rpc.expire.<group>`.
    pub fn router_expire(group: &str) -> String {
        format!("sb.router.rpc.expire.{group}")
    }

    /// Core NATS (not stored): an agent is typing in a conversation (`{"conversation_id",
    /// "agent_id"}`), for channels that can show it.
    pub const AGENT_TYPING: &str = "sb.agent.typing";

    /// The transcript of one web-chat session: `sb.webchat.session.<session id>`.
    pub fn webchat_session(session: &str) -> String {
        format!("sb.webchat.session.{session}")
    }

    /// Dead letters of one component: `sb.dlq.<component>`.
    pub fn dlq(component: &str) -> String {
        format!("sb.dlq.{component}")
    }

    /// Replayed raw provider items for one component's adapter: `sb.replay.<component>`.
    pub fn replay(component: &str) -> String {
        format!("sb.replay.{component}")
    }
}

/// What a dead letter holds (header `Sb-Dlq-Kind`): a payload that was on a stream subject is
/// named by its schema id (`envelope/1`, `outbound/1`, `agent-delivery/1`, `command/1`, `event/1`);
/// a raw provider item that never became one by one of these names.
pub mod dlq_kinds {
    /// A raw mail (RFC 5322 bytes) the email channel could not turn into an envelope.
    pub const RAW_MAIL: &str = "raw-mail";
    /// Only the header block of a raw mail too big to keep whole: not replayable (fetch the mail
    /// from the mailbox named by `Sb-Raw-Ref`).
    pub const RAW_MAIL_HEADERS: &str = "raw-mail-headers";
    /// A raw Telegram `Update` (JSON) the Telegram channel could not turn into an envelope.
    pub const TELEGRAM_UPDATE: &str = "telegram-update";
    /// The event kind's schema id: events are the audit log, so one is never stored twice on
    /// `sb.events.<kind>`; a reader that gave one up takes it back on `sb.replay.<component>`.
    pub const EVENT: &str = "event/1";
    /// A batch of events (`events/1`), replayed like [`EVENT`]: to the reader that gave it up.
    pub const EVENTS: &str = "events/1";
}

/// Components that read events and handle their replayed dead letters on
/// `sb.replay.<component>` (the web chat's `webchat-events`).
pub const EVENT_REPLAY_COMPONENTS: &[&str] = &["webchat-events"];

/// Where a replay of a dead letter of `kind`, given up by `component` and originally published on
/// `subject`, is stored: a raw provider item goes back through its adapter's parser
/// (`sb.replay.<component>`), and so does an event to the reader that gave it up (on
/// `sb.events.<kind>` every reader would see it again, and metrics would count it twice); any
/// other payload goes back to its subject, read by the consumer that gave it up. `Err` says why
/// there is no such place: an event reader without a replay consumer, a truncated mail.
pub fn dlq_replay_to(kind: Option<&str>, component: &str, subject: &str) -> Result<String, String> {
    match kind {
        Some(dlq_kinds::RAW_MAIL | dlq_kinds::TELEGRAM_UPDATE) => Ok(subjects::replay(component)),
        Some(dlq_kinds::RAW_MAIL_HEADERS) => {
            Err("only the mail's headers were kept (it was too big): fetch it again from the mailbox".into())
        }
        Some(dlq_kinds::EVENT | dlq_kinds::EVENTS) if EVENT_REPLAY_COMPONENTS.contains(&component) => {
            Ok(subjects::replay(component))
        }
        Some(dlq_kinds::EVENT | dlq_kinds::EVENTS) => {
            Err("an event is already in the audit log: storing it again would count it twice".into())
        }
        _ if subject.is_empty() => Err(format!("no {} header: the original subject is unknown", headers::DLQ_SUBJECT)),
        _ => Ok(subject.to_string()),
    }
}

/// JetStream key-value buckets, each written by its one owner.
pub mod buckets {
    /// Conversation state, owned by the router.
    pub const CONVERSATIONS: &str = "sb_conversations";
    /// Endpoints of agents defined at runtime (`endpoint.<kind>.<agent>`, with their secret),
    /// written by the agent API (`PUT /v1/agents/{id}`); the agents themselves live in the
    /// router's state.
    pub const AGENTS: &str = "sb_agents";
    /// Router leases and offsets.
    pub const ROUTER: &str = "sb_router";
    /// Channels' own state: cursors (IMAP UIDs, Telegram offsets) and reply-token mappings.
    pub const CHANNELS: &str = "sb_channels";
    /// Running daemons announce themselves here (key: the process's holder name), renewed every
    /// few seconds; the bucket's max age drops the entries of processes that died.
    pub const PRESENCE: &str = "sb_presence";
    /// Web-chat upload accounting, one key per session (`webchat.<session>`): bytes and files
    /// stored, the upload rate window, and which files a sent message attached. Owned by the web
    /// chat; its max age is the attachments' so an entry outlives the files it describes.
    pub const UPLOADS: &str = "sb_uploads";
    /// The router's verdict on each agent command (`command-result/1`, key: the command id),
    /// kept for the de-duplication window (`nats.duplicate_window_secs`): a command retried
    /// with the same id is answered with its first verdict at once. Owned by the router.
    pub const COMMANDS: &str = "sb_commands";
    /// Every bucket of the contract.
    pub const ALL: &[&str] = &[CONVERSATIONS, AGENTS, ROUTER, CHANNELS, PRESENCE, UPLOADS, COMMANDS];
}

/// The object store for the metrics component's snapshot (its KPI fold and stream position).
pub const METRICS_STORE: &str = "sb_metrics";

/// Well-known keys in the `metadata` of envelopes and outbound messages.
pub mod metadata {
    /// The display name of the agent who wrote an outbound message.
    pub const AGENT_NAME: &str = "agent_name";
    /// Marks a satisfaction survey sent to a customer; its value is [`CSAT_REQUEST`].
    pub const CSAT: &str = "csat";
    /// The value of [`CSAT`] on the survey question itself.
    pub const CSAT_REQUEST: &str = "request";
    /// The conversation a survey asks about (its UUID), for the answer to name.
    pub const CSAT_CONVERSATION: &str = "csat.conversation";
    /// The agent who resolved the conversation a survey asks about.
    pub const CSAT_AGENT: &str = "csat.agent";
    /// Marks any survey question sent to a customer; its value is the survey kind (`csat`,
    /// `nps`, `ces`). A CSAT question also carries the `csat*` keys, as before NPS and CES.
    pub const SURVEY: &str = "survey";
    /// The conversation a survey asks about (its UUID), for the answer to name.
    pub const SURVEY_CONVERSATION: &str = "survey.conversation";
    /// The agent who resolved the conversation a survey asks about.
    pub const SURVEY_AGENT: &str = "survey.agent";
    /// On a queue notice (a `system` message): the customer's place in line, 1 = next.
    pub const QUEUE_POSITION: &str = "queue.position";
    /// On a queue notice: the expected wait in seconds; absent when nobody eligible is online.
    pub const QUEUE_ESTIMATE_SECS: &str = "queue.estimate_secs";
    /// On a queue notice: how many agents who could take the conversation are online.
    pub const QUEUE_AGENTS_ONLINE: &str = "queue.agents_online";
    /// On a queue notice while the team is closed: when it opens (RFC 3339).
    pub const QUEUE_OPENS_AT: &str = "queue.opens_at";
    /// On the L0 bot's knowledge-base answer: asks whether it answered the question (value
    /// [`L0_HELPFUL`]); chat channels show [`L0_YES`] and [`L0_NO`] as buttons whose press sends
    /// that label as the customer's message.
    pub const L0_QUESTION: &str = "l0.question";
    /// The value of [`L0_QUESTION`].
    pub const L0_HELPFUL: &str = "helpful";
    /// The label of the "yes, it answered my question" button.
    pub const L0_YES: &str = "l0.yes";
    /// The label of the "no, I need a person" button.
    pub const L0_NO: &str = "l0.no";
    /// The knowledge-base articles the answer shows, comma-separated ids.
    pub const L0_ARTICLES: &str = "l0.articles";
}

/// The object store for attachments: envelopes carry references, not bytes.
pub const ATTACHMENTS_STORE: &str = "sb_attachments";

/// The object store for router snapshots (engine state plus the journal sequence it reflects).
pub const ROUTER_SNAPSHOTS_STORE: &str = "sb_router_snapshots";

/// Every object store of the contract.
pub const OBJECT_STORES: &[&str] = &[ATTACHMENTS_STORE, ROUTER_SNAPSHOTS_STORE, METRICS_STORE];

/// Header names of the contract.
pub mod headers {
    /// Schema id of the payload, e.g. `envelope/1`.
    pub const SCHEMA: &str = "Sb-Schema";
    /// JetStream's de-duplication id.
    pub const MSG_ID: &str = "Nats-Msg-Id";
    /// Dead letters: why the message was given up.
    pub const DLQ_REASON: &str = "Sb-Dlq-Reason";
    /// Dead letters: the component that gave up.
    pub const DLQ_COMPONENT: &str = "Sb-Dlq-Component";
    /// Dead letters: how many deliveries were attempted.
    pub const DLQ_ATTEMPTS: &str = "Sb-Dlq-Attempts";
    /// Dead letters: the subject the message was originally published on.
    pub const DLQ_SUBJECT: &str = "Sb-Dlq-Subject";
    /// Dead letters: the original stream sequence, for audit.
    pub const DLQ_STREAM_SEQ: &str = "Sb-Dlq-Stream-Seq";
    /// Dead letters: what the payload is (see [`super::dlq_kinds`]), which decides where a replay
    /// goes ([`super::dlq_replay_to`]).
    pub const DLQ_KIND: &str = "Sb-Dlq-Kind";
    /// Raw provider items (dead letters, replays): where the item is at the provider, e.g. the
    /// mailbox, UIDVALIDITY and UID of a mail.
    pub const RAW_REF: &str = "Sb-Raw-Ref";
    /// A message stored again because its receiver asked to wait: not handled before this time
    /// (Unix milliseconds).
    pub const NOT_BEFORE: &str = "Sb-Not-Before";
    /// Agent deliveries: this is the copy of a delivery for the agent's second (third, ...)
    /// endpoint kind, so the agent's own stream, which reads every kind, skips it.
    pub const ENDPOINT_COPY: &str = "Sb-Endpoint-Copy";
    /// Event batches: this batch is what an erasure left of the batch at this `SB_EVENTS`
    /// sequence (the others' events, published again before that batch was deleted), so readers
    /// that act on events (the web chat) skip it and the metrics fold counts each event once.
    pub const REWRITE_OF: &str = "Sb-Rewrite-Of";
    /// The headers only dead letters carry, in the order they are documented.
    pub const DLQ: &[&str] = &[DLQ_REASON, DLQ_COMPONENT, DLQ_ATTEMPTS, DLQ_SUBJECT, DLQ_STREAM_SEQ];
    /// Every header of the contract.
    pub const ALL: &[&str] = &[
        SCHEMA,
        MSG_ID,
        NOT_BEFORE,
        ENDPOINT_COPY,
        REWRITE_OF,
        DLQ_REASON,
        DLQ_COMPONENT,
        DLQ_ATTEMPTS,
        DLQ_SUBJECT,
        DLQ_STREAM_SEQ,
        DLQ_KIND,
        RAW_REF,
    ];
}

/// The reason a reader dead-letters a payload whose `Sb-Schema` it does not read:
/// `unsupported schema <its schema id>, expected <the one the reader knows>`.
pub fn unsupported_schema(got: &str, expected: &str) -> String {
    format!("unsupported schema {got}, expected {expected}")
}

/// The reason a reader dead-letters a payload that fails its schema: `invalid <schema id>:
/// <what is wrong>`, e.g. ``invalid envelope/1: invalid field `text`: empty``.
pub fn invalid_payload(schema: &str, error: &impl std::fmt::Display) -> String {
    format!("invalid {schema}: {error}")
}

/// The reason the router dead-letters an envelope that arrived on another channel's subject
/// (`sb.in.<channel>` carries only envelopes of `<channel>`).
pub fn channel_mismatch(envelope_channel: &str, subject: &str) -> String {
    format!(
        "channel mismatch: the envelope says channel `{envelope_channel}` but arrived on `{subject}`; an adapter publishes only on sb.in.<its channel>"
    )
}

/// The `Nats-Msg-Id` of the dead letter a consumer stores when it gives a message up:
/// `dlq:<component>:<stream>:<stream sequence>`, its own id (not the original's), so the same
/// failure handled again after a crash lands in `SB_DLQ` once.
pub fn dlq_msg_id(component: &str, stream: &str, stream_sequence: u64) -> String {
    format!("dlq:{component}:{stream}:{stream_sequence}")
}

/// De-duplication id of an inbound message: `<channel>:<provider message id>`.
pub fn inbound_msg_id(channel: &str, provider_message_id: &str) -> String {
    format!("{channel}:{provider_message_id}")
}
