//! OpenMetrics 1.0 text for scrapers that ask for it (`Accept:
//! application/openmetrics-text`), with exemplars on histogram buckets.
//!
//! The exporter renders Prometheus text 0.0.4; OpenMetrics differs from it
//! in what this module rewrites, line by line: a counter's family is named
//! without `_total` in `# TYPE` and `# HELP` (its samples keep it), `# HELP`
//! escapes `"`, `le` values are canonical numbers (`1.0`, not `1`), no blank
//! lines or other comments, `# EOF` at the end, and a bucket line may end in
//! an exemplar: `# {trace_id="…",span_id="…"} value timestamp`. Everything
//! else (names, labels, values, HELP text) is the exporter's, unchanged.

use std::collections::HashMap;
use std::fmt::Write;

use super::exemplars::{Exemplar, Snapshot};

/// The content type of an OpenMetrics 1.0 answer.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// `prometheus` (the exporter's text and the database gauges) as
/// OpenMetrics 1.0, with `exemplars` on the bucket lines of their series.
pub(super) fn translate(prometheus: &str, exemplars: &Snapshot) -> String {
    let types: HashMap<&str, &str> = prometheus
        .lines()
        .filter_map(|line| {
            let mut words = line.strip_prefix("# TYPE ")?.split(' ');
            Some((words.next()?, words.next()?))
        })
        .collect();
    let mut out = String::with_capacity(prometheus.len() + 64);
    // The exporter writes HELP before TYPE; OpenMetrics would rather have
    // TYPE first, so a HELP line waits for its TYPE.
    let mut help: Option<String> = None;
    let mut family: Option<(&str, &str)> = None;
    for line in prometheus.lines() {
        if let Some(rest) = line.strip_prefix("# HELP ") {
            out.extend(help.take());
            let (name, text) = rest.split_once(' ').unwrap_or((rest, ""));
            let kind = types.get(name).copied().unwrap_or("untyped");
            help = Some(format!(
                "# HELP {} {}\n",
                family_name(name, kind),
                escape_help(text)
            ));
        } else if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, kind) = rest.split_once(' ').unwrap_or((rest, "untyped"));
            let _ = writeln!(
                out,
                "# TYPE {} {}",
                family_name(name, kind),
                type_word(kind)
            );
            out.extend(help.take());
            family = Some((name, kind));
        } else if line.is_empty() || line.starts_with('#') {
            // Blank lines and other comments are not OpenMetrics.
        } else {
            out.extend(help.take());
            sample(&mut out, line, family, exemplars);
        }
    }
    out.extend(help.take());
    out.push_str("# EOF\n");
    out
}

/// The family a sample named `name` of type `kind` belongs to: a counter's
/// drops `_total`.
fn family_name<'a>(name: &'a str, kind: &str) -> &'a str {
    if kind == "counter" {
        name.strip_suffix("_total").unwrap_or(name)
    } else {
        name
    }
}

fn type_word(kind: &str) -> &str {
    match kind {
        "counter" | "gauge" | "histogram" | "summary" => kind,
        _ => "unknown",
    }
}

/// Prometheus text escapes `\` and newlines in HELP; OpenMetrics also `"`.
fn escape_help(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => {
                out.push('\\');
                out.extend(chars.next());
            }
            '"' => out.push_str("\\\""),
            c => out.push(c),
        }
    }
    out
}

