//! KPIs over a time window, cut by one dimension, computed from the fold's facts.
//!
//! Attribution: a first response, SLA decision, resolution, reopening or survey answer counts in
//! the window it happened in; conversation-level rates (escalation, transfer) count
//! conversations opened in the window; the backlog and unanswered ages are as of `now`.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use switchboard_core::Event;

use crate::dims::Ms;
use crate::dims::{Dims, GroupBy};
use crate::fold::{Agent, Metrics, Phase};
use crate::l0::{Articles, L0Counts};
use crate::staffing::{Staffing, staffing};
use crate::totals::NpsClass;

/// What to report on.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Query {
    /// Window start (inclusive), ms since the epoch; `None`: from the beginning.
    pub from: Option<Ms>,
    /// Window end (exclusive); `None`: up to `now`.
    pub to: Option<Ms>,
    /// The time the backlog, unanswered ages and open intervals are measured at; `None`: the
    /// latest event's time.
    pub now: Option<Ms>,
    /// The breakdown.
    pub by: GroupBy,
    /// The first-response target (seconds) the FRT share is measured against.
    pub frt_target_secs: u64,
}

impl Default for Query {
    fn default() -> Self {
        Query { from: None, to: None, now: None, by: GroupBy::None, frt_target_secs: 2 * 3600 }
    }
}

impl Query {
    fn contains(&self, at: Ms) -> bool {
        self.from.is_none_or(|f| at >= f) && self.to.is_none_or(|t| at < t)
    }
}

/// The KPIs of one group (or of everything).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Kpis {
    /// Conversations opened.
    pub opened: u64,
    /// First responses (one per contact: opening or reopening).
    pub first_responses: u64,
    /// Mean first response time, seconds.
    pub frt_mean_secs: Option<f64>,
    /// Median first response time, seconds.
    pub frt_p50_secs: Option<f64>,
    /// 90th percentile first response time, seconds.
    pub frt_p90_secs: Option<f64>,
    /// Share of first responses within the FRT target.
    pub frt_within_target: Option<f64>,
    /// Conversations resolved.
    pub resolved: u64,
    /// Mean handle time (assigned until resolved), seconds.
    pub aht_mean_secs: Option<f64>,
    /// First-contact resolution: share of resolved conversations with no reopen, transfer or escalation.
    pub fcr: Option<f64>,
    /// Reopenings.
    pub reopened: u64,
    /// Reopenings per resolution.
    pub repeat_contact_rate: Option<f64>,
    /// Share of opened conversations escalated to a higher tier.
    pub escalation_rate: Option<f64>,
    /// Share of opened conversations transferred.
    pub transfer_rate: Option<f64>,
    /// First responses within the conversation's SLA deadline.
    pub sla_met: u64,
    /// First responses after it, or deadlines passed without one.
    pub sla_missed: u64,
    /// `sla_met` over both.
    pub sla_compliance: Option<f64>,
    /// CSAT answers.
    pub csat_responses: u64,
    /// Share of CSAT answers of 4 or 5.
    pub csat: Option<f64>,
    /// Mean CSAT score, 1–5 (the customer satisfaction index, CSI, beside the 4–5 share).
    #[serde(default)]
    pub csat_mean: Option<f64>,
    /// Hand-offs completed: an agent passed the conversation on (transfer, or escalation by the
    /// agent) and the next agent took it.
    #[serde(default)]
    pub handoffs: u64,
    /// Transfer speed: mean seconds from a hand-off to the next agent taking it.
    #[serde(default)]
    pub transfer_speed_secs: Option<f64>,
    /// NPS answers.
    #[serde(default)]
    pub nps_responses: u64,
    /// Net Promoter Score: % promoters (9-10) minus % detractors (0-6), points from -100 to 100.
    #[serde(default)]
    pub nps: Option<f64>,
    /// CES answers.
    #[serde(default)]
    pub ces_responses: u64,
    /// Mean Customer Effort Score, 1-7 (7: very easy).
    #[serde(default)]
    pub ces_mean: Option<f64>,
    /// Conversations the L0 bot answered from the knowledge base (arrived at L0).
    #[serde(default)]
    pub l0_answered: u64,
    /// Of those, resolved at L0 because the customer said the answer helped.
    #[serde(default)]
    pub l0_helped: u64,
    /// Of those, resolved at L0 because the customer never answered the bot.
    #[serde(default)]
    pub l0_no_reply: u64,
    /// Of those, handed to a human (a no, a request for a human, another question).
    #[serde(default)]
    pub l0_handed_off: u64,
    /// L0 deflection: resolved at L0 (helped or no reply) over answered.
    #[serde(default)]
    pub l0_deflection: Option<f64>,
    /// The confirmed share: helped over answered.
    #[serde(default)]
    pub l0_confirmed: Option<f64>,
    /// Hand-off rate: handed to a human over answered.
    #[serde(default)]
    pub l0_handoff_rate: Option<f64>,
}

