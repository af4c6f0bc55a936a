//! The HTTP API as an OpenAPI 3.1 document, generated from the handlers' own annotations.
//!
//! Every route is registered through utoipa-axum's `routes!` with its `#[utoipa::path]`, so the
//! paths the daemon serves and the paths documented here come from one place. `docs/openapi.json`
//! is the checked-in rendering (with every channel built in); a test fails when it drifts
//! (`make schema` regenerates it), and `switchboard openapi` prints it.

use utoipa::openapi::security::{ApiKey, ApiKeyValue, Http, HttpAuthScheme, SecurityScheme};
use utoipa::openapi::tag::TagBuilder;
use utoipa::openapi::{ComponentsBuilder, InfoBuilder, LicenseBuilder, OpenApi, OpenApiBuilder};

/// The whole HTTP API of a daemon with every channel built in and enabled (the web chat with
/// its demo page, Telegram updates by webhook).
pub fn document() -> OpenApi {
    let info = InfoBuilder::new()
        .title("Switchboard HTTP API")
        .version(env!("CARGO_PKG_VERSION"))
        .description(Some(
            "Every route of the daemon's one listener (`http.listen`): health, metrics, the agent API, \
             inbound webhooks and the channels' routes. Routes of a channel exist only when it is enabled \
             (and built in). Generated from the handlers (`switchboard openapi`); who may call what is in \
             `security.md`, the payload schemas of the bus in `schema/`.",
        ))
        .license(Some(LicenseBuilder::new().name("Apache-2.0").identifier(Some("Apache-2.0")).build()))
        .build();
    let mut doc = OpenApiBuilder::new().info(info).build();
    doc.merge(crate::http::health_openapi());
    doc.merge(crate::metrics::LiveMetrics::openapi());
    doc.merge(crate::api::openapi());
    doc.merge(crate::customers::openapi());
    doc.merge(crate::console::openapi());
    #[cfg(feature = "channel-webhook")]
    doc.merge(switchboard_channel_webhook::openapi());
    #[cfg(feature = "channel-telegram")]
    doc.merge(switchboard_channel_telegram::openapi());
    #[cfg(feature = "channel-webchat")]
    doc.merge(switchboard_channel_webchat::openapi(true));
    #[cfg(feature = "channel-slack")]
    doc.merge(switchboard_channel_slack::openapi());
    #[cfg(feature = "channel-whatsapp")]
    doc.merge(switchboard_channel_whatsapp::openapi());
    #[cfg(feature = "channel-vk")]
    doc.merge(switchboard_channel_vk::openapi());

    let mut components = doc.components.take().unwrap_or_else(|| ComponentsBuilder::new().build());
    for (name, scheme) in security_schemes() {
        components.add_security_scheme(name, scheme);
    }
    add_conditions(&mut components);
    doc.components = Some(components);
    doc.tags = Some(
        [
            ("health", "Liveness and readiness probes (no credentials, on purpose)."),
            ("metrics", "KPIs for Prometheus."),
            ("agent", "The agent API: commands, conversations, the queue, agent definitions."),
            ("customers", "A person's data: export and erasure (admin tokens only)."),
            (
                "console",
                "The supervisor's console: its page and the live views it reads (supervisor and admin tokens).",
            ),
            ("webhook", "Inbound messages from webhook sources (Standard Webhooks signatures)."),
            ("telegram", "Telegram updates by webhook."),
            ("webchat", "The web chat: widget, WebSocket, uploads and files."),
            ("slack", "Slack's Events API: agents' messages, button presses and the /sb command (signed by Slack)."),
            ("whatsapp", "WhatsApp Cloud API notifications (signed by Meta) and the webhook's verification."),
            ("vk", "VK's Callback API: a community's events (the secret key in the body)."),
        ]
        .into_iter()
        .map(|(name, what)| TagBuilder::new().name(name).description(Some(what)).build())
        .collect(),
    );
    doc
}

/// The document as checked in: pretty JSON with a final newline.
pub fn render() -> String {
    // Serialising the document is infallible: it is plain data.
    let mut text = document().to_pretty_json().unwrap_or_default();
    text.push('\n');
    text
}

/// A rule utoipa's schema model has no field for, added as a raw keyword (one, since extensions
/// are a hash map and would come out in any order): a command's `conversation_id` is required
/// unless its action is about the agent itself, as `command/1` says.
fn add_conditions(components: &mut utoipa::openapi::Components) {
    use utoipa::openapi::{RefOr, Schema};
    if let Some(RefOr::T(Schema::Object(request))) = components.schemas.get_mut("CommandRequest") {
        let agent_actions = switchboard_core::agent::AGENT_ACTIONS;
        request.extensions.get_or_insert_with(Default::default).insert(
            "anyOf".into(),
            serde_json::json!([
                { "properties": { "action": { "properties": { "type": { "enum": agent_actions } } } } },
                { "required": ["conversation_id"], "properties": { "conversation_id": { "type": "string" } } }
            ]),
        );
    }
}

fn security_schemes() -> Vec<(&'static str, SecurityScheme)> {
    let header =
        |name: &str, what: &str| SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::with_description(name, what)));
    let query =
        |name: &str, what: &str| SecurityScheme::ApiKey(ApiKey::Query(ApiKeyValue::with_description(name, what)));
    let mut bearer = Http::new(HttpAuthScheme::Bearer);
    bearer.description = Some(
        "An `[api.tokens.*]` token (agent, integration, supervisor or admin), or on `/metrics` the `[metrics]` token."
            .into(),
    );
    vec![
        ("bearer", SecurityScheme::Http(bearer)),
        (
            "standardWebhooks",
            header(
                "webhook-signature",
                "Standard Webhooks: `v1,<base64 HMAC-SHA256>` over `<webhook-id>.<webhook-timestamp>.<body>` \
                 with the source's `whsec_` secret; `webhook-id` and `webhook-timestamp` headers are required too.",
            ),
        ),
        ("telegramSecret", header("X-Telegram-Bot-Api-Secret-Token", "The webhook secret given to Telegram.")),
        (
            "whatsappSignature",
            header("X-Hub-Signature-256", "Meta's `sha256=<hex HMAC-SHA256>` of the raw body with the app secret."),
        ),
        (
            "slackSignature",
            header(
                "X-Slack-Signature",
                "Slack's `v0=<hex HMAC-SHA256>` over `v0:<X-Slack-Request-Timestamp>:<body>` with the app's signing \
                 secret; the timestamp must be within 5 minutes of now.",
            ),
        ),
        (
            "webchatSession",
            query("token", "A web-chat session token `v1.<session>.<HMAC>` signed by this server (from `hello`)."),
        ),
        ("webchatFileLink", query("sig", "The HMAC of the object name with the session key, from the transcript.")),
    ]
}
