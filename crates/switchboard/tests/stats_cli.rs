//! `switchboard stats` against a real NATS: hand-built events published on `SB_EVENTS` come back
//! as the same report `Report::from_events` computes, through the library function and the binary.

use std::collections::BTreeMap;
use std::time::Duration;
use switchboard::stats;

use chrono::{DateTime, Utc};
use serde_json::{Value, json};
use switchboard_bus::{Bus, BusConfig};
use switchboard_core::contract::subjects;
use switchboard_core::{Event, EventBatch, EventKind};
use switchboard_metrics::{GroupBy, Report, Targets};
use switchboard_testkit::NatsServer;

/// Events built by hand with the data keys the router emits: every conversation event carries
/// its channel and `team`, `tier`, `priority`; replies `first_response`/`within_sla`; CSAT `score`.
struct Events {
    t0: i64,
    events: Vec<Event>,
    routing: BTreeMap<u128, (&'static str, &'static str, &'static str, u64)>,
}

impl Events {
    fn new(t0: i64) -> Events {
        Events { t0, events: Vec::new(), routing: BTreeMap::new() }
    }

    fn push(&mut self, secs: i64, kind: EventKind, c: Option<u128>, agent: Option<&str>, data: Value) {
        let at_ms = (self.t0 + secs) * 1000;
        let mut bits = [0u8; 10];
        bits[..8].copy_from_slice(&(self.events.len() as u64 + 1).to_be_bytes());
        let mut data = match data {
            Value::Object(m) => m,
            _ => Default::default(),
        };
        let channel = c.and_then(|c| self.routing.get(&c)).map(|r| {
            data.entry("team").or_insert_with(|| r.1.into());
            data.entry("tier").or_insert_with(|| r.2.into());
            data.entry("priority").or_insert_with(|| r.3.into());
            r.0.to_string()
        });
        self.events.push(Event {
            id: uuid::Builder::from_unix_timestamp_millis(at_ms as u64, &bits).into_uuid(),
            at: DateTime::from_timestamp_millis(at_ms).unwrap(),
            kind,
            conversation_id: c.map(uuid::Uuid::from_u128),
            agent_id: agent.map(str::to_string),
            channel,
            data,
        });
    }

    fn opened(&mut self, secs: i64, c: u128, channel: &'static str, team: &'static str, priority: u64) {
        self.routing.insert(c, (channel, team, "L1", priority));
        self.push(secs, EventKind::ConversationOpened, Some(c), None, json!({ "repeat": false }));
    }

    fn assigned(&mut self, secs: i64, c: u128, agent: &str) {
        self.push(secs, EventKind::Assigned, Some(c), Some(agent), json!({}));
    }

    fn first_reply(&mut self, secs: i64, c: u128, agent: &str, within_sla: bool) {
        let data = json!({ "first_response": true, "within_sla": within_sla });
        self.push(secs, EventKind::AgentReplied, Some(c), Some(agent), data);
    }

    fn resolved(&mut self, secs: i64, c: u128, agent: &str) {
        self.push(secs, EventKind::Resolved, Some(c), Some(agent), json!({}));
    }

    fn csat(&mut self, secs: i64, c: u128, score: u8) {
        self.push(secs, EventKind::CsatReceived, Some(c), None, json!({ "score": score }));
    }

    fn transferred(&mut self, secs: i64, c: u128, from: &str, team: &'static str) {
        self.routing.get_mut(&c).unwrap().1 = team;
        self.push(secs, EventKind::Transferred, Some(c), Some(from), json!({ "to_agent": null, "note": null }));
    }

