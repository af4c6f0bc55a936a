//! Reloading the configuration without a restart: `SIGHUP` (`systemctl reload switchboard`)
//! re-reads the file the daemon started with. An invalid file changes nothing and is reported
//! (the log names file, key and reason; `/readyz` shows the last reload; the metric
//! `switchboard_config_reload_total{result}` counts). A valid one:
//! - `[routing]` (rules, team settings, hours, SLA targets, agents, queue notices, surveys)
//!   applies live: every routing group's leader journals it and every router of the group
//!   switches at that journal entry. The teams and `routing.groups` must stay as they are (the
//!   queues are kept per team): a file that changes them is refused as a whole.
//! - `[channels.webhook]`: sources (added, removed, secrets rotated, outbound URLs),
//!   `max_body_bytes` and `timestamp_tolerance_secs` apply to the next request. Every reload
//!   reads the sources' secrets again, so a rotated secret file applies even when the
//!   configuration file did not change; a secret that cannot be read refuses the reload.
//! - `[api.tokens]`: tokens added, removed, re-read from their files (rotated) or given another
//!   role apply to the next request; a token that cannot be used refuses the reload.
//! - every other section that changed (channels one by one, `channels.telegram` say) needs a
//!   restart, and the log names each one.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use sd_notify::NotifyState;
use switchboard_routing::RoutingConfig;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;
use tracing::{error, info, warn};

use crate::channels::{Reconfigure, Reconfigured};
use crate::config::Config;
pub use crate::http::LastReload;

/// Sections applied while running (the knowledge base folder is re-read by its own watcher).
const LIVE: [&str; 1] = ["routing"];

/// What became of reloads, by result: applied, invalid (the file), refused (valid, but not
/// applicable without a restart).
static COUNTS: [AtomicU64; 3] = [AtomicU64::new(0), AtomicU64::new(0), AtomicU64::new(0)];
const RESULTS: [&str; 3] = ["applied", "invalid", "refused"];

/// `switchboard_config_reload_total{result}` in the OpenMetrics text format.
pub fn exposition() -> String {
    let mut out = String::from(
        "# HELP switchboard_config_reload_total Configuration reloads (SIGHUP) by result.\n\
         # TYPE switchboard_config_reload_total counter\n",
    );
    for (result, count) in RESULTS.iter().zip(&COUNTS) {
        out.push_str(&format!(
            "switchboard_config_reload_total{{result=\"{result}\"}} {}\n",
            count.load(Ordering::Relaxed)
        ));
    }
    out
}

/// Re-reads the configuration on `SIGHUP` and hands the routing section to the routers.
pub struct Reloader {
    running: Config,
    routing: watch::Sender<Arc<RoutingConfig>>,
    last: LastReload,
    /// What running components apply themselves, by key (`channels.webhook`, `api.tokens`).
    parts: Vec<(String, LivePart)>,
}

/// Reads a reloaded configuration for one running component (its secrets too) and returns how
/// to apply it (what it changed, relative to its key, and what still needs a restart), or why it
/// cannot apply: nothing changes until the returned step runs.
type LivePart = Box<dyn Fn(&Config) -> Result<Box<dyn FnOnce() -> Reconfigured + Send>, String> + Send + Sync>;

/// What one reload did.
#[derive(Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Applied; with the changed sections that need a restart.
    Applied {
        /// Changed sections applied live.
        live: Vec<String>,
        /// Changed sections that apply only after a restart.
        restart: Vec<String>,
    },
    /// The file is invalid: nothing changed.
    Invalid(String),
    /// Valid, but it cannot apply without a restart: nothing changed.
    Refused(String),
}

impl Reloader {
    /// A reloader for the daemon running `running`; the routers follow the returned receiver.
    pub fn new(running: Config, last: LastReload) -> (Reloader, watch::Receiver<Arc<RoutingConfig>>) {
        let (routing, updates) = watch::channel(Arc::new(running.routing.clone()));
        (Reloader { running, routing, last, parts: Vec::new() }, updates)
    }