/// Conversations waiting for an agent now.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Backlog {
    /// All waiting (queued or offered, not yet accepted).
    pub waiting: u64,
    /// By tier.
    pub by_tier: BTreeMap<String, u64>,
    /// By team.
    pub by_team: BTreeMap<String, u64>,
    /// By priority class.
    pub by_priority: BTreeMap<String, u64>,
    /// By channel.
    pub by_channel: BTreeMap<String, u64>,
    /// Open contacts without a first response yet, by age since the customer wrote.
    pub unanswered: Vec<(String, u64)>,
}

/// Age buckets of unanswered conversations: upper bound in seconds and label.
pub const AGE_BUCKETS: &[(i64, &str)] =
    &[(900, "<15m"), (3600, "15m-1h"), (7200, "1h-2h"), (28800, "2h-8h"), (86400, "8h-24h"), (i64::MAX, ">24h")];

/// One agent's KPIs.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct AgentKpis {
    /// Seconds logged in (online or away).
    pub logged_in_secs: f64,
    /// Seconds logged in while holding at least one conversation.
    pub busy_secs: f64,
    /// `busy_secs / logged_in_secs`.
    pub occupancy: Option<f64>,
    /// Conversations resolved.
    pub resolved: u64,
    /// Mean handle time of those, seconds.
    pub aht_mean_secs: Option<f64>,
    /// Conversation-seconds held while logged in: over `busy_secs`, how many conversations the
    /// agent held at once on average.
    #[serde(default)]
    pub held_secs: f64,
}

/// Arrivals and the load they bring, for a backlog forecast.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Forecast {
    /// Contacts (openings and reopenings) per hour in the window.
    pub arrivals_per_hour: f64,
    /// Resolutions per hour in the window.
    pub resolutions_per_hour: f64,
    /// Agents needed just to keep up: arrival rate × mean handle time (Erlangs).
    pub offered_load_erlangs: Option<f64>,
    /// Expected backlog change per hour at these rates (positive: it grows).
    pub net_inflow_per_hour: f64,
    /// Agents needed hour by hour for the first-response target, by Erlang C; `None` when
    /// nothing was resolved in the window (no handle time to plan with).
    #[serde(default)]
    pub staffing: Option<Staffing>,
}

/// A KPI report.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Report {
    /// The query answered.
    pub query: Query,
    /// Everything.
    pub total: Kpis,
    /// By the query's dimension.
    pub groups: BTreeMap<String, Kpis>,
    /// Waiting now.
    pub backlog: Backlog,
    /// By agent.
    pub agents: BTreeMap<String, AgentKpis>,
    /// Rates and load.
    pub forecast: Forecast,
    /// The L0 bot's articles in the window: shown, helped, handed off.
    #[serde(default)]
    pub kb_articles: Articles,
}

/// Sums of one group while the report is built; integer milliseconds, so that the result does
/// not depend on the order of summation.
#[derive(Default)]
struct Acc {
    opened: u64,
    escalated: u64,
    transferred: u64,
    frt: Vec<Ms>,
    frt_within: u64,
    resolved: u64,
    fcr: u64,
    resolutions: u64,
    handle_sum: i64,
    handle_n: u64,
    reopened: u64,
    sla_met: u64,
    sla_missed: u64,
    csat_n: u64,
    csat_sat: u64,
    csat_sum: u64,
    handoff_sum: i64,
    handoff_n: u64,
    nps_n: u64,
    nps_promoters: u64,
    nps_detractors: u64,
    ces_n: u64,
    ces_sum: u64,
    l0: L0Counts,
}

fn ratio(n: u64, d: u64) -> Option<f64> {
    (d > 0).then(|| n as f64 / d as f64)
}

