//! Business hours of a team: weekly opening ranges and holidays in the team's timezone, asked
//! whether they are open at an instant and when they next open. Pure: the instant is passed in.

use std::collections::BTreeSet;

use chrono::{DateTime, Datelike, NaiveDate, NaiveDateTime, NaiveTime, Offset, TimeDelta, TimeZone, Timelike, Utc};
use chrono_tz::Tz;

use crate::config::BusinessHoursConfig;

/// Parses an IANA timezone name such as `Europe/Moscow` (exact spelling).
pub fn parse_timezone(name: &str) -> Result<chrono_tz::Tz, String> {
    name.parse::<chrono_tz::Tz>()
        .map_err(|_| format!("unknown timezone `{name}` (expected an IANA name such as `Europe/Berlin`)"))
}

/// Weekday keys in `num_days_from_monday` order; also the `time.weekday` values of rules.
pub(crate) const WEEKDAYS: [&str; 7] = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];

/// How far ahead [`BusinessHours::next_open`] looks before giving up.
const HORIZON_DAYS: i64 = 14;

/// Minutes in a day: the exclusive end a range may have (`24:00`).
const DAY_MINUTES: u16 = 24 * 60;

/// Compiled opening hours: ranges in local minutes of the day, per weekday, plus closed dates.
#[derive(Debug, Clone)]
pub struct BusinessHours {
    tz: Tz,
    /// Sorted, non-overlapping `[start, end)` minute ranges, indexed by days from Monday.
    weekly: [Vec<(u16, u16)>; 7],
    holidays: BTreeSet<NaiveDate>,
}

impl BusinessHours {
    /// Compiles a configuration; the error names the bad piece (timezone, weekday, range, holiday).
    pub fn compile(cfg: &BusinessHoursConfig) -> Result<BusinessHours, String> {
        let tz = parse_timezone(&cfg.timezone)?;
        let mut weekly: [Vec<(u16, u16)>; 7] = Default::default();
        for (day, specs) in &cfg.weekly {
            let Some(ix) = WEEKDAYS.iter().position(|d| d == day) else {
                return Err(format!("weekly: unknown weekday `{day}` (expected one of {})", WEEKDAYS.join(", ")));
            };
            let mut ranges = Vec::with_capacity(specs.len());
            for spec in specs {
                let range = parse_range(spec).map_err(|e| format!("weekly.{day}: {e}"))?;
                ranges.push((range, spec.as_str()));
            }
            ranges.sort_unstable();
            for pair in ranges.windows(2) {
                let [((_, end_a), a), ((start_b, _), b)] = pair else { continue };
                if start_b < end_a {
                    return Err(format!("weekly.{day}: ranges `{a}` and `{b}` overlap"));
                }
            }
            weekly[ix] = ranges.into_iter().map(|(r, _)| r).collect();
        }
        // An empty schedule would close the team for good, which is never what a config means.
        if weekly.iter().all(Vec::is_empty) {
            return Err("weekly: no opening ranges on any day".to_string());
        }
        let mut holidays = BTreeSet::new();
        for h in &cfg.holidays {
            let date = NaiveDate::parse_from_str(h, "%Y-%m-%d")
                .map_err(|_| format!("holidays: `{h}` is not a date (YYYY-MM-DD)"))?;
            holidays.insert(date);
        }
        Ok(BusinessHours { tz, weekly, holidays })
    }

    /// The timezone the hours are in.
    pub fn timezone(&self) -> Tz {
        self.tz
    }

    /// Whether the team is open at `now` (ranges include their start and exclude their end).
    pub fn is_open(&self, now: DateTime<Utc>) -> bool {
        let Some(local) = local_time(self.tz, now) else { return false };
        if self.holidays.contains(&local.date()) {
            return false;
        }
        // Minute precision matches the `HH:MM` config: 17:59:59 is still open under `-18:00`.
        let minute = (local.hour() * 60 + local.minute()) as u16;
        let day = local.weekday().num_days_from_monday() as usize;
        self.weekly[day].iter().any(|&(start, end)| start <= minute && minute < end)
    }

