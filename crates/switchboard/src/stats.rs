//! `switchboard stats`: support KPIs over a time window, read back from the event stream
//! (`SB_EVENTS`), as the KPI table against targets or as JSON.
//!
//! The fold starts a lookback before the window so that a reply inside the window to a
//! conversation opened before it still has its start, and stops at the last event present when
//! the command started, so that a busy stream cannot keep it reading forever.

use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use async_nats::jetstream::consumer::{DeliverPolicy, pull};
use chrono::{DateTime, Utc};
use futures::StreamExt;
use serde_json::json;
use switchboard_bus::{Bus, BusConfig};
use switchboard_core::contract::{headers, streams, subjects};
use switchboard_core::{Event, Rewrites, decode_events};
use switchboard_metrics::{
    GroupBy, Kpis, Metrics, Query, Report, TOP_ARTICLES, Targets, article_cells, render_grid, render_table,
};

use crate::cli::progress::{Progress, thousands};

/// How far before the window's start events are read by default: reopenings and late replies
/// refer back to conversations opened up to this long before.
pub const LOOKBACK: Duration = Duration::from_secs(7 * 86_400);

/// How long to wait for the next message before giving up on a stalled read.
const STALL: Duration = Duration::from_secs(30);

/// How to print the result.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// The KPI table with targets, the backlog and agents.
    Table,
    /// One JSON document: window, what was read, targets and the report.
    Json,
}

/// A point in time on the command line: a duration before now, or an instant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum When {
    /// This long before the command started (`24h`).
    Ago(Duration),
    /// An RFC 3339 instant (`2026-01-05T00:00:00Z`).
    At(DateTime<Utc>),
}

impl When {
    /// The instant meant, with `now` the command's start.
    pub fn resolve(self, now: DateTime<Utc>) -> DateTime<Utc> {
        match self {
            When::Ago(d) => now - chrono::Duration::from_std(d).unwrap_or(chrono::Duration::MAX),
            When::At(t) => t,
        }
    }
}

/// Parses `30m`, `24h`, `7d`, `1h30m` (units `s`, `m`, `h`, `d`, `w`).
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let bad = || format!("`{s}` is not a duration: use a number and a unit (s, m, h, d, w), e.g. 30m, 24h, 7d");
    let mut total = 0u64;
    let mut digits = String::new();
    for c in s.trim().chars() {
        if c.is_ascii_digit() {
            digits.push(c);
            continue;
        }
        let unit = match c {
            's' => 1,
            'm' => 60,
            'h' => 3600,
            'd' => 86_400,
            'w' => 7 * 86_400,
            _ => return Err(bad()),
        };
        let n: u64 = digits.parse().map_err(|_| bad())?;
        total = n.checked_mul(unit).and_then(|v| total.checked_add(v)).ok_or_else(bad)?;
        digits.clear();
    }
    if !digits.is_empty() || total == 0 {
        return Err(bad());
    }
    Ok(Duration::from_secs(total))
}

/// Parses a duration before now (`24h`) or an RFC 3339 instant.
pub fn parse_when(s: &str) -> Result<When, String> {
    if let Ok(t) = DateTime::parse_from_rfc3339(s.trim()) {
        return Ok(When::At(t.with_timezone(&Utc)));
    }
    parse_duration(s)
        .map(When::Ago)
        .map_err(|_| format!("`{s}` is neither a duration (30m, 24h, 7d) nor an RFC 3339 time (2026-01-05T00:00:00Z)"))
}

/// Parses a percentage, `85` or `85%`, into a share (0.85).
pub fn parse_percent(s: &str) -> Result<f64, String> {
    let n: f64 = s.trim().trim_end_matches('%').parse().map_err(|_| format!("`{s}` is not a percentage"))?;
    if !(0.0..=100.0).contains(&n) {
        return Err(format!("`{s}` is not between 0 and 100"));
    }
    Ok(n / 100.0)
}

/// What `switchboard stats` was asked.
#[derive(Debug, Clone)]
pub struct Args {
    /// Window start.
    pub since: When,
    /// Window end; `None`: now.
    pub until: Option<When>,
    /// The breakdown.
    pub by: GroupBy,
    /// Output format.
    pub format: Format,
    /// Targets the table checks (and the FRT target the report's share is measured against).
    pub targets: Targets,
    /// How far before the window's start to read events.
    pub lookback: Duration,
    /// Where to write the HTML report page, if anywhere.
    pub report: Option<std::path::PathBuf>,
}