fn mean_secs(sum_ms: i64, n: u64) -> Option<f64> {
    (n > 0).then(|| sum_ms as f64 / n as f64 / 1000.0)
}

impl Acc {
    fn kpis(mut self) -> Kpis {
        self.frt.sort_unstable();
        // Exact, by nearest rank over the millisecond values (the first `q` of them): a
        // histogram's buckets read up to 0.1% high, enough to flag a p90 exactly at its target.
        let quantile = |q: f64| -> Option<f64> {
            let n = self.frt.len();
            let rank = ((q * n as f64).ceil() as usize).clamp(1, n.max(1));
            self.frt.get(rank - 1).map(|ms| (*ms).max(0) as f64 / 1000.0)
        };
        Kpis {
            opened: self.opened,
            first_responses: self.frt.len() as u64,
            frt_mean_secs: mean_secs(self.frt.iter().sum(), self.frt.len() as u64),
            frt_p50_secs: quantile(0.5),
            frt_p90_secs: quantile(0.9),
            frt_within_target: ratio(self.frt_within, self.frt.len() as u64),
            resolved: self.resolved,
            aht_mean_secs: mean_secs(self.handle_sum, self.handle_n),
            fcr: ratio(self.fcr, self.resolved),
            reopened: self.reopened,
            repeat_contact_rate: ratio(self.reopened, self.resolutions),
            escalation_rate: ratio(self.escalated, self.opened),
            transfer_rate: ratio(self.transferred, self.opened),
            sla_met: self.sla_met,
            sla_missed: self.sla_missed,
            sla_compliance: ratio(self.sla_met, self.sla_met + self.sla_missed),
            csat_responses: self.csat_n,
            csat: ratio(self.csat_sat, self.csat_n),
            csat_mean: (self.csat_n > 0).then(|| self.csat_sum as f64 / self.csat_n as f64),
            handoffs: self.handoff_n,
            transfer_speed_secs: mean_secs(self.handoff_sum, self.handoff_n),
            nps_responses: self.nps_n,
            nps: (self.nps_n > 0)
                .then(|| 100.0 * (self.nps_promoters as f64 - self.nps_detractors as f64) / self.nps_n as f64),
            ces_responses: self.ces_n,
            ces_mean: (self.ces_n > 0).then(|| self.ces_sum as f64 / self.ces_n as f64),
            l0_deflection: self.l0.deflection(),
            l0_confirmed: self.l0.confirmed(),
            l0_handoff_rate: self.l0.handoff_rate(),
            l0_answered: self.l0.answered,
            l0_helped: self.l0.helped,
            l0_no_reply: self.l0.no_reply,
            l0_handed_off: self.l0.handed_off,
        }
    }
}

/// The total and the per-group sums.
struct Groups {
    by: GroupBy,
    total: Acc,
    groups: BTreeMap<String, Acc>,
}

impl Groups {
    fn add(&mut self, dims: &Dims, f: impl Fn(&mut Acc)) {
        f(&mut self.total);
        if let Some(key) = dims.get(self.by) {
            f(self.groups.entry(key.to_string()).or_default());
        }
    }
}

impl Report {
    /// Recomputes from scratch: folds `events` (each id once) and reports on `query`.
    pub fn from_events(events: &[Event], query: &Query) -> Report {
        Report::compute(&Metrics::from_events(events), query)
    }

