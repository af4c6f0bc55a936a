//! Erasing a person from the router's memory (`Entry::Forget`).

use std::collections::BTreeSet;

use switchboard_core::EventKind;
use switchboard_routing::Decision;
use uuid::Uuid;

use crate::record::ConversationRecord;
use crate::router::{Fx, Router};

/// Whether a record is about one of `customers` (customer keys or person keys).
fn about(r: &ConversationRecord, customers: &BTreeSet<&str>) -> bool {
    customers.contains(format!("{}:{}", r.channel, r.customer.id).as_str()) || customers.contains(r.person.as_str())
}

impl Router {
    /// Erases the person named by `customers` (and the engine's `threads`): their records,
    /// their identity links, the engine's conversations and last-agent memory. An open
    /// conversation is resolved for its agent (an `update` with the note "customer data
    /// erased"), without a satisfaction survey; the erased ids are left in `self.forgotten`.
    pub(crate) fn forget(&mut self, customers: &[String], threads: &[String], fx: &mut Fx) {
        let mut keys: BTreeSet<&str> = customers.iter().map(String::as_str).collect();
        // One hop of identity links: the person keys of the matched records (an e-mail
        // address given on the web chat links that visitor to their mail).
        let persons: Vec<String> =
            self.st.records.values().filter(|r| about(r, &keys)).map(|r| r.person.clone()).collect();
        keys.extend(persons.iter().map(String::as_str));
        let mut threads: BTreeSet<String> = threads.iter().cloned().collect();
        let mut ids: BTreeSet<Uuid> = BTreeSet::new();
        for r in self.st.records.values().filter(|r| about(r, &keys)) {
            threads.insert(format!("{}:{}", r.channel, r.thread_key));
            ids.insert(r.id);
        }
        for person in &keys {
            ids.extend(self.st.persons.get(*person).into_iter().flatten().copied());
        }
        let mut decisions = Vec::new();
        for thread in &threads {
            ids.extend(self.engine.forget_customer(thread, &mut decisions));
        }
        let mut others = Vec::new();
        for d in decisions {
            match d {
                Decision::Resolved { conversation, agent } if ids.contains(&conversation) => {
                    let data = serde_json::json!({ "note": "customer data erased" });
                    self.conversation_event(fx, EventKind::Resolved, conversation, agent.as_deref(), data);
                    if let Some(agent) = &agent {
                        self.update(conversation, agent, "resolved", Some("customer data erased".into()), fx);
                    }
                }
                d => others.push(d),
            }
        }
        self.decisions(others, fx);
        for id in &ids {
            fx.touched.remove(id);
            self.st.records.remove(id);
            self.st.suggested.remove(id);
        }
        for person in &keys {
            self.st.persons.remove(*person);
        }
        self.st.persons.retain(|_, convs| {
            convs.retain(|c| !ids.contains(c));
            !convs.is_empty()
        });
        self.st.resolved.retain(|(_, c)| !ids.contains(c));
        self.forgotten = ids.into_iter().collect();
    }

    /// The conversations the latest `Forget` entry erased.
    pub fn forgotten(&self) -> &[Uuid] {
        &self.forgotten
    }

    /// Whether the router still holds anything about a customer key, person key or thread key.
    pub fn remembers(&self, key: &str) -> bool {
        let keys = BTreeSet::from([key]);
        self.st.persons.contains_key(key)
            || self.st.records.values().any(|r| about(r, &keys))
            || self.engine.remembers_customer(key)
    }
}
