use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A duration written for humans in workflow files and flags: `30s`, `5m`, `8h`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Dur(pub Duration);

impl Dur {
    /// `secs` seconds.
    pub const fn from_secs(secs: u64) -> Self {
        Self(Duration::from_secs(secs))
    }

    /// Whether it is zero.
    pub fn is_zero(&self) -> bool {
        self.0.is_zero()
    }

    /// The duration, or `None` for zero: an interval flag where `0s` turns
    /// the poll off.
    pub fn nonzero(&self) -> Option<Duration> {
        (!self.is_zero()).then_some(self.0)
    }

    /// As a chrono duration for arithmetic with timestamps (saturating).
    pub fn to_chrono(self) -> chrono::Duration {
        chrono::Duration::from_std(self.0).unwrap_or(chrono::Duration::MAX)
    }
}

impl std::str::FromStr for Dur {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        humantime::parse_duration(s)
            .map(Dur)
            .map_err(|err| format!("`{s}` is not a duration like 30s, 5m or 8h ({err})"))
    }
}

/// Written the way templates and flags write durations (`72h`, `1h30m`,
/// `90s` as `1m30s`, `250ms`, `90d`): hours are the largest unit below a
/// week of whole days, so a template's `maximum: 72h` comes back in
/// messages as `72h`, not humantime's `3days`, and a retention of `365d`
/// as `365d`.
impl fmt::Display for Dur {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const DAY: u64 = 86_400;
        let secs = self.0.as_secs();
        let millis = self.0.subsec_millis();
        if secs == 0 && millis == 0 {
            return f.write_str("0s");
        }
        if millis == 0 && secs.is_multiple_of(DAY) && secs >= 7 * DAY {
            return write!(f, "{}d", secs / DAY);
        }
        let parts = [
            (secs / 3600, "h"),
            (secs % 3600 / 60, "m"),
            (secs % 60, "s"),
            (u64::from(millis), "ms"),
        ];
        for (value, unit) in parts {
            if value > 0 {
                write!(f, "{value}{unit}")?;
            }
        }
        Ok(())
    }
}

impl Serialize for Dur {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Dur {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

impl From<Duration> for Dur {
    fn from(value: Duration) -> Self {
        Self(value)
    }
}

#[cfg(test)]
mod tests {
    use super::Dur;

    #[test]
    fn durations_are_written_as_templates_write_them_and_read_back() {
        for (text, written) in [
            ("72h", "72h"),
            ("3days", "72h"),
            ("90s", "1m30s"),
            ("1h 30m", "1h30m"),
            ("250ms", "250ms"),
            ("0s", "0s"),
            ("100h 4h", "104h"),
            ("365d", "365d"),
            ("7d", "7d"),
            ("6d", "144h"),
            ("7d 1h", "169h"),
        ] {
            let dur: Dur = text.parse().unwrap();
            assert_eq!(dur.to_string(), written, "{text}");
            let again: Dur = written.parse().unwrap();
            assert_eq!(again, dur, "{written} reads back as {text}");
        }
    }
}