/// The window and breakdown of the report, with `now` the command's start.
pub fn query(args: &Args, now: DateTime<Utc>) -> anyhow::Result<Query> {
    let from = args.since.resolve(now);
    let to = args.until.map_or(now, |u| u.resolve(now));
    if from >= to {
        bail!("--since ({from}) must be before --until ({to})");
    }
    Ok(Query {
        from: Some(from.timestamp_millis()),
        to: Some(to.timestamp_millis()),
        now: Some(now.timestamp_millis()),
        by: args.by,
        frt_target_secs: args.targets.frt_secs,
    })
}

/// The events read back from `SB_EVENTS`, folded.
#[derive(Debug, Default)]
pub struct Read {
    /// The fold of every decoded event.
    pub metrics: Metrics,
    /// Events decoded and folded.
    pub events: u64,
    /// Messages decoded (an `event/1` holds one event, an `events/1` batch several).
    pub messages: u64,
    /// Messages that were neither a valid `event/1` nor a valid `events/1` (skipped).
    pub skipped: u64,
    /// Stream sequence of the first message read (0: none).
    pub first_sequence: u64,
    /// Stream sequence of the last message read (0: none).
    pub last_sequence: u64,
    /// The stream's oldest message is newer than the read start: retention has cut history, and
    /// conversations opened before it lack their start.
    pub truncated: bool,
}

/// Decodes a stored message as its events (an `event/1` or an `events/1` batch); `None` when it
/// is something else or invalid.
fn decode(message: &async_nats::jetstream::Message) -> Option<Vec<Event>> {
    let schema = message.headers.as_ref().and_then(|h| h.get(headers::SCHEMA)).map(|s| s.as_str());
    decode_events(schema, &message.payload).ok()
}

/// Every batch an erasure rewrote (`sb.events.rewritten`, few: one per batch that held an erased
/// person's events with others'), by the sequence of the batch it replaced, so that a fold of
/// `SB_EVENTS` in order can fold them where the original stood ([`Rewrites`]).
pub async fn read_rewrites(bus: &Bus) -> anyhow::Result<Rewrites> {
    let mut rewrites = Rewrites::default();
    let stream = bus.jetstream().get_stream(streams::EVENTS).await.with_context(|| streams::EVENTS.to_string())?;
    let consumer = stream
        .create_consumer(pull::OrderedConfig {
            filter_subject: subjects::EVENT_REWRITE.into(),
            deliver_policy: DeliverPolicy::All,
            ..Default::default()
        })
        .await
        .with_context(|| format!("creating a consumer of {}", subjects::EVENT_REWRITE))?;
    if consumer.cached_info().num_pending == 0 {
        return Ok(rewrites);
    }
    let mut messages = consumer.messages().await.with_context(|| format!("reading {}", subjects::EVENT_REWRITE))?;
    loop {
        let next = tokio::time::timeout(STALL, messages.next())
            .await
            .map_err(|_| anyhow::anyhow!("reading {} stalled for {} s", subjects::EVENT_REWRITE, STALL.as_secs()))?;
        let Some(next) = next else { break };
        let message = next.with_context(|| format!("reading {}", subjects::EVENT_REWRITE))?;
        let pending = message.info().map(|i| i.pending).unwrap_or_default();
        let header = |name| message.headers.as_ref().and_then(|h| h.get(name)).map(|s| s.as_str());
        if let (Some(of), Some(events)) = (Rewrites::of(header(headers::REWRITE_OF)), decode(&message)) {
            rewrites.insert(of, events);
        }
        if pending == 0 {
            break;
        }
    }
    Ok(rewrites)
}

/// Reads `SB_EVENTS` from the first message stored at or after `start` up to the last message
/// present when called, folding each event; the events of a batch an erasure rewrote are folded
/// where that batch stood ([`read_rewrites`]).
pub async fn read_events(bus: &Bus, start: DateTime<Utc>) -> anyhow::Result<Read> {
    read_events_with_progress(bus, start, &mut |_, _| {}).await
}