    /// The first instant at or after `now` when the team is open (`now` itself if open), looking
    /// at most 14 days ahead. Handles DST: a range starting in a skipped hour opens when the clock
    /// jumps, and a repeated hour is open in both passes.
    pub fn next_open(&self, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
        if self.is_open(now) {
            return Some(now);
        }
        let limit = now.checked_add_signed(TimeDelta::days(HORIZON_DAYS)).unwrap_or(DateTime::<Utc>::MAX_UTC);
        // Closed turns to open only when the local clock reaches a range start (each real
        // instance of that wall time) or when it jumps at an offset change; checking each such
        // candidate in order finds the answer without scanning time.
        let mut candidates = self.offset_changes(now, limit);
        let first_day = local_time(self.tz, now)?.date();
        // The day before too: with a fall-back, a wall time of the previous local date can
        // still be ahead of `now`.
        let mut day = first_day.pred_opt().unwrap_or(first_day);
        for _ in 0..=HORIZON_DAYS + 1 {
            if !self.holidays.contains(&day) {
                for &(start, _) in &self.weekly[day.weekday().num_days_from_monday() as usize] {
                    let Some(time) = NaiveTime::from_hms_opt(u32::from(start / 60), u32::from(start % 60), 0) else {
                        continue;
                    };
                    // A start inside a DST gap has no instance; the offset change covers it.
                    let local = self.tz.from_local_datetime(&day.and_time(time));
                    candidates.extend(local.earliest().map(|t| t.with_timezone(&Utc)));
                    candidates.extend(local.latest().map(|t| t.with_timezone(&Utc)));
                }
            }
            let Some(next) = day.succ_opt() else { break };
            day = next;
        }
        candidates.sort_unstable();
        candidates.dedup();
        candidates.into_iter().filter(|t| *t >= now && *t <= limit).find(|t| self.is_open(*t))
    }

    /// Instants in `(from, to]` at which the zone's UTC offset changes, to the second.
    fn offset_changes(&self, from: DateTime<Utc>, to: DateTime<Utc>) -> Vec<DateTime<Utc>> {
        // Zones change offset at most a few times a year, never twice within this step.
        const STEP_SECS: i64 = 6 * 3600;
        let offset = |secs: i64| {
            DateTime::from_timestamp(secs, 0).map(|t| self.tz.offset_from_utc_datetime(&t.naive_utc()).fix())
        };
        let mut out = Vec::new();
        let (mut lo, end) = (from.timestamp(), to.timestamp());
        while lo < end {
            let hi = lo.saturating_add(STEP_SECS).min(end);
            let before = offset(lo);
            if before != offset(hi) {
                // Invariant: offset(a) == before, offset(b) != before.
                let (mut a, mut b) = (lo, hi);
                while b - a > 1 {
                    let mid = a + (b - a) / 2;
                    if offset(mid) == before {
                        a = mid;
                    } else {
                        b = mid;
                    }
                }
                out.extend(DateTime::from_timestamp(b, 0));
            }
            lo = hi;
        }
        out
    }
}

/// `t` as wall-clock time in `tz`; `None` at the very ends of chrono's range, where
/// `DateTime::with_timezone(..).hour()` and friends would panic.
pub(crate) fn local_time(tz: Tz, t: DateTime<Utc>) -> Option<NaiveDateTime> {
    t.naive_utc().checked_add_offset(tz.offset_from_utc_datetime(&t.naive_utc()).fix())
}

/// Parses `HH:MM-HH:MM` into `[start, end)` minutes of the day; the end may be `24:00`.
fn parse_range(spec: &str) -> Result<(u16, u16), String> {
    let bad = || format!("range `{spec}` is not HH:MM-HH:MM");
    let (start, end) = spec.split_once('-').ok_or_else(bad)?;
    let (start, end) = (parse_hhmm(start).ok_or_else(bad)?, parse_hhmm(end).ok_or_else(bad)?);
    if start >= DAY_MINUTES {
        return Err(bad());
    }
    if end <= start {
        return Err(format!("range `{spec}` must end after it starts"));
    }
    Ok((start, end))
}