    /// Lets reloads replace the API's tokens (`[api.tokens]`) while running.
    pub fn with_tokens(mut self, tokens: crate::api::Tokens) -> Reloader {
        let part: LivePart = Box::new(move |next| {
            let step = tokens.prepare(&next.api)?;
            Ok(Box::new(move || (step(), Vec::new())))
        });
        self.parts.push((TOKENS.to_string(), part));
        self
    }

    /// Lets the running channel `name` apply its reloaded section itself.
    pub fn with_channel(mut self, name: &str, reconfigure: Reconfigure) -> Reloader {
        self.parts.push((format!("channels.{name}"), Box::new(move |next| reconfigure(&next.channels))));
        self
    }

    /// Reloads on every `SIGHUP` until `shutdown`.
    pub async fn run(mut self, shutdown: CancellationToken) {
        use tokio::signal::unix::{SignalKind, signal};
        let Ok(mut hup) = signal(SignalKind::hangup()) else {
            error!("cannot install the SIGHUP handler: reloading is off");
            return;
        };
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = hup.recv() => {}
            }
            info!("SIGHUP: reloading the configuration");
            // Only a ready service goes through systemd's reloading state; one still starting
            // stays starting.
            let tell = crate::notify::ready_sent();
            if tell {
                notify_reloading();
            }
            self.reload();
            if tell {
                let _ = sd_notify::notify(&[NotifyState::Ready]);
            }
        }
    }

    /// Reads the file again and applies what can apply; `Outcome` says what happened.
    pub fn reload(&mut self) -> Outcome {
        let Some(source) = self.running.source.clone() else {
            return self.finish(Outcome::Refused("the configuration was not read from a file".into()));
        };
        let next = match Config::load(&source.path) {
            Ok(next) => next,
            Err(e) => {
                error!(file = %e.file.display(), key = %e.key, reason = %e.reason, "configuration reload: invalid file, nothing changed");
                return self.finish(Outcome::Invalid(e.to_string()));
            }
        };
        let new_sections = next.source.as_ref().map(|s| s.sections.clone()).unwrap_or_default();
        let (old_parts, new_parts) = (parts(&source.sections), parts(&new_sections));
        let mut names: Vec<&String> = old_parts.keys().chain(new_parts.keys()).collect();
        names.sort();
        names.dedup();
        let changed: Vec<String> =
            names.into_iter().filter(|n| old_parts.get(*n) != new_parts.get(*n)).cloned().collect();
        let (mut live, mut restart): (Vec<String>, Vec<String>) = changed
            .into_iter()
            .filter(|n| !self.parts.iter().any(|(key, _)| key == n))
            .partition(|n| LIVE.contains(&n.as_str()));
        let routing = !live.is_empty();
        if routing && let Err(why) = routing_applies(&self.running, &next) {
            return self.refused(why);
        }
        // Every part reads what it needs first; only when all can apply does any of them.
        let mut steps = Vec::new();
        for (key, prepare) in &self.parts {
            match prepare(&next) {
                Ok(step) => steps.push((key.clone(), step)),
                // The reason names its key (`channels.webhook.sources.shop: ...`).
                Err(why) => return self.refused(why),
            }
        }
        if routing {
            self.routing.send_replace(Arc::new(next.routing.clone()));
        }
        for (key, step) in steps {
            let (applied, later) = step();
            live.extend(applied.iter().map(|k| format!("{key}.{k}")));
            restart.extend(later.iter().map(|k| format!("{key}.{k}")));
        }
        if !restart.is_empty() {
            warn!(sections = ?restart, "configuration reload: these sections changed and apply only after a restart");
        }
        info!(applied = ?live, "configuration reloaded");
        // What runs now is what is compared next time, restart-only sections included: a second
        // reload names only what changed since this one.
        self.running = next;
        self.finish(Outcome::Applied { live, restart })
    }

    /// A valid file that cannot apply: nothing changed.
    fn refused(&self, why: String) -> Outcome {
        warn!(reason = %why, "configuration reload refused, nothing changed");
        self.finish(Outcome::Refused(why))
    }

    fn finish(&self, outcome: Outcome) -> Outcome {
        let now = chrono::Utc::now().format("%Y-%m-%dT%H:%M:%SZ");
        let (ix, said) = match &outcome {
            Outcome::Applied { live, restart } => {
                let mut said = match live.is_empty() {
                    true => format!("applied at {now}: nothing that applies live changed"),
                    false => format!("applied at {now}: {}", live.join(", ")),
                };
                if !restart.is_empty() {
                    said.push_str(&format!("; needs a restart: {}", restart.join(", ")));
                }
                (0, said)
            }
            Outcome::Invalid(why) => (1, format!("invalid at {now}, nothing changed: {why}")),
            Outcome::Refused(why) => (2, format!("refused at {now}, nothing changed: {why}")),
        };
        COUNTS[ix].fetch_add(1, Ordering::Relaxed);
        let _ = sd_notify::notify(&[NotifyState::Status(&format!("reload {said}"))]);
        self.last.set(said);
        outcome
    }
}

