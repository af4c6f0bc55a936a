//! The wire format against payloads shaped as VK's documentation shows them (Bots Long Poll API
//! and Callback API, API 5.199).

use serde_json::json;
use switchboard_channel_vk::wire::{self, ErrorClass, Parsed};
use switchboard_core::{Contract, SurveyKind};

/// `message_new` as the Callback API documentation shows it (5.103+ shape, `object.message`).
fn documented_message_new() -> serde_json::Value {
    json!({
        "group_id": 225_000_001, "type": "message_new", "event_id": "8c4a2e0d3a0f2b6c5d1e9f7a6b5c4d3e2f1a0b9c", "v": "5.199",
        "object": {
            "message": {
                "date": 1_733_580_000, "from_id": 5_550_001, "id": 0, "out": 0, "version": 10_000_111,
                "attachments": [
                    { "type": "photo", "photo": { "album_id": -3, "date": 1_733_580_000, "id": 457_239_017, "owner_id": 5_550_001,
                      "access_key": "f2d9", "sizes": [
                        { "height": 75, "type": "s", "width": 56, "url": "https://sun9-1.userapi.com/s.jpg" },
                        { "height": 2560, "type": "w", "width": 1920, "url": "https://sun9-1.userapi.com/w.jpg" },
                        { "height": 807, "type": "y", "width": 605, "url": "https://sun9-1.userapi.com/y.jpg" } ],
                      "text": "", "has_tags": false } },
                    { "type": "doc", "doc": { "id": 674_000_111, "owner_id": 5_550_001, "title": "invoice.pdf", "size": 48_211,
                      "ext": "pdf", "date": 1_733_580_000, "type": 1, "url": "https://vk.com/doc5550001_674000111?hash=x" } },
                    { "type": "audio_message", "audio_message": { "duration": 7, "id": 704_000_111, "link_mp3": "https://psv4.userapi.com/a.mp3",
                      "link_ogg": "https://psv4.userapi.com/a.ogg", "owner_id": 5_550_001, "waveform": [0, 0, 3, 12, 31] } },
                    { "type": "video", "video": { "id": 456_239_017, "owner_id": 5_550_001, "title": "clip" } }
                ],
                "conversation_message_id": 42, "fwd_messages": [], "important": false, "is_hidden": false,
                "peer_id": 5_550_001, "random_id": 0, "text": "Hello, my parcel is broken"
            },
            "client_info": { "button_actions": ["text", "vkpay", "open_app", "location", "open_link", "callback"],
                             "keyboard": true, "inline_keyboard": true, "carousel": true, "lang_id": 0 }
        },
        "secret": "s3cr3t"
    })
}

#[test]
fn a_documented_message_new_becomes_a_valid_envelope_with_every_kind() {
    let Parsed::Message(m) = wire::parse(&documented_message_new()) else { panic!("a message") };
    assert_eq!((m.peer_id, m.from_id, m.cmid), (5_550_001, 5_550_001, 42));
    assert_eq!(m.files.len(), 3, "photo, doc, voice");
    assert_eq!(m.files[0].url, "https://sun9-1.userapi.com/w.jpg", "the largest size");
    assert_eq!(m.files[0].object, "vk/photo/5550001_457239017");
    assert_eq!(
        (m.files[1].name.as_str(), m.files[1].content_type.as_str(), m.files[1].size),
        ("invoice.pdf", "application/pdf", Some(48_211))
    );
    assert_eq!((m.files[2].name.as_str(), m.files[2].content_type.as_str()), ("voice.ogg", "audio/ogg"));
    assert_eq!(m.uncarried, vec!["video".to_string()]);
    let e = m.envelope(Some("event:x".into())).expect("an envelope");
    assert_eq!(e.validate(), Ok(()));
    assert_eq!(e.provider_message_id, "5550001:42");
    assert_eq!((e.customer.id.as_str(), e.thread_key.as_str()), ("5550001", "5550001"));
    assert_eq!(e.text, "Hello, my parcel is broken\n[voice message, 0:07]\n[not shown here: video]");
    assert_eq!(e.metadata["vk.kind"], "text,photo,doc,audio_message");
    assert_eq!(e.metadata["vk.uncarried"], "video");
    assert_eq!(e.attachments.len(), 3);
}

#[test]
fn the_pre_5_103_shape_and_stickers_and_places_are_read() {
    // Before 5.103 the message was the object itself.
    let old = json!({ "type": "message_new", "group_id": 1, "object": { "id": 77, "from_id": 9, "peer_id": 9, "text": "",
        "attachments": [ { "type": "sticker", "sticker": { "product_id": 1, "sticker_id": 9 } } ],
        "geo": { "type": "point", "coordinates": { "latitude": 59.93428, "longitude": 30.3351 } } } });
    let Parsed::Message(m) = wire::parse(&old) else { panic!("a message") };
    assert_eq!(m.cmid, 77, "the message id stands in for the dialog number");
    let e = m.envelope(None).unwrap();
    assert_eq!(e.text, "[sticker]\n[location: 59.93428, 30.33510]");
    assert_eq!(e.metadata["vk.geo"], "59.93428,30.33510");
    assert_eq!(e.validate(), Ok(()));
}

