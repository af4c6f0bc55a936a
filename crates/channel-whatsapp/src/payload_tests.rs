//! The wire format against the payload shapes of Meta's "Webhooks payload examples" (one per
//! message type and status), wrapped as a notification the way Meta sends them.

use serde_json::{Value, json};
use switchboard_core::Contract;

use super::*;

const FROM: &str = "16505551234";

/// A notification with one message (and the customer's profile) as Meta sends it.
fn notification(message: Value) -> Vec<u8> {
    json!({
        "object": "whatsapp_business_account",
        "entry": [{
            "id": "102290129340398",
            "changes": [{
                "value": {
                    "messaging_product": "whatsapp",
                    "metadata": { "display_phone_number": "15550783881", "phone_number_id": "106540352242922" },
                    "contacts": [{ "profile": { "name": "Sheena Nelson" }, "wa_id": FROM }],
                    "messages": [message]
                },
                "field": "messages"
            }]
        }]
    })
    .to_string()
    .into_bytes()
}

fn one(message: Value) -> Item {
    let mut items = parse(&notification(message)).unwrap();
    assert_eq!(items.len(), 1);
    items.remove(0)
}

fn carried(message: Value) -> Carried {
    match one(message) {
        Item::Message(c) => {
            assert_eq!(c.envelope.validate(), Ok(()), "a valid envelope/1");
            *c
        }
        other => panic!("not a message: {other:?}"),
    }
}

fn base(kind: &str, body: Value) -> Value {
    let mut m = json!({ "from": FROM, "id": format!("wamid.HBgLMTY1MDM4Nzk0MzkVAgASGBQz{kind}"), "timestamp": "1749416383", "type": kind });
    m[kind] = body;
    m
}

#[test]
fn text_is_an_envelope_with_the_customer_and_the_number() {
    let c = carried(base("text", json!({ "body": "Does it come in another color?" })));
    let e = &c.envelope;
    assert_eq!(e.channel, "whatsapp");
    assert_eq!(e.provider_message_id, "wamid.HBgLMTY1MDM4Nzk0MzkVAgASGBQztext");
    assert_eq!((e.customer.id.as_str(), e.thread_key.as_str()), (FROM, FROM));
    assert_eq!(e.customer.name.as_deref(), Some("Sheena Nelson"));
    assert_eq!(e.customer.phone.as_deref(), Some("+16505551234"));
    assert_eq!(e.text, "Does it come in another color?");
    assert_eq!(e.metadata[KIND_KEY], "text");
    assert_eq!(e.metadata["whatsapp.phone_number_id"], "106540352242922");
    assert_eq!(e.metadata["whatsapp.to"], "15550783881");
    assert_eq!(c.sent_at, 1749416383);
    assert!(c.media.is_none() && e.attachments.is_empty());
}

