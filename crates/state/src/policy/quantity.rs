//! Kubernetes resource quantities in a policy (`500m`, `2`, `1.5`, `4G`,
//! `64Gi`, `1e3`): parsed by the one parser the templates use, held exactly
//! as thousandths so sums and comparisons never round.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::Value;

/// A quantity in thousandths of its unit (millicores for CPU, millibytes
/// for memory), so `500m` + `1.5` is exactly `2`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Quantity(pub u128);

/// The suffixes a quantity is printed with, and how many units each stands for.
const SUFFIXES: &[(&str, u128)] = &[
    ("Ki", 1 << 10),
    ("Mi", 1 << 20),
    ("Gi", 1 << 30),
    ("Ti", 1 << 40),
    ("Pi", 1 << 50),
    ("Ei", 1 << 60),
    ("k", 1_000),
    ("M", 1_000_000),
    ("G", 1_000_000_000),
    ("T", 1_000_000_000_000),
    ("P", 1_000_000_000_000_000),
    ("E", 1_000_000_000_000_000_000),
];

/// Billionths (what the parser holds) per thousandth (what a policy holds).
const NANOS_PER_MILLI: u128 = 1_000_000;

impl Quantity {
    /// Zero.
    pub const ZERO: Self = Self(0);

    /// A quantity from a request's parameter: a JSON number (`2`, `0.5`) or
    /// a string (`"4Gi"`).
    pub fn from_json(value: &Value) -> Result<Self, String> {
        match value {
            Value::Number(number) => number.to_string().parse(),
            Value::String(text) => text.parse(),
            other => Err(format!("{other} is not a quantity")),
        }
    }

    /// The sum, saturating (a sum past 10^35 is past any limit anyway).
    pub fn saturating_add(self, other: Self) -> Self {
        Self(self.0.saturating_add(other.0))
    }
}

impl FromStr for Quantity {
    type Err = String;

    /// Parsed by the one Kubernetes quantity parser
    /// ([`crate::workflow::Quantity`]) and held in thousandths: a limit is
    /// never negative, and below a thousandth rounds up, as Kubernetes does.
    fn from_str(text: &str) -> Result<Self, String> {
        let bad = || {
            format!(
                "`{text}` is not a Kubernetes quantity (a number with an optional suffix: 500m, 2, 1.5, 4G, 64Gi)"
            )
        };
        let parsed: crate::workflow::Quantity = text.parse().map_err(|_| bad())?;
        if parsed.is_negative() {
            return Err(bad());
        }
        Ok(Self(
            parsed.nanos().unsigned_abs().div_ceil(NANOS_PER_MILLI),
        ))
    }
}

impl fmt::Display for Quantity {
    /// The shortest exact spelling: `64Gi`, `4G`, `2`, `1500m`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let millis = self.0;
        if millis == 0 {
            return write!(f, "0");
        }
        if !millis.is_multiple_of(1000) {
            return write!(f, "{millis}m");
        }
        let units = millis / 1000;
        // The suffix leaving the smallest number: `4G` rather than `3906250Ki`.
        let best = SUFFIXES
            .iter()
            .filter(|(_, factor)| units.is_multiple_of(*factor))
            .min_by_key(|(_, factor)| units / factor);
        if let Some((suffix, factor)) = best {
            return write!(f, "{}{suffix}", units / factor);
        }
        write!(f, "{units}")
    }
}

impl Serialize for Quantity {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Quantity {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        Self::from_json(&Value::deserialize(deserializer)?).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q(text: &str) -> Quantity {
        text.parse().unwrap()
    }

    #[test]
    fn quantities_read_as_kubernetes_reads_them() {
        assert_eq!(q("500m"), Quantity(500));
        assert_eq!(q("2"), Quantity(2000));
        assert_eq!(q("1.5"), Quantity(1500));
        assert_eq!(q(".5"), Quantity(500));
        assert_eq!(q("4G"), Quantity(4_000_000_000_000));
        assert_eq!(q("64Gi"), Quantity(64 * (1 << 30) * 1000));
        assert_eq!(q("1e3"), q("1k"));
        assert_eq!(q("1E"), Quantity(1_000_000_000_000_000_000_000));
        assert_eq!(q("0.0001"), Quantity(1), "below a thousandth rounds up");
        for bad in [
            "",
            "abc",
            "-1",
            "1.2.3",
            "4GB",
            "1e",
            ".",
            "100000000000000000000Ei",
        ] {
            assert!(bad.parse::<Quantity>().is_err(), "{bad}");
        }
        assert_eq!(
            Quantity::from_json(&serde_json::json!(0.5)).unwrap(),
            q("500m")
        );
        assert!(Quantity::from_json(&serde_json::json!(true)).is_err());
    }

    #[test]
    fn quantities_print_in_their_shortest_exact_form() {
        for text in ["64Gi", "4G", "2", "1500m", "0", "3Ki", "7"] {
            assert_eq!(q(text).to_string(), text);
        }
        assert_eq!(q("2048Mi").to_string(), "2Gi");
        assert_eq!(q("0.5").saturating_add(q("1.5")).to_string(), "2");
    }
}
