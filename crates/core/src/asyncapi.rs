//! The bus contract as an AsyncAPI 3.0 document, built from the names in [`crate::contract`] and
//! the JSON Schemas of [`crate::schema`].
//!
//! `docs/asyncapi.yaml` is the checked-in rendering; a test fails when it drifts from what this
//! builds (run `make schema` to regenerate it after a deliberate change). Channel addresses come
//! from calling the subject functions with `{parameter}` placeholders, and each channel's stream
//! from matching its address against [`streams::ALL`], so a renamed subject or stream shows up in
//! the document by itself.

use serde_json::{Map, Value, json};

use crate::contract::{self, buckets, dlq_kinds, headers, streams, subjects};
use crate::{AgentCommand, AgentDelivery, Contract, Envelope, Event, EventBatch, OutboundMessage};

/// The AsyncAPI version the document follows.
pub const ASYNCAPI_VERSION: &str = "3.0.0";

/// Where payload schemas are referred to, relative to the document in `docs/`.
const SCHEMA_DIR: &str = "./schema/";

/// schemars writes JSON Schema 2020-12; AsyncAPI takes it as a multi-format schema.
const SCHEMA_FORMAT: &str = "application/schema+json;version=draft-2020-12";

/// How the versioning rules read, in the document's `info` and its `x-switchboard-versioning`.
const VERSIONING: &[&str] = &[
    "Every stored payload names its schema in the `Sb-Schema` header: `<name>/<major>`, e.g. `envelope/1`.",
    "Adding an optional field is a minor change and keeps the version.",
    "Anything else (a new required field, a renamed or removed field, a changed meaning) is a new version (`envelope/2`), published beside the old one until readers have moved.",
    "Readers accept the versions they know and dead-letter the rest with the reason `unsupported schema <its id>, expected <the id the reader knows>` (e.g. `unsupported schema envelope/2, expected envelope/1`).",
    "Readers reject unknown fields of a version they know, so a writer must not add fields without a schema change.",
];

/// One channel of the document.
struct Chan {
    id: &'static str,
    address: Option<String>,
    description: &'static str,
    params: &'static [(&'static str, &'static str)],
    messages: &'static [&'static str],
}

/// One operation: who sends or receives what on a channel.
struct Op {
    id: &'static str,
    action: &'static str,
    channel: &'static str,
    by: &'static str,
    /// A request-reply operation's reply message on `rpcReply`.
    reply: Option<&'static str>,
}

/// The whole document as JSON (render it as YAML or JSON; both are the same document).
pub fn document() -> Value {
    let channels = channel_list();
    let mut channel_map = Map::new();
    for c in &channels {
        channel_map.insert(c.id.into(), channel(c));
    }
    let mut operations = Map::new();
    for op in operation_list() {
        operations.insert(op.id.into(), operation(&op, &channels));
    }
    let stream_list: Vec<Value> = streams::ALL
        .iter()
        .map(|(name, subjects)| {
            json!({
                "name": name,
                "subjects": subjects,
                "channels": channels.iter().filter(|c| c.address.as_deref().and_then(stream_of) == Some(name)).map(|c| c.id).collect::<Vec<_>>(),
            })
        })
        .collect();
    json!({
        "asyncapi": ASYNCAPI_VERSION,
        "info": {
            "title": "Switchboard bus contract",
            "version": "1",
            "description": format!(
                "Everything that crosses NATS between Switchboard's components and external adapters \
                 (generated from `crates/core/src/contract.rs` and the payload types; prose in `contract.md`).\n\n\
                 Operations are written from each participant's side: a `send` names who publishes, \
                 a `receive` who consumes. Channels with `x-switchboard-stream` are stored in that \
                 JetStream stream; the others are core NATS (not stored).\n\n## Versioning\n\n- {}",
                VERSIONING.join("\n- ")
            ),
            "license": { "name": "Apache-2.0" },
        },
        "defaultContentType": "application/json",
        "servers": {
            "nats": {
                "host": "127.0.0.1:4222",
                "protocol": "nats",
                "description": "The NATS server (JetStream enabled) named by `nats.url`.",
            },
        },
        "channels": channel_map,
        "operations": operations,
        "components": { "messages": messages() },
        "x-switchboard-versioning": VERSIONING,
        "x-switchboard-streams": stream_list,
        "x-switchboard-buckets": buckets::ALL,
        "x-switchboard-object-stores": contract::OBJECT_STORES,
        "x-switchboard-kv-values": {
            (buckets::CONVERSATIONS): {
                "key": "<conversation id>",
                "description": "The conversation record, written by the router only; readers ignore fields they do not know.",
                "schema": { "$ref": format!("{SCHEMA_DIR}conversation-record.v1.json") },
            },
        },
        "x-switchboard-dlq-kinds": dlq_kind_list().into_iter().map(|(k, what)| (k.to_string(), Value::from(what))).collect::<Map<_, _>>(),
    })
}

