//! Cumulative counters and histograms since the fold started, for the Prometheus exposition.
//! They are bumped as events are applied and never windowed or forgotten, so the exposed
//! counters only go up.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use switchboard_core::SurveyKind;

use crate::dims::{Dims, Ms, Routing};
use crate::l0::L0Totals;

/// Upper bounds (seconds) of the first-response-time histogram: from chat speed to a day.
pub const FRT_BUCKETS: &[f64] =
    &[30.0, 60.0, 120.0, 300.0, 600.0, 900.0, 1800.0, 3600.0, 7200.0, 14400.0, 28800.0, 86400.0];
/// Upper bounds (seconds) of the handle-time histogram: a minute to a working day.
pub const AHT_BUCKETS: &[f64] = &[60.0, 120.0, 300.0, 600.0, 900.0, 1200.0, 1800.0, 3600.0, 7200.0, 14400.0, 28800.0];

/// A histogram with fixed bounds: counts per bucket (the last is `+Inf`), sum and count.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Hist {
    /// Observations per bucket, not cumulative; one more than the bounds.
    pub buckets: Vec<u64>,
    /// Sum of observations in milliseconds (integer, so sums do not depend on order).
    pub sum_ms: i64,
    /// Number of observations.
    pub count: u64,
}

impl Hist {
    fn observe(&mut self, bounds: &[f64], ms: Ms) {
        if self.buckets.is_empty() {
            self.buckets = vec![0; bounds.len() + 1];
        }
        let secs = ms as f64 / 1000.0;
        let i = bounds.iter().position(|b| secs <= *b).unwrap_or(bounds.len());
        self.buckets[i] += 1;
        self.sum_ms += ms;
        self.count += 1;
    }
}

/// Counters of one channel × team × tier × priority class.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Counts {
    /// Conversations opened.
    pub opened: u64,
    /// Reopenings (repeat contacts).
    pub reopened: u64,
    /// Resolutions.
    pub resolved: u64,
    /// Resolutions with no reopen, transfer or escalation so far.
    pub resolved_first_contact: u64,
    /// Escalations to a higher tier.
    pub escalated: u64,
    /// Transfers.
    pub transferred: u64,
    /// First responses within the SLA target.
    pub sla_met: u64,
    /// First responses late or deadlines breached.
    pub sla_missed: u64,
    /// CSAT answers.
    pub csat_responses: u64,
    /// CSAT answers of 4 or 5.
    pub csat_satisfied: u64,
    /// The sum of CSAT scores: over `csat_responses`, the mean score (CSI).
    #[serde(default)]
    pub csat_score_sum: u64,
    /// Hand-offs (a transfer or an agent's escalation) until the next agent took the
    /// conversation: transfer speed.
    #[serde(default)]
    pub handoff: Hist,
    /// NPS answers of 9 or 10.
    #[serde(default)]
    pub nps_promoters: u64,
    /// NPS answers of 7 or 8.
    #[serde(default)]
    pub nps_passives: u64,
    /// NPS answers of 0 to 6.
    #[serde(default)]
    pub nps_detractors: u64,
    /// CES answers.
    #[serde(default)]
    pub ces_responses: u64,
    /// The sum of CES scores (1-7): over `ces_responses`, the mean.
    #[serde(default)]
    pub ces_score_sum: u64,
    /// First response times.
    pub frt: Hist,
    /// Handle times.
    pub aht: Hist,
}

/// Counters of one agent.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct AgentCounts {
    /// First responses sent.
    pub first_responses: u64,
    /// Conversations resolved while holding them.
    pub resolved: u64,
    /// Handle times of those: assignment to resolution, whoever else held them.
    pub aht: Hist,
    /// The agent's own time holding each contact, counted when the contact is resolved (the
    /// per-agent AHT of `switchboard stats`).
    #[serde(default)]
    pub held: Hist,
}

/// All cumulative totals.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Totals {
    /// By channel and routing (the agent is not part of this key).
    #[serde(with = "as_pairs")]
    pub by_routing: BTreeMap<(String, Routing), Counts>,
    /// By agent.
    pub by_agent: BTreeMap<String, AgentCounts>,
    /// The L0 bot's answers and outcomes, by team and by article.
    #[serde(default)]
    pub l0: L0Totals,
}

