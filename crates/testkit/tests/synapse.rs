//! The Synapse harness: it starts a real homeserver, registers users by shared secret, and keeps
//! its data across a restart on the same port.

use switchboard_testkit::Synapse;

async fn whoami(url: &str, token: &str) -> serde_json::Value {
    let answer = reqwest::Client::new()
        .get(format!("{url}/_matrix/client/v3/account/whoami"))
        .bearer_auth(token)
        .send()
        .await
        .expect("whoami");
    answer.json().await.expect("whoami JSON")
}

#[tokio::test(flavor = "multi_thread")]
async fn synapse_starts_registers_users_and_survives_a_restart() {
    let mut synapse = Synapse::start();
    eprintln!("Synapse answered {:?} after it was started (fresh data)", synapse.started_in());
    let alice = synapse.register("alice", false);
    let bot = synapse.register("bot", true);
    assert_eq!(alice.user_id, "@alice:localhost");
    assert_ne!(alice.access_token, bot.access_token);
    assert_eq!(whoami(&synapse.url(), &alice.access_token).await["user_id"], "@alice:localhost");
    let url = synapse.url();
    synapse.restart();
    eprintln!("Synapse answered {:?} after a restart", synapse.started_in());
    assert_eq!(synapse.url(), url, "the same port after a restart");
    // Same database: the token issued before the restart is still valid.
    assert_eq!(whoami(&synapse.url(), &bot.access_token).await["user_id"], "@bot:localhost");
    let bad = whoami(&synapse.url(), "not-a-token").await;
    assert_eq!(bad["errcode"], "M_UNKNOWN_TOKEN");
}
