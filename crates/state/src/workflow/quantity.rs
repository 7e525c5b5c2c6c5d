//! Kubernetes resource quantities (`500m`, `2`, `64Gi`, `1e3`), parsed exactly.
//!
//! The grammar is Kubernetes' own (`k8s.io/apimachinery/pkg/api/resource`): a
//! signed decimal number, then nothing, a decimal SI suffix (`n u m k M G T P
//! E`), a binary one (`Ki Mi Gi Ti Pi Ei`) or a decimal exponent (`e3`, `E-2`).
//! A value is kept as a whole number of billionths (`n`, the finest suffix), so
//! comparing `16Gi` with `17179869184` or `0.5` with `500m` involves no
//! floating point. Like Kubernetes, anything finer than that is rounded up and
//! anything beyond 2^63-1 whole units is refused.

use std::fmt;
use std::str::FromStr;

/// A regular expression for the texts [`Quantity::from_str`] accepts, for a
/// JSON Schema's `pattern`.
pub const QUANTITY_PATTERN: &str =
    r"^[+-]?([0-9]+(\.[0-9]*)?|\.[0-9]+)([eE][+-]?[0-9]+|[numkMGTPE]|[KMGTPE]i)?$";

/// Billionths per unit.
const NANOS_PER_UNIT: i128 = 1_000_000_000;
/// The largest magnitude Kubernetes represents: 2^63-1 units.
const MAX_NANOS: u128 = (i64::MAX as u128) * (NANOS_PER_UNIT as u128);
/// Significant digits beyond this cannot be held while scaling.
const MAX_DIGITS: usize = 36;

/// An exact Kubernetes quantity.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Quantity {
    /// The value in billionths of a unit (nano-cores, nano-bytes).
    nanos: i128,
}

/// Why a text is not a quantity.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum QuantityError {
    /// Nothing was given.
    #[error("it is empty")]
    Empty,
    /// No digits where the number should be.
    #[error("it does not start with a number")]
    NoNumber,
    /// A suffix Kubernetes does not know.
    #[error(
        "`{0}` is not a suffix Kubernetes knows (n, u, m, k, M, G, T, P, E, Ki … Ei, or an exponent such as e3)"
    )]
    Suffix(String),
    /// Larger than Kubernetes can hold.
    #[error("it is larger than Kubernetes can hold")]
    TooLarge,
}

impl Quantity {
    /// Zero.
    pub const ZERO: Self = Self { nanos: 0 };

    /// The value in billionths of a unit.
    pub fn nanos(self) -> i128 {
        self.nanos
    }

    /// Whether it is below zero.
    pub fn is_negative(self) -> bool {
        self.nanos < 0
    }

    /// Whether it is a whole number of thousandths (CPU is counted in
    /// millicores; Kubernetes refuses finer CPU requests).
    pub fn is_whole_milli(self) -> bool {
        self.nanos % 1_000_000 == 0
    }

    /// The whole units (bytes, pods) it holds, when it is whole.
    pub fn whole_units(self) -> Option<i128> {
        (self.nanos % NANOS_PER_UNIT == 0).then_some(self.nanos / NANOS_PER_UNIT)
    }

    /// The value as a floating-point number of units (CPU cores for a chart
    /// that wants a number); exact for whole millicores below 2^53 nanos and
    /// the nearest double otherwise.
    pub fn as_f64(self) -> f64 {
        // The division of two exactly representable integers rounds once.
        self.nanos as f64 / NANOS_PER_UNIT as f64
    }

    /// Parses a JSON number (`2`, `0.5`) as the quantity it writes.
    pub fn from_number(number: &serde_json::Number) -> Result<Self, QuantityError> {
        number.to_string().parse()
    }
}