/// What dead letters hold (`Sb-Dlq-Kind`) and where `switchboard dlq replay` puts each.
fn dlq_kind_list() -> Vec<(&'static str, &'static str)> {
    vec![
        (Envelope::SCHEMA, "An envelope the router gave up: replayed to its `sb.in.<channel>`."),
        (OutboundMessage::SCHEMA, "A message its channel could not deliver: replayed to its `sb.out.<channel>`."),
        (
            AgentDelivery::SCHEMA,
            "A delivery an agent endpoint could not deliver: replayed to its `sb.agent.out.<kind>`.",
        ),
        (AgentCommand::SCHEMA, "An agent command the router gave up: replayed to `sb.agent.in`."),
        (
            dlq_kinds::EVENT,
            "An event a reader gave up (`webchat-events`): replayed to `sb.replay.<component>` for that reader only, \
             since it is in the audit log already (a second copy there would count twice).",
        ),
        (
            dlq_kinds::EVENTS,
            "A batch of events a reader gave up: replayed like an event, to `sb.replay.<component>` for that reader only.",
        ),
        (
            dlq_kinds::RAW_MAIL,
            "A raw mail the email channel could not turn into an envelope: replayed to `sb.replay.email-in`, through the parser.",
        ),
        (
            dlq_kinds::RAW_MAIL_HEADERS,
            "The header block of a raw mail too big to keep: not replayable (fetch it from the mailbox at `Sb-Raw-Ref`).",
        ),
        (
            dlq_kinds::TELEGRAM_UPDATE,
            "A raw Telegram update the channel could not turn into an envelope: replayed to `sb.replay.telegram-in`, through the update handler.",
        ),
    ]
}

/// The stream whose subjects capture `address` (placeholders count as any one token).
pub fn stream_of(address: &str) -> Option<&'static str> {
    streams::ALL.iter().find(|(_, patterns)| patterns.iter().any(|p| captures(p, address))).map(|(name, _)| *name)
}

/// NATS subject matching where a `{parameter}` token of the address is "any token": a literal
/// token of the pattern does not capture it, `*` and `>` do.
fn captures(pattern: &str, address: &str) -> bool {
    let mut subject = address.split('.');
    for token in pattern.split('.') {
        match (token, subject.next()) {
            (">", Some(_)) => return true,
            ("*", Some(_)) => {}
            (literal, Some(t)) if literal == t && !t.starts_with('{') => {}
            _ => return false,
        }
    }
    subject.next().is_none()
}

