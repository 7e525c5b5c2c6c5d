//! A strict reader of OpenMetrics 1.0 text, written from the specification
//! (its ABNF and the rules of "Text format") and independent of the code
//! that renders it, so a test can hold a scrape to the standard: `# EOF`
//! last, no blank lines or other comments, one TYPE and HELP per family
//! before its samples, families and metric points not interleaved, sample
//! names by type (`_total` for counters, `_bucket`/`_sum`/`_count` for
//! histograms), label and number grammar, histogram buckets in order with
//! canonical `le` values ending at `+Inf` equal to `_count`, and exemplars
//! only on bucket and counter lines, their value within their bucket and
//! their labels within 128 characters.

use std::collections::HashSet;

mod grammar;

pub use grammar::sample;
use grammar::{metric_name, real_number, unescape};

/// One exposition, as read.
#[derive(Debug, Clone, PartialEq)]
pub struct Exposition {
    /// Its families in order.
    pub families: Vec<Family>,
}

/// A metric family: its metadata and samples.
#[derive(Debug, Clone, PartialEq)]
pub struct Family {
    /// The family's name (a counter's without `_total`).
    pub name: String,
    /// `counter`, `gauge`, `histogram`, … (`unknown` without TYPE).
    pub kind: String,
    /// Its HELP text, unescaped.
    pub help: Option<String>,
    /// Its samples in order.
    pub samples: Vec<Sample>,
}

/// One sample line.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    /// The sample's name (with its suffix).
    pub name: String,
    /// Its labels, unescaped, as written.
    pub labels: Vec<(String, String)>,
    /// Its value.
    pub value: f64,
    /// Its exemplar, if it has one.
    pub exemplar: Option<Exemplar>,
}

impl Sample {
    /// The label `name`'s value.
    pub fn label(&self, name: &str) -> Option<&str> {
        self.labels
            .iter()
            .find(|(label, _)| label == name)
            .map(|(_, value)| value.as_str())
    }
}

/// An exemplar.
#[derive(Debug, Clone, PartialEq)]
pub struct Exemplar {
    /// Its labels, unescaped.
    pub labels: Vec<(String, String)>,
    /// The observed value.
    pub value: f64,
    /// When, if given.
    pub timestamp: Option<f64>,
}

impl Exemplar {
    /// The label `name`'s value.
    pub fn label(&self, name: &str) -> Option<&str> {
        self.labels
            .iter()
            .find(|(label, _)| label == name)
            .map(|(_, value)| value.as_str())
    }
}

impl Exposition {
    /// The family `name`.
    pub fn family(&self, name: &str) -> Option<&Family> {
        self.families.iter().find(|family| family.name == name)
    }

    /// Every exemplar, with the sample it is on.
    pub fn exemplars(&self) -> impl Iterator<Item = (&Sample, &Exemplar)> {
        self.families
            .iter()
            .flat_map(|family| &family.samples)
            .filter_map(|sample| Some((sample, sample.exemplar.as_ref()?)))
    }
}

