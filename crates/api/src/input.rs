//! Text the database can store. Postgres refuses the NUL character (U+0000)
//! in `text` and in `jsonb` strings, and such a request would otherwise reach
//! it and fail there as if the database were down; so every query parameter,
//! path parameter and string (or key) of a JSON body is checked here first and
//! a NUL, or a query value that is not UTF-8, is a 422 that names where it is.

use percent_encoding::percent_decode;
use serde_json::Value;

use crate::error::{Problem, json_pointer};

/// The rule a NUL breaks.
pub(crate) const NO_NUL: &str = "must not contain the NUL character (U+0000)";

/// The rule broken when the database itself refused a value (a path the
/// checks here do not cover).
pub(crate) const UNSTORABLE: &str =
    "holds a character the database cannot store (such as NUL, U+0000); remove it";

/// The rule a query value that is not UTF-8 breaks.
pub(crate) const UTF8: &str = "must be UTF-8 (percent-encoded bytes that decode to text)";

/// A name as it can be shown: NULs written `\0`.
fn shown(name: &str) -> String {
    name.replace('\0', "\\0")
}

/// Refuses a query string with a NUL or bytes that are not UTF-8 in any
/// parameter's name or value; the problem names the parameter.
pub(crate) fn check_query(query: &str) -> Result<(), Problem> {
    for pair in query.split('&').filter(|pair| !pair.is_empty()) {
        let (raw_name, raw_value) = pair.split_once('=').unwrap_or((pair, ""));
        let name = decode(raw_name);
        let name_text = String::from_utf8_lossy(&name);
        if std::str::from_utf8(&name).is_err() {
            return Err(Problem::invalid_parameter(&shown(&name_text), UTF8));
        }
        if name.contains(&0) {
            return Err(Problem::invalid_parameter(&shown(&name_text), NO_NUL));
        }
        let value = decode(raw_value);
        if std::str::from_utf8(&value).is_err() {
            return Err(Problem::invalid_parameter(&name_text, UTF8));
        }
        if value.contains(&0) {
            return Err(Problem::invalid_parameter(&name_text, NO_NUL));
        }
    }
    Ok(())
}

/// `application/x-www-form-urlencoded` decoding of one name or value, as
/// bytes: `+` is a space, `%XX` a byte.
fn decode(raw: &str) -> Vec<u8> {
    let spaced = raw.replace('+', " ");
    percent_decode(spaced.as_bytes()).collect()
}

/// Refuses a path parameter holding a NUL; the problem names it.
pub(crate) fn check_path<'a>(
    params: impl IntoIterator<Item = (&'a str, &'a str)>,
) -> Result<(), Problem> {
    match params.into_iter().find(|(_, value)| value.contains('\0')) {
        Some((name, _)) => Err(Problem::invalid_parameter(name, NO_NUL)),
        None => Ok(()),
    }
}

/// Refuses a JSON body with a NUL in any string or object key; the problem
/// points at the first such value. `body` is already known to parse.
pub(crate) fn check_json(body: &[u8]) -> Result<(), Problem> {
    // A NUL can only be written `\u0000` in JSON (a raw one is not JSON), so
    // bodies without that sequence, nearly all, are not parsed twice.
    if !body.windows(6).any(|w| w == b"\\u0000") {
        return Ok(());
    }
    let Ok(value) = serde_json::from_slice::<Value>(body) else {
        return Ok(());
    };
    let mut path = Vec::new();
    if find_nul(&value, &mut path) {
        let field = if path.is_empty() {
            "body".to_owned()
        } else {
            shown(&path.join("."))
        };
        return Err(Problem::invalid_at(
            &field,
            json_pointer(path.iter().map(String::as_str)),
            NO_NUL,
        ));
    }
    Ok(())
}

/// Whether `value` holds a NUL; if so, `path` leads to it (to the key itself
/// when the key holds it).
fn find_nul(value: &Value, path: &mut Vec<String>) -> bool {
    match value {
        Value::String(text) => text.contains('\0'),
        Value::Array(items) => items.iter().enumerate().any(|(i, item)| {
            path.push(i.to_string());
            let found = find_nul(item, path);
            if !found {
                path.pop();
            }
            found
        }),
        Value::Object(map) => map.iter().any(|(key, item)| {
            path.push(key.clone());
            let found = key.contains('\0') || find_nul(item, path);
            if !found {
                path.pop();
            }
            found
        }),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_nul_in_a_query_value_or_name_names_the_parameter() {
        assert!(check_query("template=jupyterhub&limit=5").is_ok());
        assert!(check_query("").is_ok());
        let value = check_query("limit=5&template=%00").unwrap_err();
        assert_eq!(value.errors()[0].parameter.as_deref(), Some("template"));
        assert_eq!(value.errors()[0].rule, NO_NUL);
        let name = check_query("a%00b=1").unwrap_err();
        assert_eq!(name.errors()[0].parameter.as_deref(), Some("a\\0b"));
        let bytes = check_query("owner=%FF%FE").unwrap_err();
        assert_eq!(bytes.errors()[0].parameter.as_deref(), Some("owner"));
        assert_eq!(bytes.errors()[0].rule, UTF8);
        assert!(check_query("owner=a+b%20c%C3%A9").is_ok(), "spaces and é");
    }

    #[test]
    fn a_nul_deep_in_a_body_is_pointed_at_and_an_escaped_backslash_is_not_one() {
        assert!(
            check_json(br#"{"name": "a\\u0000"}"#).is_ok(),
            "`\\` then `u0000`"
        );
        let deep = check_json(br#"{"parameters": {"x/y": ["ok", "b\u0000"]}}"#).unwrap_err();
        assert_eq!(
            deep.errors()[0].pointer.as_deref(),
            Some("/parameters/x~1y/1")
        );
        let key = check_json(br#"{"parameters": {"a\u0000": 1}}"#).unwrap_err();
        assert_eq!(
            key.errors()[0].pointer.as_deref(),
            Some("/parameters/a\u{0}")
        );
        let whole = check_json(br#""\u0000""#).unwrap_err();
        assert_eq!(whole.errors()[0].pointer.as_deref(), Some(""));
    }

    #[test]
    fn a_nul_in_a_path_parameter_names_it() {
        assert!(check_path([("id", "alice-hub")]).is_ok());
        let err = check_path([("id", "a\0b")]).unwrap_err();
        assert_eq!(err.errors()[0].parameter.as_deref(), Some("id"));
    }
}