/// [`read_events`], calling `progress(read, total)` after each message with the messages read
/// so far and how many there are to read.
pub async fn read_events_with_progress(
    bus: &Bus,
    start: DateTime<Utc>,
    progress: &mut (dyn FnMut(u64, u64) + Send),
) -> anyhow::Result<Read> {
    let url = &bus.config().url;
    let mut stream =
        bus.jetstream().get_stream(streams::EVENTS).await.with_context(|| {
            format!("no stream {} on NATS at {url}: has Switchboard run against it?", streams::EVENTS)
        })?;
    let state = stream.info().await.with_context(|| format!("reading {} info", streams::EVENTS))?.state.clone();
    let mut read = Read::default();
    if state.messages == 0 {
        return Ok(read);
    }
    let start_nanos = i128::from(start.timestamp_nanos_opt().unwrap_or(0)).max(0);
    let start_time = async_nats::datetime::from_nanos(start_nanos)
        .map_err(|e| anyhow::anyhow!("the read start {start} is out of range: {e}"))?;
    read.truncated = state.first_timestamp > start_time;
    let consumer = stream
        .create_consumer(pull::OrderedConfig {
            filter_subject: subjects::event(">"),
            deliver_policy: DeliverPolicy::ByStartTime { start_time },
            ..Default::default()
        })
        .await
        .with_context(|| format!("creating a consumer on {}", streams::EVENTS))?;
    if consumer.cached_info().num_pending == 0 {
        return Ok(read);
    }
    let mut rewrites = read_rewrites(bus).await?;
    let mut messages = consumer.messages().await.with_context(|| format!("reading {}", streams::EVENTS))?;
    loop {
        let next = tokio::time::timeout(STALL, messages.next())
            .await
            .map_err(|_| anyhow::anyhow!("reading {} stalled for {} s", streams::EVENTS, STALL.as_secs()))?;
        let Some(next) = next else { break };
        let message = next.with_context(|| format!("reading {}", streams::EVENTS))?;
        let info =
            message.info().map_err(|e| anyhow::anyhow!("a message of {} without metadata: {e}", streams::EVENTS))?;
        let (sequence, pending) = (info.stream_sequence, info.pending);
        // Published after the command started: the report is of the stream as it was then.
        if sequence > state.last_sequence {
            break;
        }
        if read.first_sequence == 0 {
            read.first_sequence = sequence;
        }
        read.last_sequence = sequence;
        // The batch a rewrite replaced is gone, so its time is its events': those before the
        // read start are history before it.
        for event in rewrites.take_before(sequence + 1).iter().filter(|e| e.at >= start) {
            read.metrics.apply(event);
        }
        match decode(&message) {
            Some(events) => {
                for event in &events {
                    read.metrics.apply(event);
                }
                read.events += events.len() as u64;
                read.messages += 1;
            }
            None => read.skipped += 1,
        }
        progress(read.messages + read.skipped, state.last_sequence.saturating_sub(read.first_sequence) + 1);
        // `pending == 0`: nothing after this one, e.g. when the last message expired meanwhile.
        if sequence >= state.last_sequence || pending == 0 {
            break;
        }
    }
    Ok(read)
}

/// Connects to NATS, reads the events, computes the report and renders it; `now` is the
/// command's start. A summary of what was read goes to stderr.
pub async fn run(nats: &BusConfig, args: &Args, now: DateTime<Utc>) -> anyhow::Result<String> {
    let query = query(args, now)?;
    let from = args.since.resolve(now);
    let read_start = from - chrono::Duration::from_std(args.lookback).context("--lookback")?;
    // The bus error already names the URL and the cause; anyhow's chain would repeat the cause.
    let bus = Bus::connect_once(nats).await.map_err(|e| anyhow::anyhow!("{e}"))?;
    let started = Instant::now();
    let mut progress = Progress::stderr();
    let read = read_events_with_progress(&bus, read_start, &mut |done, total| {
        progress.update(|| format!("read {} of {} messages", thousands(done), thousands(total)))
    })
    .await?;
    progress.finish();
    eprintln!(
        "read {} events from {} (sequences {}..{}) in {:.2} s{}",
        read.events,
        streams::EVENTS,
        read.first_sequence,
        read.last_sequence,
        started.elapsed().as_secs_f64(),
        if read.skipped > 0 { format!("; skipped {} undecodable messages", read.skipped) } else { String::new() },
    );
    if read.truncated {
        eprintln!(
            "note: {} holds nothing before its oldest message, which is newer than {}: replies to \
             conversations opened before that are not counted",
            streams::EVENTS,
            read_start.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
        );
    }
    let report = Report::compute(&read.metrics, &query);
    if let Some(file) = &args.report {
        let summary = crate::stats_page::ReadSummary {
            events: read.events,
            skipped: read.skipped,
            sequences: (read.first_sequence, read.last_sequence),
            truncated: read.truncated,
        };
        let page = crate::stats_page::page(&read.metrics, summary, &report, &args.targets).render();
        std::fs::write(file, page).with_context(|| format!("writing the report to {}", file.display()))?;
        eprintln!("report written to {}", file.display());
    }
    Ok(match args.format {
        Format::Table => render(&report, &args.targets),
        Format::Json => {
            let value = json!({
                "window": { "from": ms_rfc3339(query.from), "to": ms_rfc3339(query.to) },
                "read": {
                    "stream": streams::EVENTS,
                    "from": read_start.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
                    "first_sequence": read.first_sequence,
                    "last_sequence": read.last_sequence,
                    "events": read.events,
                    "messages": read.messages,
                    "skipped": read.skipped,
                    "truncated": read.truncated,
                },
                "targets": args.targets,
                "report": report,
            });
            format!("{value:#}\n")
        }
    })
}

