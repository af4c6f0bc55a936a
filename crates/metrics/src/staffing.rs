//! The staffing line: agents needed hour by hour for a first-response target, by Erlang C from
//! the arrivals and handle times measured in the window.
//!
//! Erlang C treats agents as servers taking one conversation at a time from one FIFO queue with
//! Poisson arrivals. Three measured figures bend the real process onto it:
//! - the target is for the first *reply*, while Erlang C answers for the *pickup*: the median
//!   time from an agent taking a conversation to their first reply comes off the target;
//! - the handle time is the contact's assignment to resolution (AHT);
//! - agents who hold several conversations at once (chat) count as that many places: the places
//!   Erlang C asks for are divided by the measured concurrency (conversation time held over
//!   busy time).

use serde::{Deserialize, Serialize};

use crate::dims::Ms;
use crate::fold::Metrics;

/// The share of first responses the staffing line plans to have within the target: the KPI
/// table checks the target on the 90th percentile.
pub const STAFFING_SHARE: f64 = 0.9;

/// More places than this are not searched for: such a load is a data error, not a plan.
const MAX_PLACES: u32 = 100_000;

/// The probability that an arrival waits in an M/M/c queue with `places` servers and offered
/// load `load` (Erlangs); 1 when the places cannot keep up.
pub fn erlang_c(places: u32, load: f64) -> f64 {
    let c = f64::from(places);
    if load <= 0.0 {
        return 0.0;
    }
    if c <= load {
        return 1.0;
    }
    // Erlang B by its recurrence (stable for thousands of servers, unlike the factorial form),
    // then C from B.
    let mut b = 1.0;
    for k in 1..=places {
        b = load * b / (f64::from(k) + load * b);
    }
    c * b / (c - load * (1.0 - b))
}

/// The share of arrivals picked up within `within_secs` with `places` servers, offered load
/// `load` and mean handle time `aht_secs` (the service level).
pub fn answered_within(places: u32, load: f64, aht_secs: f64, within_secs: f64) -> f64 {
    let c = f64::from(places);
    if c <= load {
        return 0.0;
    }
    1.0 - erlang_c(places, load) * (-(c - load) * within_secs / aht_secs).exp()
}

/// The fewest places that pick up `share` of arrivals within `within_secs`; `None` when the
/// inputs are not a load (non-finite, or no handle time) or it would take over 100,000.
pub fn places_needed(load: f64, aht_secs: f64, within_secs: f64, share: f64) -> Option<u32> {
    if !(load.is_finite() && aht_secs.is_finite() && aht_secs > 0.0 && load >= 0.0) {
        return None;
    }
    if load == 0.0 {
        return Some(0);
    }
    let first = load.floor() as u32 + 1;
    (first..=MAX_PLACES).find(|&c| answered_within(c, load, aht_secs, within_secs) >= share)
}

/// One hour of the day (UTC) in the staffing line.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StaffingHour {
    /// The hour of the day, UTC (0–23).
    pub hour: u8,
    /// Mean contacts per hour arriving in this hour of the day over the window.
    pub arrivals_per_hour: f64,
    /// Arrivals × AHT (Erlangs).
    pub offered_load_erlangs: f64,
    /// Agents needed: Erlang C's places over the measured concurrency, rounded up.
    pub agents: u32,
}

/// Agents needed hour by hour for [`STAFFING_SHARE`] of first responses within the target.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Staffing {
    /// The first-response target (seconds).
    pub target_secs: u64,
    /// The share of first responses planned within it.
    pub share: f64,
    /// The mean handle time used (seconds).
    pub aht_secs: f64,
    /// The median time from an agent taking a contact to their first reply (seconds), taken
    /// off the target for the queue's share of it.
    pub reply_after_pickup_secs: f64,
    /// Conversations an agent holds at once on average while busy (1 for one at a time).
    pub concurrency: f64,
    /// Each hour of the day the window covers.
    pub hours: Vec<StaffingHour>,
    /// The most agents any hour needs.
    pub peak_agents: u32,
}