/// The key of the API's tokens, compared apart from the rest of `[api]`.
const TOKENS: &str = "api.tokens";

/// The file's sections as reloads compare them: each top-level table, except that every
/// channel under `[channels]` is its own (`channels.webhook`) and `api.tokens` is apart from
/// the rest of `[api]`, since they apply separately.
fn parts(
    sections: &serde_json::Map<String, serde_json::Value>,
) -> std::collections::BTreeMap<String, serde_json::Value> {
    let mut out = std::collections::BTreeMap::new();
    for (name, value) in sections {
        match (name.as_str(), value.as_object()) {
            ("channels", Some(channels)) => {
                out.extend(channels.iter().map(|(channel, v)| (format!("channels.{channel}"), v.clone())));
            }
            ("api", Some(api)) => {
                let mut rest = api.clone();
                if let Some(tokens) = rest.remove("tokens") {
                    out.insert(TOKENS.to_string(), tokens);
                }
                out.insert(name.clone(), rest.into());
            }
            _ => {
                out.insert(name.clone(), value.clone());
            }
        }
    }
    out
}

/// systemd ≥ 253 wants `RELOADING=1` with the monotonic time; older ones ignore both.
fn notify_reloading() {
    match NotifyState::monotonic_usec_now() {
        Ok(now) => {
            let _ = sd_notify::notify(&[NotifyState::Reloading, now]);
        }
        Err(_) => {
            let _ = sd_notify::notify(&[NotifyState::Reloading]);
        }
    }
}

/// Whether `next`'s routing section can replace `running`'s in every group: the same groups and
/// teams, and a configuration each group's router accepts.
fn routing_applies(running: &Config, next: &Config) -> Result<(), String> {
    let (old, new) = (&running.routing, &next.routing);
    let groups = |c: &RoutingConfig| serde_json::to_value(&c.groups).ok();
    if groups(old) != groups(new) {
        return Err("routing.groups changed: changing routing groups needs a restart".into());
    }
    let teams = |c: &RoutingConfig| c.teams.keys().cloned().collect::<Vec<_>>();
    if teams(old) != teams(new) {
        return Err(format!(
            "routing.teams: the teams differ from the running ones ({} now, {} in the file); changing teams needs a restart",
            teams(old).join(", "),
            teams(new).join(", ")
        ));
    }
    let layout = Arc::new(next.layout().map_err(|e| format!("routing.{}: {}", e.key, e.reason))?);
    for group in layout.names() {
        switchboard_router::Router::new(next.router_config(&layout, group))
            .map_err(|e| format!("routing (group {group}): {e}"))?;
    }
    Ok(())
}
