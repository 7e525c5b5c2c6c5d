//! Text from outside (a Kubernetes `Status` message, Helm's stderr, an
//! identity provider's error body) made fit for a step error, which the
//! timeline, the API, webhooks and logs all show: at most [`MAX_BYTES`], and
//! without anything that looks like a Secret's data. A server that echoes the
//! object it refused (Helm does, quoting the manifest) would otherwise copy a
//! Secret's `data`/`stringData` into the run's history.
//!
//! [`StepError`](crate::StepError)'s constructors pass every message through
//! [`sanitize`], so no caller has to remember to.

/// Longest error text kept, in bytes; longer text ends in `…`.
pub const MAX_BYTES: usize = 2048;

/// What replaces a Secret's data.
pub const REDACTED: &str = "<redacted>";

/// Keys whose values are a Secret's content, in YAML, JSON and Go's `%v`
/// rendering (`Data:map[…]`) of an object.
const SECRET_KEYS: &[&str] = &["data", "stringData", "binaryData", "Data", "StringData"];

/// Shortest run of base64 characters treated as an encoded secret.
const MIN_BLOB: usize = 32;

/// `text` bounded to [`MAX_BYTES`], with Secret data and base64 blobs
/// replaced by [`REDACTED`] and control characters other than newline and
/// tab (a NUL cannot even be stored) dropped.
pub fn sanitize(text: &str) -> String {
    // Far more than is kept, but bounded, so a huge stderr is cheap to scan.
    let text = bound_to(text.to_owned(), 64 * MAX_BYTES);
    let text = redact_blocks(&text);
    let text = redact_inline(&text);
    let text = redact_blobs(&text);
    let text: String = text
        .chars()
        .filter(|c| !c.is_control() || *c == '\n' || *c == '\t')
        .collect();
    bound_to(text, MAX_BYTES)
}

/// Cuts `text` to `max` bytes on a character boundary, marking the cut.
fn bound_to(mut text: String, max: usize) -> String {
    if text.len() <= max {
        return text;
    }
    let mut end = max - '…'.len_utf8();
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    text.truncate(end);
    text.push('…');
    text
}

/// Whether `key` (a YAML or JSON key, quotes removed) names Secret content.
fn is_secret_key(key: &str) -> bool {
    SECRET_KEYS.contains(&key.trim_matches('"'))
}

/// YAML: a `data:` (or `stringData:`) key loses its value, and the lines
/// indented under it.
fn redact_blocks(text: &str) -> String {
    let mut out = Vec::new();
    let mut skip_deeper_than: Option<usize> = None;
    for line in text.split('\n') {
        let indent = line.len() - line.trim_start().len();
        if let Some(depth) = skip_deeper_than {
            if indent > depth && !line.trim().is_empty() {
                continue;
            }
            skip_deeper_than = None;
        }
        let body = line.trim_start().trim_start_matches("- ");
        let prefix = &line[..line.len() - body.len()];
        match body.split_once(':') {
            Some((key, value)) if is_secret_key(key) && !key.contains(' ') => {
                let value = value.trim();
                if value.starts_with('{') || value.starts_with("map[") {
                    // Inline JSON or a Go map: `redact_inline` cuts just it.
                    out.push(line.to_owned());
                } else {
                    out.push(format!("{prefix}{key}: {REDACTED}"));
                    if value.is_empty() {
                        skip_deeper_than = Some(indent);
                    }
                }
            }
            _ => out.push(line.to_owned()),
        }
    }
    out.join("\n")
}

/// Within a line: `"data": {…}`, `Data:map[…]`, `"data":"…"` lose their value.
fn redact_inline(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut copied = 0;
    let mut at = 0;
    while at < text.len() {
        if let Some(value_at) = secret_value_at(text, at)
            && let Some(len) = value_len(&text[value_at..])
        {
            out.push_str(&text[copied..value_at]);
            out.push_str(REDACTED);
            copied = value_at + len;
            at = copied;
            continue;
        }
        at += text[at..].chars().next().map_or(1, char::len_utf8);
    }
    out.push_str(&text[copied..]);
    out
}

