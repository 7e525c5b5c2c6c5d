//! Parsers of `serve`'s flags that take more than a number or a duration.

use std::time::Duration;

use hubwright_state::workflow::Dur;

/// `--expiry-warnings`: lead times before expiry.
#[derive(Debug, Clone)]
pub struct Leads(pub Vec<Duration>);

/// `--expiry-warnings`: comma-separated durations, empty for none.
pub fn parse_leads(text: &str) -> Result<Leads, String> {
    text.split(',')
        .map(str::trim)
        .filter(|part| !part.is_empty())
        .map(|part| part.parse::<Dur>().map(|d| d.0))
        .collect::<Result<Vec<_>, _>>()
        .map(Leads)
}

/// `--rate-limit`, `--auth-failure-rate-limit`: requests a second, 0 or more.
pub fn parse_rate(text: &str) -> Result<f64, String> {
    match text.trim().parse::<f64>() {
        Ok(rate) if rate.is_finite() && rate >= 0.0 => Ok(rate),
        _ => Err(format!(
            "must be a number of requests a second, 0 (off) or more, e.g. 20 or 0.5 (got `{text}`)"
        )),
    }
}
