//! Conversions between the engine's millisecond timestamps and chrono.

use chrono::{DateTime, Utc};

use crate::model::Ms;

/// Milliseconds since the epoch as a UTC time (clamped to chrono's range).
pub(crate) fn to_utc(ms: Ms) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(ms).unwrap_or(DateTime::<Utc>::MIN_UTC)
}
