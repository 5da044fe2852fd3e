//! The reclaim schedule: Kubernetes CronJob syntax (5 fields) translated to
//! the seconds-first form of the in-process scheduler (6 fields).

use chrono::{DateTime, Utc};
use croner::Cron;
use croner::parser::{CronParser, Seconds};

/// A schedule in 6-field form (`sec min hour day-of-month month day-of-week`), UTC.
#[derive(Debug, Clone)]
pub struct Schedule {
    text: String,
    cron: Cron,
}

impl PartialEq for Schedule {
    fn eq(&self, other: &Self) -> bool {
        self.text == other.text
    }
}

impl Schedule {
    pub fn parse(value: &str) -> Result<Self, String> {
        let fields: Vec<&str> = value.split_whitespace().collect();
        let six: Vec<&str> = match fields.len() {
            5 => std::iter::once("0").chain(fields.iter().copied()).collect(),
            6 => fields,
            n => {
                return Err(format!(
                    "\"{value}\" has {n} fields; use the 5-field CronJob form (\"0 0 * * *\") or 6 fields with seconds first"
                ));
            }
        };
        let restricted = |f: &str| f != "*" && f != "?";
        if restricted(six[3]) && restricted(six[5]) {
            return Err(format!(
                "\"{value}\" restricts both day-of-month ({}) and day-of-week ({}); cron runs when either matches but the scheduler only when both do, so restrict one and leave the other \"*\"",
                six[3], six[5]
            ));
        }
        let text = six.join(" ");
        // Parsed as the scheduler parses it, so a schedule accepted here runs there.
        let cron = CronParser::builder()
            .seconds(Seconds::Required)
            .build()
            .parse(&text)
            .map_err(|e| format!("\"{value}\" is not a valid schedule: {e}"))?;
        Ok(Self { text, cron })
    }

    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// The tick a firing at `now` belongs to: the latest scheduled time not
    /// after `now`. Every replica computes the same one, so it keys the run.
    pub fn tick_at_or_before(&self, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
        use chrono::SubsecRound;
        self.cron
            .find_previous_occurrence(&now.trunc_subsecs(0), true)
            .ok()
    }

    /// The next scheduled time after `now`.
    pub fn next_after(&self, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
        use chrono::SubsecRound;
        self.cron
            .find_next_occurrence(&now.trunc_subsecs(0), false)
            .ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn five_fields_gain_a_zero_seconds_field() {
        assert_eq!(
            Schedule::parse("0 0 * * *").unwrap().as_str(),
            "0 0 0 * * *"
        );
        assert_eq!(
            Schedule::parse(" 15 3 * * 1 ").unwrap().as_str(),
            "0 15 3 * * 1"
        );
    }

    #[test]
    fn six_fields_are_kept() {
        assert_eq!(
            Schedule::parse("* * * * * *").unwrap().as_str(),
            "* * * * * *"
        );
    }

    #[test]
    fn both_day_fields_restricted_is_refused() {
        let err = Schedule::parse("0 0 1 * 1").unwrap_err();
        assert!(
            err.contains("day-of-month (1)") && err.contains("day-of-week (1)"),
            "{err}"
        );
        assert!(Schedule::parse("0 0 1 * ?").is_ok());
    }

    #[test]
    fn invalid_fields_are_refused() {
        let err = Schedule::parse("61 * * * *").unwrap_err();
        assert!(err.contains("not a valid schedule"), "{err}");
    }

    #[test]
    fn ticks_are_the_latest_scheduled_time() {
        use chrono::TimeZone;
        let daily = Schedule::parse("0 0 * * *").unwrap();
        let at = Utc.with_ymd_and_hms(2026, 3, 4, 0, 0, 0).unwrap();
        let late = at + chrono::Duration::milliseconds(700);
        assert_eq!(daily.tick_at_or_before(at), Some(at));
        assert_eq!(daily.tick_at_or_before(late), Some(at));
        assert_eq!(daily.next_after(late), Some(at + chrono::Duration::days(1)));
        let every_second = Schedule::parse("* * * * * *").unwrap();
        assert_eq!(every_second.tick_at_or_before(late), Some(at));
    }

    #[test]
    fn wrong_field_counts_are_refused() {
        assert!(Schedule::parse("").is_err());
        assert!(Schedule::parse("* * * *").is_err());
        assert!(Schedule::parse("* * * * * * *").is_err());
    }
}