fn channel_list() -> Vec<Chan> {
    let p = |name: &str| format!("{{{name}}}");
    vec![
        Chan {
            id: "inbound",
            address: Some(subjects::inbound(&p("channel"))),
            description: "Inbound customer messages of one channel, published by its adapter.",
            params: &[(
                "channel",
                "The channel's name: `webhook`, `email`, `telegram`, `webchat`, `whatsapp`, `vk` or an external adapter's \
                 (a-z, 0-9, `-`, `_`).",
            )],
            messages: &["envelope"],
        },
        Chan {
            id: "outbound",
            address: Some(subjects::outbound(&p("channel"))),
            description: "Messages to customers on one channel (agent replies, auto-replies, surveys).",
            params: &[("channel", "The channel the customer wrote on.")],
            messages: &["outbound"],
        },
        Chan {
            id: "agentOut",
            address: Some(subjects::agent_delivery(&p("kind"), &p("agentId"))),
            description: "Deliveries to one agent's endpoints of one kind: offers, conversation messages, updates. \
                          Written once per endpoint kind of the agent; an endpoint reads `sb.agent.out.<kind>.>` \
                          and `sb.agent.out.<kind>` (agentOutUnnamed).",
            params: &[
                (
                    "kind",
                    "The endpoint kind: `webhook` (a helpdesk), `email`, `telegram`, `matrix`, `slack`, or an external endpoint's.",
                ),
                ("agentId", "The agent's id."),
            ],
            messages: &["agentDelivery"],
        },
        Chan {
            id: "agentOutUnnamed",
            address: Some(subjects::agent_out(&p("kind"))),
            description: "Deliveries to endpoints of one kind for agents whose id is no subject token (it holds \
                          `.`, `*`, `>` or white space), and every delivery written before deliveries named \
                          their agent.",
            params: &[("kind", "The endpoint kind, as for agentOut.")],
            messages: &["agentDelivery"],
        },
        Chan {
            id: "agentStream",
            address: Some(subjects::agent_delivery(subjects::AGENT_STREAM_KIND, &p("agentId"))),
            description: "Deliveries to an agent without endpoints (kind `api`). The agent API's event stream \
                          (`GET /v1/agent/events`, the stream sequence is the event id) reads \
                          `sb.agent.out.*.<agentId>`: each delivery once, skipping the copies for further endpoint \
                          kinds (`Sb-Endpoint-Copy`) and copies stored again under another `Nats-Msg-Id`.",
            params: &[("agentId", "The agent's id.")],
            messages: &["agentDelivery"],
        },
        Chan {
            id: "agentIn",
            address: Some(subjects::AGENT_IN.to_string()),
            description: "Agent commands: accept, decline, reply, resolve, transfer, status, define agent.",
            params: &[],
            messages: &["command"],
        },
        Chan {
            id: "events",
            address: Some(subjects::event(&p("kind"))),
            description: "The audit log and the only input of metrics: one subject per event kind, for single events \
                          (published by channels and adapters). Readers of `sb.events.>` also get `eventBatches`.",
            params: &[("kind", "The event kind (`kind` of `event/1`).")],
            messages: &["event"],
        },
        Chan {
            id: "eventBatches",
            address: Some(subjects::EVENT_BATCH.to_string()),
            description: "The router's events: those of one step (one journal message, often several customers' \
                          messages) in one message (`events/1`), so a step costs one write. Same stream as the \
                          single events; readers of `sb.events.>` take both, telling them apart by `Sb-Schema`, \
                          and read each event's `conversation_id`. A batch with `Sb-Rewrite-Of` is what an \
                          erasure left of an earlier batch: its events were published before.",
            params: &[],
            messages: &["eventBatch"],
        },
        Chan {
            id: "eventRewrites",
            address: Some(subjects::EVENT_REWRITE.to_string()),
            description: "What an erasure left of an `events/1` batch that also held other people's events: those \
                          events, unchanged, with `Sb-Rewrite-Of` naming the sequence of the batch it replaced (then \
                          deleted). Readers that fold the stream from its start read these first and fold them where \
                          the original stood; readers that act on events pass them over (they were published before).",
            params: &[],
            messages: &["eventBatch"],
        },
        Chan {
            id: "deadLetters",
            address: Some(subjects::dlq(&p("component"))),
            description: "Dead letters: the original message (payload and headers) plus why and where it was given up.",
            params: &[(
                "component",
                "The component that gave up: `router-<group>`, a channel's name (`webhook`, `email`, ...), `agent-<kind>`, \
                 `email-in` and `telegram-in` (raw items the adapter could not turn into an envelope), `whatsapp-in` and `vk-in` \
                 (customers' messages over the per-sender limit, or VK messages that could not be stored), `webchat-events`.",
            )],
            messages: &["deadLetter"],
        },
        Chan {
            id: "replay",
            address: Some(subjects::replay(&p("component"))),
            description: "Replayed dead letters that must not go back to their original subject (`switchboard dlq replay`): \
                          raw provider items, read only by the adapter of `{component}`, which handles each as if just \
                          fetched (a raw mail goes through the email parser, a Telegram update through the update handler), \
                          and events, read only by the event reader that gave them up.",
            params: &[(
                "component",
                "The component that dead-lettered the item: `email-in`, `telegram-in`, `webchat-events`.",
            )],
            messages: &["rawItem", "event", "eventBatch"],
        },
        Chan {
            id: "routerJournal",
            address: Some(subjects::router_journal(&p("group"))),
            description: "The router's journal of one routing group: every input it acted on, in order. \
                          Appended only by the lease holder with `Nats-Expected-Last-Subject-Sequence`. \
                          Its format is internal to the router; the stream and subject are contract.",
            params: &[("group", "The routing group (`router.group`).")],
            messages: &["journalEntry"],
        },
        Chan {
            id: "commandResult",
            address: Some(subjects::router_result(&p("commandId"))),
            description: "Core NATS: the outcome of one agent command, once the router applied it.",
            params: &[("commandId", "The command's `id` (UUID).")],
            messages: &["commandResult"],
        },
        Chan {
            id: "routerQueue",
            address: Some(subjects::router_queue(&p("group"))),
            description: "Core NATS request-reply: the leading router of the group answers with its queue.",
            params: &[("group", "The routing group.")],
            messages: &["emptyRequest"],
        },
        Chan {
            id: "routerOffers",
            address: Some(subjects::router_offers(&p("group"))),
            description: "Core NATS request-reply: the leading router answers with the open offers of one agent \
                          (or of every agent), with their deadlines.",
            params: &[("group", "The routing group.")],
            messages: &["offersRequest"],
        },
        Chan {
            id: "routerAvailability",
            address: Some(subjects::router_availability(&p("group"))),
            description: "Core NATS request-reply: the leading router answers with every team's availability \
                          (online agents, within business hours).",
            params: &[("group", "The routing group.")],
            messages: &["emptyRequest"],
        },
        Chan {
            id: "routerExplain",
            address: Some(subjects::router_explain(&p("group"))),
            description: "Core NATS request-reply: the leading router explains one conversation's routing.",
            params: &[("group", "The routing group.")],
            messages: &["explainRequest"],
        },
        Chan {
            id: "routerAgents",
            address: Some(subjects::router_agents(&p("group"))),
            description: "Core NATS request-reply: the leading router answers with every agent it knows \
                          (status, load, teams).",
            params: &[("group", "The routing group.")],
            messages: &["emptyRequest"],
        },
        Chan {
            id: "routerForget",
            address: Some(subjects::router_forget(&p("group"))),
            description: "Core NATS request-reply: the leading router erases a person (journaled), saves a \
                          snapshot and answers with the erased conversations and the snapshot's sequence.",
            params: &[("group", "The routing group.")],
            messages: &["forgetRequest"],
        },
        Chan {
            id: "routerExpire",
            address: Some(subjects::router_expire(&p("group"))),
            description: "Core NATS request-reply: the leading router ends the last-agent memory of customers \
                          silent since a cut-off (the retention sweep).",
            params: &[("group", "The routing group.")],
            messages: &["expireRequest"],
        },
        Chan {
            id: "rpcReply",
            address: None,
            description: "The requester's reply inbox of a request-reply exchange (the NATS reply subject).",
            params: &[],
            messages: &["queueReply", "availabilityReply", "explainReply", "agentsReply", "forgetReply", "offersReply"],
        },
        Chan {
            id: "agentTyping",
            address: Some(subjects::AGENT_TYPING.to_string()),
            description: "Core NATS: an agent is typing in a conversation, for channels that can show it.",
            params: &[],
            messages: &["typing"],
        },
        Chan {
            id: "webchatTranscript",
            address: Some(subjects::webchat_session(&p("session"))),
            description: "The transcript of one web-chat session: what the widget shows, in order, and replays \
                          after a reload. Entries are the web chat channel's own format (`docs/webchat-protocol.md`).",
            params: &[("session", "The web-chat session id.")],
            messages: &["webchatEntry"],
        },
    ]
}