impl Totals {
    fn counts(&mut self, d: &Dims) -> &mut Counts {
        self.by_routing.entry((d.channel.clone(), d.routing.clone())).or_default()
    }

    fn agent(&mut self, d: &Dims) -> Option<&mut AgentCounts> {
        d.agent.as_ref().map(|a| self.by_agent.entry(a.clone()).or_default())
    }

    pub(crate) fn opened(&mut self, d: &Dims) {
        self.counts(d).opened += 1;
    }

    pub(crate) fn reopened(&mut self, d: &Dims) {
        self.counts(d).reopened += 1;
    }

    pub(crate) fn escalated(&mut self, d: &Dims) {
        self.counts(d).escalated += 1;
    }

    pub(crate) fn transferred(&mut self, d: &Dims) {
        self.counts(d).transferred += 1;
    }

    pub(crate) fn first_response(&mut self, d: &Dims, ms: Ms) {
        self.counts(d).frt.observe(FRT_BUCKETS, ms.max(0));
        if let Some(a) = self.agent(d) {
            a.first_responses += 1;
        }
    }

    pub(crate) fn sla(&mut self, d: &Dims, met: bool) {
        let c = self.counts(d);
        if met {
            c.sla_met += 1;
        } else {
            c.sla_missed += 1;
        }
    }

    pub(crate) fn resolved(&mut self, d: &Dims, handle_ms: Option<Ms>, first_contact: bool) {
        let c = self.counts(d);
        c.resolved += 1;
        c.resolved_first_contact += u64::from(first_contact);
        if let Some(ms) = handle_ms {
            c.aht.observe(AHT_BUCKETS, ms);
        }
        if let Some(a) = self.agent(d) {
            a.resolved += 1;
            if let Some(ms) = handle_ms {
                a.aht.observe(AHT_BUCKETS, ms);
            }
        }
    }

    /// Counts an answer to `kind` (its score already checked against the scale).
    pub(crate) fn survey(&mut self, kind: SurveyKind, d: &Dims, score: u8) {
        let c = self.counts(d);
        match kind {
            SurveyKind::Csat => {
                c.csat_responses += 1;
                c.csat_satisfied += u64::from(score >= 4);
                c.csat_score_sum += u64::from(score);
            }
            SurveyKind::Nps => match NpsClass::of(score) {
                NpsClass::Promoter => c.nps_promoters += 1,
                NpsClass::Passive => c.nps_passives += 1,
                NpsClass::Detractor => c.nps_detractors += 1,
            },
            SurveyKind::Ces => {
                c.ces_responses += 1;
                c.ces_score_sum += u64::from(score);
            }
        }
    }

    pub(crate) fn handoff(&mut self, d: &Dims, ms: Ms) {
        self.counts(d).handoff.observe(FRT_BUCKETS, ms.max(0));
    }

    pub(crate) fn held(&mut self, agent: &str, ms: Ms) {
        self.by_agent.entry(agent.to_string()).or_default().held.observe(AHT_BUCKETS, ms.max(0));
    }
}

/// Where an NPS answer falls: 9-10 promoter, 7-8 passive, 0-6 detractor.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NpsClass {
    /// 9 or 10.
    Promoter,
    /// 7 or 8.
    Passive,
    /// 0 to 6.
    Detractor,
}

impl NpsClass {
    /// The class of a 0-10 score.
    pub fn of(score: u8) -> NpsClass {
        match score {
            9.. => NpsClass::Promoter,
            7..=8 => NpsClass::Passive,
            _ => NpsClass::Detractor,
        }
    }
}

/// A map with non-string keys as a JSON list of pairs.
mod as_pairs {
    use std::collections::BTreeMap;

    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    pub fn serialize<S: Serializer, K: Serialize, V: Serialize>(m: &BTreeMap<K, V>, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(m.iter())
    }

    pub fn deserialize<'de, D, K, V>(d: D) -> Result<BTreeMap<K, V>, D::Error>
    where
        D: Deserializer<'de>,
        K: Deserialize<'de> + Ord,
        V: Deserialize<'de>,
    {
        Ok(Vec::<(K, V)>::deserialize(d)?.into_iter().collect())
    }
}
