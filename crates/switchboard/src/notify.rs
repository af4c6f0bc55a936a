//! The service manager's notifications (systemd `Type=notify`, `sd_notify(3)`): `READY=1` once the
//! bus is up and every component has started, `WATCHDOG=1` at half of `WatchdogSec` only while the
//! bus is connected and no component has stopped, `STATUS=` with a one-line summary whenever it
//! changes, and `STOPPING=1` when shutdown begins. Without `NOTIFY_SOCKET` in the environment
//! (not run by systemd) nothing runs at all.

use std::time::Duration;

use sd_notify::NotifyState;
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

use crate::http::{Readiness, ReadinessReport};

/// Set once `READY=1` was sent: a reload may only say `RELOADING=1` ... `READY=1` after it.
static READY_SENT: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Whether the service manager was told the process is ready.
pub fn ready_sent() -> bool {
    READY_SENT.load(std::sync::atomic::Ordering::Relaxed)
}

/// How often readiness is looked at when systemd asked for no watchdog.
const LOOK_EVERY: Duration = Duration::from_secs(2);

/// Whether the process has started: the bus is ready and no component is still starting or has
/// stopped (a degraded one, e.g. a provider that does not answer, has started: a restart would not
/// cure it).
fn started(report: &ReadinessReport) -> bool {
    report.bus == "ready" && report.components.values().all(|s| s == "ready" || status(s).starts_with("degraded"))
}

/// Whether the process is alive for the watchdog: the bus connected and no component stopped.
fn alive(report: &ReadinessReport) -> bool {
    report.bus == "ready" && !report.components.values().any(|s| status(s).starts_with("stopped"))
}

fn status(value: &serde_json::Value) -> &str {
    value.as_str().unwrap_or_default()
}

/// The one-line `STATUS=`: `ready: 6 components` or `not ready: bus disconnected; telegram
/// degraded: ...`.
fn summary(report: &ReadinessReport) -> String {
    let problems = report.problems();
    if problems.is_empty() {
        return format!("ready: NATS connected, {} components ready", report.components.len());
    }
    let said: Vec<String> = problems.iter().map(|(name, state)| format!("{name} {state}")).collect();
    let line = format!("not ready: {}", said.join("; "));
    // One line, bounded: a long reason must not make the datagram unwieldy.
    line.replace('\n', " ").chars().take(400).collect()
}

fn send(states: &[NotifyState]) {
    if let Err(e) = sd_notify::notify(states) {
        warn!(error = %e, "cannot notify the service manager");
    }
}

/// Tells the service manager how the process is until `shutdown`, then that it is stopping.
pub async fn run(readiness: Readiness, shutdown: CancellationToken) {
    if std::env::var_os("NOTIFY_SOCKET").is_none() {
        return;
    }
    let watchdog = sd_notify::watchdog_enabled();
    let every = watchdog.map(|w| w / 2).unwrap_or(LOOK_EVERY);
    info!(watchdog_ms = watchdog.map(|w| w.as_millis() as u64), "notifying the service manager");
    let (mut ready_sent, mut last_status) = (false, String::new());
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => break,
            _ = tick.tick() => {}
        }
        let report = readiness.check().await;
        let line = summary(&report);
        let mut states = Vec::new();
        if line != last_status {
            states.push(NotifyState::Status(&line));
        }
        if !ready_sent && started(&report) {
            states.push(NotifyState::Ready);
        }
        // The watchdog is only fed once started: until then systemd's start timeout applies.
        let feed = watchdog.is_some() && (ready_sent || started(&report)) && alive(&report);
        if feed {
            states.push(NotifyState::Watchdog);
        } else if watchdog.is_some() && ready_sent {
            debug!(status = %line, "watchdog not fed");
        }
        if !states.is_empty() {
            send(&states);
        }
        ready_sent |= started(&report);
        READY_SENT.store(ready_sent, std::sync::atomic::Ordering::Relaxed);
        last_status = line;
    }
    send(&[NotifyState::Stopping, NotifyState::Status("stopping: finishing requests and handing back work")]);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report(bus: &'static str, components: &[(&str, &str)]) -> ReadinessReport {
        let components: serde_json::Map<String, serde_json::Value> =
            components.iter().map(|(n, s)| (n.to_string(), serde_json::json!(s))).collect();
        let ready = bus == "ready" && components.values().all(|s| s == "ready");
        ReadinessReport { ready, bus, components }
    }

    #[test]
    fn started_alive_and_the_status_line_follow_the_readiness_report() {
        let up = report("ready", &[("webhook", "ready"), ("router", "ready")]);
        assert!(started(&up) && alive(&up));
        assert_eq!(summary(&up), "ready: NATS connected, 2 components ready");
        let degraded = report("ready", &[("telegram", "degraded: api.telegram.org unreachable")]);
        assert!(started(&degraded) && alive(&degraded), "a provider's outage is no reason to restart");
        assert_eq!(summary(&degraded), "not ready: telegram degraded: api.telegram.org unreachable");
        let starting = report("ready", &[("router", "starting")]);
        assert!(!started(&starting) && alive(&starting));
        let stopped = report("ready", &[("router", "stopped: journal fenced")]);
        assert!(!started(&stopped) && !alive(&stopped));
        let down = report("disconnected", &[("router", "ready")]);
        assert!(!started(&down) && !alive(&down));
        assert_eq!(summary(&down), "not ready: bus disconnected");
    }
}