    /// The report on `query` from a fold's facts.
    pub fn compute(m: &Metrics, query: &Query) -> Report {
        let now = query.now.unwrap_or(m.last_at);
        let mut g = Groups { by: query.by, total: Acc::default(), groups: BTreeMap::new() };
        let target_ms = query.frt_target_secs as i64 * 1000;
        let mut arrivals = 0u64;
        let mut agents: BTreeMap<String, (u64, i64, u64)> = BTreeMap::new();
        for c in m.conversations.values() {
            let conversation_dims = c.dims(c.last_agent.as_deref());
            if query.contains(c.opened_at) {
                let opened = Dims { agent: c.last_agent.clone(), ..c.opened.clone() };
                g.add(&opened, |a| {
                    a.opened += 1;
                    a.escalated += u64::from(c.escalated);
                    a.transferred += u64::from(c.transferred);
                });
            }
            for k in &c.contacts {
                if query.contains(k.start) {
                    arrivals += 1;
                    if k.reopen {
                        g.add(&conversation_dims, |a| a.reopened += 1);
                    }
                }
                if let Some((at, dims)) = &k.first_response
                    && query.contains(*at)
                {
                    let ms = (at - k.start).max(0);
                    g.add(dims, |a| {
                        a.frt.push(ms);
                        a.frt_within += u64::from(ms <= target_ms);
                    });
                }
                if let Some((at, met, dims)) = &k.sla
                    && query.contains(*at)
                {
                    g.add(dims, |a| if *met { a.sla_met += 1 } else { a.sla_missed += 1 });
                }
            }
            for (_, ms, dims) in c.handoffs.iter().filter(|h| query.contains(h.0)) {
                g.add(dims, |a| {
                    a.handoff_sum += ms;
                    a.handoff_n += 1;
                });
            }
            let mut last_in_window = None;
            for r in c.resolutions.iter().filter(|r| query.contains(r.at)) {
                g.add(&r.dims, |a| {
                    a.resolutions += 1;
                    if let Some(ms) = r.handle_ms {
                        a.handle_sum += ms;
                        a.handle_n += 1;
                    }
                });
                if let Some(agent) = &r.dims.agent {
                    agents.entry(agent.clone()).or_default().0 += 1;
                }
                // Each agent's handle time is the time they held it, not the contact's whole
                // span (which holds queue time and other agents' work).
                for (agent, ms) in &r.held {
                    let e = agents.entry(agent.clone()).or_default();
                    (e.1, e.2) = (e.1 + ms, e.2 + 1);
                }
                last_in_window = Some(r);
            }
            if let Some(r) = last_in_window {
                let fcr = c.first_contact_resolution();
                g.add(&r.dims, |a| {
                    a.resolved += 1;
                    a.fcr += u64::from(fcr);
                });
            }
        }
        for s in m.csat.iter().filter(|s| query.contains(s.at)) {
            g.add(&s.dims, |a| {
                a.csat_n += 1;
                a.csat_sat += u64::from(s.score >= 4);
                a.csat_sum += u64::from(s.score);
            });
        }
        for s in m.nps.iter().filter(|s| query.contains(s.at)) {
            let class = NpsClass::of(s.score);
            g.add(&s.dims, |a| {
                a.nps_n += 1;
                a.nps_promoters += u64::from(class == NpsClass::Promoter);
                a.nps_detractors += u64::from(class == NpsClass::Detractor);
            });
        }
        for s in m.ces.iter().filter(|s| query.contains(s.at)) {
            g.add(&s.dims, |a| {
                a.ces_n += 1;
                a.ces_sum += u64::from(s.score);
            });
        }
        for f in m.l0.iter().filter(|f| query.contains(f.at)) {
            g.add(&f.dims, |a| crate::l0::count(&mut a.l0, f.step));
        }
        let kb_articles = crate::l0::articles(m.l0.iter().filter(|f| query.contains(f.at)));
        let end = query.to.map_or(now, |t| t.min(now));
        let start = query.from.unwrap_or_else(|| first_time(m));
        let agents: BTreeMap<String, AgentKpis> = m
            .agents
            .iter()
            .map(|(id, a)| (id.clone(), agent_kpis(a, start, end, agents.get(id).copied().unwrap_or_default())))
            .chain(
                agents
                    .iter()
                    .filter(|(id, _)| !m.agents.contains_key(*id))
                    .map(|(id, r)| (id.clone(), agent_kpis(&Agent::default(), start, end, *r))),
            )
            .collect();
        let resolutions = g.total.resolutions;
        let total = std::mem::take(&mut g.total).kpis();
        let hours = ((end - start).max(1) as f64) / 3_600_000.0;
        let (held, busy) = agents.values().fold((0.0, 0.0), |(h, b), a: &AgentKpis| (h + a.held_secs, b + a.busy_secs));
        let concurrency = if busy > 0.0 { held / busy } else { 1.0 };
        let forecast = Forecast {
            staffing: staffing(m, (start, end), query.frt_target_secs, total.aht_mean_secs, concurrency),
            arrivals_per_hour: arrivals as f64 / hours,
            resolutions_per_hour: resolutions as f64 / hours,
            offered_load_erlangs: total.aht_mean_secs.map(|aht| arrivals as f64 / (hours * 3600.0) * aht),
            net_inflow_per_hour: (arrivals as f64 - resolutions as f64) / hours,
        };
        Report {
            query: query.clone(),
            total,
            groups: g.groups.into_iter().map(|(k, a)| (k, a.kpis())).collect(),
            backlog: backlog(m, now),
            agents,
            forecast,
            kb_articles,
        }
    }
}

