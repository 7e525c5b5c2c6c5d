//! A browser-less client of the web console for tests: it signs in with a
//! hubwright token through the sign-in form, keeps the session cookie, and
//! sends forms with the session's CSRF token, following no redirects so a
//! test sees each `303` and where it points.

use reqwest::StatusCode;
use reqwest::header::{COOKIE, LOCATION, SET_COOKIE};

use crate::server::ApiServer;

/// A page the console answered.
#[derive(Debug, Clone)]
pub struct Page {
    /// Its status.
    pub status: StatusCode,
    /// Where a redirect points.
    pub location: Option<String>,
    /// The HTML (or whatever the body was).
    pub html: String,
}

impl Page {
    /// Panics unless the page says `text` (HTML-escaped as the templates
    /// escape it), showing the page.
    pub fn assert_says(&self, text: &str) {
        assert!(
            self.html.contains(text),
            "the page ({}) does not say {text:?}:\n{}",
            self.status,
            self.html
        );
    }
}

/// A signed-in console user.
#[derive(Debug, Clone)]
pub struct ConsoleUser {
    base: String,
    client: reqwest::Client,
    /// `name=value` of the session cookie.
    pub cookie: String,
    /// The session's CSRF token, as its forms carry it.
    pub csrf: String,
}

/// The value of `name="csrf"` in a page's first form.
pub fn csrf_in(html: &str) -> Option<String> {
    let at = html.find("name=\"csrf\" value=\"")? + "name=\"csrf\" value=\"".len();
    html[at..].split('"').next().map(str::to_owned)
}

fn cookie_of(response: &reqwest::Response, name: &str) -> Option<String> {
    response
        .headers()
        .get_all(SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .filter_map(|v| v.split(';').next())
        .find(|pair| pair.starts_with(&format!("{name}=")) && pair.len() > name.len() + 1)
        .map(str::to_owned)
}

impl ConsoleUser {
    /// Signs in to `server`'s console with `token`, as a person would with
    /// the sign-in form. Panics when the sign-in is refused.
    pub async fn sign_in(server: &ApiServer, token: &str) -> Self {
        let client = no_redirects();
        let form = client
            .get(format!("{}/sign-in", server.url))
            .send()
            .await
            .expect("the sign-in page");
        let form_cookie = cookie_of(&form, "hubwright_sign_in").expect("the sign-in form's cookie");
        let html = form.text().await.expect("the sign-in page's HTML");
        let form_csrf = csrf_in(&html).expect("the sign-in form's csrf field");
        let answer = client
            .post(format!("{}/sign-in/token", server.url))
            .header(COOKIE, &form_cookie)
            .form(&[
                ("token", token),
                ("csrf", &form_csrf),
                ("next", "/environments"),
            ])
            .send()
            .await
            .expect("the sign-in");
        assert_eq!(
            answer.status(),
            StatusCode::SEE_OTHER,
            "signing in with a token"
        );
        let cookie = cookie_of(&answer, "hubwright_session").expect("the session cookie");
        let mut user = Self {
            base: server.url.clone(),
            client,
            cookie,
            csrf: String::new(),
        };
        let home = user.get("/environments").await;
        user.csrf = csrf_in(&home.html).expect("the session's csrf token on a page");
        user
    }

    /// Signs in to `server`'s console through the OpenID provider as
    /// `username`, as a browser would: the console's redirect, the
    /// provider's login and consent pages, the console's callback.
    pub async fn sign_in_oidc(
        server: &ApiServer,
        provider: &hubwright_sandbox::oidc::OidcProvider,
        username: &str,
    ) -> Self {
        let client = no_redirects();
        let start = client
            .get(format!("{}/sign-in/oidc?next=/environments", server.url))
            .send()
            .await
            .expect("the console's sign-in redirect");
        assert_eq!(
            start.status(),
            StatusCode::SEE_OTHER,
            "/sign-in/oidc redirects"
        );
        let authorization = start
            .headers()
            .get(LOCATION)
            .and_then(|l| l.to_str().ok())
            .and_then(|l| reqwest::Url::parse(l).ok())
            .expect("the provider's authorization URL");
        let callback = provider
            .log_in_at(authorization, username)
            .await
            .expect("signing in at the provider");
        let (cookie, page) = Self::finish_oidc(&client, callback.as_str()).await;
        let cookie = cookie.unwrap_or_else(|| panic!("no session after the callback: {page:?}"));
        let mut user = Self {
            base: server.url.clone(),
            client,
            cookie,
            csrf: String::new(),
        };
        let home = user.get("/environments").await;
        user.csrf = csrf_in(&home.html).expect("the session's csrf token on a page");
        user
    }

    /// Opens the console's callback URL `callback`: the session cookie it
    /// set, if any, and the answer.
    pub async fn finish_oidc(client: &reqwest::Client, callback: &str) -> (Option<String>, Page) {
        let answer = client
            .get(callback)
            .send()
            .await
            .expect("the console's callback");
        let cookie = cookie_of(&answer, "hubwright_session");
        (cookie, read_response(answer).await)
    }

    /// `GET path` with the session.
    pub async fn get(&self, path: &str) -> Page {
        let request = self
            .client
            .get(format!("{}{path}", self.base))
            .header(COOKIE, &self.cookie)
            .header("accept", "text/html");
        read(request).await
    }

    /// `POST path` with `fields` and the session's CSRF token.
    pub async fn post(&self, path: &str, fields: &[(&str, &str)]) -> Page {
        let mut form: Vec<(&str, &str)> = vec![("csrf", &self.csrf)];
        form.extend_from_slice(fields);
        let request = self
            .client
            .post(format!("{}{path}", self.base))
            .header(COOKIE, &self.cookie)
            .form(&form);
        read(request).await
    }
}

/// An HTTP client that shows each redirect instead of following it.
pub fn no_redirects() -> reqwest::Client {
    hubwright_http::client_builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("an HTTP client")
}

async fn read(request: reqwest::RequestBuilder) -> Page {
    read_response(request.send().await.expect("a console request")).await
}

async fn read_response(response: reqwest::Response) -> Page {
    let status = response.status();
    let location = response
        .headers()
        .get(LOCATION)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let html = response.text().await.expect("the console's answer");
    Page {
        status,
        location,
        html,
    }
}
