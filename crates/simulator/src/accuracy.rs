//! How good the queue notice's estimate is (`docs/queue.md`): for every conversation that had to
//! wait, the estimate of the notice it got on arrival against the wait it then had (arrival →
//! first assignment).

use serde::{Deserialize, Serialize};

/// The estimate against what happened, over a run.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Accuracy {
    /// Conversations told a place on arrival and later given to an agent.
    pub conversations: u64,
    /// Of them, those told that nobody was online (no estimate); left out of the figures below.
    pub without_estimate: u64,
    /// Told a place but never given to an agent in the simulated period.
    pub never_assigned: u64,
    /// Mean of |estimate − actual wait|, seconds.
    pub mean_absolute_error_secs: Option<f64>,
    /// Share whose actual wait was within ±50% of the estimate (between half and one and a half
    /// times what they were told).
    pub within_half: Option<f64>,
    /// Mean estimate, seconds (for scale).
    pub mean_predicted_secs: Option<f64>,
    /// Mean actual wait, seconds.
    pub mean_actual_secs: Option<f64>,
}

impl Accuracy {
    /// The figures from (estimate, actual wait) pairs in seconds; `never_assigned` as counted.
    pub fn from_waits(waits: &[(Option<f64>, f64)], never_assigned: u64) -> Accuracy {
        let estimated: Vec<(f64, f64)> = waits.iter().filter_map(|&(p, a)| p.map(|p| (p, a))).collect();
        let n = estimated.len() as f64;
        let mean = |f: &dyn Fn(&(f64, f64)) -> f64| (n > 0.0).then(|| estimated.iter().map(f).sum::<f64>() / n);
        Accuracy {
            conversations: waits.len() as u64,
            without_estimate: (waits.len() - estimated.len()) as u64,
            never_assigned,
            mean_absolute_error_secs: mean(&|(p, a)| (p - a).abs()),
            within_half: mean(&|(p, a)| if (a - p).abs() <= 0.5 * p { 1.0 } else { 0.0 }),
            mean_predicted_secs: mean(&|(p, _)| *p),
            mean_actual_secs: mean(&|(_, a)| *a),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn figures_of_a_hand_made_case() {
        // Told 100 s, waited 140 (error 40, within half); told 200, waited 50 (150, outside);
        // told 60, waited 90 (30, within: 90 <= 1.5 × 60); told nothing (nobody online), waited 500.
        let waits = [(Some(100.0), 140.0), (Some(200.0), 50.0), (Some(60.0), 90.0), (None, 500.0)];
        let a = Accuracy::from_waits(&waits, 2);
        assert_eq!((a.conversations, a.without_estimate, a.never_assigned), (4, 1, 2));
        assert_eq!(a.mean_absolute_error_secs, Some((40.0 + 150.0 + 30.0) / 3.0));
        assert_eq!(a.within_half, Some(2.0 / 3.0));
        assert_eq!(a.mean_predicted_secs, Some(120.0));
        assert_eq!(a.mean_actual_secs, Some(280.0 / 3.0));
        assert_eq!(Accuracy::from_waits(&[], 0).mean_absolute_error_secs, None);
    }
}