/// The earliest time the fold knows of.
fn first_time(m: &Metrics) -> Ms {
    let conv = m.conversations.values().map(|c| c.opened_at).min();
    let agent = m.agents.values().filter_map(|a| a.status.first().map(|s| s.0)).min();
    conv.into_iter().chain(agent).min().unwrap_or(m.last_at)
}

/// Waiting conversations and unanswered ages at `now`.
pub fn backlog(m: &Metrics, now: Ms) -> Backlog {
    let mut b = Backlog::default();
    let mut ages = vec![0u64; AGE_BUCKETS.len()];
    for c in m.conversations.values() {
        if matches!(c.phase, Phase::Waiting | Phase::Offered) {
            b.waiting += 1;
            *b.by_tier.entry(c.routing.tier.clone()).or_default() += 1;
            *b.by_team.entry(c.routing.team.clone()).or_default() += 1;
            *b.by_priority.entry(c.routing.priority.clone()).or_default() += 1;
            *b.by_channel.entry(c.channel.clone()).or_default() += 1;
        }
        if matches!(c.phase, Phase::Resolved | Phase::Bot) {
            continue;
        }
        if let Some(k) = c.contacts.last().filter(|k| k.first_response.is_none()) {
            let age = (now - k.start).max(0) / 1000;
            let i = AGE_BUCKETS.iter().position(|(upper, _)| age < *upper).unwrap_or(AGE_BUCKETS.len() - 1);
            ages[i] += 1;
        }
    }
    b.unanswered = AGE_BUCKETS.iter().zip(ages).map(|((_, label), n)| (label.to_string(), n)).collect();
    b
}

/// Logged-in and busy time of an agent within `[start, end)`, with their resolutions.
fn agent_kpis(a: &Agent, start: Ms, end: Ms, (resolved, handle_sum, handle_n): (u64, i64, u64)) -> AgentKpis {
    // Sweep both step functions together; each segment lasts until the next change of either.
    let (mut si, mut li) = (0, 0);
    let (mut on, mut held) = (false, 0u32);
    let (mut logged_in, mut busy, mut held_ms) = (0i64, 0i64, 0i64);
    loop {
        let next_s = a.status.get(si).map(|s| s.0);
        let next_l = a.load.get(li).map(|l| l.0);
        let Some(t) = next_s.into_iter().chain(next_l).min() else { break };
        while a.status.get(si).is_some_and(|s| s.0 == t) {
            on = a.status[si].1;
            si += 1;
        }
        while a.load.get(li).is_some_and(|l| l.0 == t) {
            held = a.load[li].1;
            li += 1;
        }
        let next = a.status.get(si).map(|s| s.0).into_iter().chain(a.load.get(li).map(|l| l.0)).min();
        let (from, to) = (t.max(start), next.unwrap_or(end).min(end));
        if on && to > from {
            logged_in += to - from;
            if held > 0 {
                busy += to - from;
                held_ms += i64::from(held) * (to - from);
            }
        }
    }
    AgentKpis {
        logged_in_secs: logged_in as f64 / 1000.0,
        busy_secs: busy as f64 / 1000.0,
        occupancy: (logged_in > 0).then(|| busy as f64 / logged_in as f64),
        resolved,
        aht_mean_secs: mean_secs(handle_sum, handle_n),
        held_secs: held_ms as f64 / 1000.0,
    }
}

#[cfg(test)]
mod tests {
    use super::Acc;

    #[test]
    fn percentiles_are_exact_at_the_millisecond() {
        let acc = Acc { frt: vec![3_700_000; 10], ..Acc::default() };
        let k = acc.kpis();
        assert_eq!((k.frt_p50_secs, k.frt_p90_secs), (Some(3700.0), Some(3700.0)), "not 3,700.735 s");
        let acc = Acc { frt: (1..=10).map(|s| s * 1000).collect(), ..Acc::default() };
        let k = acc.kpis();
        assert_eq!((k.frt_p50_secs, k.frt_p90_secs), (Some(5.0), Some(9.0)), "nearest rank");
        assert_eq!(Acc::default().kpis().frt_p90_secs, None);
    }
}