/// Where the value starts when a Secret key (quoted or not, then `:`) starts
/// at byte `at` of `text` as a whole word.
fn secret_value_at(text: &str, at: usize) -> Option<usize> {
    let before = text[..at].chars().next_back();
    if before.is_some_and(|c| c.is_alphanumeric() || c == '_') {
        return None;
    }
    let rest = &text[at..];
    let quoted = rest.starts_with('"');
    let name_start = usize::from(quoted);
    let key = SECRET_KEYS
        .iter()
        .find(|key| rest[name_start..].starts_with(**key))?;
    let mut after = &rest[name_start + key.len()..];
    if quoted {
        after = after.strip_prefix('"')?;
    } else if after.starts_with(|c: char| c.is_alphanumeric() || c == '_') {
        return None;
    }
    let value = after.trim_start().strip_prefix(':')?.trim_start();
    Some(text.len() - value.len())
}

/// The length of a bracketed or quoted value at the start of `text`: `{…}`,
/// `[…]`, `map[…]` or `"…"`; `None` for anything else.
fn value_len(text: &str) -> Option<usize> {
    if let Some(map) = text.strip_prefix("map") {
        // Go: `map[k:v]` (`%v`), or `map[string][]byte{…}` (`%#v`).
        let mut len = 3 + bracketed(map, '[', ']')?;
        let typed = text[len..]
            .find(|c: char| !(c.is_ascii_alphanumeric() || matches!(c, '[' | ']' | '.' | '*')));
        if let Some(at) = typed
            && text[len + at..].starts_with('{')
        {
            len += at + bracketed(&text[len + at..], '{', '}')?;
        }
        return Some(len);
    }
    match text.chars().next()? {
        '{' => bracketed(text, '{', '}'),
        '[' => bracketed(text, '[', ']'),
        '"' => {
            let mut escaped = false;
            for (i, c) in text.char_indices().skip(1) {
                match c {
                    _ if escaped => escaped = false,
                    '\\' => escaped = true,
                    '"' => return Some(i + 1),
                    _ => {}
                }
            }
            Some(text.len())
        }
        _ => None,
    }
}

/// The length of the `open`…`close` group `text` starts with (to the end when
/// it is never closed: the text was cut); `None` when it does not start so.
fn bracketed(text: &str, open: char, close: char) -> Option<usize> {
    if !text.starts_with(open) {
        return None;
    }
    let mut depth = 0usize;
    for (i, c) in text.char_indices() {
        if c == open {
            depth += 1;
        } else if c == close {
            depth -= 1;
            if depth == 0 {
                return Some(i + c.len_utf8());
            }
        }
    }
    Some(text.len())
}

/// Long runs of base64 that look encoded (tokens, a Secret's values) become
/// [`REDACTED`]; hex digests, paths, ids and CamelCase names stay.
fn redact_blobs(text: &str) -> String {
    let is_b64 = |c: char| c.is_ascii_alphanumeric() || matches!(c, '+' | '/' | '=' | '-' | '_');
    let mut out = String::with_capacity(text.len());
    let mut run = String::new();
    let flush = |run: &mut String, out: &mut String| {
        if looks_encoded(run) {
            out.push_str(REDACTED);
        } else {
            out.push_str(run);
        }
        run.clear();
    };
    for c in text.chars() {
        if is_b64(c) {
            run.push(c);
        } else {
            flush(&mut run, &mut out);
            out.push(c);
        }
    }
    flush(&mut run, &mut out);
    out
}

