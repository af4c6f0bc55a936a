//! KPIs hour by hour, for the report page's charts: one [`Report`] per hour of a window (the
//! same computation as the tables, on a one-hour window), and the queue and the unanswered
//! backlog at each hour's start, reconstructed from the fold's contacts.
//!
//! The reconstruction uses what the fold keeps per contact (when the customer wrote, when an
//! agent first took it, the first reply, resolutions) and per hand-off (when it was passed on and
//! taken again). It does not know when a bot (L0) contact left the bot, so contacts of a
//! conversation still with the bot are left out; otherwise it counts what
//! [`crate::backlog`] counted at that moment.

use crate::dims::Ms;
use crate::fold::{Metrics, Phase};
use crate::report::{Forecast, Query, Report};
use crate::staffing::STAFFING_SHARE;
use crate::svg::Chart;
use crate::table::Targets;

/// One hour's length.
const HOUR: Ms = 3_600_000;
/// At most this many buckets: a longer window gets buckets of several hours.
const MAX_BUCKETS: i64 = 400;

/// A point of a series: time (ms) and value, `None` for no value then.
pub type Points = Vec<(Ms, Option<f64>)>;

/// One configuration's (or the live data's) series over a window. Rates are plotted at the
/// middle of their bucket, counts of the backlog at the instant they were taken.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Hourly {
    /// Bucket length, ms (an hour, or whole hours for long windows).
    pub bucket_ms: Ms,
    /// Contacts (openings and reopenings) per hour.
    pub arrivals: Points,
    /// Conversations waiting for an agent (queued or offered), at each bucket's start.
    pub waiting: Points,
    /// Contacts without a first response, at each bucket's start.
    pub unanswered: Points,
    /// Offered load, Erlangs: arrivals per hour times the bucket's mean handle time.
    pub offered_load: Points,
    /// Mean occupancy of the agents logged in during the bucket, percent.
    pub occupancy: Points,
    /// FRT median of the first responses in the bucket, minutes.
    pub frt_p50: Points,
    /// FRT 90th percentile, minutes.
    pub frt_p90: Points,
    /// SLA compliance of the SLA decisions in the bucket, percent.
    pub sla: Points,
    /// Each bucket's forecast (rates and load), at the bucket's middle: what a staffing line
    /// per hour would be computed from.
    pub forecasts: Vec<(Ms, Forecast)>,
}

/// The bucket length for a window: an hour, or whole hours so that there are at most
/// `MAX_BUCKETS`.
fn bucket_for(from: Ms, to: Ms) -> Ms {
    let hours = ((to - from).max(1) + HOUR - 1) / HOUR;
    HOUR * ((hours + MAX_BUCKETS - 1) / MAX_BUCKETS).max(1)
}

/// Counts how many of `intervals` (start, end) hold at `t`: started before `t` and not ended
/// before it (an end at `t` is after a sample at `t`, as in the simulator's timeline).
struct Sweep {
    starts: Vec<Ms>,
    ends: Vec<Ms>,
}

impl Sweep {
    fn new(intervals: &[Interval]) -> Sweep {
        let mut starts: Vec<Ms> = intervals.iter().map(|i| i.0).collect();
        let mut ends: Vec<Ms> = intervals.iter().filter_map(|i| i.1).collect();
        starts.sort_unstable();
        ends.sort_unstable();
        Sweep { starts, ends }
    }

    fn at(&self, t: Ms) -> u64 {
        let started = self.starts.partition_point(|s| *s < t);
        let ended = self.ends.partition_point(|e| *e < t);
        started.saturating_sub(ended) as u64
    }
}

/// From when, until when (`None`: still).
type Interval = (Ms, Option<Ms>);

/// Intervals of waiting for an agent and of waiting for a first response, per contact.
fn backlog_intervals(m: &Metrics) -> (Vec<Interval>, Vec<Interval>) {
    let (mut waiting, mut unanswered) = (Vec::new(), Vec::new());
    for c in m.conversations.values() {
        for (i, k) in c.contacts.iter().enumerate() {
            if c.phase == Phase::Bot && k.assigned_at.is_none() {
                continue;
            }
            // A contact ends with the next one, or with a resolution after it started.
            let next = c.contacts.get(i + 1).map(|n| n.start);
            let resolved = c.resolutions.iter().map(|r| r.at).find(|at| *at >= k.start);
            let closed = [next, resolved].into_iter().flatten().min();
            let min = |a: Option<Ms>| [a, closed].into_iter().flatten().min();
            if k.start <= closed.unwrap_or(Ms::MAX) {
                waiting.push((k.start, min(k.assigned_at)));
                unanswered.push((k.start, min(k.first_response.as_ref().map(|f| f.0))));
            }
        }
        // Passed on by an agent: waiting again until the next agent took it.
        waiting.extend(c.handoffs.iter().map(|(at, ms, _)| (at - ms, Some(*at))));
        if let Some(since) = c.handed_off_at
            && matches!(c.phase, Phase::Waiting | Phase::Offered)
        {
            waiting.push((since, None));
        }
    }
    (waiting, unanswered)
}