/// Parses `HH:MM` (00:00-23:59, or 24:00) into minutes of the day.
fn parse_hhmm(s: &str) -> Option<u16> {
    let (h, m) = s.split_once(':')?;
    let two_digits = |p: &str| match *p.as_bytes() {
        [a @ b'0'..=b'9', b @ b'0'..=b'9'] => Some(u16::from(a - b'0') * 10 + u16::from(b - b'0')),
        _ => None,
    };
    let (h, m) = (two_digits(h)?, two_digits(m)?);
    match (h, m) {
        (0..=23, 0..=59) | (24, 0) => Some(h * 60 + m),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    /// Weekday key and its ranges, as in the config.
    type Weekly<'a> = &'a [(&'a str, &'a [&'a str])];

    fn hours(tz: &str, weekly: Weekly<'_>, holidays: &[&str]) -> Result<BusinessHours, String> {
        BusinessHours::compile(&BusinessHoursConfig {
            timezone: tz.to_string(),
            weekly: weekly
                .iter()
                .map(|(d, r)| (d.to_string(), r.iter().map(|s| s.to_string()).collect()))
                .collect::<BTreeMap<_, _>>(),
            holidays: holidays.iter().map(|s| s.to_string()).collect(),
        })
    }

    fn utc(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).expect("test instant").with_timezone(&Utc)
    }

    const OFFICE: Weekly<'static> = &[
        ("mon", &["09:00-13:00", "14:00-18:00"]),
        ("tue", &["09:00-13:00", "14:00-18:00"]),
        ("wed", &["09:00-13:00", "14:00-18:00"]),
        ("thu", &["09:00-13:00", "14:00-18:00"]),
        ("fri", &["09:00-13:00", "14:00-18:00"]),
        ("sat", &["10:00-14:00"]),
    ];

    /// (instant, open?, next opening) for `hours`.
    fn check(h: &BusinessHours, cases: &[(&str, bool, Option<&str>)]) {
        for (now, open, next) in cases {
            let now = utc(now);
            assert_eq!(h.is_open(now), *open, "is_open at {now}");
            assert_eq!(h.next_open(now), next.map(utc), "next_open at {now}");
            if let Some(next) = h.next_open(now) {
                assert!(h.is_open(next), "open at its next opening {next}");
            }
        }
    }

    #[test]
    fn weekdays_lunch_break_and_weekend_in_utc() {
        let h = hours("UTC", OFFICE, &[]).unwrap();
        // 2026-03-02 is a Monday.
        check(
            &h,
            &[
                ("2026-03-02T08:59:59Z", false, Some("2026-03-02T09:00:00Z")),
                ("2026-03-02T09:00:00Z", true, Some("2026-03-02T09:00:00Z")),
                ("2026-03-02T12:59:59Z", true, Some("2026-03-02T12:59:59Z")),
                // Lunch break.
                ("2026-03-02T13:00:00Z", false, Some("2026-03-02T14:00:00Z")),
                ("2026-03-02T13:30:00Z", false, Some("2026-03-02T14:00:00Z")),
                ("2026-03-02T17:59:00Z", true, Some("2026-03-02T17:59:00Z")),
                ("2026-03-02T18:00:00Z", false, Some("2026-03-03T09:00:00Z")),
                // Saturday has short hours, Sunday none.
                ("2026-03-06T18:30:00Z", false, Some("2026-03-07T10:00:00Z")),
                ("2026-03-07T11:00:00Z", true, Some("2026-03-07T11:00:00Z")),
                ("2026-03-07T14:00:00Z", false, Some("2026-03-09T09:00:00Z")),
                ("2026-03-08T12:00:00Z", false, Some("2026-03-09T09:00:00Z")),
            ],
        );
    }

    #[test]
    fn weekend_only_mon_to_fri() {
        let h = hours("UTC", &OFFICE[..5], &[]).unwrap();
        check(&h, &[("2026-03-06T18:30:00Z", false, Some("2026-03-09T09:00:00Z"))]);
    }

    #[test]
    fn holidays_close_all_day() {
        // Friday 2026-05-01 and Monday 2026-05-04 are holidays.
        let h = hours("UTC", &OFFICE[..5], &["2026-05-01", "2026-05-04"]).unwrap();
        check(
            &h,
            &[
                ("2026-04-30T17:00:00Z", true, Some("2026-04-30T17:00:00Z")),
                ("2026-04-30T19:00:00Z", false, Some("2026-05-05T09:00:00Z")),
                ("2026-05-01T10:00:00Z", false, Some("2026-05-05T09:00:00Z")),
                ("2026-05-04T10:00:00Z", false, Some("2026-05-05T09:00:00Z")),
            ],
        );
    }

    #[test]
    fn holiday_is_in_local_time() {
        let h = hours("Asia/Tokyo", &[("fri", &["00:00-24:00"]), ("sat", &["00:00-24:00"])], &["2026-05-01"]).unwrap();
        check(
            &h,
            &[
                // Thursday 23:00 UTC is already the holiday Friday in Tokyo (UTC+9), until Friday 15:00 UTC.
                ("2026-04-30T14:59:59Z", false, Some("2026-05-01T15:00:00Z")),
                ("2026-05-01T14:59:59Z", false, Some("2026-05-01T15:00:00Z")),
                ("2026-05-01T15:00:00Z", true, Some("2026-05-01T15:00:00Z")),
            ],
        );
    }

    #[test]
    fn timezone_other_than_utc() {
        // New York is UTC-4 in summer (EDT) and UTC-5 in winter (EST).
        let h = hours("America/New_York", &OFFICE[..5], &[]).unwrap();
        check(
            &h,
            &[
                ("2026-07-06T12:59:00Z", false, Some("2026-07-06T13:00:00Z")),
                ("2026-07-06T13:00:00Z", true, Some("2026-07-06T13:00:00Z")),
                ("2026-01-05T13:30:00Z", false, Some("2026-01-05T14:00:00Z")),
                // Friday 18:00 EDT, 22:00 UTC.
                ("2026-07-10T22:00:00Z", false, Some("2026-07-13T13:00:00Z")),
                // Friday 17:30 EDT, 21:30 UTC: open; Friday 20:30 EDT is Saturday in UTC.
                ("2026-07-10T21:30:00Z", true, Some("2026-07-10T21:30:00Z")),
                ("2026-07-11T00:30:00Z", false, Some("2026-07-13T13:00:00Z")),
            ],
        );
    }

    #[test]
    fn dst_spring_forward_in_berlin() {
        // 2026-03-29 (Sunday) 02:00 CET jumps to 03:00 CEST, at 01:00 UTC.
        let h = hours("Europe/Berlin", &[("sun", &["02:30-05:00"]), ("mon", &["09:00-18:00"])], &[]).unwrap();
        check(
            &h,
            &[
                // 01:30 CET: the range starts in the skipped hour, so it opens when the clock jumps.
                ("2026-03-29T00:30:00Z", false, Some("2026-03-29T01:00:00Z")),
                ("2026-03-29T01:00:00Z", true, Some("2026-03-29T01:00:00Z")),
                ("2026-03-29T02:59:59Z", true, Some("2026-03-29T02:59:59Z")),
                ("2026-03-29T03:00:00Z", false, Some("2026-03-30T07:00:00Z")),
                // Monday before the change: 09:00 CET is 08:00 UTC.
                ("2026-03-23T06:00:00Z", false, Some("2026-03-23T08:00:00Z")),
            ],
        );
        // A range entirely inside the skipped hour does not happen that day.
        let h = hours("Europe/Berlin", &[("sun", &["02:00-02:45"])], &[]).unwrap();
        check(&h, &[("2026-03-28T12:00:00Z", false, Some("2026-04-05T00:00:00Z"))]);
    }

    #[test]
    fn dst_fall_back_in_berlin() {
        // 2026-10-25 (Sunday) 03:00 CEST falls back to 02:00 CET, at 01:00 UTC.
        let h = hours("Europe/Berlin", &[("sun", &["02:15-02:45"])], &[]).unwrap();
        check(
            &h,
            &[
                ("2026-10-25T00:00:00Z", false, Some("2026-10-25T00:15:00Z")),
                // After the first pass of 02:15-02:45 (CEST), the second (CET) follows.
                ("2026-10-25T00:50:00Z", false, Some("2026-10-25T01:15:00Z")),
                ("2026-10-25T01:15:00Z", true, Some("2026-10-25T01:15:00Z")),
                ("2026-10-25T01:45:00Z", false, Some("2026-11-01T01:15:00Z")),
            ],
        );
        // Closed at 02:40 CEST, the clock falling back to 02:00 CET reopens the range.
        let h = hours("Europe/Berlin", &[("sun", &["01:00-02:30"])], &[]).unwrap();
        check(&h, &[("2026-10-25T00:40:00Z", false, Some("2026-10-25T01:00:00Z"))]);
    }

    #[test]
    fn next_open_agrees_with_a_minute_scan_around_dst() {
        let weekly: Weekly<'_> = &[
            ("sat", &["01:30-02:10", "02:40-03:20", "23:00-24:00"]),
            ("sun", &["00:00-00:30", "01:00-02:30", "02:45-03:05", "09:00-12:00"]),
            ("mon", &["08:00-17:00"]),
        ];
        // Fridays before each zone's changes (Lord Howe shifts by 30 minutes).
        let zones = [
            ("Europe/Berlin", ["2026-03-27T00:00:00Z", "2026-10-23T00:00:00Z"]),
            ("America/New_York", ["2026-03-06T00:00:00Z", "2026-10-30T00:00:00Z"]),
            ("Australia/Lord_Howe", ["2026-04-03T00:00:00Z", "2026-10-02T00:00:00Z"]),
        ];
        for (tz, fridays) in zones {
            let h = hours(tz, weekly, &[]).unwrap();
            for friday in fridays {
                let mut now = utc(friday);
                let end = now + TimeDelta::days(3);
                while now < end {
                    // Openings fall on whole minutes in these zones.
                    let mut t = now;
                    let brute = loop {
                        if h.is_open(t) {
                            break Some(t);
                        }
                        t = DateTime::from_timestamp((t.timestamp() / 60 + 1) * 60, 0).unwrap();
                        if t > now + TimeDelta::days(HORIZON_DAYS) {
                            break None;
                        }
                    };
                    assert_eq!(h.next_open(now), brute, "{tz} at {now}");
                    now += TimeDelta::seconds(31 * 60 + 13);
                }
            }
        }
    }

    #[test]
    fn gives_up_after_fourteen_days() {
        let mondays = |holidays: &[&str]| hours("UTC", &[("mon", &["09:00-10:00"])], holidays).unwrap();
        // Monday 2026-03-02 after hours; the next Monday is a holiday, the one after is 13d23h away.
        check(&mondays(&["2026-03-09"]), &[("2026-03-02T10:00:00Z", false, Some("2026-03-16T09:00:00Z"))]);
        // Two holiday Mondays: the third is three weeks away.
        check(&mondays(&["2026-03-09", "2026-03-16"]), &[("2026-03-02T10:00:00Z", false, None)]);
        // Exactly 14 days ahead is still found.
        check(
            &mondays(&["2026-03-02", "2026-03-09"]),
            &[("2026-03-02T09:00:00Z", false, Some("2026-03-16T09:00:00Z")), ("2026-03-02T08:59:59Z", false, None)],
        );
    }

    #[test]
    fn extreme_instants_do_not_panic() {
        let h = hours("Pacific/Kiritimati", OFFICE, &[]).unwrap();
        for t in [DateTime::<Utc>::MIN_UTC, DateTime::<Utc>::MAX_UTC, DateTime::UNIX_EPOCH] {
            let _ = h.is_open(t);
            let _ = h.next_open(t);
        }
    }

    #[test]
    fn compile_errors_name_the_bad_piece() {
        // (timezone, weekly, holidays, start of the error)
        let cases: &[(&str, Weekly<'_>, &[&str], &str)] = &[
            ("Mars/Olympus", OFFICE, &[], "unknown timezone `Mars/Olympus`"),
            ("", OFFICE, &[], "unknown timezone ``"),
            (
                "UTC",
                &[("monday", &["09:00-18:00"])],
                &[],
                "weekly: unknown weekday `monday` (expected one of mon, tue, wed, thu, fri, sat, sun)",
            ),
            ("UTC", &[("Mon", &["09:00-18:00"])], &[], "weekly: unknown weekday `Mon`"),
            ("UTC", &[("mon", &["9-18"])], &[], "weekly.mon: range `9-18` is not HH:MM-HH:MM"),
            ("UTC", &[("mon", &["9:00-18:00"])], &[], "weekly.mon: range `9:00-18:00` is not HH:MM-HH:MM"),
            ("UTC", &[("mon", &["09:00"])], &[], "weekly.mon: range `09:00` is not HH:MM-HH:MM"),
            ("UTC", &[("mon", &["09:60-18:00"])], &[], "weekly.mon: range `09:60-18:00` is not HH:MM-HH:MM"),
            ("UTC", &[("mon", &["24:00-24:00"])], &[], "weekly.mon: range `24:00-24:00` is not HH:MM-HH:MM"),
            ("UTC", &[("mon", &["09:00-24:30"])], &[], "weekly.mon: range `09:00-24:30` is not HH:MM-HH:MM"),
            ("UTC", &[("mon", &["18:00-09:00"])], &[], "weekly.mon: range `18:00-09:00` must end after it starts"),
            ("UTC", &[("mon", &["09:00-09:00"])], &[], "weekly.mon: range `09:00-09:00` must end after it starts"),
            (
                "UTC",
                &[("tue", &["14:00-18:00", "09:00-14:30"])],
                &[],
                "weekly.tue: ranges `09:00-14:30` and `14:00-18:00` overlap",
            ),
            ("UTC", &[("tue", &[]), ("sun", &[])], &[], "weekly: no opening ranges on any day"),
            ("UTC", OFFICE, &["2026-02-30"], "holidays: `2026-02-30` is not a date (YYYY-MM-DD)"),
            ("UTC", OFFICE, &["01.05.2026"], "holidays: `01.05.2026` is not a date (YYYY-MM-DD)"),
        ];
        for (tz, weekly, holidays, expected) in cases {
            let err = hours(tz, weekly, holidays).expect_err(expected);
            assert!(err.starts_with(expected), "got {err:?}, expected {expected:?}");
        }
        // Touching ranges and a full day are fine.
        assert!(hours("UTC", &[("mon", &["09:00-13:00", "13:00-18:00"]), ("tue", &["00:00-24:00"])], &[]).is_ok());
    }
}
