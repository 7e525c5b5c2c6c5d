//! Secrets at rest: AES-256-GCM with keys from `HUBWRIGHT_SECRET_KEY`.
//!
//! The variable holds one or more keys, comma-separated, each `id:hex` (64 hex
//! digits, e.g. from `openssl rand -hex 32`) or bare hex (its id is then
//! derived from the key). The first key encrypts; all of them decrypt, so a key
//! is rotated by putting the new one first and keeping the old one until every
//! row has been rewritten. Each row records the id of the key that sealed it.
//!
//! The environment and the name of a secret are bound into the ciphertext as
//! associated data: a row copied onto another environment does not decrypt.

use std::collections::HashMap;
use std::fmt;

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};

use crate::digest::sha256_hex;

/// The environment variable the keys come from.
pub const KEY_VARIABLE: &str = "HUBWRIGHT_SECRET_KEY";

/// A secret value in memory. Prints as `<redacted>` so it cannot reach a log
/// through `Debug` or `Display`.
#[derive(Clone, PartialEq, Eq)]
pub struct SecretString(String);

impl SecretString {
    /// Wraps `value`.
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The value, for the one place that must send it (a Kubernetes Secret,
    /// an HTTP Authorization header).
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for SecretString {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

impl fmt::Display for SecretString {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

/// Why the keys could not be used; never contains key material.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    /// The variable is not set.
    #[error(
        "{KEY_VARIABLE} is not set: give it 64 hex digits (32 random bytes, e.g. `openssl rand -hex 32`)"
    )]
    Missing,
    /// An entry is not `id:hex` or hex of the right length.
    #[error("{KEY_VARIABLE}: key #{position} {rule}")]
    Malformed {
        /// 1-based position in the list.
        position: usize,
        /// What is wrong with it.
        rule: &'static str,
    },
    /// Two keys share an id.
    #[error("{KEY_VARIABLE}: key id `{0}` appears twice")]
    DuplicateId(String),
}

/// Decrypting failed: an unknown key id, or data that was not sealed with it
/// for this place.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OpenError {
    /// The row was sealed with a key that is not configured any more.
    #[error("sealed with key `{0}`, which {KEY_VARIABLE} no longer holds")]
    UnknownKey(String),
    /// Tampered with, moved, or sealed under another key with the same id.
    #[error("does not decrypt with key `{0}` for this place")]
    Corrupt(String),
}

/// Encrypting failed (no randomness for a nonce, or an absurdly long value).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("cannot encrypt a secret: {0}")]
pub struct SealError(String);

/// A sealed value as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sealed {
    /// Which key sealed it.
    pub key_id: String,
    /// 96-bit random nonce.
    pub nonce: Vec<u8>,
    /// Ciphertext with its authentication tag.
    pub ciphertext: Vec<u8>,
}

/// The configured keys.
#[derive(Clone)]
pub struct SecretKeys {
    current: String,
    ciphers: HashMap<String, Aes256Gcm>,
}

impl fmt::Debug for SecretKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut ids: Vec<&String> = self.ciphers.keys().collect();
        ids.sort();
        f.debug_struct("SecretKeys")
            .field("current", &self.current)
            .field("ids", &ids)
            .finish()
    }
}

impl SecretKeys {
    /// Reads [`KEY_VARIABLE`].
    pub fn from_env() -> Result<Self, KeyError> {
        match std::env::var(KEY_VARIABLE) {
            Ok(value) if !value.trim().is_empty() => Self::parse(&value),
            _ => Err(KeyError::Missing),
        }
    }

    /// Parses the variable's value.
    pub fn parse(value: &str) -> Result<Self, KeyError> {
        let mut current = None;
        let mut ciphers = HashMap::new();
        for (idx, entry) in value.split(',').map(str::trim).enumerate() {
            let position = idx + 1;
            let (id, hex) = match entry.split_once(':') {
                Some((id, hex)) => (Some(id.trim()), hex.trim()),
                None => (None, entry),
            };
            let key = decode_key(hex).map_err(|rule| KeyError::Malformed { position, rule })?;
            let id = match id {
                Some("") => {
                    return Err(KeyError::Malformed {
                        position,
                        rule: "has an empty id before `:`",
                    });
                }
                Some(id) => id.to_owned(),
                // Derived, not the key: a hash prefix identifies it without revealing it.
                None => sha256_hex(&key)[..8].to_owned(),
            };
            if ciphers.contains_key(&id) {
                return Err(KeyError::DuplicateId(id));
            }
            let cipher = Aes256Gcm::new_from_slice(&key).map_err(|_| KeyError::Malformed {
                position,
                rule: "is not a 256-bit key",
            })?;
            current.get_or_insert_with(|| id.clone());
            ciphers.insert(id, cipher);
        }
        let current = current.ok_or(KeyError::Missing)?;
        Ok(Self { current, ciphers })
    }

    /// A fresh random key named `id`, known only to this process: for a
    /// throwaway database (the demo), where nothing sealed must outlive it.
    pub fn ephemeral(id: &str) -> Result<Self, KeyError> {
        let mut key = [0u8; 32];
        getrandom::fill(&mut key).map_err(|_| KeyError::Malformed {
            position: 1,
            rule: "could not be generated: the system has no randomness",
        })?;
        Self::parse(&format!("{id}:{}", crate::digest::hex(&key)))
    }

    /// The id of the key new values are sealed with.
    pub fn current_id(&self) -> &str {
        &self.current
    }

