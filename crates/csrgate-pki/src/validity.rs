//! Human durations for validity periods and clock skew: `10y`, `365d`, `12h`, `30m`, `90s`.

use std::fmt;
use std::str::FromStr;

use crate::PkiError;

/// A length of time given as a number and one unit. A year is 365 days: validity periods are counted
/// in days by every CA tool the operators know, and a fixed length keeps `10y` predictable.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct ValidityPeriod {
    seconds: i64,
}

impl ValidityPeriod {
    /// A period of whole days.
    pub const fn days(days: i64) -> Self {
        ValidityPeriod {
            seconds: days * 86_400,
        }
    }

    /// A period of whole seconds.
    pub const fn seconds(seconds: i64) -> Self {
        ValidityPeriod { seconds }
    }

    /// The period as a `time::Duration`.
    pub fn as_duration(self) -> time::Duration {
        time::Duration::seconds(self.seconds)
    }

    /// The period in seconds.
    pub fn as_seconds(self) -> i64 {
        self.seconds
    }
}

impl FromStr for ValidityPeriod {
    type Err = PkiError;

    fn from_str(text: &str) -> Result<Self, PkiError> {
        let bad = || {
            PkiError::InvalidParameter(format!(
                "{text:?} is not a duration: use a number and one unit, e.g. 10y, 365d, 12h, 30m, 90s"
            ))
        };
        let text = text.trim();
        let split = text.len().checked_sub(1).ok_or_else(bad)?;
        if !text.is_char_boundary(split) {
            return Err(bad());
        }
        let (number, unit) = text.split_at(split);
        let number: i64 = number.parse().map_err(|_| bad())?;
        let unit_seconds = match unit {
            "y" => 365 * 86_400,
            "d" => 86_400,
            "h" => 3_600,
            "m" => 60,
            "s" => 1,
            _ => return Err(bad()),
        };
        // 1000 years is far past anything X.509 tooling handles well; it also keeps the
        // multiplication below from overflowing.
        if !(0..=1000 * 365 * 86_400).contains(&number.saturating_mul(unit_seconds)) {
            return Err(bad());
        }
        Ok(ValidityPeriod {
            seconds: number * unit_seconds,
        })
    }
}

impl fmt::Display for ValidityPeriod {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = self.seconds;
        match s {
            _ if s != 0 && s % 86_400 == 0 => write!(f, "{}d", s / 86_400),
            _ if s != 0 && s % 3_600 == 0 => write!(f, "{}h", s / 3_600),
            _ if s != 0 && s % 60 == 0 => write!(f, "{}m", s / 60),
            _ => write!(f, "{s}s"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_each_unit() {
        let cases = [
            ("10y", 10 * 365 * 86_400),
            ("365d", 365 * 86_400),
            ("90d", 90 * 86_400),
            ("12h", 12 * 3_600),
            ("30m", 1_800),
            ("90s", 90),
            (" 0s ", 0),
        ];
        for (text, seconds) in cases {
            let parsed: ValidityPeriod = text.parse().expect(text);
            assert_eq!(parsed.as_seconds(), seconds, "{text}");
        }
    }

    #[test]
    fn refuses_nonsense() {
        for text in [
            "",
            "y",
            "10",
            "10w",
            "-1d",
            "1.5d",
            "99999999999999y",
            "1é",
            "d10",
        ] {
            assert!(text.parse::<ValidityPeriod>().is_err(), "{text:?} parsed");
        }
    }

    #[test]
    fn display_round_trips() {
        for text in ["90d", "12h", "30m", "7s"] {
            let parsed: ValidityPeriod = text.parse().expect(text);
            assert_eq!(parsed.to_string(), text);
        }
    }
}
