//! Secrets in configuration: `env:NAME` reads an environment variable,
//! `file:PATH` reads a file (trailing newline dropped), anything else is the
//! secret itself. The value lives in a [`secrecy::SecretString`]: `Debug`
//! prints `[REDACTED]`, so a secret never reaches a log.
//!
//! Text that may carry one (an error naming a URL, a header, an answer's
//! body that echoes a token) goes through [`redact`] before it is printed,
//! stored as an outbox error, or served: every secret this process read is
//! remembered for it.

use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Deserializer};

#[derive(Clone)]
pub struct Secret(SecretString, Option<String>);

/// Every secret value read by this process, for [`redact`].
static KNOWN: std::sync::RwLock<Vec<String>> = std::sync::RwLock::new(Vec::new());

/// Shorter values are not scrubbed from text: "ab" would blank every word
/// holding it (and so short a secret is no secret).
const MIN_SCRUBBED: usize = 4;

fn remember(value: &str) {
    if value.len() < MIN_SCRUBBED {
        return;
    }
    if let Ok(mut known) = KNOWN.write()
        && !known.iter().any(|k| k == value)
    {
        known.push(value.to_owned());
        // Longest first: a secret holding another is scrubbed whole.
        known.sort_by_key(|k| std::cmp::Reverse(k.len()));
    }
}

/// The one redaction of the bridge: `text` with the password of every URL
/// in it (`scheme://user:password@host`) and every secret value this
/// process read replaced by `***`. Use it on any text that may carry a
/// URL, a header or a body before it is printed, logged, stored or served.
pub fn redact(text: &str) -> String {
    let mut out = redact_userinfo(text);
    if let Ok(known) = KNOWN.read() {
        for secret in known.iter() {
            if out.contains(secret.as_str()) {
                out = out.replace(secret.as_str(), "***");
            }
        }
    }
    out
}

/// Remembers the password of every `scheme://user:password@` URL in
/// `text` (a configuration file, an environment variable) as a secret: an
/// error may repeat it without its URL (`user:password` in a body).
pub fn remember_url_passwords(text: &str) {
    let mut rest = text;
    while let Some(i) = rest.find("://") {
        rest = &rest[i + 3..];
        let end = rest.find(authority_end).unwrap_or(rest.len());
        if let Some((userinfo, _)) = rest[..end].rsplit_once('@')
            && let Some((_, password)) = userinfo.split_once(':')
        {
            remember(password);
        }
        rest = &rest[end..];
    }
}

/// Where a URL's authority ends inside a message or a file.
fn authority_end(c: char) -> bool {
    matches!(
        c,
        '/' | '?' | '#' | '"' | '\'' | '`' | '<' | '>' | '(' | ')' | '[' | ']'
    ) || c.is_whitespace()
}

/// Every `scheme://user:password@` in `text` as `scheme://user:***@`.
fn redact_userinfo(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(i) = rest.find("://") {
        let (before, after) = rest.split_at(i + 3);
        out.push_str(before);
        // The authority ends at the path, the query, the fragment, or
        // whatever cannot be in a URL written inside a message.
        let end = after.find(authority_end).unwrap_or(after.len());
        let authority = &after[..end];
        match authority
            .rsplit_once('@')
            .and_then(|(userinfo, host)| Some((userinfo.split_once(':')?.0, host)))
        {
            Some((user, host)) => {
                out.push_str(user);
                out.push_str(":***@");
                out.push_str(host);
            }
            None => out.push_str(authority),
        }
        rest = &after[end..];
    }
    out.push_str(rest);
    out
}

impl Secret {
    pub fn new(value: &str) -> Secret {
        remember(value);
        Secret(SecretString::from(value.to_owned()), None)
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
            Ok(Secret::new(&value).read_from(spec))
        } else if let Some(path) = spec.strip_prefix("file:") {
            let value = std::fs::read_to_string(path)
                .map_err(|e| format!("cannot read the secret file `{path}`: {e}"))?;
            Ok(Secret::new(value.trim_end_matches(['\n', '\r'])).read_from(spec))
        } else {
            Ok(Secret::new(spec))
        }
    }
}

impl Secret {
    /// Remembers where the value came from (`env:NAME`, `file:PATH`): that
    /// is no secret, and `config show` prints it.
    fn read_from(mut self, spec: &str) -> Secret {
        self.1 = Some(spec.to_owned());
        self
    }
}

/// A secret serializes as where it is read from (`env:NAME`, `file:PATH`),
/// or as `***` when it was written in the configuration itself: never its value.
impl serde::Serialize for Secret {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.1.as_deref().unwrap_or("***"))
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
        assert_eq!(
            serde_json::to_string(&s).unwrap(),
            format!("\"file:{}\"", f.display())
        );
        assert_eq!(
            serde_json::to_string(&Secret::resolve("plain").unwrap()).unwrap(),
            "\"***\""
        );
    }

    #[test]
    fn redaction_scrubs_url_passwords_and_every_secret_read() {
        let _token = Secret::new("tok-REDACT-ME-42");
        let text = "POST https://bob:pa:ss@books.example.com/api?x=1 failed (http://h/ok, \
                    \"postgres://u:p%40w@db:5432/x\"): HTTP 401: Bearer tok-REDACT-ME-42 refused";
        let out = redact(text);
        assert_eq!(
            out,
            "POST https://bob:***@books.example.com/api?x=1 failed (http://h/ok, \
             \"postgres://u:***@db:5432/x\"): HTTP 401: Bearer *** refused"
        );
        // A user without a password, and text without a URL, stay as they are.
        assert_eq!(redact("ssh://git@host/x"), "ssh://git@host/x");
        assert_eq!(redact("no url: a://"), "no url: a://");
        let _short = Secret::new("ab");
        assert_eq!(redact("tab"), "tab", "too short to scrub");
        remember_url_passwords("url = \"https://acct:pw-REDACT-ME-7@host/x\"");
        assert_eq!(redact("acct:pw-REDACT-ME-7 refused"), "acct:*** refused");
    }
}
