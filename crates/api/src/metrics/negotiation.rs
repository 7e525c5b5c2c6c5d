//! Which text a scrape gets: Prometheus 0.0.4 unless its `Accept` prefers
//! OpenMetrics 1.0 ([`super::openmetrics`]), as Prometheus itself does.

use axum::http::HeaderMap;
use axum::http::header::ACCEPT;

/// What a scrape answers in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// Prometheus text 0.0.4: the default.
    Prometheus,
    /// OpenMetrics 1.0 text, with exemplars.
    OpenMetrics,
}

impl Format {
    /// The format `headers`' `Accept` prefers: OpenMetrics when it is
    /// acceptable (version 1.0.0, 0.0.1 or unspecified) with a quality
    /// higher than any Prometheus text (`text/plain`, `text/*`, `*/*`), or
    /// as high and listed first; otherwise, and without `Accept`,
    /// Prometheus text.
    pub fn negotiate(headers: &HeaderMap) -> Self {
        let mut best = (0.0_f64, Self::Prometheus);
        for value in headers.get_all(ACCEPT) {
            let Ok(value) = value.to_str() else { continue };
            for range in value.split(',') {
                let Some((format, quality)) = media_range(range) else {
                    continue;
                };
                if quality > best.0 {
                    best = (quality, format);
                }
            }
        }
        best.1
    }

    /// The `Content-Type` of an answer in this format.
    pub fn content_type(self) -> &'static str {
        match self {
            Self::Prometheus => super::http::CONTENT_TYPE,
            Self::OpenMetrics => super::openmetrics::CONTENT_TYPE,
        }
    }
}

/// The format one media range of `Accept` names and its quality; `None`
/// for one this endpoint cannot answer.
fn media_range(range: &str) -> Option<(Format, f64)> {
    let mut parts = range.split(';').map(str::trim);
    let media = parts.next()?.to_ascii_lowercase();
    let mut quality = 1.0;
    let mut version = None;
    for parameter in parts {
        let Some((name, value)) = parameter.split_once('=') else {
            continue;
        };
        let value = value.trim().trim_matches('"');
        match name.trim().to_ascii_lowercase().as_str() {
            "q" => {
                quality = value
                    .parse::<f64>()
                    .ok()
                    .filter(|q| (0.0..=1.0).contains(q))?
            }
            "version" => version = Some(value.to_owned()),
            _ => {}
        }
    }
    let format = match media.as_str() {
        "application/openmetrics-text"
            if version
                .as_deref()
                .is_none_or(|v| v == "1.0.0" || v == "0.0.1") =>
        {
            Format::OpenMetrics
        }
        "text/plain" | "text/*" | "*/*" => Format::Prometheus,
        _ => return None,
    };
    Some((format, quality))
}

#[cfg(test)]
mod tests {
    use axum::http::HeaderValue;

    use super::*;

    fn accept(value: &str) -> Format {
        let mut headers = HeaderMap::new();
        headers.insert(ACCEPT, HeaderValue::from_str(value).unwrap());
        Format::negotiate(&headers)
    }

    #[test]
    fn prometheus_text_is_the_default_and_openmetrics_is_given_to_who_prefers_it() {
        assert_eq!(Format::negotiate(&HeaderMap::new()), Format::Prometheus);
        assert_eq!(accept("*/*"), Format::Prometheus);
        assert_eq!(accept("text/plain; version=0.0.4"), Format::Prometheus);
        assert_eq!(accept("application/json"), Format::Prometheus);
        // What Prometheus 2 and 3 send.
        assert_eq!(
            accept(
                "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1"
            ),
            Format::OpenMetrics
        );
        assert_eq!(
            accept(
                "application/openmetrics-text;version=1.0.0;escaping=allow-utf-8;q=0.6,text/plain;version=1.0.0;escaping=allow-utf-8;q=0.5,*/*;q=0.1"
            ),
            Format::OpenMetrics
        );
        assert_eq!(
            accept("text/plain;q=0.9, application/openmetrics-text;q=0.5"),
            Format::Prometheus
        );
        assert_eq!(
            accept("application/openmetrics-text; version=2.0.0"),
            Format::Prometheus
        );
        assert_eq!(
            accept("application/openmetrics-text;q=0"),
            Format::Prometheus
        );
    }
}