/// The series of `m` over `[from, to)`, FRT shares against `frt_target_secs`.
pub fn hourly(m: &Metrics, from: Ms, to: Ms, frt_target_secs: u64) -> Hourly {
    let bucket_ms = bucket_for(from, to);
    let (waiting, unanswered) = backlog_intervals(m);
    let (waiting, unanswered) = (Sweep::new(&waiting), Sweep::new(&unanswered));
    let mut h = Hourly { bucket_ms, ..Hourly::default() };
    let mut start = from;
    while start < to {
        let end = (start + bucket_ms).min(to);
        let query = Query { from: Some(start), to: Some(end), now: Some(end), frt_target_secs, ..Query::default() };
        let r = Report::compute(m, &query);
        let mid = start + (end - start) / 2;
        let minutes = |s: Option<f64>| s.map(|s| s / 60.0);
        h.arrivals.push((mid, Some(r.forecast.arrivals_per_hour)));
        h.offered_load.push((mid, r.forecast.offered_load_erlangs));
        let occ: Vec<f64> = r.agents.values().filter_map(|a| a.occupancy).collect();
        let occupancy = (!occ.is_empty()).then(|| 100.0 * occ.iter().sum::<f64>() / occ.len() as f64);
        h.occupancy.push((mid, occupancy));
        h.frt_p50.push((mid, minutes(r.total.frt_p50_secs)));
        h.frt_p90.push((mid, minutes(r.total.frt_p90_secs)));
        h.sla.push((mid, r.total.sla_compliance.map(|s| s * 100.0)));
        h.forecasts.push((mid, r.forecast));
        h.waiting.push((start, Some(waiting.at(start) as f64)));
        h.unanswered.push((start, Some(unanswered.at(start) as f64)));
        start = end;
    }
    h.waiting.push((to, Some(waiting.at(to) as f64)));
    h.unanswered.push((to, Some(unanswered.at(to) as f64)));
    h
}

/// `2h 00m`, `15m`, `45s`: a target as the page's labels show it.
fn short(secs: u64) -> String {
    match secs {
        ..60 => format!("{secs}s"),
        60..3600 => format!("{}m", secs / 60),
        _ if secs.is_multiple_of(3600) => format!("{}h", secs / 3600),
        _ => format!("{}h {:02}m", secs / 3600, secs % 3600 / 60),
    }
}

/// The targets as one line for the page's facts: `FRT p90 <= 2h, FCR >= 85%, CSAT >= 90%`.
pub fn targets_line(targets: &Targets) -> String {
    format!(
        "FRT p90 <= {}, FCR >= {:.0}%, CSAT >= {:.0}%",
        short(targets.frt_secs),
        targets.fcr * 100.0,
        targets.csat * 100.0
    )
}

/// The page's standard charts, one line per configuration in `runs`' order: arrivals, waiting,
/// unanswered, offered load, agents needed, occupancy, FRT p50 and p90 (with the target), SLA compliance.
pub fn charts(runs: &[(String, &Hourly)], targets: &Targets) -> Vec<Chart> {
    let per = |f: fn(&Hourly) -> &Points| runs.iter().map(|(_, h)| f(h).clone()).collect::<Vec<_>>();
    let bucket = runs.first().map_or(HOUR, |(_, h)| h.bucket_ms);
    let over = if bucket == HOUR { "each hour".to_string() } else { format!("{}-hour buckets", bucket / HOUR) };
    let frt_target = targets.frt_secs as f64 / 60.0;
    let chart = |id: &str, title: &str, unit: &str, series, note: String| Chart {
        id: id.into(),
        title: title.into(),
        unit: unit.into(),
        series,
        note,
        ..Chart::default()
    };
    let staffing = |h: &Hourly| -> Points {
        h.forecasts.iter().map(|(at, f)| (*at, f.staffing.as_ref().map(|s| f64::from(s.peak_agents)))).collect()
    };
    vec![
        chart(
            "arrivals",
            "Arrivals",
            "contacts per hour",
            per(|h| &h.arrivals),
            format!("New conversations and reopenings, {over}."),
        ),
        chart(
            "waiting",
            "Waiting",
            "conversations waiting for an agent",
            per(|h| &h.waiting),
            "Queued or offered and not yet accepted, at each point in time.".into(),
        ),
        chart(
            "backlog",
            "Backlog (unanswered)",
            "contacts without a first response",
            per(|h| &h.unanswered),
            "Open contacts no agent has replied to yet, at each point in time.".into(),
        ),
        chart(
            "load",
            "Offered load",
            "Erlangs (agents busy just to keep up)",
            per(|h| &h.offered_load),
            format!("Arrivals per hour times the mean handle time of the resolutions, {over}."),
        ),
        chart(
            "staffing",
            "Agents needed (Erlang C)",
            &format!("agents for {:.0}% of first responses within {}", STAFFING_SHARE * 100.0, short(targets.frt_secs)),
            runs.iter().map(|(_, h)| staffing(h)).collect(),
            format!("From the arrivals, handle time and concurrency of {over}; gaps where nothing was resolved."),
        ),
        Chart {
            y_max: Some(100.0),
            ..chart(
                "occupancy",
                "Agent occupancy",
                "% of logged-in time holding a conversation",
                per(|h| &h.occupancy),
                format!("Mean over the agents logged in, {over}."),
            )
        },
        chart(
            "frt-p50",
            "FRT p50",
            "minutes to the first response (median)",
            per(|h| &h.frt_p50),
            format!("First responses given {over}; gaps where there were none."),
        ),
        Chart {
            target: Some((frt_target, format!("target {}", short(targets.frt_secs)))),
            ..chart(
                "frt-p90",
                "FRT p90",
                "minutes to the first response (90th percentile)",
                per(|h| &h.frt_p90),
                format!("First responses given {over}; the dashed line is the FRT target."),
            )
        },
        Chart {
            y_max: Some(100.0),
            ..chart(
                "sla",
                "SLA compliance",
                "% of first responses within the conversation's deadline",
                per(|h| &h.sla),
                format!("SLA decisions (a reply, or a deadline passing) {over}."),
            )
        },
    ]
}
