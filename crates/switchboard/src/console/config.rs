//! The `[console]` section: the supervisor's console and the targets its KPIs are checked against.

use serde::Deserialize;

/// The `[console]` section.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ConsoleConfig {
    /// Whether the daemon serves `/console` and its `/v1/console/*` routes.
    pub enabled: bool,
    /// Live streams (`GET /v1/console/stream`) open at once in this process; more get `503`.
    pub max_streams: usize,
    /// Milliseconds between checks of the queue and agents when no event woke the stream.
    pub refresh_ms: u64,
    /// Seconds between two `kpis` events on a stream.
    pub kpi_secs: u64,
    /// Hours of history the KPI charts show.
    pub chart_hours: u32,
    /// Target for the 90th percentile of first response times, seconds.
    pub frt_p90_target_secs: u64,
    /// Target share of first responses within the SLA (0 to 1).
    pub sla_target: f64,
    /// Target first-contact resolution share (0 to 1).
    pub fcr_target: f64,
    /// Target CSAT share (0 to 1).
    pub csat_target: f64,
    /// Most conversations a team should have waiting at once.
    pub backlog_target: u64,
}

impl Default for ConsoleConfig {
    fn default() -> Self {
        ConsoleConfig {
            enabled: true,
            max_streams: 16,
            refresh_ms: 3000,
            kpi_secs: 30,
            chart_hours: 8,
            frt_p90_target_secs: 7200,
            sla_target: 0.9,
            fcr_target: 0.85,
            csat_target: 0.9,
            backlog_target: 20,
        }
    }
}

impl ConsoleConfig {
    /// Checks the values: a key relative to `console` and the reason.
    pub fn validate(&self) -> Result<(), (String, String)> {
        if !(1..=1024).contains(&self.max_streams) {
            return Err(("max_streams".into(), "must be 1 to 1024".into()));
        }
        if !(500..=60_000).contains(&self.refresh_ms) {
            return Err(("refresh_ms".into(), "must be 500 to 60000".into()));
        }
        if !(1..=3600).contains(&self.kpi_secs) {
            return Err(("kpi_secs".into(), "must be 1 to 3600".into()));
        }
        if !(1..=48).contains(&self.chart_hours) {
            return Err(("chart_hours".into(), "must be 1 to 48".into()));
        }
        for (key, share) in
            [("sla_target", self.sla_target), ("fcr_target", self.fcr_target), ("csat_target", self.csat_target)]
        {
            if !(0.0..=1.0).contains(&share) {
                return Err((key.into(), "must be a share from 0 to 1".into()));
            }
        }
        Ok(())
    }
}