    fn status(&mut self, secs: i64, agent: &str, status: &str) {
        self.push(secs, EventKind::AgentStatusChanged, None, Some(agent), json!({ "status": status }));
    }
}

/// The window is `[t0, t0 + WINDOW)`.
const WINDOW: i64 = 20_000;

/// Two teams on two channels; one conversation opened before the window and answered in it,
/// one after it. `t0` is two days ago, so that the stream (stamped now) holds every event after
/// the lookback start.
fn scenario(t0: i64) -> Events {
    let mut s = Events::new(t0);
    s.status(-1000, "alice", "online");
    s.status(0, "bob", "online");
    s.status(0, "carol", "online");
    // 1: opened before the window, first reply inside it (FRT 900 s), CSAT 5.
    s.opened(-600, 1, "webchat", "support", 50);
    s.assigned(-300, 1, "alice");
    s.first_reply(300, 1, "alice", true);
    s.resolved(1200, 1, "alice");
    s.csat(1500, 1, 5);
    // 2: FRT 300 s, resolved, reopened, FRT 100 s again, resolved: not first-contact; CSAT 3.
    s.opened(1000, 2, "email", "support", 30);
    s.assigned(1100, 2, "alice");
    s.first_reply(1300, 2, "alice", true);
    s.resolved(2000, 2, "alice");
    s.push(3000, EventKind::ConversationReopened, Some(2), None, json!({}));
    s.assigned(3050, 2, "alice");
    s.first_reply(3100, 2, "alice", true);
    s.resolved(4000, 2, "alice");
    s.csat(4100, 2, 3);
    // 3: billing by email, FRT 9,000 s past the SLA; CSAT 4.
    s.opened(2000, 3, "email", "billing", 10);
    s.assigned(2100, 3, "bob");
    s.first_reply(11_000, 3, "bob", false);
    s.resolved(12_000, 3, "bob");
    s.csat(12_100, 3, 4);
    // 4: billing on webchat, never answered: the deadline passes, it waits.
    s.opened(5000, 4, "webchat", "billing", 80);
    s.push(8600, EventKind::SlaBreached, Some(4), None, json!({}));
    // 5: opened in support, transferred to billing, answered there (FRT 300 s); CSAT 5.
    s.opened(6000, 5, "webchat", "support", 50);
    s.assigned(6050, 5, "carol");
    s.transferred(6100, 5, "carol", "billing");
    s.assigned(6200, 5, "bob");
    s.first_reply(6300, 5, "bob", true);
    s.resolved(7000, 5, "bob");
    s.csat(7100, 5, 5);
    // Answers to a team's NPS or CES (the fold counts what the stream holds; the channels see
    // to one answer per conversation): 4 promotes (9), 2 found it easy (6).
    s.push(8700, EventKind::NpsReceived, Some(4), None, json!({ "score": 9 }));
    s.push(4200, EventKind::CesReceived, Some(2), None, json!({ "score": 6 }));
    // 6: after the window; folded (it waits) but not counted as opened in it.
    s.opened(WINDOW + 10_000, 6, "email", "support", 50);
    s
}

/// Two days ago, on the hour.
fn two_days_ago() -> i64 {
    let now = Utc::now().timestamp();
    now - now % 3600 - 2 * 86_400
}

/// A NATS with the contract, the scenario's events published on `sb.events.<kind>`, and one
/// message that is not an event.
async fn bus_with(events: &[Event]) -> (NatsServer, Bus) {
    let server = NatsServer::start();
    let bus = Bus::connect_once(&BusConfig::for_url(server.url())).await.expect("connects");
    bus.ensure_contract().await.expect("contract");
    for e in events {
        bus.publish(&subjects::event(e.kind.as_str()), e, &e.id.to_string()).await.expect("published");
    }
    let ack = bus.jetstream().publish(subjects::event("bogus"), "not an event".into()).await.expect("sent");
    ack.await.expect("stored");
    (server, bus)
}

/// [`bus_with`], with the events stored as the router stores its own: `events/1` batches on
/// `sb.events.batch`, one per run of events about one conversation.
async fn bus_with_batches(events: &[Event]) -> (NatsServer, Bus) {
    let server = NatsServer::start();
    let bus = Bus::connect_once(&BusConfig::for_url(server.url())).await.expect("connects");
    bus.ensure_contract().await.expect("contract");
    for batch in EventBatch::pack(events.to_vec()) {
        bus.publish(subjects::EVENT_BATCH, &batch, &batch.msg_id()).await.expect("published");
    }
    let ack = bus.jetstream().publish(subjects::event("bogus"), "not an event".into()).await.expect("sent");
    ack.await.expect("stored");
    (server, bus)
}

fn rfc3339(secs: i64) -> String {
    DateTime::from_timestamp(secs, 0).unwrap().to_rfc3339()
}

/// A report as the JSON the command prints, parsed back: the same number formatting on both
/// sides, so that equal reports compare equal.
fn as_printed(report: &Report) -> Value {
    serde_json::from_str(&serde_json::to_string(report).unwrap()).unwrap()
}

fn args(t0: i64, format: stats::Format) -> stats::Args {
    stats::Args {
        since: stats::parse_when(&rfc3339(t0)).unwrap(),
        until: Some(stats::parse_when(&rfc3339(t0 + WINDOW)).unwrap()),
        by: GroupBy::Team,
        format,
        targets: Targets::default(),
        lookback: stats::LOOKBACK,
        report: None,
    }
}

/// The hand-computed numbers of the scenario's window, by team.
fn assert_scenario_numbers(report: &Value) {
    let total = &report["total"];
    assert_eq!(total["opened"], 4, "2-5; 1 opened before the window, 6 after");
    assert_eq!(total["first_responses"], 5, "1 (inside), 2 twice, 3, 5");
    assert_eq!(total["frt_mean_secs"], json!((900.0 + 300.0 + 100.0 + 9000.0 + 300.0) / 5.0));
    assert_eq!(total["resolved"], 4);
    assert_eq!(total["fcr"], json!(0.5), "1 and 3; 2 was reopened, 5 transferred");
    assert_eq!(total["csat_responses"], 4);
    assert_eq!(total["csat"], json!(0.75), "5, 3, 4, 5");
    assert_eq!((total["sla_met"].as_u64(), total["sla_missed"].as_u64()), (Some(4), Some(2)));
    assert_eq!(total["transfer_rate"], json!(0.25));
    let team = |t: &str| &report["groups"][t];
    assert_eq!((team("support")["opened"].as_u64(), team("billing")["opened"].as_u64()), (Some(2), Some(2)));
    assert_eq!(team("support")["first_responses"], 3, "1, 2 twice");
    assert_eq!(team("billing")["first_responses"], 2, "3, and 5 after its transfer");
    assert_eq!(team("support")["csat"], json!(0.5), "5 and 3");
    assert_eq!(team("billing")["csat"], json!(1.0), "4 and 5");
    assert_eq!((total["nps_responses"].as_u64(), total["nps"].as_f64()), (Some(1), Some(100.0)));
    assert_eq!((team("billing")["nps"].as_f64(), team("support")["nps"].as_f64()), (Some(100.0), None));
    assert_eq!((team("support")["ces_responses"].as_u64(), team("support")["ces_mean"].as_f64()), (Some(1), Some(6.0)));
    assert_eq!(report["backlog"]["waiting"], 2, "4, and 6 after the window");
    let staffing = &report["forecast"]["staffing"];
    assert_eq!(staffing["target_secs"], 7200, "{staffing}");
    assert!(staffing["peak_agents"].as_u64() >= Some(1), "5 contacts with handle times need someone: {staffing}");
}

#[tokio::test]
async fn the_report_read_back_from_the_stream_is_the_report_of_the_events() {
    let t0 = two_days_ago();
    let s = scenario(t0);
    let (server, _bus) = bus_with(&s.events).await;
    let now = DateTime::from_timestamp(t0 + 2 * WINDOW, 0).unwrap();
    let args = args(t0, stats::Format::Json);
    let out = stats::run(&BusConfig::for_url(server.url()), &args, now).await.expect("stats");
    let json: Value = serde_json::from_str(&out).expect("JSON");

    let expected = Report::from_events(&s.events, &stats::query(&args, now).unwrap());
    assert_eq!(json["report"], as_printed(&expected));
    assert_scenario_numbers(&json["report"]);
    assert_eq!(json["read"]["events"], s.events.len());
    assert_eq!(json["read"]["skipped"], 1, "the message that is not an event");
    assert_eq!(json["read"]["last_sequence"], s.events.len() as u64 + 1);
    assert_eq!(json["window"]["from"], rfc3339(t0).replace("+00:00", "Z"));
}

#[tokio::test]
async fn events_stored_in_batches_make_the_same_report() {
    let t0 = two_days_ago();
    let s = scenario(t0);
    let (server, _bus) = bus_with_batches(&s.events).await;
    let batches = EventBatch::pack(s.events.clone()).len();
    assert!(batches < s.events.len(), "some runs hold several events: {batches} of {}", s.events.len());
    let now = DateTime::from_timestamp(t0 + 2 * WINDOW, 0).unwrap();
    let args = args(t0, stats::Format::Json);
    let out = stats::run(&BusConfig::for_url(server.url()), &args, now).await.expect("stats");
    let json: Value = serde_json::from_str(&out).expect("JSON");
    let expected = Report::from_events(&s.events, &stats::query(&args, now).unwrap());
    assert_eq!(json["report"], as_printed(&expected));
    assert_scenario_numbers(&json["report"]);
    assert_eq!(json["read"]["events"], s.events.len(), "every event of every batch");
    assert_eq!((json["read"]["messages"].as_u64(), json["read"]["skipped"].as_u64()), (Some(batches as u64), Some(1)));
}

#[tokio::test]
async fn events_published_after_the_command_started_are_not_read() {
    let t0 = two_days_ago();
    let s = scenario(t0);
    let (server, bus) = bus_with(&s.events[..10]).await;
    let before = stats::read_events(&bus, DateTime::from_timestamp(0, 0).unwrap()).await.expect("read");
    assert_eq!((before.events, before.skipped), (10, 1));
    // The read stops at the last sequence present when it started, even with more arriving.
    let publisher = {
        let (bus, rest) = (bus.clone(), s.events[10..].to_vec());
        tokio::spawn(async move {
            for e in &rest {
                bus.publish(&subjects::event(e.kind.as_str()), e, &e.id.to_string()).await.expect("published");
            }
        })
    };
    let during = stats::read_events(&bus, DateTime::from_timestamp(0, 0).unwrap()).await.expect("read");
    assert!(during.last_sequence >= 11 && during.events + during.skipped == during.last_sequence, "{during:?}");
    publisher.await.unwrap();
    let after = stats::read_events(&bus, DateTime::from_timestamp(0, 0).unwrap()).await.expect("read");
    assert_eq!(after.events, s.events.len() as u64);
    // Nothing stored at or after the start: an empty fold at once, not a wait.
    let future = Utc::now() + chrono::Duration::days(1);
    let none = tokio::time::timeout(Duration::from_secs(10), stats::read_events(&bus, future)).await;
    assert_eq!(none.expect("returns at once").expect("read").events, 0);
    drop(server);
}

/// A daemon configuration the command reads `[nats]` from; it must be valid as a whole.
fn write_config(dir: &std::path::Path, url: &str) -> std::path::PathBuf {
    let path = dir.join("switchboard.toml");
    let text = format!("[nats]\nurl = \"{url}\"\n[routing]\ndefault_team = \"support\"\n[routing.teams.support]\n");
    std::fs::write(&path, text).unwrap();
    path
}

async fn switchboard(args: &[&str]) -> std::process::Output {
    tokio::process::Command::new(env!("CARGO_BIN_EXE_switchboard"))
        .args(args)
        .env_remove("RUST_LOG")
        .output()
        .await
        .expect("the binary runs")
}

#[tokio::test]
async fn the_binary_prints_the_same_report_as_json_and_flags_misses_in_the_table() {
    let t0 = two_days_ago();
    let s = scenario(t0);
    let (server, _bus) = bus_with(&s.events).await;
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), &server.url());
    let config = config.to_str().unwrap();
    let (since, until) = (rfc3339(t0), rfc3339(t0 + WINDOW));
    let window = ["--since", &since, "--until", &until, "--by", "team"];

    let out = switchboard(&[&["stats", "--config", config, "--format", "json"][..], &window].concat()).await;
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let json: Value = serde_json::from_slice(&out.stdout).expect("JSON");
    // The binary's `now` is its own clock: compute the expectation with the query it reports.
    let query = serde_json::from_value(json["report"]["query"].clone()).expect("the query");
    assert_eq!(json["report"], as_printed(&Report::from_events(&s.events, &query)));
    assert_scenario_numbers(&json["report"]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("skipped 1 undecodable"), "the summary counts it");

    let targets = ["--frt-target", "2h", "--fcr-target", "60", "--csat-target", "90%"];
    let out = switchboard(&[&["stats", "--config", config][..], &window, &targets].concat()).await;
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let table = String::from_utf8_lossy(&out.stdout);
    let row = |name: &str| table.lines().find(|l| l.starts_with(name)).unwrap_or_else(|| panic!("{name}: {table}"));
    let cells = |name: &str| row(name).split_whitespace().map(str::to_string).collect::<Vec<_>>();
    assert_eq!(cells("KPI ")[2..], ["total", "billing", "support"], "{table}");
    assert_eq!(cells("Conversations opened")[2..], ["4", "2", "2"], "{table}");
    assert_eq!(row("FRT p90").matches("MISS").count(), 2, "total and billing: 2h 30m over 2h: {table}");
    assert_eq!(row("FCR").matches("MISS").count(), 3, "50% everywhere, under 60%: {table}");
    assert_eq!(row("CSAT ").matches("MISS").count(), 2, "total 75% and support 50% under 90%: {table}");
    assert!(table.contains("Waiting now: 2"), "{table}");
    assert!(table.contains("Staffing for 90% of first responses within 2h 00m (Erlang C"), "{table}");

    // A relative window: everything of the last three days.
    let out = switchboard(&["stats", "--config", config, "--since", "3d", "--format", "json"]).await;
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let json: Value = serde_json::from_slice(&out.stdout).expect("JSON");
    assert_eq!(json["report"]["total"]["opened"], 6);
}

