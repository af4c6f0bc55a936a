//! `rules`: bytes as a routing rule's CEL condition (compiled, then evaluated against a fixed
//! conversation) and as a whole routing configuration in TOML.

use std::collections::BTreeMap;

use chrono::{TimeZone, Utc};
use switchboard_routing::config::RuleConfig;
use switchboard_routing::rules::{RuleInput, RuleSet};
use switchboard_routing::{Engine, RoutingConfig};

/// Compiles `data` as a rule's `when` (a rule set refuses it or evaluates it), and reads it as a
/// routing configuration that the engine accepts or refuses with a key and a reason.
pub fn run(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let rule = RuleConfig { name: "fuzz".into(), when: text.into(), ..RuleConfig::default() };
    if let Ok(set) = RuleSet::compile(&[rule], chrono_tz::Europe::Berlin) {
        let tags = ["vip".to_string(), "beta".to_string()];
        let metadata = BTreeMap::from([("plan".to_string(), "pro".to_string()), ("re".to_string(), "^Hi".to_string())]);
        let input = RuleInput {
            channel: "email",
            text: "Hi, I want a refund for invoice 42",
            subject: Some("Refund"),
            customer_id: "c-1",
            customer_tags: &tags,
            customer_language: Some("de"),
            vip: true,
            metadata: &metadata,
            now: Utc.with_ymd_and_hms(2026, 3, 2, 10, 30, 0).single().unwrap_or_default(),
            repeat_contact: false,
            previous_agent: Some("anna"),
            wait_secs: 120,
        };
        let outcome = set.evaluate(&input);
        assert!(outcome.matched.len() + outcome.errors.len() <= 1, "one rule matched or failed twice");
    }
    if let Ok(config) = toml::from_str::<RoutingConfig>(text) {
        let _ = Engine::new(&config);
    }
}
