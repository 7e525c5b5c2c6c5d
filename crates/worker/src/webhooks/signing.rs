//! Standard Webhooks signatures (<https://www.standardwebhooks.com/>), so a
//! receiver can check a delivery with any off-the-shelf verifier.
//!
//! The signature covers `{webhook-id}.{webhook-timestamp}.{body}`: a captured
//! delivery replayed later carries its old timestamp, which the receiver
//! refuses past its tolerance (5 minutes in the reference libraries), and a
//! new timestamp breaks the signature.

use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, Mac};
use sha2::Sha256;

/// The prefix of a secret's text form.
pub const SECRET_PREFIX: &str = "whsec_";
/// The shortest key the spec allows (192 bits).
const MIN_KEY: usize = 24;
/// The longest key the spec allows (512 bits).
const MAX_KEY: usize = 64;

/// The header carrying the delivery's id: the same on every attempt, so the
/// receiver deduplicates retries by it.
pub const ID_HEADER: &str = "webhook-id";
/// The header carrying the attempt's time, unix seconds.
pub const TIMESTAMP_HEADER: &str = "webhook-timestamp";
/// The header carrying `v1,<base64 signature>`.
pub const SIGNATURE_HEADER: &str = "webhook-signature";

/// A signing key: the decoded bytes of a `whsec_<base64>` secret. Prints as
/// `<redacted>`, so a `Debug` of the config cannot leak it.
#[derive(Clone, PartialEq, Eq)]
pub struct WebhookSecret(Vec<u8>);

impl WebhookSecret {
    /// Parses `whsec_<base64 of 24 to 64 bytes>`. The error is the rule
    /// broken; it never contains the value.
    pub fn parse(text: &str) -> Result<Self, String> {
        let how = "generate one with `echo whsec_$(openssl rand -base64 32)`";
        let Some(encoded) = text.trim().strip_prefix(SECRET_PREFIX) else {
            return Err(format!(
                "must be `{SECRET_PREFIX}` followed by base64 (the Standard Webhooks form); {how}"
            ));
        };
        let key = STANDARD
            .decode(encoded)
            .map_err(|_| format!("the part after `{SECRET_PREFIX}` is not base64; {how}"))?;
        if !(MIN_KEY..=MAX_KEY).contains(&key.len()) {
            return Err(format!(
                "must decode to {MIN_KEY} to {MAX_KEY} bytes, not {}; {how}",
                key.len()
            ));
        }
        Ok(Self(key))
    }

    /// The key's text form, `whsec_<base64>`, for the one place that hands
    /// it to a receiver.
    pub fn expose(&self) -> String {
        format!("{SECRET_PREFIX}{}", STANDARD.encode(&self.0))
    }

    /// The `webhook-signature` value for one attempt: `v1,<base64 of the
    /// HMAC-SHA256 of "{id}.{timestamp}.{body}">`.
    pub fn sign(&self, id: &str, timestamp: i64, body: &[u8]) -> String {
        // HMAC takes keys of any length; this cannot fail.
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&self.0)
            .unwrap_or_else(|_| unreachable!("HMAC accepts any key length"));
        mac.update(id.as_bytes());
        mac.update(b".");
        mac.update(timestamp.to_string().as_bytes());
        mac.update(b".");
        mac.update(body);
        format!("v1,{}", STANDARD.encode(mac.finalize().into_bytes()))
    }
}

impl fmt::Debug for WebhookSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A 32-byte key, as `openssl rand -base64 32` makes.
    const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw5Bdh1o/6Qa0=";

    #[test]
    fn a_signature_is_v1_and_the_base64_hmac_sha256_of_id_timestamp_and_body() {
        let secret = WebhookSecret::parse(SECRET).unwrap();
        let signature = secret.sign("4711", 1_674_087_231, br#"{"id":4711}"#);
        // The same HMAC computed over the joined message in one piece.
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&secret.0).unwrap();
        mac.update(br#"4711.1674087231.{"id":4711}"#);
        let expected = STANDARD.encode(mac.finalize().into_bytes());
        assert_eq!(signature, format!("v1,{expected}"));
        assert_ne!(
            signature,
            secret.sign("4711", 1_674_087_232, br#"{"id":4711}"#),
            "the timestamp is signed"
        );
        assert_ne!(
            signature,
            secret.sign("4712", 1_674_087_231, br#"{"id":4711}"#),
            "the id is signed"
        );
    }

    #[test]
    fn a_secret_is_whsec_and_base64_of_24_to_64_bytes_and_never_printed() {
        let secret = WebhookSecret::parse(SECRET).unwrap();
        assert_eq!(secret.expose(), SECRET);
        assert_eq!(format!("{secret:?}"), "<redacted>");
        let short = format!("{SECRET_PREFIX}{}", STANDARD.encode([7u8; 16]));
        let long = format!("{SECRET_PREFIX}{}", STANDARD.encode([7u8; 65]));
        for (text, rule) in [
            ("shared-with-the-receiver", "followed by base64"),
            ("whsec_not base64!", "not base64"),
            (short.as_str(), "24 to 64 bytes, not 16"),
            (long.as_str(), "24 to 64 bytes, not 65"),
        ] {
            let err = WebhookSecret::parse(text).unwrap_err();
            assert!(err.contains(rule), "{text}: {err}");
            assert!(!err.contains(text), "the value is not echoed: {err}");
        }
    }
}