#[test]
fn a_message_of_nothing_carried_has_no_envelope_and_communities_are_not_customers() {
    let video = json!({ "type": "message_new", "object": { "message": { "from_id": 9, "peer_id": 9, "conversation_message_id": 3,
        "text": "", "attachments": [ { "type": "wall", "wall": {} } ] } } });
    let Parsed::Message(m) = wire::parse(&video) else { panic!("a message") };
    assert!(!m.carried());
    assert!(m.envelope(None).is_none());
    let own = json!({ "type": "message_new", "object": { "message": { "from_id": -225_000_001, "peer_id": 9, "conversation_message_id": 4, "text": "hi" } } });
    assert!(matches!(wire::parse(&own), Parsed::Ignored(_)));
    assert!(matches!(wire::parse(&json!({ "type": "message_new", "object": {} })), Parsed::Unreadable(_)));
    assert!(matches!(wire::parse(&json!({ "object": {} })), Parsed::Unreadable(_)));
    assert!(
        matches!(wire::parse(&json!({ "type": "wall_post_new", "object": {} })), Parsed::Ignored(t) if t == "wall_post_new")
    );
}

#[test]
fn edits_and_permissions_take_their_ids_from_vk() {
    let edit = json!({ "type": "message_edit", "event_id": "e1", "object": { "from_id": 9, "peer_id": 9, "conversation_message_id": 3,
        "text": "fixed", "update_time": 1_733_580_100 } });
    assert_eq!(
        wire::parse(&edit),
        Parsed::Edit { peer_id: 9, cmid: 3, text: "fixed".into(), msg_id: "vk-edit:e1".into() }
    );
    let deny = json!({ "type": "message_deny", "event_id": "e2", "object": { "user_id": 9 } });
    assert_eq!(wire::parse(&deny), Parsed::Permission { user_id: 9, blocked: true, msg_id: "vk-permission:e2".into() });
    let allow = json!({ "type": "message_allow", "object": { "user_id": 9, "key": "k" } });
    assert_eq!(
        wire::parse(&allow),
        Parsed::Permission { user_id: 9, blocked: false, msg_id: "vk-permission:message_allow:9:k".into() }
    );
}

#[test]
fn survey_buttons_fit_vk_and_parse_back_strictly() {
    let c = uuid::Uuid::now_v7();
    for kind in SurveyKind::ALL {
        let k = wire::survey_keyboard(kind, c);
        assert_eq!(k["inline"], true);
        let rows = k["buttons"].as_array().unwrap();
        assert!(rows.len() <= 6 && rows.iter().all(|r| r.as_array().unwrap().len() <= 5), "{kind}");
        let buttons: Vec<_> = rows.iter().flat_map(|r| r.as_array().unwrap().clone()).collect();
        assert_eq!(buttons.len(), kind.scale().count());
        for b in buttons {
            let payload = b["action"]["payload"].as_str().unwrap();
            assert!(payload.len() <= 255);
            let score: u8 = b["action"]["label"].as_str().unwrap().parse().unwrap();
            assert_eq!(wire::survey_answer(payload), Some((kind, c, score)));
        }
    }
    let hex = c.simple();
    for bad in [
        format!(r#"{{"sb_survey":"csat:{hex}:6"}}"#),
        format!(r#"{{"sb_survey":"nps:{hex}:09"}}"#),
        format!(r#"{{"sb_survey":"nps:{}:9"}}"#, c.hyphenated()),
        format!(r#"{{"other":"csat:{hex}:5"}}"#),
        r#"{"command":"start"}"#.to_string(),
        "not json".to_string(),
    ] {
        assert_eq!(wire::survey_answer(&bad), None, "{bad}");
    }
}

#[test]
fn random_ids_are_stable_distinct_per_part_and_positive() {
    let id = uuid::Uuid::now_v7().simple().to_string();
    assert_eq!(wire::random_id(&id, 0), wire::random_id(&id, 0));
    let ids: std::collections::HashSet<i32> = (0..50).map(|p| wire::random_id(&id, p)).collect();
    assert_eq!(ids.len(), 50);
    assert!(ids.iter().all(|r| *r > 0));
}

#[test]
fn long_texts_split_within_4096_characters_and_lose_nothing() {
    let text = "Привет, мир! ".repeat(800); // 10,400 characters, two bytes each in UTF-8 for most
    let parts = wire::split(&text, wire::MAX_TEXT_CHARS);
    assert_eq!(parts.len(), 3);
    assert!(parts.iter().all(|p| p.chars().count() <= wire::MAX_TEXT_CHARS));
    assert_eq!(parts.concat(), text);
    assert_eq!(wire::split("short", 4096), vec!["short".to_string()]);
    let unbroken = "x".repeat(5000);
    assert_eq!(wire::split(&unbroken, 4096).iter().map(|p| p.len()).collect::<Vec<_>>(), vec![4096, 904]);
}

#[test]
fn error_codes_are_sorted_as_vk_documents_them() {
    assert_eq!(wire::classify(6), ErrorClass::Wait);
    assert_eq!(wire::classify(9), ErrorClass::Wait);
    assert_eq!(wire::classify(5), ErrorClass::Auth);
    assert_eq!(wire::classify(901), ErrorClass::Denied);
    assert_eq!(wire::classify(100), ErrorClass::Permanent);
    assert!(wire::denied_reason(901).contains("not allowed the community to message them"));
}