fn operation_list() -> Vec<Op> {
    let op = |id, action, channel, by| Op { id, action, channel, by, reply: None };
    let rpc = |id, action, channel, by, reply| Op { id, action, channel, by, reply: Some(reply) };
    vec![
        op(
            "publishInbound",
            "send",
            "inbound",
            "Channel adapters (webhook, email, Telegram, web chat, external ones).",
        ),
        op("consumeInbound", "receive", "inbound", "The router of the routing group."),
        op("publishOutbound", "send", "outbound", "The router (replies, auto-replies, surveys)."),
        op("consumeOutbound", "receive", "outbound", "The channel adapter named by `{channel}`."),
        op("publishAgentDelivery", "send", "agentOut", "The router."),
        op(
            "consumeAgentDelivery",
            "receive",
            "agentOut",
            "The agent endpoint of `{kind}` (webhook helpdesks, email, Telegram).",
        ),
        op("publishAgentStream", "send", "agentStream", "The router."),
        op("readAgentStream", "receive", "agentStream", "The agent API (`GET /v1/agent/events`), from a sequence."),
        op(
            "publishCommand",
            "send",
            "agentIn",
            "Agent endpoints (helpdesk callbacks, email replies, Telegram agent chats) and the agent API (`POST /v1/agent/commands`, `PUT /v1/agents/{id}`).",
        ),
        op("consumeCommand", "receive", "agentIn", "The router."),
        op("publishCommandResult", "send", "commandResult", "The router, after applying the command."),
        op(
            "awaitCommandResult",
            "receive",
            "commandResult",
            "Whoever sent the command and waits for its verdict (the agent API).",
        ),
        op("publishEvent", "send", "events", "The channel adapters (and `switchboard customers forget`)."),
        op(
            "consumeEvents",
            "receive",
            "events",
            "The metrics component; the web chat (assignments, resolutions); the router (`delivery_failed`).",
        ),
        op("publishEventBatch", "send", "eventBatches", "The router."),
        op(
            "consumeEventBatches",
            "receive",
            "eventBatches",
            "The metrics component and `switchboard stats`; the web chat (assignments, resolutions).",
        ),
        op("publishEventRewrite", "send", "eventRewrites", "`switchboard customers forget` (erasure)."),
        op(
            "consumeEventRewrites",
            "receive",
            "eventRewrites",
            "The metrics component and `switchboard stats`, before they fold the stream.",
        ),
        op("publishDeadLetter", "send", "deadLetters", "Any consumer that gives up on a message."),
        op(
            "consumeDeadLetters",
            "receive",
            "deadLetters",
            "Operators: `switchboard dlq` lists, replays and drops them.",
        ),
        op("publishReplay", "send", "replay", "Operators: `switchboard dlq replay` of a raw item's dead letter."),
        op(
            "consumeReplay",
            "receive",
            "replay",
            "The adapter of `{component}` (the email channel's inbound side, the Telegram channel's, the web chat's event reader).",
        ),
        op("appendJournal", "send", "routerJournal", "The router holding the group's lease."),
        op("replayJournal", "receive", "routerJournal", "A router taking the lease (replays before it leads)."),
        rpc("requestQueue", "send", "routerQueue", "The agent API (`GET /v1/queue`).", "queueReply"),
        rpc("answerQueue", "receive", "routerQueue", "The leading router.", "queueReply"),
        rpc("requestOffers", "send", "routerOffers", "The agent API (`GET /v1/agent/offers`).", "offersReply"),
        rpc("answerOffers", "receive", "routerOffers", "The leading router.", "offersReply"),
        rpc(
            "requestAvailability",
            "send",
            "routerAvailability",
            "The web chat (whether a team is online).",
            "availabilityReply",
        ),
        rpc("answerAvailability", "receive", "routerAvailability", "The leading router.", "availabilityReply"),
        rpc("requestExplain", "send", "routerExplain", "`switchboard explain`.", "explainReply"),
        rpc("answerExplain", "receive", "routerExplain", "The leading router.", "explainReply"),
        rpc("requestAgents", "send", "routerAgents", "`switchboard agents list`.", "agentsReply"),
        rpc("answerAgents", "receive", "routerAgents", "The leading router.", "agentsReply"),
        rpc(
            "requestForget",
            "send",
            "routerForget",
            "`switchboard customers forget`, `DELETE /v1/customers/{id}`.",
            "forgetReply",
        ),
        rpc("answerForget", "receive", "routerForget", "The leading router.", "forgetReply"),
        rpc("requestExpire", "send", "routerExpire", "The retention sweep (one process, by lease).", "forgetReply"),
        rpc("answerExpire", "receive", "routerExpire", "The leading router.", "forgetReply"),
        op("publishTyping", "send", "agentTyping", "The agent API (`POST /v1/agent/typing`)."),
        op("consumeTyping", "receive", "agentTyping", "The web chat."),
        op("appendTranscript", "send", "webchatTranscript", "The web chat channel."),
        op("replayTranscript", "receive", "webchatTranscript", "The web chat channel (to the widget, on connect)."),
    ]
}