#[tokio::test]
async fn errors_name_the_unreachable_url_and_the_bad_flag() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("nats://127.0.0.1:{}", switchboard_testkit::free_port());
    let config = write_config(dir.path(), &url);
    let config = config.to_str().unwrap();

    let out = switchboard(&["stats", "--config", config]).await;
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains(&url), "names the URL: {stderr}");

    let out = switchboard(&["stats", "--config", config, "--since", "yesterday"]).await;
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("--since") && stderr.contains("yesterday"), "names the flag: {stderr}");

    let out = switchboard(&["stats", "--config", config, "--since", "1h", "--until", "2h"]).await;
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("--since") && stderr.contains("--until"), "{stderr}");
}

#[test]
fn durations_percentages_and_times_parse_and_bad_ones_are_refused() {
    let secs = |s: &str| stats::parse_duration(s).map(|d| d.as_secs());
    assert_eq!(secs("30m"), Ok(1800));
    assert_eq!(secs("24h"), Ok(86_400));
    assert_eq!(secs("7d"), Ok(604_800));
    assert_eq!(secs("1h30m"), Ok(5400));
    assert_eq!(secs("2w"), Ok(1_209_600));
    for bad in ["", "5", "h", "-1h", "1x", "0m", "99999999999999999999d"] {
        assert!(stats::parse_duration(bad).is_err(), "{bad:?}");
    }
    assert_eq!(stats::parse_percent("85"), Ok(0.85));
    assert_eq!(stats::parse_percent("90%"), Ok(0.9));
    assert!(stats::parse_percent("150").is_err() && stats::parse_percent("many").is_err());
    let at = DateTime::parse_from_rfc3339("2026-01-05T00:00:00Z").unwrap().with_timezone(&Utc);
    assert_eq!(stats::parse_when("2026-01-05T00:00:00Z"), Ok(stats::When::At(at)));
    assert_eq!(stats::parse_when("24h"), Ok(stats::When::Ago(Duration::from_secs(86_400))));
    assert_eq!(stats::When::Ago(Duration::from_secs(3600)).resolve(at), at - chrono::Duration::hours(1));
}

