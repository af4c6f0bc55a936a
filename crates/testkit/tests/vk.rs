//! The fake VK API speaks VK's documented wire format and enforces its rules: the token, the
//! Long Poll server's `ts` and `failed` answers, `random_id` de-duplication, denied customers,
//! the error body.

use std::time::Duration;

use serde_json::{Value, json};
use switchboard_testkit::FakeVk;

const TOKEN: &str = "vk1.a.fake-test-token";

async fn call(vk: &FakeVk, method: &str, params: &[(&str, &str)]) -> Value {
    let mut form: Vec<(&str, &str)> = params.to_vec();
    form.extend([("access_token", TOKEN), ("v", "5.199")]);
    let r = reqwest::Client::new().post(format!("{}/{method}", vk.api_url())).form(&form).send().await.unwrap();
    r.json().await.unwrap()
}

#[tokio::test]
async fn messages_send_deduplicates_by_random_id_per_peer_and_refuses_denied_customers() {
    let vk = FakeVk::start(7, TOKEN).await;
    let first = call(&vk, "messages.send", &[("peer_id", "11"), ("random_id", "42"), ("message", "hi")]).await;
    let id = first["response"].as_i64().expect("a message id");
    let again = call(&vk, "messages.send", &[("peer_id", "11"), ("random_id", "42"), ("message", "hi")]).await;
    assert_eq!(again["response"].as_i64(), Some(id), "the first message's id, nothing new");
    let other_peer = call(&vk, "messages.send", &[("peer_id", "12"), ("random_id", "42"), ("message", "hi")]).await;
    assert_ne!(other_peer["response"].as_i64(), Some(id), "random_id is per peer");
    assert_eq!(vk.sent().len(), 2);
    let missing = call(&vk, "messages.send", &[("peer_id", "11"), ("message", "no random_id")]).await;
    assert_eq!(missing["error"]["error_code"], 100);
    vk.note(&vk.callback(FakeVk::message_deny(13), None));
    let denied = call(&vk, "messages.send", &[("peer_id", "13"), ("random_id", "1"), ("message", "hi")]).await;
    assert_eq!(denied["error"]["error_code"], 901);
    assert!(denied["error"]["request_params"].as_array().unwrap().iter().any(|p| p["key"] == "method"));
    let long = "x".repeat(4097);
    let too_long = call(&vk, "messages.send", &[("peer_id", "11"), ("random_id", "2"), ("message", &long)]).await;
    assert_eq!(too_long["error"]["error_code"], 914);
    vk.fail("messages.send", &[9]);
    let flood = call(&vk, "messages.send", &[("peer_id", "11"), ("random_id", "3"), ("message", "hi")]).await;
    assert_eq!(flood["error"]["error_code"], 9);
    let r = reqwest::Client::new()
        .post(format!("{}/messages.send", vk.api_url()))
        .form(&[("access_token", "wrong"), ("v", "5.199"), ("peer_id", "11"), ("random_id", "4")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.json::<Value>().await.unwrap()["error"]["error_code"], 5);
}

#[tokio::test]
async fn the_long_poll_server_numbers_events_by_ts_and_answers_failed_as_documented() {
    let vk = FakeVk::start(7, TOKEN).await;
    let server = call(&vk, "groups.getLongPollServer", &[("group_id", "7")]).await["response"].clone();
    let (url, key, ts) =
        (server["server"].as_str().unwrap(), server["key"].as_str().unwrap(), server["ts"].as_str().unwrap());
    let http = reqwest::Client::new();
    let check = |key: &str, ts: &str, wait: &str| {
        let q = [("act", "a_check"), ("key", key), ("ts", ts), ("wait", wait)];
        let req = http.get(url).query(&q);
        async move { req.send().await.unwrap().json::<Value>().await.unwrap() }
    };
    let started = std::time::Instant::now();
    let empty = check(key, ts, "1").await;
    assert_eq!((empty["ts"].as_str(), empty["updates"].clone()), (Some(ts), json!([])));
    assert!(started.elapsed() >= Duration::from_millis(900), "held for `wait`");
    let pushed = vk.push(FakeVk::message_new(11, 1, "hello"));
    let got = check(key, ts, "1").await;
    assert_eq!(got["updates"], json!([pushed]));
    assert_eq!(got["updates"][0]["group_id"], 7);
    let next = got["ts"].as_str().unwrap().to_string();
    assert_eq!(check(key, &next, "0").await["updates"], json!([]), "read once from the next ts");
    assert_eq!(check("stale", &next, "0").await, json!({ "failed": 2 }));
    vk.inject_failed(1);
    assert_eq!(check(key, ts, "0").await, json!({ "failed": 1, "ts": next }));
    vk.inject_failed(3);
    assert_eq!(check(key, &next, "0").await, json!({ "failed": 3 }));
    assert_eq!(check(key, &next, "0").await, json!({ "failed": 2 }), "3 expired the key too");
    let renewed = call(&vk, "groups.getLongPollServer", &[("group_id", "7")]).await["response"].clone();
    assert_ne!(renewed["key"], server["key"]);
}