/// One sample line, rewritten where OpenMetrics differs.
fn sample(out: &mut String, line: &str, family: Option<(&str, &str)>, exemplars: &Snapshot) {
    let Some(parsed) = Sample::parse(line) else {
        // Not a sample the exporter writes; leave it as it is rather than
        // drop a figure.
        out.push_str(line);
        out.push('\n');
        return;
    };
    let (family, kind) = family.unwrap_or((parsed.name, "untyped"));
    let name = if kind == "counter" && !parsed.name.ends_with("_total") {
        format!("{}_total", parsed.name)
    } else {
        parsed.name.to_owned()
    };
    out.push_str(&name);
    let le = parsed
        .labels
        .iter()
        .find(|(label, _)| *label == "le")
        .and_then(|(_, value)| parse_number(value));
    if !parsed.labels.is_empty() {
        out.push('{');
        for (i, (label, value)) in parsed.labels.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            match le.filter(|_| *label == "le" && kind == "histogram") {
                Some(bound) => {
                    let _ = write!(out, "le=\"{}\"", canonical(bound));
                }
                None => {
                    let _ = write!(out, "{label}=\"{value}\"");
                }
            }
        }
        out.push('}');
    }
    out.push(' ');
    out.push_str(parsed.value);
    if kind == "histogram"
        && let Some(bound) = le
        && parsed.name.strip_suffix("_bucket") == Some(family)
        && let Some(exemplar) = exemplar(exemplars, family, &parsed.labels, bound)
    {
        let _ = write!(
            out,
            " # {{trace_id=\"{:032x}\",span_id=\"{:016x}\"}} {} {:.3}",
            exemplar.trace.trace_id, exemplar.trace.span_id, exemplar.value, exemplar.at
        );
    }
    out.push('\n');
}

/// The exemplar of bucket `bound` of `family`'s series with `labels` (and
/// `le`), if one was recorded.
fn exemplar(
    exemplars: &Snapshot,
    family: &str,
    labels: &[(&str, &str)],
    bound: f64,
) -> Option<Exemplar> {
    let mut series: Vec<(String, String)> = labels
        .iter()
        .filter(|(label, _)| *label != "le")
        .map(|(label, value)| ((*label).to_owned(), unescape(value)))
        .collect();
    series.sort();
    exemplars
        .get(&(family.to_owned(), series))?
        .iter()
        .find(|(le, _)| *le == bound)
        .map(|(_, exemplar)| *exemplar)
}

/// A sample line split up: label values stay escaped as written.
struct Sample<'a> {
    name: &'a str,
    labels: Vec<(&'a str, &'a str)>,
    value: &'a str,
}

impl<'a> Sample<'a> {
    fn parse(line: &'a str) -> Option<Self> {
        let end = line.find(['{', ' '])?;
        let name = &line[..end];
        let mut rest = &line[end..];
        let mut labels = Vec::new();
        if let Some(inside) = rest.strip_prefix('{') {
            rest = inside;
            loop {
                if let Some(after) = rest.strip_prefix('}') {
                    rest = after;
                    break;
                }
                rest = rest.strip_prefix(',').unwrap_or(rest);
                let (label, after) = rest.split_once("=\"")?;
                let close = closing_quote(after)?;
                labels.push((label, &after[..close]));
                rest = &after[close + 1..];
            }
        }
        let value = rest.strip_prefix(' ')?;
        (!name.is_empty() && !value.is_empty()).then_some(Self {
            name,
            labels,
            value,
        })
    }
}

/// Where the quoted value at the start of `text` ends: the first `"` not
/// escaped by a backslash.
fn closing_quote(text: &str) -> Option<usize> {
    let mut escaped = false;
    for (i, c) in text.char_indices() {
        match c {
            _ if escaped => escaped = false,
            '\\' => escaped = true,
            '"' => return Some(i),
            _ => {}
        }
    }
    None
}

fn unescape(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    let mut chars = value.chars();
    while let Some(c) = chars.next() {
        if c == '\\' {
            match chars.next() {
                Some('n') => out.push('\n'),
                Some(other) => out.push(other),
                None => out.push('\\'),
            }
        } else {
            out.push(c);
        }
    }
    out
}

fn parse_number(text: &str) -> Option<f64> {
    match text {
        "+Inf" | "Inf" | "inf" => Some(f64::INFINITY),
        "-Inf" | "-inf" => Some(f64::NEG_INFINITY),
        _ => text.parse().ok(),
    }
}