/// Milliseconds since the epoch as RFC 3339, UTC.
fn ms_rfc3339(ms: Option<i64>) -> Option<String> {
    ms.and_then(DateTime::from_timestamp_millis).map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
}

/// A duration in seconds as the KPI table writes them: `45s`, `12m 05s`, `2h 03m`.
fn duration(secs: f64) -> String {
    let s = secs.round() as i64;
    match s {
        ..60 => format!("{s}s"),
        60..3600 => format!("{}m {:02}s", s / 60, s % 60),
        _ => format!("{}h {:02}m", s / 3600, (s % 3600) / 60),
    }
}

/// `key n, key n` of a count map, or `none`.
fn counts<'a>(m: impl IntoIterator<Item = (&'a String, &'a u64)>) -> String {
    let parts: Vec<String> = m.into_iter().filter(|(_, n)| **n > 0).map(|(k, n)| format!("{k} {n}")).collect();
    if parts.is_empty() { "none".into() } else { parts.join(", ") }
}

/// The report as text: the KPI table (total, then one column per group), the L0 bot's most
/// shown articles, the backlog now, and agents' occupancy.
pub fn render(report: &Report, targets: &Targets) -> String {
    let q = &report.query;
    let mut out = format!(
        "KPIs from {} to {} (UTC){}\n\n",
        ms_rfc3339(q.from).unwrap_or_else(|| "the beginning".into()),
        ms_rfc3339(q.to).unwrap_or_else(|| "now".into()),
        match q.by {
            GroupBy::None => String::new(),
            by => format!(
                ", by {}",
                serde_json::to_value(by).ok().and_then(|v| v.as_str().map(str::to_string)).unwrap_or_default()
            ),
        }
    );
    let mut columns: Vec<(String, &Kpis)> = vec![("total".to_string(), &report.total)];
    columns.extend(report.groups.iter().map(|(name, k)| (name.clone(), k)));
    out += &render_table(&columns, targets);
    if !report.kb_articles.0.is_empty() {
        out += &format!("\nL0 bot's articles (top {TOP_ARTICLES} by shown)\n");
        out += &render_grid(&article_cells(&report.kb_articles, TOP_ARTICLES));
    }
    let b = &report.backlog;
    out += &format!("\nWaiting now: {}\n", b.waiting);
    out += &format!("  by tier: {}\n", counts(&b.by_tier));
    out += &format!("  by priority: {}\n", counts(&b.by_priority));
    out += &format!("  by team: {}\n", counts(&b.by_team));
    out += &format!("  by channel: {}\n", counts(&b.by_channel));
    out += &format!("  unanswered by age: {}\n", counts(b.unanswered.iter().map(|(k, n)| (k, n))));
    if let Some(st) = &report.forecast.staffing {
        out += &format!(
            "\nStaffing for {:.0}% of first responses within {} (Erlang C; AHT {}, first reply {} after \
             pickup, {:.1} conversations at once): peak {} agents\n",
            st.share * 100.0,
            duration(st.target_secs as f64),
            duration(st.aht_secs),
            duration(st.reply_after_pickup_secs),
            st.concurrency,
            st.peak_agents
        );
        let mut cells = vec![["Hour (UTC)", "Arrivals/h", "Erlangs", "Agents"].map(str::to_string).to_vec()];
        for h in &st.hours {
            cells.push(vec![
                format!("{:02}:00", h.hour),
                format!("{:.1}", h.arrivals_per_hour),
                format!("{:.1}", h.offered_load_erlangs),
                h.agents.to_string(),
            ]);
        }
        out += &render_grid(&cells);
    }
    if !report.agents.is_empty() {
        let mut cells =
            vec![["Agent", "Logged in", "Busy", "Occupancy", "Resolved", "AHT mean"].map(str::to_string).to_vec()];
        for (id, a) in &report.agents {
            cells.push(vec![
                id.clone(),
                duration(a.logged_in_secs),
                duration(a.busy_secs),
                a.occupancy.map_or("-".into(), |o| format!("{:.1}%", o * 100.0)),
                a.resolved.to_string(),
                a.aht_mean_secs.map_or("-".into(), duration),
            ]);
        }
        out.push('\n');
        out += &render_grid(&cells);
    }
    out
}
