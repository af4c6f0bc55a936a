//! `switchboard explain <conversation-id>`: asks the leading router why a conversation went where
//! it went, and prints the answer for a person.

use std::time::Duration;

use anyhow::{Context, bail};
use serde_json::Value;
use switchboard_bus::Bus;
use switchboard_core::contract::subjects;

use crate::config::Config;

/// Asks the group's leading router to explain `conversation`; returns its JSON answer.
pub async fn fetch(config: &Config, conversation: &str) -> anyhow::Result<Value> {
    let layout = config.layout().context("routing groups")?;
    // The conversation's id names its group; an id that is not one is the router's to refuse.
    let group = conversation.parse().map_or(layout.catch_all(), |id| layout.owner_of_conversation(id));
    let bus = Bus::connect_once(&config.nats).await.context("connecting to NATS")?;
    let request = bus.client().request(subjects::router_explain(group), conversation.to_string().into());
    let answer = tokio::time::timeout(Duration::from_secs(5), request)
        .await
        .map_err(|_| anyhow::anyhow!("no router of group `{group}` answered within 5 s"))?
        .with_context(|| format!("no router of group `{group}` is leading"))?;
    let value: Value = serde_json::from_slice(&answer.payload).context("the router's answer is not JSON")?;
    if let Some(error) = value.get("error").and_then(Value::as_str) {
        bail!("{error}");
    }
    Ok(value)
}

/// Why an agent could or could not take the conversation, in words.
fn verdict(v: &str) -> &str {
    match v {
        "Eligible" => "could take it now",
        "NotOnline" => "not online",
        "OtherTeam" => "in another team",
        "WrongTier" => "wrong tier",
        "MissingSkill" => "lacks a required skill level",
        "Full" => "at capacity",
        "Declined" => "declined it or let the offer lapse",
        "ReservedForPrevious" => "reserved for the customer's previous agent",
        other => other,
    }
}

/// The explanation as text.
pub fn render(answer: &Value) -> String {
    let e = &answer["explanation"];
    let s = |v: &Value| v.as_str().map(str::to_string).unwrap_or_else(|| v.to_string());
    let list = |v: &Value| {
        let items: Vec<String> = v.as_array().into_iter().flatten().map(s).collect();
        if items.is_empty() { "none".to_string() } else { items.join(", ") }
    };
    let mut out = format!(
        "conversation {}: {}{}\n",
        s(&e["conversation"]),
        s(&e["state"]),
        e["agent"].as_str().map(|a| format!(" (agent {a})")).unwrap_or_default()
    );
    out += &format!(
        "  channel {}, customer {}\n",
        answer["channel"].as_str().unwrap_or("?"),
        answer["customer"].as_str().unwrap_or("?")
    );
    out += &format!("  team {}, tier {}, priority {}\n", s(&e["team"]), s(&e["tier"]), s(&e["priority"]));
    out += &format!("  rules matched: {}\n", list(&e["matched_rules"]));
    out += &format!("  skills required: {}\n", list(&e["skills"]));
    out += "  agents:\n";
    for c in e["candidates"].as_array().into_iter().flatten() {
        out += &format!("    {:<20} {}\n", s(&c[0]), verdict(c[1].as_str().unwrap_or("?")));
    }
    out
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    #[test]
    fn renders_rules_requirements_and_a_reason_per_agent() {
        let answer = json!({
            "channel": "webhook", "customer": "c-1",
            "explanation": {
                "conversation": "0190", "state": "queued", "agent": null, "team": "support", "tier": "L2",
                "priority": 25, "matched_rules": ["billing"], "skills": ["billing:3"],
                "candidates": [["alice", "WrongTier"], ["carol", "Full"]]
            }
        });
        let text = super::render(&answer);
        assert!(text.contains("conversation 0190: queued"), "{text}");
        assert!(text.contains("rules matched: billing"), "{text}");
        assert!(text.contains("skills required: billing:3"), "{text}");
        assert!(text.contains("alice                wrong tier"), "{text}");
        assert!(text.contains("carol                at capacity"), "{text}");
    }
}