/// Reads `text`, or says which line breaks which rule.
pub fn parse(text: &str) -> Result<Exposition, String> {
    let body = text
        .strip_suffix("# EOF\n")
        .or_else(|| text.strip_suffix("# EOF"))
        .ok_or("the exposition does not end with `# EOF`")?;
    if text.contains('\r') {
        return Err("carriage return in the exposition".to_owned());
    }
    let mut families: Vec<Family> = Vec::new();
    let mut metadata_seen: HashSet<(String, &'static str)> = HashSet::new();
    for (number, line) in body.split_terminator('\n').enumerate() {
        let at = |why: String| format!("line {}: {why}: {line:?}", number + 1);
        if line.is_empty() {
            return Err(at("blank line".to_owned()));
        }
        if let Some(rest) = line.strip_prefix("# ") {
            let (keyword, rest) = rest
                .split_once(' ')
                .ok_or_else(|| at("comment".to_owned()))?;
            let (name, value) = rest.split_once(' ').unwrap_or((rest, ""));
            metric_name(name).map_err(at)?;
            let keyword: &'static str = match keyword {
                "TYPE" => "TYPE",
                "HELP" => "HELP",
                "UNIT" => "UNIT",
                _ => return Err(at("a line starting with # that is not metadata".to_owned())),
            };
            let current = families.last().filter(|family| family.name == name);
            if current.is_some_and(|family| !family.samples.is_empty()) {
                return Err(at("metadata after the family's samples".to_owned()));
            }
            if current.is_none() {
                open_family(&mut families, name).map_err(at)?;
            }
            if !metadata_seen.insert((name.to_owned(), keyword)) {
                return Err(at(format!("a second {keyword} line for the family")));
            }
            let family = families
                .last_mut()
                .ok_or_else(|| at("no family".to_owned()))?;
            match keyword {
                "TYPE" => {
                    if !matches!(
                        value,
                        "counter"
                            | "gauge"
                            | "histogram"
                            | "gaugehistogram"
                            | "stateset"
                            | "info"
                            | "summary"
                            | "unknown"
                    ) {
                        return Err(at(format!("unknown type {value:?}")));
                    }
                    family.kind = value.to_owned();
                }
                "HELP" => family.help = Some(unescape(value).map_err(at)?),
                _ => {}
            }
            continue;
        }
        let sample = sample(line).map_err(at)?;
        let belongs = families
            .last()
            .is_some_and(|family| suffix(&family.kind, &family.name, &sample.name).is_some());
        if !belongs {
            // A sample of a family without metadata: of type unknown.
            open_family(&mut families, &sample.name).map_err(at)?;
        }
        let family = families
            .last_mut()
            .ok_or_else(|| at("no family".to_owned()))?;
        let suffix = suffix(&family.kind, &family.name, &sample.name)
            .ok_or_else(|| at(format!("not a sample of {} {}", family.kind, family.name)))?;
        if let Some(exemplar) = &sample.exemplar {
            let allowed = matches!(
                (family.kind.as_str(), suffix),
                ("histogram" | "gaugehistogram", "_bucket") | ("counter", "_total")
            );
            if !allowed {
                return Err(at("an exemplar where none is allowed".to_owned()));
            }
            let length: usize = exemplar
                .labels
                .iter()
                .map(|(name, value)| name.chars().count() + value.chars().count())
                .sum();
            if length > 128 {
                return Err(at(format!("exemplar labels of {length} characters")));
            }
        }
        family.samples.push(sample);
    }
    for family in &families {
        check_family(family)?;
    }
    Ok(Exposition { families })
}

/// Starts family `name`, which no earlier family may have, nor have as a
/// sample name (a sample `foo_total` after counter `foo` is `foo`'s,
/// interleaved).
fn open_family(families: &mut Vec<Family>, name: &str) -> Result<(), String> {
    let earlier = families
        .iter()
        .any(|family| family.name == name || suffix(&family.kind, &family.name, name).is_some());
    if earlier {
        return Err(format!("family {name} is interleaved with another"));
    }
    families.push(Family {
        name: name.to_owned(),
        kind: "unknown".to_owned(),
        help: None,
        samples: Vec::new(),
    });
    Ok(())
}

/// The suffix `sample` has as a sample of `family` of type `kind`, if it is
/// one.
fn suffix(kind: &str, family: &str, sample: &str) -> Option<&'static str> {
    let allowed: &[&'static str] = match kind {
        "counter" => &["_total", "_created"],
        "histogram" => &["_bucket", "_sum", "_count", "_created"],
        "gaugehistogram" => &["_bucket", "_gsum", "_gcount"],
        "summary" => &["", "_sum", "_count", "_created"],
        "info" => &["_info"],
        _ => &[""],
    };
    let rest = sample.strip_prefix(family)?;
    allowed.iter().copied().find(|suffix| *suffix == rest)
}

/// Metric points not interleaved, label sets unique, histograms whole.
fn check_family(family: &Family) -> Result<(), String> {
    let at = |why: String| format!("family {}: {why}", family.name);
    let mut points: Vec<Vec<(String, String)>> = Vec::new();
    let mut seen = HashSet::new();
    for sample in &family.samples {
        let point: Vec<(String, String)> = sample
            .labels
            .iter()
            .filter(|(name, _)| !(name == "le" && family.kind.contains("histogram")))
            .cloned()
            .collect();
        if points.last() != Some(&point) {
            if points.contains(&point) {
                return Err(at(format!("metric points interleaved at {point:?}")));
            }
            points.push(point);
        }
        if !seen.insert((sample.name.clone(), sample.labels.clone())) {
            return Err(at(format!(
                "{} {:?} appears twice",
                sample.name, sample.labels
            )));
        }
    }
    if family.kind == "histogram" {
        for point in &points {
            check_histogram(family, point).map_err(at)?;
        }
    }
    Ok(())
}