#[test]
fn every_media_type_lists_its_file_to_fetch() {
    let sha = "UTFmSk3NjZ5Rtd8Tr0wNN8qHMsGa4YdPBQlfkX1VjqE=";
    let cases = [
        (
            base(
                "image",
                json!({ "caption": "The box arrived crushed", "mime_type": "image/jpeg", "sha256": sha, "id": "1003383421387256" }),
            ),
            "image",
            "[image] The box arrived crushed",
            "image.jpg",
        ),
        (
            base(
                "audio",
                json!({ "mime_type": "audio/ogg; codecs=opus", "sha256": sha, "id": "1003383421387257", "voice": true }),
            ),
            "voice",
            "[voice message]",
            "voice.ogg",
        ),
        (
            base(
                "audio",
                json!({ "mime_type": "audio/mpeg", "sha256": sha, "id": "1003383421387258", "voice": false }),
            ),
            "audio",
            "[audio]",
            "audio.mp3",
        ),
        (
            base("video", json!({ "mime_type": "video/mp4", "sha256": sha, "id": "1003383421387259" })),
            "video",
            "[video]",
            "video.mp4",
        ),
        (
            base(
                "document",
                json!({ "caption": "My invoice", "filename": "invoice-17.pdf", "mime_type": "application/pdf", "sha256": sha, "id": "1003383421387260" }),
            ),
            "document",
            "[document: invoice-17.pdf] My invoice",
            "invoice-17.pdf",
        ),
        (
            base(
                "sticker",
                json!({ "mime_type": "image/webp", "sha256": sha, "id": "1003383421387261", "animated": false }),
            ),
            "sticker",
            "[sticker]",
            "sticker.webp",
        ),
    ];
    for (message, kind, text, filename) in cases {
        let id = message[message["type"].as_str().unwrap()]["id"].as_str().unwrap().to_string();
        let c = carried(message);
        assert_eq!(c.envelope.metadata[KIND_KEY], kind);
        assert_eq!(c.envelope.text, text);
        let media = c.media.clone().expect("media to fetch");
        assert_eq!(media.id, id);
        let a = &c.envelope.attachments[0];
        assert_eq!((a.filename.as_str(), a.object.as_str()), (filename, ""));
        assert_eq!(a.content_type, media.mime_type);
        assert!(a.skipped.as_deref().unwrap().contains(&id), "listed until fetched: {a:?}");
    }
}

#[test]
fn location_contacts_and_replies_render_for_the_agent() {
    let c = carried(base(
        "location",
        json!({ "address": "1 Hacker Way, Menlo Park, CA 94025", "latitude": 37.483307, "longitude": -122.148981, "name": "Main Office", "url": "https://www.meta.com" }),
    ));
    assert_eq!(c.envelope.text, "[location 37.483307, -122.148981] Main Office, 1 Hacker Way, Menlo Park, CA 94025");
    assert_eq!(c.envelope.metadata["whatsapp.latitude"], "37.483307");

    let mut m = json!({ "from": FROM, "id": "wamid.contacts", "timestamp": "1749416383", "type": "contacts" });
    m["contacts"] = json!([{
        "addresses": [{ "city": "Menlo Park", "country": "United States", "type": "HOME" }],
        "emails": [{ "email": "bjohnson@whatsapp.com", "type": "WORK" }],
        "name": { "first_name": "Barbara", "last_name": "Johnson", "formatted_name": "Barbara J. Johnson" },
        "phones": [{ "phone": "+1 (940) 555-1234", "wa_id": "19405551234", "type": "HOME" }]
    }]);
    assert_eq!(carried(m).envelope.text, "[contact] Barbara J. Johnson, +1 (940) 555-1234, bjohnson@whatsapp.com");

    let mut m = base(
        "interactive",
        json!({ "type": "button_reply", "button_reply": { "id": "yes-refund", "title": "Yes, refund me" } }),
    );
    m["context"] = json!({ "from": "15550783881", "id": "wamid.HBgLMTY1MDM4Nzk0MzkVAgARGBI5QTNDQTVCM0Q0Q0Q2RTY3RTcA" });
    let c = carried(m);
    assert_eq!((c.envelope.text.as_str(), c.envelope.metadata[KIND_KEY].as_str()), ("Yes, refund me", "button_reply"));
    assert_eq!(c.envelope.metadata["whatsapp.reply_id"], "yes-refund");
    assert_eq!(
        c.envelope.metadata["whatsapp.context_id"],
        "wamid.HBgLMTY1MDM4Nzk0MzkVAgARGBI5QTNDQTVCM0Q0Q0Q2RTY3RTcA"
    );

    let list = base(
        "interactive",
        json!({ "type": "list_reply", "list_reply": { "id": "priority-express", "title": "Express", "description": "Next day delivery" } }),
    );
    let c = carried(list);
    assert_eq!(
        (c.envelope.text.as_str(), c.envelope.metadata[KIND_KEY].as_str()),
        ("Express (Next day delivery)", "list_reply")
    );

    let button = base("button", json!({ "payload": "STOP_PROMOTIONS", "text": "Stop promotions" }));
    let c = carried(button);
    assert_eq!(c.envelope.text, "Stop promotions");
    assert_eq!(c.envelope.metadata["whatsapp.button_payload"], "STOP_PROMOTIONS");

    let reaction = base("reaction", json!({ "message_id": "wamid.ours", "emoji": "\u{1F44D}" }));
    let c = carried(reaction);
    assert_eq!(c.envelope.text, "[reaction \u{1F44D}]");
    assert_eq!(c.envelope.metadata["whatsapp.reaction_to"], "wamid.ours");
}

