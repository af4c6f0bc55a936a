//! The fake Graph API enforces the Cloud API's rules it claims to: the token, the number, known
//! types, text length, uploaded media ids, approved templates and the 24-hour window, with errors
//! in the documented shape; media is served by id and URL to the token only.

use std::time::Duration;

use serde_json::{Value, json};
use switchboard_testkit::{FAKE_GRAPH_VERSION, FakeGraph, GraphFault};

const TOKEN: &str = "EAAG-fake-token";
const NUMBER: &str = "106540352242922";

async fn post(graph: &FakeGraph, token: &str, path: &str, body: Value) -> (u16, Value) {
    let r = reqwest::Client::new()
        .post(format!("{}/{FAKE_GRAPH_VERSION}/{path}", graph.url()))
        .bearer_auth(token)
        .json(&body)
        .send()
        .await
        .unwrap();
    (r.status().as_u16(), r.json().await.unwrap_or(Value::Null))
}

fn text(to: &str, body: &str) -> Value {
    json!({ "messaging_product": "whatsapp", "to": to, "type": "text", "text": { "body": body } })
}

#[tokio::test]
async fn sends_follow_the_cloud_api_rules() {
    let graph = FakeGraph::start(TOKEN, "app-secret-for-the-fake", NUMBER).await;
    let messages = format!("{NUMBER}/messages");
    // No window yet: only a template may go.
    let (status, body) = post(&graph, TOKEN, &messages, text("15551230000", "hi")).await;
    assert_eq!((status, body["error"]["code"].as_i64()), (400, Some(131047)), "{body}");
    assert_eq!(body["error"]["type"], "OAuthException");
    assert!(body["error"]["fbtrace_id"].is_string() && body["error"]["error_subcode"].is_i64(), "{body}");
    let template = json!({ "messaging_product": "whatsapp", "to": "15551230000", "type": "template",
                           "template": { "name": "reengage", "language": { "code": "en_US" } } });
    assert_eq!(post(&graph, TOKEN, &messages, template.clone()).await.0, 200);
    let mut unknown = template;
    unknown["template"]["name"] = "not_approved".into();
    assert_eq!(post(&graph, TOKEN, &messages, unknown).await.1["error"]["code"], 132001);

    // The customer writes: free text goes, within 4,096 characters, with the right token and number.
    graph.text("15551230000", "hello");
    let (status, body) = post(&graph, TOKEN, &messages, text("15551230000", "hi")).await;
    assert_eq!(status, 200, "{body}");
    assert!(body["messages"][0]["id"].as_str().unwrap().starts_with("wamid."));
    assert_eq!(post(&graph, "wrong", &messages, text("15551230000", "hi")).await.1["error"]["code"], 190);
    assert_eq!(post(&graph, TOKEN, "999/messages", text("15551230000", "hi")).await.1["error"]["code"], 100);
    let long = "x".repeat(4097);
    assert_eq!(post(&graph, TOKEN, &messages, text("15551230000", &long)).await.1["error"]["code"], 100);
    let image =
        json!({ "messaging_product": "whatsapp", "to": "15551230000", "type": "image", "image": { "id": "404" } });
    assert_eq!(post(&graph, TOKEN, &messages, image).await.1["error"]["code"], 131053);
    // Injected faults come in order, after the sends they skip.
    graph.fail_after(1, 1, GraphFault::pair_rate());
    assert_eq!(post(&graph, TOKEN, &messages, text("15551230000", "a")).await.0, 200);
    assert_eq!(post(&graph, TOKEN, &messages, text("15551230000", "b")).await.1["error"]["code"], 131056);
    assert_eq!(post(&graph, TOKEN, &messages, text("15551230000", "c")).await.0, 200);
    assert_eq!(graph.sent_to("15551230000").len(), 4);

    // Older than 24 hours: closed again.
    graph.message_at("15551239999", "text", json!({ "body": "old" }), Duration::from_secs(25 * 3600));
    assert_eq!(post(&graph, TOKEN, &messages, text("15551239999", "late")).await.1["error"]["code"], 131047);
}

#[tokio::test]
async fn media_is_served_to_the_token_only_and_webhooks_are_signed() {
    let graph = FakeGraph::start(TOKEN, "app-secret-for-the-fake", NUMBER).await;
    graph.add_media("777", "image/png", b"png bytes".to_vec());
    let http = reqwest::Client::new();
    let lookup = http.get(format!("{}/{FAKE_GRAPH_VERSION}/777", graph.url())).bearer_auth(TOKEN).send().await.unwrap();
    let found: Value = lookup.json().await.unwrap();
    assert_eq!((found["mime_type"].as_str(), found["file_size"].as_u64()), (Some("image/png"), Some(9)));
    let url = found["url"].as_str().unwrap();
    assert_eq!(http.get(url).send().await.unwrap().status(), 401, "no token");
    let bytes = http.get(url).bearer_auth(TOKEN).send().await.unwrap().bytes().await.unwrap();
    assert_eq!(&bytes[..], b"png bytes");
    let missing =
        http.get(format!("{}/{FAKE_GRAPH_VERSION}/778", graph.url())).bearer_auth(TOKEN).send().await.unwrap();
    assert_eq!(missing.status(), 400);

    // HMAC-SHA256 of the body with the app secret, as Meta signs it.
    assert_eq!(graph.sign(b"{}"), "sha256=".to_string() + &hmac_hex(b"app-secret-for-the-fake", b"{}"),);
    let n = graph.notification(vec![graph.media("15551230000", "image", "777", Some("look"))]);
    let m = &n["entry"][0]["changes"][0]["value"]["messages"][0];
    assert_eq!(
        (m["type"].as_str(), m["image"]["id"].as_str(), m["image"]["mime_type"].as_str()),
        (Some("image"), Some("777"), Some("image/png"))
    );
    assert_eq!(n["entry"][0]["changes"][0]["value"]["contacts"][0]["wa_id"], "15551230000");
}

fn hmac_hex(key: &[u8], body: &[u8]) -> String {
    // An independent HMAC-SHA256 (RFC 2104) over SHA-256, to check the fake's signer against.
    use sha2::Digest;
    let mut k = [0u8; 64];
    k[..key.len()].copy_from_slice(key);
    let inner: Vec<u8> = k.iter().map(|b| b ^ 0x36).chain(body.iter().copied()).collect();
    let inner = sha2::Sha256::digest(&inner);
    let outer: Vec<u8> = k.iter().map(|b| b ^ 0x5c).chain(inner.iter().copied()).collect();
    hex::encode(sha2::Sha256::digest(&outer))
}