fn check_histogram(family: &Family, point: &[(String, String)]) -> Result<(), String> {
    let of_point = |sample: &&Sample| {
        sample
            .labels
            .iter()
            .filter(|(name, _)| name != "le")
            .eq(point.iter())
    };
    let samples: Vec<&Sample> = family.samples.iter().filter(of_point).collect();
    let mut previous: Option<(f64, f64)> = None;
    let mut infinite = None;
    for bucket in samples.iter().filter(|s| s.name.ends_with("_bucket")) {
        let le = bucket.label("le").ok_or("a bucket without le")?;
        let bound = canonical_bound(le)?;
        if let Some((bound_before, count_before)) = previous {
            if bound <= bound_before {
                return Err(format!("bucket le={le} out of order"));
            }
            if bucket.value < count_before {
                return Err(format!("bucket le={le} counts fewer than the one before"));
            }
        }
        if let Some(exemplar) = &bucket.exemplar {
            let floor = previous.map_or(f64::NEG_INFINITY, |(bound, _)| bound);
            if !(exemplar.value <= bound && exemplar.value > floor) {
                return Err(format!(
                    "exemplar value {} outside bucket le={le}",
                    exemplar.value
                ));
            }
        }
        previous = Some((bound, bucket.value));
        if bound == f64::INFINITY {
            infinite = Some(bucket.value);
        }
    }
    let infinite = infinite.ok_or("no +Inf bucket")?;
    let count = samples.iter().find(|s| s.name.ends_with("_count"));
    let sum = samples.iter().find(|s| s.name.ends_with("_sum"));
    match (count, sum) {
        (Some(count), Some(_)) if count.value == infinite => Ok(()),
        (Some(count), Some(_)) => Err(format!(
            "_count {} differs from the +Inf bucket {infinite}",
            count.value
        )),
        (None, None) => Ok(()),
        _ => Err("_sum without _count or the reverse".to_owned()),
    }
}

/// A bucket bound written as a canonical number: `+Inf`, or a float with a
/// point or an exponent (`1.0`, `0.005`, `1e+06`).
fn canonical_bound(le: &str) -> Result<f64, String> {
    if le == "+Inf" {
        return Ok(f64::INFINITY);
    }
    if !(le.contains('.') || le.contains('e')) {
        return Err(format!("le={le:?} is not a canonical float (1.0, not 1)"));
    }
    real_number(le).ok_or_else(|| format!("le={le:?} is not a number"))
}

#[cfg(test)]
mod tests {
    use super::*;

    const VALID: &str = "# TYPE foo counter\n# HELP foo Some \\\"text\\\".\nfoo_total{a=\"x\\\"y\"} 3\n\
        # TYPE up gauge\nup 1\n\
        # TYPE took histogram\n\
        took_bucket{le=\"0.5\"} 1 # {trace_id=\"abc\"} 0.25 1765000000.123\n\
        took_bucket{le=\"1.0\"} 2\ntook_bucket{le=\"+Inf\"} 2\ntook_sum 1.0\ntook_count 2\n# EOF\n";

    #[test]
    fn a_valid_exposition_reads() {
        let read = parse(VALID).expect("valid");
        assert_eq!(read.families.len(), 3);
        assert_eq!(
            read.family("foo").unwrap().help.as_deref(),
            Some("Some \"text\".")
        );
        let (sample, exemplar) = read.exemplars().next().unwrap();
        assert_eq!(sample.label("le"), Some("0.5"));
        assert_eq!(exemplar.label("trace_id"), Some("abc"));
    }

    #[test]
    fn each_broken_rule_is_refused() {
        for (why, broken) in [
            ("no EOF", VALID.replace("# EOF\n", "")),
            ("blank line", VALID.replace("up 1\n", "up 1\n\n")),
            (
                "counter sample without _total",
                VALID.replace("foo_total", "foo"),
            ),
            (
                "counter family named with _total",
                VALID.replace(
                    "# TYPE foo counter\n# HELP foo",
                    "# TYPE foo_total counter\n# HELP foo_total",
                ),
            ),
            ("integer le", VALID.replace("le=\"1.0\"", "le=\"1\"")),
            (
                "unescaped quote in HELP",
                VALID.replace("\\\"text\\\"", "\"text\""),
            ),
            (
                "exemplar on a gauge",
                VALID.replace("up 1\n", "up 1 # {a=\"b\"} 1\n"),
            ),
            (
                "exemplar outside its bucket",
                VALID.replace("} 0.25 ", "} 0.75 "),
            ),
            (
                "count differs",
                VALID.replace("took_count 2", "took_count 3"),
            ),
            (
                "other comment",
                VALID.replace("# TYPE up gauge\n", "# hello\n# TYPE up gauge\n"),
            ),
            (
                "interleaved",
                format!(
                    "{}foo_total{{a=\"z\"}} 1\n# EOF\n",
                    VALID.replace("# EOF\n", "")
                ),
            ),
        ] {
            assert!(parse(&broken).is_err(), "{why} was accepted:\n{broken}");
        }
    }
}