impl FromStr for Quantity {
    type Err = QuantityError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        if text.is_empty() {
            return Err(QuantityError::Empty);
        }
        let (negative, unsigned) = match text.as_bytes()[0] {
            b'-' => (true, &text[1..]),
            b'+' => (false, &text[1..]),
            _ => (false, text),
        };
        let number_end = unsigned
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(unsigned.len());
        let (number, suffix) = unsigned.split_at(number_end);
        let (whole, fraction) = number.split_once('.').unwrap_or((number, ""));
        if (whole.is_empty() && fraction.is_empty()) || fraction.contains('.') {
            return Err(QuantityError::NoNumber);
        }
        let (exponent, binary) = scale(suffix)?;
        // Trailing zeros of the fraction change nothing; leading zeros of the
        // whole digit string neither.
        let fraction = fraction.trim_end_matches('0');
        let digits = format!("{whole}{fraction}");
        let digits = digits.trim_start_matches('0');
        let magnitude = if digits.is_empty() {
            0
        } else {
            let shift =
                exponent - i64::try_from(fraction.len()).map_err(|_| QuantityError::TooLarge)?;
            scaled(digits, shift + 9, binary)?
        };
        let nanos = i128::try_from(magnitude).map_err(|_| QuantityError::TooLarge)?;
        Ok(Self {
            nanos: if negative { -nanos } else { nanos },
        })
    }
}

/// The decimal exponent and binary shift a suffix stands for.
fn scale(suffix: &str) -> Result<(i64, u32), QuantityError> {
    let decimal = match suffix {
        "" => Some(0),
        "n" => Some(-9),
        "u" => Some(-6),
        "m" => Some(-3),
        "k" => Some(3),
        "M" => Some(6),
        "G" => Some(9),
        "T" => Some(12),
        "P" => Some(15),
        "E" => Some(18),
        _ => None,
    };
    if let Some(exponent) = decimal {
        return Ok((exponent, 0));
    }
    let binary = match suffix {
        "Ki" => Some(10),
        "Mi" => Some(20),
        "Gi" => Some(30),
        "Ti" => Some(40),
        "Pi" => Some(50),
        "Ei" => Some(60),
        _ => None,
    };
    if let Some(shift) = binary {
        return Ok((0, shift));
    }
    // `e3`, `E-2`: an exponent of ten, digits only after an optional sign.
    let unknown = || QuantityError::Suffix(suffix.to_owned());
    let exponent = suffix
        .strip_prefix(['e', 'E'])
        .filter(|rest| {
            let digits = rest.strip_prefix(['+', '-']).unwrap_or(rest);
            !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit())
        })
        .ok_or_else(unknown)?;
    // Past ±1000 every non-zero number is too large or rounds up to 1n all
    // the same; clamping keeps the arithmetic below in range (and zero zero).
    let exponent = match exponent.parse::<i64>() {
        Ok(exponent) => exponent.clamp(-1000, 1000),
        Err(_) if exponent.starts_with('-') => -1000,
        Err(_) => 1000,
    };
    Ok((exponent, 0))
}

/// `digits` × 2^`binary` × 10^`shift`, rounded up to a whole number, within
/// Kubernetes' range.
fn scaled(digits: &str, shift: i64, binary: u32) -> Result<u128, QuantityError> {
    if digits.len() > MAX_DIGITS {
        return Err(QuantityError::TooLarge);
    }
    let mantissa: u128 = digits.parse().map_err(|_| QuantityError::TooLarge)?;
    let mantissa = mantissa
        .checked_mul(1u128 << binary)
        .ok_or(QuantityError::TooLarge)?;
    let value = if shift >= 0 {
        let factor = u32::try_from(shift)
            .ok()
            .and_then(|shift| 10u128.checked_pow(shift))
            .ok_or(QuantityError::TooLarge)?;
        mantissa
            .checked_mul(factor)
            .ok_or(QuantityError::TooLarge)?
    } else {
        // Finer than a billionth: round up, as Kubernetes does.
        match u32::try_from(-shift)
            .ok()
            .and_then(|shift| 10u128.checked_pow(shift))
        {
            Some(divisor) => mantissa.div_ceil(divisor),
            None => 1,
        }
    };
    if value > MAX_NANOS {
        return Err(QuantityError::TooLarge);
    }
    Ok(value)
}

impl fmt::Display for Quantity {
    /// Writes the value in plain decimal units (`0.5`, `17179869184`).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let sign = if self.nanos < 0 { "-" } else { "" };
        let magnitude = self.nanos.unsigned_abs();
        let units = magnitude / NANOS_PER_UNIT as u128;
        let rest = magnitude % NANOS_PER_UNIT as u128;
        if rest == 0 {
            write!(f, "{sign}{units}")
        } else {
            let fraction = format!("{rest:09}");
            write!(f, "{sign}{units}.{}", fraction.trim_end_matches('0'))
        }
    }
}

#[cfg(test)]
#[path = "quantity_tests.rs"]
mod tests;