fn channel(c: &Chan) -> Value {
    let mut out = json!({ "address": c.address, "description": c.description });
    let messages: Map<String, Value> =
        c.messages.iter().map(|m| (m.to_string(), json!({ "$ref": format!("#/components/messages/{m}") }))).collect();
    out["messages"] = messages.into();
    if !c.params.is_empty() {
        let params: Map<String, Value> =
            c.params.iter().map(|(name, what)| (name.to_string(), parameter(c, name, what))).collect();
        out["parameters"] = params.into();
    }
    // Readers of agent deliveries take more than the one address names.
    let p = |name: &str| format!("{{{name}}}");
    let reader_filters = match c.id {
        "agentOut" | "agentOutUnnamed" => vec![subjects::agent_out(&p("kind")), subjects::agent_out_filter(&p("kind"))],
        "agentStream" => vec![subjects::agent_stream(&p("agentId"))],
        _ => Vec::new(),
    };
    if !reader_filters.is_empty() {
        out["x-switchboard-reader-filters"] = reader_filters.into();
    }
    match c.address.as_deref().and_then(stream_of) {
        Some(stream) => out["x-switchboard-stream"] = stream.into(),
        None if c.address.is_some() => out["x-switchboard-transport"] = "core NATS (not stored)".into(),
        None => {}
    }
    out
}

