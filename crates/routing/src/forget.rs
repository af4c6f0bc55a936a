//! The end of a customer's memory: erasure on request and expiry after the retention period.

use crate::engine::Engine;
use crate::model::{ConversationId, Decision, Ms};
use crate::state::{ConvIx, ConvState, CustomerRec};

impl Engine {
    /// Erases everything the engine holds about the customer with this key (the router's
    /// `<channel>:<thread>`): their conversations (an open one is resolved first, so its agent's
    /// capacity is freed, and the `Resolved` decision is in `out`) and their last-agent memory.
    /// Returns the ids of the conversations dropped.
    pub fn forget_customer(&mut self, customer: &str, out: &mut Vec<Decision>) -> Vec<ConversationId> {
        let mine: Vec<(u32, ConversationId, bool)> = self
            .st
            .convs
            .iter()
            .enumerate()
            .filter_map(|(ix, c)| c.as_ref().map(|c| (ix as u32, c)))
            .filter(|(_, c)| c.customer == customer)
            .map(|(ix, c)| (ix, c.id, !matches!(c.state, ConvState::Resolved { .. })))
            .collect();
        for &(ix, id, open) in &mine {
            if open {
                // The system resolves it (no agent named), which frees whoever held it.
                self.resolve(String::new(), id, out);
            }
            self.st.conv_ix.remove(&id);
            self.st.convs[ix as usize] = None;
            self.st.free.push(ix);
        }
        // The index slot stays (indices are positions) but holds nothing about the person.
        if let Some(cust) = self.st.customers.remove(customer)
            && let Some(rec) = self.st.customer_recs.get_mut(cust as usize)
        {
            *rec = CustomerRec::default();
        }
        mine.into_iter().map(|(_, id, _)| id).collect()
    }

    /// Drops a resolved conversation (its reopen window closed, or retention ended it); its
    /// customer keeps the agent as their last agent.
    pub(crate) fn forget_resolved(&mut self, conv: ConvIx) {
        let Some(c) = self.conv(conv) else { return };
        let (id, cust, last_agent) = (c.id, c.cust, c.previous_agent);
        if let Some(rec) = self.st.customer_recs.get_mut(cust as usize)
            && rec.last_conv == Some(conv)
        {
            rec.last_conv = None;
            rec.last_agent = last_agent;
        }
        self.st.conv_ix.remove(&id);
        self.st.convs[conv as usize] = None;
        self.st.free.push(conv);
    }

    /// Ends what the engine remembers from before `before`: conversations resolved before then
    /// (even within their reopen window: retention wins, and a later message opens a new one),
    /// then the memory (last agent) of customers who last wrote before then and have no
    /// conversation left. Returns how many customers were forgotten.
    pub fn expire_customers(&mut self, before: Ms) -> usize {
        let resolved: Vec<ConvIx> = self
            .st
            .convs
            .iter()
            .enumerate()
            .filter(|(_, c)| c.as_ref().is_some_and(|c| matches!(c.state, ConvState::Resolved { at } if at < before)))
            .map(|(ix, _)| ix as ConvIx)
            .collect();
        for ix in resolved {
            self.forget_resolved(ix);
        }
        let expired: Vec<String> =
            self.st
                .customers
                .iter()
                .filter(|&(_, &cust)| {
                    self.st.customer_recs.get(cust as usize).is_some_and(|rec| {
                        rec.last_seen < before && rec.last_conv.and_then(|ix| self.conv(ix)).is_none()
                    })
                })
                .map(|(key, _)| key.clone())
                .collect();
        for key in &expired {
            if let Some(cust) = self.st.customers.remove(key)
                && let Some(rec) = self.st.customer_recs.get_mut(cust as usize)
            {
                *rec = CustomerRec::default();
            }
        }
        expired.len()
    }

    /// The customer keys the engine remembers (conversations or last-agent memory), for checks.
    pub fn remembers_customer(&self, customer: &str) -> bool {
        self.st.customers.contains_key(customer) || self.st.convs.iter().flatten().any(|c| c.customer == customer)
    }
}
