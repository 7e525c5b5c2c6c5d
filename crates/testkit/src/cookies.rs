//! A cookie jar as a browser keeps one for 127.0.0.1, which ignores ports:
//! every cookie goes back on every request. Tests that log in to a real
//! JupyterHub through the provider's pages carry one.

/// Cookies by name.
#[derive(Debug, Default)]
pub struct Jar(Vec<(String, String)>);

impl Jar {
    /// Keeps the cookies `response` sets; an emptied one is dropped.
    pub fn take(&mut self, response: &reqwest::Response) {
        for header in response.headers().get_all(reqwest::header::SET_COOKIE) {
            let Some(pair) = header.to_str().ok().and_then(|h| h.split(';').next()) else {
                continue;
            };
            let Some((name, value)) = pair.split_once('=') else {
                continue;
            };
            self.0.retain(|(n, _)| n != name);
            if !value.is_empty() && value != "\"\"" {
                self.0
                    .push((name.to_owned(), value.trim_matches('"').to_owned()));
            }
        }
    }

    /// The `Cookie` header carrying every cookie.
    pub fn header(&self) -> String {
        let pairs: Vec<String> = self.0.iter().map(|(n, v)| format!("{n}={v}")).collect();
        pairs.join("; ")
    }

    /// The cookie `name`'s value.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}
