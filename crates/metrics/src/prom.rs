//! The Prometheus exposition: cumulative counters and histograms from the fold's totals, gauges
//! of the backlog and agents now, encoded in the text format by `prometheus-client`. Labels are
//! channel, team, tier, priority class, agent, the unanswered age bucket, the L0 outcome and the
//! knowledge-base article (capped) only: never a conversation or a customer, so the number of
//! series stays bounded.

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric, NoLabelSet};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::registry::{Registry, Unit};

use crate::dims::Ms;
use crate::dims::Routing;
use crate::fold::Metrics;
use crate::l0::L0Totals;
use crate::report::{AgentKpis, Query, Report};
use crate::staffing::Staffing;
use crate::totals::{AHT_BUCKETS, Counts, FRT_BUCKETS, Hist, Totals};

/// Why the exposition could not be encoded.
#[derive(Debug, thiserror::Error)]
pub enum ExpositionError {
    /// The encoder failed writing the text.
    #[error("cannot encode the Prometheus exposition")]
    Encode(#[from] std::fmt::Error),
}

/// Everything the exposition shows, owned (a collector outlives the borrow of the fold).
#[derive(Debug)]
struct Snapshot {
    totals: Totals,
    backlog: Vec<(String, Routing, u64)>,
    unanswered: Vec<(String, u64)>,
    agents: Vec<(String, AgentKpis, u32)>,
    staffing: Option<Staffing>,
}

type Labels = Vec<(&'static str, String)>;

fn routing_labels(channel: &str, r: &Routing) -> Labels {
    vec![
        ("channel", channel.to_string()),
        ("team", r.team.clone()),
        ("tier", r.tier.clone()),
        ("priority", r.priority.clone()),
    ]
}

/// The Prometheus text exposition of a fold at `now` (the backlog's ages and agents' open
/// intervals end there; `None`: the latest event's time).
pub fn exposition(m: &Metrics, now: Option<Ms>) -> Result<String, ExpositionError> {
    exposition_with_target(m, now, Query::default().frt_target_secs)
}

/// [`exposition`] with the staffing gauge planned for 90% of first responses within
/// `staffing_target_secs`.
pub fn exposition_with_target(
    m: &Metrics,
    now: Option<Ms>,
    staffing_target_secs: u64,
) -> Result<String, ExpositionError> {
    let report = Report::compute(m, &Query { now, frt_target_secs: staffing_target_secs, ..Query::default() });
    let snapshot = Snapshot {
        totals: m.totals.clone(),
        backlog: waiting_by_routing(m),
        unanswered: report.backlog.unanswered.clone(),
        agents: report
            .agents
            .into_iter()
            .map(|(id, k)| {
                let held = m.agents.get(&id).and_then(|a| a.load.last()).map_or(0, |l| l.1);
                (id, k, held)
            })
            .collect(),
        staffing: report.forecast.staffing,
    };
    let mut registry = Registry::with_prefix("switchboard");
    registry.register_collector(Box::new(snapshot));
    registry.register_collector(Box::new(crate::replies::SavedReplies(m.saved_replies.clone())));
    let mut out = String::new();
    prometheus_client::encoding::text::encode(&mut out, &registry)?;
    Ok(out)
}

/// Waiting conversations by channel and routing (the backlog gauge's series).
fn waiting_by_routing(m: &Metrics) -> Vec<(String, Routing, u64)> {
    let mut by: std::collections::BTreeMap<(String, Routing), u64> = Default::default();
    for c in m.conversations.values() {
        if matches!(c.phase, crate::Phase::Waiting | crate::Phase::Offered) {
            *by.entry((c.channel.clone(), c.routing.clone())).or_default() += 1;
        }
    }
    by.into_iter().map(|((ch, r), n)| (ch, r, n)).collect()
}

/// A counter family from the totals.
fn counter(
    enc: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    totals: &Totals,
    value: impl Fn(&Counts) -> u64,
) -> Result<(), std::fmt::Error> {
    let mut family = enc.encode_descriptor(name, help, None, MetricType::Counter)?;
    for ((channel, r), c) in &totals.by_routing {
        ConstCounter::new(value(c)).encode(family.encode_family(&routing_labels(channel, r))?)?;
    }
    Ok(())
}

/// A histogram family in seconds.
fn histogram<'a>(
    enc: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    bounds: &[f64],
    series: impl Iterator<Item = (Labels, &'a Hist)>,
) -> Result<(), std::fmt::Error> {
    let mut family = enc.encode_descriptor(name, help, Some(&Unit::Seconds), MetricType::Histogram)?;
    for (labels, h) in series {
        let counts = |i: usize| h.buckets.get(i).copied().unwrap_or(0);
        let buckets: Vec<(f64, u64)> =
            bounds.iter().copied().chain([f64::INFINITY]).enumerate().map(|(i, b)| (b, counts(i))).collect();
        family.encode_family(&labels)?.encode_histogram::<NoLabelSet>(
            h.sum_ms as f64 / 1000.0,
            h.count,
            &buckets,
            None,
        )?;
    }
    Ok(())
}

impl Collector for Snapshot {
    fn encode(&self, mut enc: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let t = &self.totals;
        counter(&mut enc, "conversations_opened", "Conversations opened.", t, |c| c.opened)?;
        counter(
            &mut enc,
            "conversations_reopened",
            "Resolved conversations reopened by the customer (repeat contacts).",
            t,
            |c| c.reopened,
        )?;
        counter(&mut enc, "conversations_resolved", "Conversation resolutions.", t, |c| c.resolved)?;
        counter(
            &mut enc,
            "conversations_resolved_first_contact",
            "Resolutions with no reopen, transfer or escalation before them.",
            t,
            |c| c.resolved_first_contact,
        )?;
        counter(&mut enc, "conversations_escalated", "Escalations to a higher tier.", t, |c| c.escalated)?;
        counter(&mut enc, "conversations_transferred", "Transfers to another agent or team.", t, |c| c.transferred)?;
        counter(&mut enc, "sla_met", "First responses within the SLA deadline.", t, |c| c.sla_met)?;
        counter(
            &mut enc,
            "sla_missed",
            "First responses after the SLA deadline, or deadlines passed without one.",
            t,
            |c| c.sla_missed,
        )?;
        counter(&mut enc, "csat_responses", "CSAT answers (1-5).", t, |c| c.csat_responses)?;
        counter(&mut enc, "csat_satisfied", "CSAT answers of 4 or 5.", t, |c| c.csat_satisfied)?;
        counter(
            &mut enc,
            "csat_score_sum",
            "Sum of CSAT scores (1-5); over csat_responses, the mean score (CSI).",
            t,
            |c| c.csat_score_sum,
        )?;
        let mut family = enc.encode_descriptor(
            "nps_responses",
            "NPS answers (0-10) by class: promoter 9-10, passive 7-8, detractor 0-6.",
            None,
            MetricType::Counter,
        )?;
        for ((channel, r), c) in &t.by_routing {
            for (class, n) in
                [("promoter", c.nps_promoters), ("passive", c.nps_passives), ("detractor", c.nps_detractors)]
            {
                let mut labels = routing_labels(channel, r);
                labels.push(("class", class.to_string()));
                ConstCounter::new(n).encode(family.encode_family(&labels)?)?;
            }
        }
        counter(&mut enc, "ces_responses", "CES answers (1-7).", t, |c| c.ces_responses)?;
        counter(&mut enc, "ces_score_sum", "Sum of CES scores (1-7); over ces_responses, the mean.", t, |c| {
            c.ces_score_sum
        })?;
        let by_routing = || t.by_routing.iter().map(|((ch, r), c)| (routing_labels(ch, r), c));
        histogram(
            &mut enc,
            "first_response",
            "First agent reply minus the customer's first message of the contact.",
            FRT_BUCKETS,
            by_routing().map(|(l, c)| (l, &c.frt)),
        )?;
        histogram(
            &mut enc,
            "handle_time",
            "First assignment of the contact until resolution.",
            AHT_BUCKETS,
            by_routing().map(|(l, c)| (l, &c.aht)),
        )?;
        histogram(
            &mut enc,
            "handoff",
            "Transfer speed: a transfer or an agent's escalation until the next agent took it.",
            FRT_BUCKETS,
            by_routing().map(|(l, c)| (l, &c.handoff)),
        )?;
        histogram(
            &mut enc,
            "agent_handle_time",
            "Time an agent held a contact (their own share of it), counted when it is resolved.",
            AHT_BUCKETS,
            t.by_agent.iter().map(|(a, c)| (vec![("agent", a.clone())], &c.held)),
        )?;
        let mut family =
            enc.encode_descriptor("agent_resolved", "Conversations an agent resolved.", None, MetricType::Counter)?;
        for (a, c) in &t.by_agent {
            ConstCounter::new(c.resolved).encode(family.encode_family(&vec![("agent", a.clone())])?)?;
        }
        l0_counters(&mut enc, &t.l0)?;
        self.gauges(&mut enc)
    }
}

/// The L0 bot's counters: answers and outcomes by team, articles shown and helpful by article
/// (the article label is bounded by `ARTICLE_CAP`).
fn l0_counters(enc: &mut DescriptorEncoder, l0: &L0Totals) -> Result<(), std::fmt::Error> {
    let team = |t: &String| vec![("team", t.clone())];
    let mut family = enc.encode_descriptor(
        "l0_answered",
        "Conversations the L0 bot answered from the knowledge base (arrived at L0).",
        None,
        MetricType::Counter,
    )?;
    for (t, c) in &l0.by_team {
        ConstCounter::new(c.answered).encode(family.encode_family(&team(t))?)?;
    }
    let mut family = enc.encode_descriptor(
        "l0_outcome",
        "Outcomes of the L0 bot's answers: helped and no_reply resolved at L0, handed_off went to a human.",
        None,
        MetricType::Counter,
    )?;
    for (t, c) in &l0.by_team {
        for (outcome, n) in [("helped", c.helped), ("no_reply", c.no_reply), ("handed_off", c.handed_off)] {
            let mut labels = team(t);
            labels.push(("outcome", outcome.to_string()));
            ConstCounter::new(n).encode(family.encode_family(&labels)?)?;
        }
    }
    let article = |a: &String| vec![("article", a.clone())];
    let mut family = enc.encode_descriptor(
        "kb_article_shown",
        "Times the L0 bot showed a knowledge-base article.",
        None,
        MetricType::Counter,
    )?;
    for (a, c) in &l0.articles.0 {
        ConstCounter::new(c.shown).encode(family.encode_family(&article(a))?)?;
    }
    let mut family = enc.encode_descriptor(
        "kb_article_helped",
        "Times an article was the best one shown and the customer said it helped.",
        None,
        MetricType::Counter,
    )?;
    for (a, c) in &l0.articles.0 {
        ConstCounter::new(c.helped).encode(family.encode_family(&article(a))?)?;
    }
    Ok(())
}

impl Snapshot {
    fn gauges(&self, enc: &mut DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let mut family = enc.encode_descriptor(
            "backlog_conversations",
            "Conversations waiting for an agent now.",
            None,
            MetricType::Gauge,
        )?;
        for (channel, r, n) in &self.backlog {
            ConstGauge::new(*n as i64).encode(family.encode_family(&routing_labels(channel, r))?)?;
        }
        let mut family = enc.encode_descriptor(
            "unanswered_conversations",
            "Open conversations without a first response, by age.",
            None,
            MetricType::Gauge,
        )?;
        for (age, n) in &self.unanswered {
            ConstGauge::new(*n as i64).encode(family.encode_family(&vec![("age", age.clone())])?)?;
        }
        let agent = |a: &String| vec![("agent", a.clone())];
        let mut family = enc.encode_descriptor(
            "agent_logged_in",
            "Time an agent was online or away.",
            Some(&Unit::Seconds),
            MetricType::Counter,
        )?;
        for (a, k, _) in &self.agents {
            ConstCounter::new(k.logged_in_secs).encode(family.encode_family(&agent(a))?)?;
        }
        let mut family = enc.encode_descriptor(
            "agent_busy",
            "Time an agent was logged in and held at least one conversation.",
            Some(&Unit::Seconds),
            MetricType::Counter,
        )?;
        for (a, k, _) in &self.agents {
            ConstCounter::new(k.busy_secs).encode(family.encode_family(&agent(a))?)?;
        }
        let mut family = enc.encode_descriptor(
            "agent_occupancy_ratio",
            "Busy time over logged-in time since the fold started.",
            None,
            MetricType::Gauge,
        )?;
        for (a, k, _) in &self.agents {
            ConstGauge::new(k.occupancy.unwrap_or(0.0)).encode(family.encode_family(&agent(a))?)?;
        }
        let mut family =
            enc.encode_descriptor("agent_conversations", "Conversations an agent holds now.", None, MetricType::Gauge)?;
        for (a, _, held) in &self.agents {
            ConstGauge::new(i64::from(*held)).encode(family.encode_family(&agent(a))?)?;
        }
        let mut family = enc.encode_descriptor(
            "staffing_agents_needed",
            "Agents needed in each hour of the day (UTC) for 90% of first responses within the \
             staffing target, by Erlang C from the arrivals, handle time and concurrency the fold holds.",
            None,
            MetricType::Gauge,
        )?;
        for h in self.staffing.iter().flat_map(|s| &s.hours) {
            ConstGauge::new(i64::from(h.agents))
                .encode(family.encode_family(&vec![("hour", format!("{:02}", h.hour))])?)?;
        }
        Ok(())
    }
}