/// `value` as OpenMetrics' canonical numbers have it (the spec's
/// "Canonical Numbers"): Go's shortest `%g` (exponent form below 1e-4 and
/// from 1e+06), with `.0` added when there is neither a point nor an
/// exponent; `+Inf` and `-Inf`.
pub(super) fn canonical(value: f64) -> String {
    if value.is_nan() {
        return "NaN".to_owned();
    }
    if value.is_infinite() {
        return if value > 0.0 { "+Inf" } else { "-Inf" }.to_owned();
    }
    if value == 0.0 {
        return "0.0".to_owned();
    }
    // Rust's `{:e}` is the shortest mantissa that reads back: `3.6e3`.
    let scientific = format!("{value:e}");
    let (mantissa, exponent) = scientific.split_once('e').unwrap_or((&scientific, "0"));
    let exponent: i32 = exponent.parse().unwrap_or(0);
    if !(-4..6).contains(&exponent) {
        let sign = if exponent < 0 { '-' } else { '+' };
        return format!("{mantissa}e{sign}{:02}", exponent.unsigned_abs());
    }
    let plain = value.to_string();
    if plain.contains('.') {
        plain
    } else {
        format!("{plain}.0")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn canonical_numbers_follow_the_specifications_examples() {
        for (value, text) in [
            (0.0, "0.0"),
            (0.001, "0.001"),
            (0.005, "0.005"),
            (0.95, "0.95"),
            (1.0, "1.0"),
            (1.7, "1.7"),
            (10.0, "10.0"),
            (3600.0, "3600.0"),
            (1e-10, "1e-10"),
            (1e-9, "1e-09"),
            (1e-5, "1e-05"),
            (0.0001, "0.0001"),
            (100_000.0, "100000.0"),
            (1e6, "1e+06"),
            (1.1e23, "1.1e+23"),
            (f64::INFINITY, "+Inf"),
        ] {
            assert_eq!(canonical(value), text, "{value}");
        }
    }

    const PROMETHEUS: &str = "# HELP runs_total Runs \"done\", by kind.\n\
        # TYPE runs_total counter\n\
        runs_total{kind=\"a\\\"b\"} 3\n\
        \n\
        # TYPE up gauge\n\
        up 1\n\
        \n\
        # HELP took_seconds How long.\n\
        # TYPE took_seconds histogram\n\
        took_seconds_bucket{kind=\"a\\\"b\",le=\"0.5\"} 0\n\
        took_seconds_bucket{kind=\"a\\\"b\",le=\"1\"} 2\n\
        took_seconds_bucket{kind=\"a\\\"b\",le=\"+Inf\"} 2\n\
        took_seconds_sum{kind=\"a\\\"b\"} 1.5\n\
        took_seconds_count{kind=\"a\\\"b\"} 2\n\
        \n";

    #[test]
    fn prometheus_text_becomes_openmetrics_with_exemplars_on_the_buckets_that_have_them() {
        let trace = hubwright_telemetry::TraceParent::parse(
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
        )
        .unwrap();
        let mut exemplars = Snapshot::new();
        exemplars.insert(
            (
                "took_seconds".to_owned(),
                vec![("kind".to_owned(), "a\"b".to_owned())],
            ),
            vec![(
                1.0,
                Exemplar {
                    trace,
                    value: 0.75,
                    at: 1_765_000_000.25,
                },
            )],
        );
        assert_eq!(
            translate(PROMETHEUS, &exemplars),
            "# TYPE runs counter\n\
             # HELP runs Runs \\\"done\\\", by kind.\n\
             runs_total{kind=\"a\\\"b\"} 3\n\
             # TYPE up gauge\n\
             up 1\n\
             # TYPE took_seconds histogram\n\
             # HELP took_seconds How long.\n\
             took_seconds_bucket{kind=\"a\\\"b\",le=\"0.5\"} 0\n\
             took_seconds_bucket{kind=\"a\\\"b\",le=\"1.0\"} 2 # {trace_id=\"4bf92f3577b34da6a3ce929d0e0e4736\",span_id=\"00f067aa0ba902b7\"} 0.75 1765000000.250\n\
             took_seconds_bucket{kind=\"a\\\"b\",le=\"+Inf\"} 2\n\
             took_seconds_sum{kind=\"a\\\"b\"} 1.5\n\
             took_seconds_count{kind=\"a\\\"b\"} 2\n\
             # EOF\n"
        );
        assert_eq!(
            translate(PROMETHEUS, &Snapshot::new())
                .lines()
                .filter(|line| line.contains(" # {"))
                .count(),
            0
        );
    }
}
