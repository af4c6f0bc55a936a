//! Support KPIs from Switchboard's event stream, and their Prometheus exposition. Pure: no I/O,
//! no clock; time comes with the events.
//!
//! [`Metrics`] folds `event/1` events into per-conversation and per-agent facts, one event id
//! once, and is serialisable so a daemon can persist it and continue. [`Report::compute`] turns
//! the facts into KPIs over a time window, cut by channel, team, tier, priority or agent:
//!
//! - **FRT** (first response time): the first agent reply minus the customer's first message of
//!   the contact (an opening or a reopening); mean, p50, p90 and the share within a target.
//! - **AHT** (handle time): from the contact's first assignment to its resolution.
//! - **FCR**: the share of resolved conversations with no reopen, no transfer and no escalation.
//! - **Repeat contact rate**: reopenings per resolution.
//! - **Escalation and transfer rates**: the share of opened conversations escalated to a higher
//!   tier (by an agent, a time step or the customer asking the bot for a human) or transferred.
//! - **SLA compliance**: first responses within the conversation's deadline over those plus
//!   deadlines that passed first.
//! - **CSAT**: the share of 4 and 5 among 1-5 answers (`csat_received`, `data.score`).
//! - **NPS**: % promoters (9-10) minus % detractors (0-6) among 0-10 answers (`nps_received`),
//!   in points from -100 to 100.
//! - **CES**: the mean of 1-7 answers (`ces_received`).
//! - **Backlog**: conversations waiting now per tier, team, priority and channel; unanswered
//!   ones by age; arrival and resolution rates and the offered load as a forecast.
//! - **Staffing**: agents needed hour by hour for 90% of first responses within the target, by
//!   Erlang C from the measured arrivals, handle time and concurrency ([`Staffing`]).
//! - **L0 deflection**: of the conversations the knowledge-base bot answered, the share resolved
//!   at L0 (the customer said it helped, or never answered), the confirmed share (helped) and the
//!   hand-off rate, per team and per article shown.
//! - **Occupancy**: per agent, time logged in while holding at least one conversation over time
//!   logged in.
//!
//! [`Report::from_events`] recomputes the same numbers from a slice of events. [`exposition`]
//! encodes cumulative counters, gauges and histograms in the Prometheus text format.
//! [`hourly`] computes the KPIs hour by hour and [`Page`] renders them as a self-contained HTML
//! report with SVG charts (`simulate --report`, `stats --report`).

mod dims;
mod fold;
mod hourly;
mod html;
mod l0;
mod prom;
mod replies;
mod report;
mod staffing;
mod svg;
mod table;
mod totals;

pub use dims::{Dims, GroupBy, Ms, Routing, UNKNOWN, priority_class};
pub use fold::{Agent, Contact, Conversation, Metrics, Phase, Resolution, SurveyAnswer};
pub use hourly::{Hourly, Points, charts, hourly, targets_line};
pub use html::Page;
pub use l0::{ARTICLE_CAP, ArticleCounts, Articles, L0Counts, L0Fact, L0Step, L0Totals, OTHER_ARTICLE};
pub use prom::{ExpositionError, exposition, exposition_with_target};
pub use report::{AGE_BUCKETS, AgentKpis, Backlog, Forecast, Kpis, Query, Report, backlog};
pub use staffing::{STAFFING_SHARE, Staffing, StaffingHour, answered_within, erlang_c, places_needed};
pub use svg::{Chart, escape};
pub use table::{TOP_ARTICLES, Targets, article_cells, kpi_cells, render_grid, render_table};
pub use totals::{AHT_BUCKETS, AgentCounts, Counts, FRT_BUCKETS, Hist, Totals};
