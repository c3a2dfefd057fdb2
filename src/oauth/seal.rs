//! Refresh tokens at rest: sealed with XChaCha20-Poly1305 under the store
//! key, the target's name as associated data (a token copied to another
//! target's row does not open), a fresh random 192-bit nonce per seal.
//!
//! The key: `[secrets] key` (or `CONTRACT_BRIDGE__SECRETS__KEY`), else
//! `CONTRACT_BRIDGE_SECRET_KEY`, base64 of 32 bytes; else, for a SQLite
//! store, the key file `<database>.key` beside it, created with mode 0600
//! the first time a token is sealed. A PostgreSQL store needs the key
//! configured: every instance must hold the same one.

use std::path::PathBuf;

use base64::Engine;
use chacha20poly1305::aead::{Aead, Generate, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};

use crate::settings::Settings;

/// The environment variable that may hold the key.
pub const KEY_ENV: &str = "CONTRACT_BRIDGE_SECRET_KEY";
const PREFIX: &str = "xc20p1:";

#[derive(Debug, thiserror::Error)]
pub enum SealError {
    #[error("{0}")]
    Key(String),
    #[error(
        "the stored refresh token of `{target}` does not open with this key ({why}): is it the key the token was stored with? Otherwise run `contract-bridge connect {target} --config FILE` again"
    )]
    Open { target: String, why: &'static str },
}

/// The key that seals the refresh tokens.
pub struct SealKey {
    cipher: XChaCha20Poly1305,
}

impl std::fmt::Debug for SealKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SealKey(***)")
    }
}

fn decode(text: &str, from: &str) -> Result<SealKey, SealError> {
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(text.trim())
        .map_err(|e| {
            SealError::Key(format!(
                "{from}: not base64 ({e}); make one with `head -c 32 /dev/urandom | base64`"
            ))
        })?;
    let cipher = XChaCha20Poly1305::new_from_slice(&bytes).map_err(|_| {
        SealError::Key(format!(
            "{from}: the key is {} bytes; it must be 32 (base64 of 32 random bytes: `head -c 32 /dev/urandom | base64`)",
            bytes.len()
        ))
    })?;
    Ok(SealKey { cipher })
}

/// The key file beside a SQLite store; none for PostgreSQL.
fn key_file(settings: &Settings) -> Option<PathBuf> {
    let url = settings.store.url.as_str();
    let path = url.strip_prefix("sqlite://")?;
    let path = path.split('?').next().unwrap_or(path);
    Some(PathBuf::from(format!("{path}.key")))
}