    /// Encrypts `value` for `place` (e.g. `environment-id/name`).
    pub fn seal(&self, place: &str, value: &SecretString) -> Result<Sealed, SealError> {
        let mut nonce = [0u8; 12];
        getrandom::fill(&mut nonce).map_err(|err| SealError(format!("no randomness: {err}")))?;
        let cipher = self
            .ciphers
            .get(&self.current)
            .ok_or_else(|| SealError("the current key is missing".to_owned()))?;
        let ciphertext = cipher
            .encrypt(
                Nonce::from_slice(&nonce),
                Payload {
                    msg: value.expose().as_bytes(),
                    aad: place.as_bytes(),
                },
            )
            .map_err(|_| SealError("the value is too long to encrypt".to_owned()))?;
        Ok(Sealed {
            key_id: self.current.clone(),
            nonce: nonce.to_vec(),
            ciphertext,
        })
    }

    /// Decrypts what [`SecretKeys::seal`] sealed for the same `place`.
    pub fn open(&self, place: &str, sealed: &Sealed) -> Result<SecretString, OpenError> {
        let cipher = self
            .ciphers
            .get(&sealed.key_id)
            .ok_or_else(|| OpenError::UnknownKey(sealed.key_id.clone()))?;
        if sealed.nonce.len() != 12 {
            return Err(OpenError::Corrupt(sealed.key_id.clone()));
        }
        let plain = cipher
            .decrypt(
                Nonce::from_slice(&sealed.nonce),
                Payload {
                    msg: &sealed.ciphertext,
                    aad: place.as_bytes(),
                },
            )
            .map_err(|_| OpenError::Corrupt(sealed.key_id.clone()))?;
        String::from_utf8(plain)
            .map(SecretString)
            .map_err(|_| OpenError::Corrupt(sealed.key_id.clone()))
    }
}

fn decode_key(hex: &str) -> Result<Vec<u8>, &'static str> {
    if hex.len() != 64 {
        return Err("must be 64 hex digits (32 bytes)");
    }
    (0..32)
        .map(|i| u8::from_str_radix(&hex[2 * i..2 * i + 2], 16))
        .collect::<Result<Vec<u8>, _>>()
        .map_err(|_| "must be 64 hex digits (32 bytes)")
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: &str = "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff";
    const B: &str = "ffeeddccbbaa99887766554433221100ffeeddccbbaa99887766554433221100";

    #[test]
    fn a_sealed_value_opens_only_for_its_place_and_never_prints() {
        let keys = SecretKeys::parse(&format!("k1:{A}")).unwrap();
        let secret = SecretString::new("s3cr3t-value");
        let sealed = keys.seal("env/oauth", &secret).unwrap();
        assert_eq!(sealed.key_id, "k1");
        assert!(
            !sealed.ciphertext.windows(6).any(|w| w == b"s3cr3t"),
            "not stored in the clear"
        );
        assert_eq!(keys.open("env/oauth", &sealed).unwrap(), secret);
        assert_eq!(
            keys.open("other-env/oauth", &sealed),
            Err(OpenError::Corrupt("k1".to_owned()))
        );
        assert_eq!(format!("{secret:?} {secret}"), "<redacted> <redacted>");
        assert!(!format!("{keys:?}").contains(A));
        // Two seals of one value differ (fresh nonces).
        assert_ne!(
            keys.seal("env/oauth", &secret).unwrap().ciphertext,
            sealed.ciphertext
        );
    }

    #[test]
    fn ephemeral_keys_are_fresh_each_time() {
        let one = SecretKeys::ephemeral("demo").unwrap();
        let two = SecretKeys::ephemeral("demo").unwrap();
        assert_eq!(one.current_id(), "demo");
        let sealed = one.seal("p", &SecretString::new("v")).unwrap();
        assert_eq!(one.open("p", &sealed).unwrap(), SecretString::new("v"));
        assert_eq!(
            two.open("p", &sealed),
            Err(OpenError::Corrupt("demo".to_owned()))
        );
    }

    #[test]
    fn the_first_key_seals_and_every_key_opens_so_keys_rotate() {
        let old = SecretKeys::parse(&format!("old:{A}")).unwrap();
        let sealed = old.seal("p", &SecretString::new("v")).unwrap();
        let rotated = SecretKeys::parse(&format!("new:{B}, old:{A}")).unwrap();
        assert_eq!(rotated.current_id(), "new");
        assert_eq!(rotated.open("p", &sealed).unwrap().expose(), "v");
        assert_eq!(
            rotated.seal("p", &SecretString::new("v")).unwrap().key_id,
            "new"
        );
        let dropped = SecretKeys::parse(&format!("new:{B}")).unwrap();
        assert_eq!(
            dropped.open("p", &sealed),
            Err(OpenError::UnknownKey("old".to_owned()))
        );
    }

    #[test]
    fn missing_or_malformed_keys_are_explained_without_echoing_them() {
        assert_eq!(
            SecretKeys::parse("").unwrap_err(),
            KeyError::Malformed {
                position: 1,
                rule: "must be 64 hex digits (32 bytes)"
            }
        );
        let short = SecretKeys::parse("k:abcd").unwrap_err();
        assert_eq!(
            short.to_string(),
            "HUBWRIGHT_SECRET_KEY: key #1 must be 64 hex digits (32 bytes)"
        );
        let not_hex = SecretKeys::parse(&format!("{A},k:{}", "zz".repeat(32))).unwrap_err();
        assert_eq!(
            not_hex,
            KeyError::Malformed {
                position: 2,
                rule: "must be 64 hex digits (32 bytes)"
            }
        );
        assert_eq!(
            SecretKeys::parse(&format!("k:{A},k:{B}")).unwrap_err(),
            KeyError::DuplicateId("k".to_owned())
        );
        assert!(
            KeyError::Missing
                .to_string()
                .contains("openssl rand -hex 32")
        );
        let derived = SecretKeys::parse(A).unwrap();
        assert_eq!(derived.current_id().len(), 8);
    }
}
