//! Secrets in configuration: `env:NAME` reads an environment variable,
//! `file:PATH` reads a file (trailing newline dropped), anything else is the
//! secret itself. The value lives in a [`secrecy::SecretString`]: `Debug`
//! prints `[REDACTED]`, so a secret never reaches a log.

use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Deserializer};

#[derive(Clone)]
pub struct Secret(SecretString);

impl Secret {
    pub fn new(value: &str) -> Secret {
        Secret(SecretString::from(value.to_owned()))
    }

    pub fn expose(&self) -> &str {
        self.0.expose_secret()
    }

    /// Resolves `env:NAME`, `file:PATH` or a literal; an empty secret is
    /// refused (anyone could sign with it).
    pub fn resolve(spec: &str) -> Result<Secret, String> {
        let secret = Self::read(spec)?;
        if secret.expose().is_empty() {
            return Err(format!(
                "the secret `{spec}` is empty: anyone could sign with an empty secret"
            ));
        }
        Ok(secret)
    }

    fn read(spec: &str) -> Result<Secret, String> {
        if let Some(name) = spec.strip_prefix("env:") {
            let value = std::env::var(name).map_err(|_| {
                format!("environment variable `{name}` is not set (the secret is read from it)")
            })?;
            Ok(Secret::new(&value))
        } else if let Some(path) = spec.strip_prefix("file:") {
            let value = std::fs::read_to_string(path)
                .map_err(|e| format!("cannot read the secret file `{path}`: {e}"))?;
            Ok(Secret::new(value.trim_end_matches(['\n', '\r'])))
        } else {
            Ok(Secret::new(spec))
        }
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret([REDACTED])")
    }
}

impl<'de> Deserialize<'de> for Secret {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Secret, D::Error> {
        let spec = String::deserialize(d)?;
        Secret::resolve(&spec).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_secret_comes_from_a_file_or_the_environment_and_never_prints() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("token");
        std::fs::write(&f, "s3cret\n").unwrap();
        let s = Secret::resolve(&format!("file:{}", f.display())).unwrap();
        assert_eq!(s.expose(), "s3cret");
        assert!(!format!("{s:?}").contains("s3cret"));
        let err = Secret::resolve("env:CONTRACT_BRIDGE_SURELY_UNSET_VAR").unwrap_err();
        assert!(err.contains("CONTRACT_BRIDGE_SURELY_UNSET_VAR"), "{err}");
        assert_eq!(Secret::resolve("plain").unwrap().expose(), "plain");
        assert!(Secret::resolve("").is_err());
    }
}