fn parameter(c: &Chan, name: &str, what: &str) -> Value {
    let mut p = json!({ "description": what });
    if c.id == "events" && name == "kind" {
        p["enum"] = event_kinds().into();
    }
    p
}

/// The event kinds, as the generated `event/1` schema lists them.
fn event_kinds() -> Vec<Value> {
    let schema = schemars::schema_for!(crate::EventKind);
    let value = serde_json::to_value(&schema).unwrap_or_default();
    let variants =
        value.get("oneOf").or_else(|| value.get("anyOf")).and_then(Value::as_array).cloned().unwrap_or_default();
    variants.iter().filter_map(|v| v.get("const").or_else(|| v.get("enum").and_then(|e| e.get(0)))).cloned().collect()
}

fn operation(op: &Op, channels: &[Chan]) -> Value {
    let chan = channels.iter().find(|c| c.id == op.channel).map(|c| c.messages).unwrap_or_default();
    let messages: Vec<Value> =
        chan.iter().map(|m| json!({ "$ref": format!("#/channels/{}/messages/{m}", op.channel) })).collect();
    let mut out = json!({
        "action": op.action,
        "channel": { "$ref": format!("#/channels/{}", op.channel) },
        "summary": op.by,
        "messages": messages,
    });
    if let Some(reply) = op.reply {
        out["reply"] = json!({
            "channel": { "$ref": "#/channels/rpcReply" },
            "messages": [{ "$ref": format!("#/channels/rpcReply/messages/{reply}") }],
        });
    }
    out
}

/// A stored contract message: `Sb-Schema` is its schema id, `Nats-Msg-Id` de-duplicates it.
fn stored(schema_id: &str, file: &str, title: &str, msg_id: &str) -> Value {
    json!({
        "name": schema_id,
        "title": title,
        "contentType": "application/json",
        "headers": {
            "type": "object",
            "required": [headers::SCHEMA, headers::MSG_ID],
            "properties": {
                (headers::SCHEMA): { "type": "string", "const": schema_id, "description": "The payload's schema id." },
                (headers::MSG_ID): { "type": "string", "description": msg_id },
                (headers::NOT_BEFORE): {
                    "type": "string",
                    "description": "On a copy stored again because its receiver asked to wait: not handled before this time (Unix milliseconds).",
                },
                (headers::ENDPOINT_COPY): {
                    "type": "string",
                    "description": "Agent deliveries: the copy for the agent's second (third, ...) endpoint kind, which the agent's own stream skips.",
                },
                (headers::REWRITE_OF): {
                    "type": "string",
                    "description": "Event batches: the SB_EVENTS sequence of the batch an erasure rewrote; this batch holds the others' events of it, published again, and readers that act on events skip it.",
                },
            },
        },
        "payload": { "schemaFormat": SCHEMA_FORMAT, "schema": { "$ref": format!("{SCHEMA_DIR}{file}") } },
        "x-switchboard-schema-id": schema_id,
    })
}