#[test]
fn what_cannot_be_carried_is_named_and_nothing_is_dropped() {
    let unsupported = json!({
        "from": FROM, "id": "wamid.unsupported", "timestamp": "1749416383", "type": "unsupported",
        "errors": [{ "code": 131051, "title": "Message type unknown", "message": "Message type unknown",
                     "error_data": { "details": "Message type is currently not supported." } }]
    });
    assert_eq!(
        one(unsupported),
        Item::Unsupported { wamid: "wamid.unsupported".into(), from: FROM.into(), kind: "unsupported".into() }
    );
    let order = base("order", json!({ "catalog_id": "1", "product_items": [] }));
    assert!(matches!(one(order), Item::Unsupported { kind, .. } if kind == "order"));
    let future = base("hologram", json!({ "id": "1" }));
    assert!(matches!(one(future), Item::Unsupported { kind, .. } if kind == "hologram"));
    let no_media = base("image", json!({ "mime_type": "image/jpeg" }));
    assert!(matches!(one(no_media), Item::Unsupported { .. }));
    let taken_back = base("reaction", json!({ "message_id": "wamid.ours" }));
    assert!(matches!(one(taken_back), Item::NotRouted { .. }));
    let system = base("system", json!({ "body": "User changed number", "type": "user_changed_number" }));
    assert!(matches!(one(system), Item::NotRouted { .. }));
    assert!(matches!(one(json!({ "type": "text", "text": { "body": "x" } })), Item::Unreadable(_)));
    assert!(parse(b"{\"object\":\"page\",\"entry\":[]}").is_err());
    assert!(parse(b"not json").is_err());
}

#[test]
fn statuses_carry_the_callback_and_the_errors() {
    let body = json!({
        "object": "whatsapp_business_account",
        "entry": [{ "id": "102290129340398", "changes": [{ "field": "messages", "value": {
            "messaging_product": "whatsapp",
            "metadata": { "display_phone_number": "15550783881", "phone_number_id": "106540352242922" },
            "statuses": [
                { "id": "wamid.sent1", "status": "delivered", "timestamp": "1750263773", "recipient_id": FROM,
                  "biz_opaque_callback_data": "c:o",
                  "conversation": { "id": "4b9a7d0e1c2f", "origin": { "type": "service" } },
                  "pricing": { "billable": true, "pricing_model": "PMP", "category": "service" } },
                { "id": "wamid.sent2", "status": "failed", "timestamp": "1750263774", "recipient_id": FROM,
                  "errors": [{ "code": 131026, "title": "Message undeliverable", "message": "Message undeliverable",
                               "error_data": { "details": "Message Undeliverable." } }] }
            ]
        }}]}]
    });
    let items = parse(body.to_string().as_bytes()).unwrap();
    let [Item::Status(delivered), Item::Status(failed)] = items.as_slice() else { panic!("{items:?}") };
    assert_eq!((delivered.status.as_str(), delivered.callback.as_deref()), ("delivered", Some("c:o")));
    assert_eq!(failed.status, "failed");
    assert_eq!(failed.errors[0].to_string(), "131026 Message undeliverable: Message Undeliverable.");
}

#[test]
fn a_very_long_wamid_is_digested() {
    let long = format!("wamid.{}", "A".repeat(600));
    let id = dedupe_id(&long);
    assert!(id.starts_with("sha256:") && id.len() == 71);
    assert_eq!(dedupe_id("wamid.short"), "wamid.short");
}
