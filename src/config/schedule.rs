//! The reclaim schedule: Kubernetes CronJob syntax (5 fields) translated to
//! the seconds-first form of the in-process scheduler (6 fields).

/// A schedule in 6-field form (`sec min hour day-of-month month day-of-week`), UTC.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Schedule(String);

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
        Ok(Self(six.join(" ")))
    }

    pub fn as_str(&self) -> &str {
        &self.0
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
    fn wrong_field_counts_are_refused() {
        assert!(Schedule::parse("").is_err());
        assert!(Schedule::parse("* * * *").is_err());
        assert!(Schedule::parse("* * * * * * *").is_err());
    }
}