/// A message whose payload is not a versioned contract schema.
fn plain(title: &str, payload: Value) -> Value {
    json!({ "title": title, "contentType": "application/json", "payload": payload })
}

fn file_of(schema_id: &str) -> &'static str {
    crate::schema::ids().into_iter().find(|(id, _)| *id == schema_id).map(|(_, f)| f).unwrap_or_default()
}

fn messages() -> Value {
    let uuid = json!({ "type": "string", "format": "uuid" });
    let mut dlq_headers = Map::new();
    let dlq_meaning = [
        "Why the message was given up.",
        "The component that gave up.",
        "How many deliveries were attempted.",
        "The subject the message was originally published on.",
        "The original stream sequence, for audit.",
    ];
    for (name, meaning) in headers::DLQ.iter().zip(dlq_meaning) {
        dlq_headers.insert(name.to_string(), json!({ "type": "string", "description": meaning }));
    }
    dlq_headers.insert(
        headers::SCHEMA.into(),
        json!({ "type": "string", "description": "The original message's schema id, when it had one." }),
    );
    dlq_headers.insert(
        headers::MSG_ID.into(),
        json!({ "type": "string", "description": "The dead letter's own de-duplication id, not the original's: \
            `dlq:<component>:<stream>:<stream sequence>` from a consumer that gave up, \
            `dlq:email:<Sb-Raw-Ref>` for a raw mail, `dlq:telegram:update:<update_id>` for a raw Telegram update \
            (`:<replay id>` appended when a replayed update fails again). The same failure handled twice is stored once." }),
    );
    dlq_headers.insert(
        headers::DLQ_KIND.into(),
        json!({
            "type": "string",
            "description": "What the payload is: the original's schema id, or a raw provider item's kind \
                            (`x-switchboard-dlq-kinds`). Absent on dead letters stored before it existed: \
                            then `Sb-Schema` says it.",
            "examples": dlq_kind_list().iter().map(|(k, _)| *k).collect::<Vec<_>>(),
        }),
    );
    let raw_ref =
        "Raw provider items: where the item is at the provider (for a mail: `imap:<mailbox>:<UIDVALIDITY>:<UID>`).";
    dlq_headers.insert(headers::RAW_REF.into(), json!({ "type": "string", "description": raw_ref }));
    json!({
        "envelope": stored(Envelope::SCHEMA, file_of(Envelope::SCHEMA), "An inbound customer message",
            "`<channel>:<provider message id>`: the same provider message twice is stored once."),
        "outbound": stored(OutboundMessage::SCHEMA, file_of(OutboundMessage::SCHEMA), "A message to a customer",
            "The outbound message's `id`."),
        "agentDelivery": stored(AgentDelivery::SCHEMA, file_of(AgentDelivery::SCHEMA),
            "An offer, a conversation message or an update for an agent (by `type`)", "The delivery's id."),
        "command": stored(AgentCommand::SCHEMA, file_of(AgentCommand::SCHEMA), "An agent command",
            "The command's `id`: the same id twice acts once."),
        "event": stored(Event::SCHEMA, file_of(Event::SCHEMA), "An event of the audit log",
            "The event's `id`; `<survey>:<conversation id>` for `csat_received`, `nps_received` and `ces_received` \
             (e.g. `nps:<conversation id>`), so only the first answer to a survey counts."),
        "eventBatch": stored(EventBatch::SCHEMA, file_of(EventBatch::SCHEMA),
            "Events of one router step, in order",
            "`events:<first event's id>`: a step published again (a replayed journal entry) is stored once; \
             `events:rewrite:<sequence>` for what an erasure left of the batch at that sequence \
             (on `sb.events.rewritten`)."),
        "deadLetter": {
            "title": "A dead letter",
            "description": "The original payload, unchanged, with the original headers and the dead-letter headers.",
            "headers": { "type": "object", "required": headers::DLQ, "properties": dlq_headers },
            "payload": { "description": "The original message's payload (any content type)." },
        },
        "rawItem": {
            "title": "A raw provider item, replayed",
            "description": "The dead letter's payload unchanged (a raw mail, a Telegram `Update` as JSON), its kind in \
                            `Sb-Dlq-Kind` and, for a mail, `Sb-Raw-Ref`.",
            "headers": {
                "type": "object",
                "required": [headers::DLQ_KIND, headers::MSG_ID],
                "properties": {
                    (headers::DLQ_KIND): { "type": "string", "enum": [dlq_kinds::RAW_MAIL, dlq_kinds::TELEGRAM_UPDATE] },
                    (headers::MSG_ID): { "type": "string", "description": "`replay:<dead letter's sequence>:<its store time in ns>`." },
                    (headers::RAW_REF): { "type": "string", "description": raw_ref },
                },
            },
            "payload": { "description": "The raw item's bytes." },
        },
        "journalEntry": plain("A router journal entry", json!({ "description": "Internal to the router; not part of the public contract." })),
        "commandResult": plain("A command's verdict", json!({
            "type": "object",
            "required": ["command_id", "rejected"],
            "properties": {
                "command_id": uuid,
                "rejected": { "type": ["string", "null"], "description": "Why the command was refused; null when it applied." },
            },
        })),
        "emptyRequest": plain("A request without a body", json!({ "type": "string", "maxLength": 0 })),
        "explainRequest": plain("A conversation id", json!({ "type": "string", "format": "uuid", "contentMediaType": "text/plain" })),
        "queueReply": plain("The group's queue", json!({ "type": "array", "items": { "type": "object" },
            "description": "Waiting conversations in the order they will be offered." })),
        "offersRequest": plain("Whose offers", json!({ "type": "string", "contentMediaType": "text/plain",
            "description": "An agent id; empty for every agent's offers." })),
        "offersReply": plain("Open offers", json!({ "type": "array", "items": { "type": "object" },
            "description": "Per open offer: conversation, agent, channel, customer, routing, `offered_at` and `offer_deadline`." })),
        "availabilityReply": plain("Every team's availability", json!({ "type": "object",
            "description": "Per team: online agents and whether it is within business hours." })),
        "explainReply": plain("Why a conversation is routed as it is", json!({
            "type": "object",
            "properties": {
                "explanation": { "description": "The routing engine's explanation." },
                "channel": { "type": ["string", "null"] },
                "customer": { "type": ["string", "null"] },
                "error": { "type": "string", "description": "Instead of the others: not a conversation id, or unknown." },
            },
        })),
        "agentsReply": plain("Every agent the router knows", json!({ "type": "array", "items": { "type": "object" },
            "description": "Per agent: id, status, load and teams." })),
        "forgetRequest": plain("Whom to erase", json!({
            "type": "object",
            "required": ["customers", "threads"],
            "properties": {
                "customers": { "type": "array", "items": { "type": "string" }, "description": "Customer keys `<channel>:<id>` and person keys `email:<address>`." },
                "threads": { "type": "array", "items": { "type": "string" }, "description": "Thread keys `<channel>:<thread key>`." },
            },
        })),
        "expireRequest": plain("The retention cut-off", json!({
            "type": "object",
            "required": ["before"],
            "properties": { "before": { "type": "integer", "description": "Unix ms: memory of customers silent since before then ends." } },
        })),
        "forgetReply": plain("What the router erased", json!({
            "type": "object",
            "properties": {
                "conversations": { "type": "array", "items": uuid, "description": "The conversations erased." },
                "snapshot_sequence": { "type": "integer", "description": "The journal sequence of the snapshot saved after the erasure." },
                "error": { "type": "string", "description": "Instead of the others: why nothing was done." },
            },
        })),
        "typing": plain("An agent is typing", json!({
            "type": "object",
            "required": ["conversation_id", "agent_id"],
            "properties": {
                "conversation_id": uuid,
                "agent_id": { "type": "string" },
                "agent_name": { "type": "string", "description": "The agent's display name, where the sender knows it." },
            },
            "additionalProperties": false,
        })),
        "webchatEntry": plain("A web-chat transcript entry", json!({
            "type": "object",
            "description": "The web chat channel's own entry format, named by its `Sb-Schema` header; see `webchat-protocol.md`.",
        })),
    })
}