/// The L0 bot answers four billing conversations from the knowledge base: one customer says
/// it helped, one never answers, one is handed to a human, one has not answered yet.
fn l0_scenario(t0: i64) -> Events {
    let mut s = Events::new(t0);
    for (c, articles) in [(11, ["refund", "invoice"]), (12, ["invoice", "refund"]), (13, ["refund", "tracking"])]
        .into_iter()
        .map(|(c, a)| (c, a.to_vec()))
        .chain([(14, vec!["refund"])])
    {
        s.routing.insert(c, ("webchat", "billing", "L0", 50));
        s.push(c as i64, EventKind::ConversationOpened, Some(c), None, json!({ "repeat": false }));
        let data = json!({ "reason": "kb", "kb_articles": articles, "kb_scores": [4.0, 3.0] });
        s.push(c as i64 + 1, EventKind::AutoReplied, Some(c), None, data);
    }
    s.push(100, EventKind::Resolved, Some(11), None, json!({ "l0": "helped", "kb_article": "refund" }));
    s.push(3700, EventKind::Resolved, Some(12), None, json!({ "l0": "no_reply", "kb_article": "invoice" }));
    let data = json!({ "cause": "HumanRequested", "l0": "handed_off", "kb_article": "refund", "tier": "L1" });
    s.push(200, EventKind::Escalated, Some(13), None, data);
    s
}