impl SealKey {
    /// The configured key; for a SQLite store without one, its key file,
    /// created (mode 0600) when `create` and it does not exist yet.
    /// `Ok(None)`: no key anywhere and none created.
    pub fn load(settings: &Settings, create: bool) -> Result<Option<SealKey>, SealError> {
        if let Some(secret) = &settings.secrets.key {
            return decode(secret.expose(), "`secrets.key`").map(Some);
        }
        if let Ok(v) = std::env::var(KEY_ENV) {
            return decode(&v, KEY_ENV).map(Some);
        }
        let Some(file) = key_file(settings) else {
            return if create {
                Err(SealError::Key(format!(
                    "a PostgreSQL store keeps OAuth tokens sealed with a key every instance shares: set `[secrets] key` or {KEY_ENV} to base64 of 32 random bytes (`head -c 32 /dev/urandom | base64`)"
                )))
            } else {
                Ok(None)
            };
        };
        match std::fs::read_to_string(&file) {
            Ok(text) => decode(&text, &file.display().to_string()).map(Some),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && create => {
                let mut raw = [0u8; 32];
                getrandom::fill(&mut raw)
                    .map_err(|e| SealError::Key(format!("no random key: {e}")))?;
                let text = base64::engine::general_purpose::STANDARD.encode(raw);
                write_private(&file, &text)
                    .map_err(|e| SealError::Key(format!("key file {}: {e}", file.display())))?;
                tracing::info!(file = %file.display(), "created the key that seals OAuth tokens");
                decode(&text, &file.display().to_string()).map(Some)
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(SealError::Key(format!("key file {}: {e}", file.display()))),
        }
    }

    /// The key, which must exist because a sealed token does.
    pub fn require(settings: &Settings, target: &str) -> Result<SealKey, SealError> {
        SealKey::load(settings, false)?.ok_or_else(|| {
            let file = key_file(settings)
                .map(|f| format!(" (nor the key file {})", f.display()))
                .unwrap_or_default();
            SealError::Key(format!(
                "the store holds a sealed refresh token for `{target}` but no key opens it: neither `[secrets] key` nor {KEY_ENV} is set{file}; set the key it was stored with, or run `contract-bridge connect {target} --config FILE` again"
            ))
        })
    }

    pub fn from_base64(text: &str) -> Result<SealKey, SealError> {
        decode(text, "key")
    }

    pub fn seal(&self, target: &str, token: &str) -> String {
        let nonce = XNonce::generate();
        let sealed = self
            .cipher
            .encrypt(
                &nonce,
                Payload {
                    msg: token.as_bytes(),
                    aad: target.as_bytes(),
                },
            )
            .expect("XChaCha20-Poly1305 seals any length a token has");
        let mut bytes = nonce.to_vec();
        bytes.extend(sealed);
        format!(
            "{PREFIX}{}",
            base64::engine::general_purpose::STANDARD.encode(bytes)
        )
    }

    pub fn open(&self, target: &str, sealed: &str) -> Result<String, SealError> {
        let err = |why| SealError::Open {
            target: target.to_owned(),
            why,
        };
        let bytes = sealed
            .strip_prefix(PREFIX)
            .and_then(|b| base64::engine::general_purpose::STANDARD.decode(b).ok())
            .ok_or_else(|| err("not a sealed token"))?;
        if bytes.len() < 24 {
            return Err(err("too short"));
        }
        let (nonce, body) = bytes.split_at(24);
        let nonce = XNonce::try_from(nonce).map_err(|_| err("bad nonce"))?;
        let plain = self
            .cipher
            .decrypt(
                &nonce,
                Payload {
                    msg: body,
                    aad: target.as_bytes(),
                },
            )
            .map_err(|_| err("authentication failed"))?;
        String::from_utf8(plain).map_err(|_| err("not text"))
    }
}

/// Creates `path` readable by its owner only, with `text`, atomically:
/// written to a temporary file first, so no one ever reads half a key.
fn write_private(path: &std::path::Path, text: &str) -> std::io::Result<()> {
    use std::io::Write;
    let tmp = path.with_extension("key.tmp");
    let mut o = std::fs::OpenOptions::new();
    o.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        o.mode(0o600);
    }
    let mut f = o.open(&tmp)?;
    f.write_all(text.as_bytes())?;
    f.sync_all()?;
    // A second `connect` racing this one keeps the first key.
    std::fs::hard_link(&tmp, path).or_else(|e| {
        if e.kind() == std::io::ErrorKind::AlreadyExists {
            Ok(())
        } else {
            Err(e)
        }
    })?;
    std::fs::remove_file(&tmp)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sealed_token_opens_only_with_its_key_and_target() {
        let key =
            SealKey::from_base64(&base64::engine::general_purpose::STANDARD.encode([7u8; 32]))
                .unwrap();
        let other =
            SealKey::from_base64(&base64::engine::general_purpose::STANDARD.encode([8u8; 32]))
                .unwrap();
        let a = key.seal("xero", "rt-secret");
        let b = key.seal("xero", "rt-secret");
        assert_ne!(a, b, "a fresh nonce each time");
        assert!(!a.contains("rt-secret"));
        assert_eq!(key.open("xero", &a).unwrap(), "rt-secret");
        assert!(other.open("xero", &a).is_err());
        assert!(key.open("qbo", &a).is_err(), "bound to the target");
        assert!(key.open("xero", "rt-secret").is_err());
        assert!(SealKey::from_base64("c2hvcnQ=").is_err());
    }
}