/// Whether a run of base64 characters looks like encoded bytes rather than
/// words: long, several of each case, and two capitals (or a capital and a
/// digit) side by side somewhere, which CamelCase and ids seldom have and
/// random base64 nearly always does.
fn looks_encoded(run: &str) -> bool {
    let upper = run.bytes().filter(u8::is_ascii_uppercase).count();
    let lower = run.bytes().filter(u8::is_ascii_lowercase).count();
    let capital_or_digit = |b: &u8| b.is_ascii_uppercase() || b.is_ascii_digit();
    let side_by_side = run.as_bytes().windows(2).any(|pair| {
        capital_or_digit(&pair[0])
            && capital_or_digit(&pair[1])
            && (pair[0].is_ascii_uppercase() || pair[1].is_ascii_uppercase())
    });
    run.len() >= MIN_BLOB && upper >= 4 && lower >= 4 && side_by_side
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_long_error_text_is_bounded_with_an_ellipsis() {
        let long = "é".repeat(5000);
        let cut = sanitize(&long);
        assert!(cut.len() <= MAX_BYTES, "{}", cut.len());
        assert!(cut.ends_with('…'));
        assert_eq!(sanitize("short"), "short");
    }

    #[test]
    fn a_secret_manifest_in_yaml_loses_its_data() {
        let text = "Error: INSTALLATION FAILED: Secret \"hub\" is invalid:\napiVersion: v1\nkind: Secret\ndata:\n  password: c3VwZXJzZWNyZXQ=\n  token: aHVudGVyMg==\nstringData:\n  client_secret: hunter2\ntype: Opaque";
        let clean = sanitize(text);
        for secret in ["c3VwZXJzZWNyZXQ", "aHVudGVyMg", "hunter2"] {
            assert!(!clean.contains(secret), "{clean}");
        }
        assert!(
            clean.contains("kind: Secret") && clean.contains("type: Opaque"),
            "{clean}"
        );
        assert!(clean.contains("data: <redacted>"), "{clean}");
        let inline = sanitize("stringData: hunter2 is bad");
        assert!(!inline.contains("hunter2"), "{inline}");
    }

    #[test]
    fn a_secret_in_json_or_go_rendering_loses_its_data() {
        let json = r#"admission webhook denied {"kind":"Secret","data":{"password":"c3VwZXI="},"type":"Opaque"}"#;
        let clean = sanitize(json);
        assert!(!clean.contains("c3VwZXI"), "{clean}");
        assert!(
            clean.contains(r#""data":<redacted>,"type":"Opaque""#),
            "{clean}"
        );
        let go = "&Secret{Data:map[string][]byte{password: [104 117 110]},StringData:map[client_secret:hunter2],}";
        let clean = sanitize(go);
        assert!(
            !clean.contains("hunter2") && !clean.contains("104 117"),
            "{clean}"
        );
        assert!(
            clean.contains("Data:<redacted>,StringData:<redacted>,"),
            "{clean}"
        );
        let printed = sanitize("object: {Data:map[password:[104 117 110]] Type:Opaque}");
        assert_eq!(printed, "object: {Data:<redacted> Type:Opaque}");
        let quoted = sanitize(r#"{"stringData": "hunter2"}"#);
        assert!(!quoted.contains("hunter2"), "{quoted}");
    }

    #[test]
    fn base64_blobs_go_and_digests_words_and_nuls_are_handled() {
        let jwt = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJhbGljZSIsImV4cCI6MTcwMDAwMDAwMH0.c2lnbmF0dXJlLXNpZ25hdHVyZS1zaWduYXR1cmU";
        assert!(!sanitize(&format!("bad token {jwt}")).contains("eyJzdWIi"));
        let digest = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
        assert!(sanitize(digest).contains("0123456789abcdef0123"));
        assert_eq!(sanitize("metadata: fine"), "metadata: fine");
        for kept in [
            "GET /admin/realms/Master/clients/JupyterHub-0193a0c4-5f6e-7d8a-9b0c-1d2e3f4a5b6c",
            "no kind CustomResourceDefinitionList is registered for version v1",
        ] {
            assert_eq!(sanitize(kept), kept);
        }
        let encoded = "c3VwZXJzZWNyZXRwYXNzd29yZA==";
        let value = format!("value {encoded}{encoded}");
        assert!(!sanitize(&value).contains(encoded), "{}", sanitize(&value));
        assert_eq!(sanitize("a\0b\u{7}c\nd"), "abc\nd");
    }
}
