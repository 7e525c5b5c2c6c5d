//! The line grammar of OpenMetrics text: metric and label names, label
//! sets with their escapes, numbers, and a sample line with its exemplar.

use super::{Exemplar, Sample};

pub(super) fn metric_name(name: &str) -> Result<(), String> {
    let mut chars = name.chars();
    let first_ok = chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_' || c == ':');
    if first_ok && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':') {
        Ok(())
    } else {
        Err(format!("{name:?} is not a metric name"))
    }
}

pub(super) fn label_name(name: &str) -> Result<(), String> {
    let mut chars = name.chars();
    let first_ok = chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_');
    if first_ok && chars.all(|c| c.is_ascii_alphanumeric() || c == '_') {
        Ok(())
    } else {
        Err(format!("{name:?} is not a label name"))
    }
}

/// One sample line read alone: `sample = metricname [labels] SP number [SP
/// timestamp] [exemplar]` (Prometheus text 0.0.4 writes samples the same
/// way, without exemplars).
pub fn sample(line: &str) -> Result<Sample, String> {
    let end = line.find(['{', ' ']).ok_or("a sample without a value")?;
    let name = &line[..end];
    metric_name(name)?;
    let mut rest = &line[end..];
    let mut labels = Vec::new();
    if rest.starts_with('{') {
        let (read, after) = label_set(rest)?;
        labels = read;
        rest = after;
    }
    let rest = rest.strip_prefix(' ').ok_or("no space before the value")?;
    let (point, exemplar) = match rest.split_once(" # ") {
        Some((point, exemplar)) => (point, Some(exemplar)),
        None => (rest, None),
    };
    let mut words = point.split(' ');
    let value = words
        .next()
        .and_then(number)
        .ok_or_else(|| format!("{point:?} does not start with a number"))?;
    if let Some(timestamp) = words.next() {
        real_number(timestamp).ok_or_else(|| format!("timestamp {timestamp:?}"))?;
    }
    if words.next().is_some() {
        return Err("more than a value and a timestamp".to_owned());
    }
    let exemplar = exemplar.map(exemplar_of).transpose()?;
    Ok(Sample {
        name: name.to_owned(),
        labels,
        value,
        exemplar,
    })
}

/// `exemplar = SP HASH SP labels SP number [SP timestamp]` (after `" # "`).
pub(super) fn exemplar_of(text: &str) -> Result<Exemplar, String> {
    if !text.starts_with('{') {
        return Err("an exemplar without a label set".to_owned());
    }
    let (labels, rest) = label_set(text)?;
    let rest = rest
        .strip_prefix(' ')
        .ok_or("no space before the exemplar's value")?;
    let mut words = rest.split(' ');
    let value = words
        .next()
        .and_then(number)
        .ok_or("the exemplar's value is not a number")?;
    let timestamp = match words.next() {
        Some(word) => Some(real_number(word).ok_or("the exemplar's timestamp")?),
        None => None,
    };
    if words.next().is_some() {
        return Err("more after the exemplar's timestamp".to_owned());
    }
    Ok(Exemplar {
        labels,
        value,
        timestamp,
    })
}

/// `labels = "{" [label *(COMMA label)] "}"`: the labels and what follows.
type Labels<'a> = (Vec<(String, String)>, &'a str);

pub(super) fn label_set(text: &str) -> Result<Labels<'_>, String> {
    let mut rest = text.strip_prefix('{').ok_or("no `{`")?;
    let mut labels: Vec<(String, String)> = Vec::new();
    if let Some(after) = rest.strip_prefix('}') {
        return Ok((labels, after));
    }
    loop {
        let (name, after) = rest.split_once("=\"").ok_or("a label without `=\"`")?;
        label_name(name)?;
        let mut end = None;
        let mut escaped = false;
        for (i, c) in after.char_indices() {
            match c {
                '\n' => return Err("a raw line feed in a label value".to_owned()),
                _ if escaped => escaped = false,
                '\\' => escaped = true,
                '"' => {
                    end = Some(i);
                    break;
                }
                _ => {}
            }
        }
        let end = end.ok_or("an unterminated label value")?;
        if labels.iter().any(|(seen, _)| seen == name) {
            return Err(format!("label {name} twice"));
        }
        labels.push((name.to_owned(), unescape(&after[..end])?));
        rest = &after[end + 1..];
        if let Some(after) = rest.strip_prefix('}') {
            return Ok((labels, after));
        }
        rest = rest
            .strip_prefix(',')
            .ok_or("labels not separated by `,`")?;
    }
}

/// `escaped-string`: `\n`, `\"`, `\\`; a raw `"` is not allowed.
pub(super) fn unescape(text: &str) -> Result<String, String> {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => match chars.next() {
                Some('n') => out.push('\n'),
                Some(other) => out.push(other),
                None => return Err("a lone backslash at the end".to_owned()),
            },
            '"' => return Err(format!("an unescaped `\"` in {text:?}")),
            c => out.push(c),
        }
    }
    Ok(out)
}

/// `number`: a real number, or (any case) `[+-]inf`, `[+-]infinity`, `nan`.
pub(super) fn number(text: &str) -> Option<f64> {
    let lower = text.to_ascii_lowercase();
    let unsigned = lower.trim_start_matches(['+', '-']);
    if matches!(unsigned, "inf" | "infinity") && lower.len() - unsigned.len() <= 1 {
        return Some(if lower.starts_with('-') {
            f64::NEG_INFINITY
        } else {
            f64::INFINITY
        });
    }
    if lower == "nan" {
        return Some(f64::NAN);
    }
    real_number(text)
}

/// `realnumber = [SIGN] digits with an optional point and exponent`.
pub(super) fn real_number(text: &str) -> Option<f64> {
    let unsigned = text.strip_prefix(['+', '-']).unwrap_or(text);
    let (mantissa, exponent) = match unsigned.split_once('e') {
        Some((mantissa, exponent)) => (mantissa, Some(exponent)),
        None => (unsigned, None),
    };
    let (whole, fraction) = mantissa.split_once('.').unwrap_or((mantissa, ""));
    let digits = |s: &str| s.chars().all(|c| c.is_ascii_digit());
    let mantissa_ok =
        digits(whole) && digits(fraction) && !(whole.is_empty() && fraction.is_empty());
    let exponent_ok = exponent.is_none_or(|e| {
        let e = e.strip_prefix(['+', '-']).unwrap_or(e);
        !e.is_empty() && digits(e)
    });
    (mantissa_ok && exponent_ok).then(|| text.parse().ok())?
}