/// The staffing line for `[start, end)`, with the window's AHT and concurrency; `None` without
/// a handle time (nothing resolved) or a window shorter than a minute.
pub(crate) fn staffing(
    m: &Metrics,
    (start, end): (Ms, Ms),
    target_secs: u64,
    aht_secs: Option<f64>,
    concurrency: f64,
) -> Option<Staffing> {
    let aht_secs = aht_secs.filter(|a| *a > 0.0)?;
    if end - start < 60_000 {
        return None;
    }
    let mut arrivals = [0u64; 24];
    let mut pickup_to_reply = Vec::new();
    for c in m.conversations.values() {
        for k in c.contacts.iter().filter(|k| k.start >= start && k.start < end) {
            arrivals[hour_of_day(k.start)] += 1;
            if let (Some(assigned), Some((replied, _))) = (k.assigned_at, &k.first_response) {
                pickup_to_reply.push((replied - assigned).max(0));
            }
        }
    }
    pickup_to_reply.sort_unstable();
    let reply_after_pickup_secs = pickup_to_reply.get(pickup_to_reply.len() / 2).map_or(0.0, |ms| *ms as f64 / 1000.0);
    let within = (target_secs as f64 - reply_after_pickup_secs).max(0.0);
    let exposure = exposure_by_hour(start, end);
    let concurrency = if concurrency.is_finite() { concurrency.max(1.0) } else { 1.0 };
    let hours: Vec<StaffingHour> = (0..24)
        .filter(|&h| exposure[h] > 0.0)
        .map(|h| {
            let arrivals_per_hour = arrivals[h] as f64 / exposure[h];
            let load = arrivals_per_hour * aht_secs / 3600.0;
            let places = places_needed(load, aht_secs, within, STAFFING_SHARE).unwrap_or(MAX_PLACES);
            StaffingHour {
                hour: h as u8,
                arrivals_per_hour,
                offered_load_erlangs: load,
                agents: (f64::from(places) / concurrency).ceil() as u32,
            }
        })
        .collect();
    let peak_agents = hours.iter().map(|h| h.agents).max().unwrap_or(0);
    Some(Staffing {
        target_secs,
        share: STAFFING_SHARE,
        aht_secs,
        reply_after_pickup_secs,
        concurrency,
        hours,
        peak_agents,
    })
}

fn hour_of_day(ms: Ms) -> usize {
    (ms.div_euclid(3_600_000).rem_euclid(24)) as usize
}

/// How many hours of each hour of the day `[start, end)` covers (fractions at the edges).
fn exposure_by_hour(start: Ms, end: Ms) -> [f64; 24] {
    let mut out = [0.0; 24];
    let mut t = start;
    while t < end {
        let next = ((t.div_euclid(3_600_000) + 1) * 3_600_000).min(end);
        out[hour_of_day(t)] += (next - t) as f64 / 3_600_000.0;
        t = next;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn erlang_c_and_the_service_level_match_published_values() {
        // M/M/1: the utilisation; M/M/2 at 1 Erlang: 1/3; 10 servers at 8 Erlangs: 0.4092.
        assert!((erlang_c(1, 0.5) - 0.5).abs() < 1e-12);
        assert!((erlang_c(2, 1.0) - 1.0 / 3.0).abs() < 1e-12);
        assert!((erlang_c(10, 8.0) - 0.4092).abs() < 1e-4);
        // The call-centre textbook case: 100 calls in 30 min at 180 s AHT is 10 Erlangs; 14
        // agents answer 89% within 20 s, 13 agents 79%.
        assert!(
            (answered_within(14, 10.0, 180.0, 20.0) - 0.8884).abs() < 1e-3,
            "{}",
            answered_within(14, 10.0, 180.0, 20.0)
        );
        assert_eq!(places_needed(10.0, 180.0, 20.0, 0.8), Some(14));
        // Too few places never keep up; no load needs nobody; nonsense is refused.
        assert_eq!((erlang_c(3, 3.0), answered_within(3, 3.0, 60.0, 10.0)), (1.0, 0.0));
        assert_eq!(places_needed(0.0, 60.0, 10.0, 0.9), Some(0));
        assert_eq!(places_needed(f64::NAN, 60.0, 10.0, 0.9), None);
        // Stable far beyond where factorials overflow.
        let big = places_needed(2000.0, 300.0, 20.0, 0.9).unwrap();
        assert!((2000..2100).contains(&big), "{big}");
    }

    #[test]
    fn exposure_counts_the_hours_of_the_day_a_window_covers() {
        let h = 3_600_000;
        let e = exposure_by_hour(0, 48 * h);
        assert!(e.iter().all(|x| (*x - 2.0).abs() < 1e-12));
        let e = exposure_by_hour(10 * h + h / 2, 12 * h);
        assert_eq!((e[10], e[11], e[12]), (0.5, 1.0, 0.0));
    }
}