#[tokio::test]
async fn the_l0_bots_deflection_and_articles_come_back_from_the_stream() {
    let t0 = two_days_ago();
    let s = l0_scenario(t0);
    let (server, _bus) = bus_with(&s.events).await;
    let now = DateTime::from_timestamp(t0 + 2 * WINDOW, 0).unwrap();
    let nats = BusConfig::for_url(server.url());
    let out = stats::run(&nats, &args(t0, stats::Format::Json), now).await.expect("stats");
    let json: Value = serde_json::from_str(&out).expect("JSON");
    let total = &json["report"]["total"];
    assert_eq!(total["l0_answered"], 4, "{total}");
    assert_eq!((total["l0_helped"].as_u64(), total["l0_no_reply"].as_u64()), (Some(1), Some(1)));
    assert_eq!(total["l0_handed_off"], 1);
    assert_eq!(total["l0_deflection"], json!(0.5), "helped and no reply of 4 answered");
    assert_eq!(total["l0_confirmed"], json!(0.25));
    assert_eq!(total["l0_handoff_rate"], json!(0.25));
    assert_eq!(json["report"]["groups"]["billing"]["l0_answered"], 4);
    let refund = &json["report"]["kb_articles"]["refund"];
    assert_eq!(
        (refund["shown"].as_u64(), refund["helped"].as_u64(), refund["handed_off"].as_u64()),
        (Some(4), Some(1), Some(1))
    );

    let table = stats::run(&nats, &args(t0, stats::Format::Table), now).await.expect("stats");
    let row = |name: &str| table.lines().find(|l| l.starts_with(name)).unwrap_or_else(|| panic!("{name}: {table}"));
    assert!(row("L0 answered").ends_with('4'), "{table}");
    assert!(row("L0 deflection").contains("50.0%"), "{table}");
    assert!(row("L0 confirmed helpful").contains("25.0%"), "{table}");
    assert!(row("L0 hand-off rate").contains("25.0%"), "{table}");
    let articles: Vec<&str> =
        table.lines().skip_while(|l| !l.starts_with("L0 bot's articles")).skip(2).take(3).collect();
    let first: Vec<&str> = articles[0].split_whitespace().collect();
    assert_eq!(first, ["refund", "4", "1", "1", "25.0%"], "{table}");
    assert!(articles[1].starts_with("invoice"), "{table}");

    // Without the bot, the table has no L0 rows and no article table (old outputs unchanged).
    let plain =
        stats::run(&nats, &stats::Args { by: GroupBy::None, ..args(t0 + 10 * WINDOW, stats::Format::Table) }, now)
            .await
            .expect("stats");
    assert!(!plain.contains("L0 "), "{plain}");
}
