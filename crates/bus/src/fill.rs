//! How full each stream, bucket and object store is: for `/readyz`, the `/metrics` gauges and a
//! warning in the log before a budget is reached.

use std::fmt::Write as _;
use std::sync::RwLock;
use std::time::Duration;

use serde::Serialize;
use tokio_util::sync::CancellationToken;
use tracing::warn;

use crate::{Bus, BusError};

/// Share of its budget above which a store is reported as nearly full.
pub const NEARLY_FULL: f64 = 0.9;

/// How often [`Bus::watch_fill`] refreshes the figures.
pub const FILL_REFRESH: Duration = Duration::from_secs(15);

/// The figures last read, for the `/metrics` scrape (which has no bus handle of its own).
static LAST: RwLock<Vec<Fill>> = RwLock::new(Vec::new());

/// One stream, bucket or object store: what it holds against its budget.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Fill {
    /// The contract's name (`SB_INBOUND`, `sb_uploads`, `sb_attachments`).
    pub name: String,
    /// `stream`, `bucket` or `object_store`.
    pub kind: &'static str,
    /// Bytes stored.
    pub bytes: u64,
    /// The budget in bytes (0 when the server reports none: a store set up by an older version).
    pub max_bytes: u64,
    /// Messages stored (object stores: chunks plus one per object).
    pub messages: u64,
}

impl Fill {
    /// Share of the budget in use, 0 to 1 (0 without a budget).
    pub fn ratio(&self) -> f64 {
        if self.max_bytes == 0 { 0.0 } else { self.bytes as f64 / self.max_bytes as f64 }
    }

    /// Whether it is over [`NEARLY_FULL`] of its budget.
    pub fn nearly_full(&self) -> bool {
        self.ratio() >= NEARLY_FULL
    }

    /// One line for people, e.g. `3.2 MiB of 512 MiB (1%)`, starting `nearly full: ` over
    /// [`NEARLY_FULL`].
    pub fn describe(&self) -> String {
        let mib = |b: u64| b as f64 / (1u64 << 20) as f64;
        let line = if self.max_bytes == 0 {
            format!("{:.1} MiB, no budget", mib(self.bytes))
        } else {
            format!("{:.1} MiB of {:.0} MiB ({:.0}%)", mib(self.bytes), mib(self.max_bytes), self.ratio() * 100.0)
        };
        if self.nearly_full() { format!("nearly full: {line}") } else { line }
    }
}

impl Bus {
    /// Reads the fill of every stream, bucket and object store of the contract (one request
    /// each); also what the next `/metrics` scrape shows.
    pub async fn fill_report(&self) -> Result<Vec<Fill>, BusError> {
        let mut out = Vec::new();
        for (kind, name) in crate::limits::budgeted() {
            let stream = kind.backing_stream(name);
            let info = async {
                let mut handle = self.jetstream().get_stream(&stream).await.map_err(|e| e.to_string())?;
                handle.info().await.cloned().map_err(|e| e.to_string())
            };
            let info = info.await.map_err(|e| BusError::Storage { what: stream.clone(), source: e.into() })?;
            out.push(Fill {
                name: name.to_string(),
                kind: kind.label(),
                bytes: info.state.bytes,
                max_bytes: u64::try_from(info.config.max_bytes).unwrap_or(0),
                messages: info.state.messages,
            });
        }
        *LAST.write().expect("fill lock") = out.clone();
        Ok(out)
    }

    /// Refreshes the figures every [`FILL_REFRESH`] until `stop`, and warns (once per crossing)
    /// when a store passes [`NEARLY_FULL`] of its budget.
    pub async fn watch_fill(&self, stop: CancellationToken) {
        let mut warned = std::collections::BTreeSet::new();
        let mut tick = tokio::time::interval(FILL_REFRESH);
        while tokio::select! { _ = stop.cancelled() => false, _ = tick.tick() => true } {
            match self.fill_report().await {
                Ok(fills) => {
                    for f in fills {
                        if f.nearly_full() && warned.insert(f.name.clone()) {
                            warn!(store = %f.name, bytes = f.bytes, max_bytes = f.max_bytes, "storage nearly full");
                        } else if !f.nearly_full() {
                            warned.remove(&f.name);
                        }
                    }
                }
                Err(e) => warn!(error = %e, "storage fill not read"),
            }
        }
    }
}

/// One gauge of the exposition: its name, help text and value per store.
type Gauge = (&'static str, &'static str, fn(&Fill) -> u64);

/// The last figures as OpenMetrics gauges `switchboard_stream_bytes{stream,kind}`,
/// `switchboard_stream_max_bytes{stream,kind}` and `switchboard_stream_messages{stream,kind}`
/// (no `# EOF`: the caller appends to its own exposition).
pub fn exposition() -> String {
    let fills = LAST.read().expect("fill lock").clone();
    let mut out = String::new();
    let gauges: [Gauge; 3] = [
        ("switchboard_stream_bytes", "Bytes stored in a stream, key-value bucket or object store.", |f| f.bytes),
        ("switchboard_stream_max_bytes", "Byte budget of a stream, key-value bucket or object store.", |f| f.max_bytes),
        ("switchboard_stream_messages", "Messages stored in a stream, key-value bucket or object store.", |f| {
            f.messages
        }),
    ];
    for (metric, help, value) in gauges {
        let _ = writeln!(out, "# HELP {metric} {help}\n# TYPE {metric} gauge");
        for f in &fills {
            let _ = writeln!(out, "{metric}{{stream=\"{}\",kind=\"{}\"}} {}", f.name, f.kind, value(f));
        }
    }
    out
}
