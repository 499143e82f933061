//! Secrets: where each one is read from (an environment variable, or a file such as a
//! Kubernetes secret mounted into the pod), and [`Secret`], the type that never prints.
//!
//! Every secret setting comes in two forms, `…_env` (a variable's name) and `…_file` (a path);
//! at most one of them may be set. A value is read when the connection that needs it is made,
//! not when the configuration loads, so `check` and `demo` need none of them, and a rotated file
//! is read again at the next start.

use std::path::PathBuf;

/// A secret value: shown as `*****` by `Debug` and `Display`, and registered with
/// [`crate::diagnostic::redact`], so that no library's log or error that echoes it can show it.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps a value (and remembers it as one to mask).
    pub fn new(v: String) -> Secret {
        crate::diagnostic::register_secret(&v);
        Secret(v)
    }

    /// The value, for handing to a client library only.
    pub(crate) fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(crate::diagnostic::MASK)
    }
}

impl std::fmt::Display for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(crate::diagnostic::MASK)
    }
}

/// Where one secret comes from.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum SecretSource {
    /// Not configured.
    #[default]
    None,
    /// The value of this environment variable.
    Env(String),
    /// The content of this file, less one trailing newline (what `kubectl create secret
    /// --from-file` and most editors leave).
    File(PathBuf),
}

/// Why a configured secret could not be read. Never carries the value.
#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    /// The variable is not set.
    #[error("{setting} reads environment variable {variable}, which is not set")]
    Unset {
        /// The setting that names it.
        setting: String,
        /// The variable.
        variable: String,
    },
    /// The file cannot be read.
    #[error("{setting} reads {path}")]
    File {
        /// The setting that names it.
        setting: String,
        /// The file.
        path: String,
        /// Why not.
        #[source]
        source: std::io::Error,
    },
    /// The variable or file holds nothing (a mount that failed, an unset secret key).
    #[error("{setting} reads {from}, which is empty")]
    Empty {
        /// The setting that names it.
        setting: String,
        /// The variable or file.
        from: String,
    },
}

impl SecretSource {
    /// The source named by a pair of settings (`env`, `file`: either may be empty). Both set is
    /// a mistake, reported as the problem's text.
    pub fn of(env: &str, file: &str) -> Result<SecretSource, String> {
        match (env.trim(), file.trim()) {
            ("", "") => Ok(SecretSource::None),
            (e, "") => Ok(SecretSource::Env(e.to_string())),
            ("", f) => Ok(SecretSource::File(PathBuf::from(f))),
            _ => Err("set the _env or the _file form of this secret, not both".into()),
        }
    }

    /// Whether a source is configured.
    pub(crate) fn is_set(&self) -> bool {
        !matches!(self, SecretSource::None)
    }

    /// Reads the secret from the process environment or the file; `setting` names it in errors.
    pub(crate) fn read(&self, setting: &str) -> Result<Option<Secret>, SecretError> {
        self.read_with(setting, |v| std::env::var(v).ok())
    }

    /// [`SecretSource::read`] with the environment given (tests).
    pub(crate) fn read_with(
        &self,
        setting: &str,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<Option<Secret>, SecretError> {
        let (value, from) = match self {
            SecretSource::None => return Ok(None),
            SecretSource::Env(var) => {
                let v = env(var).ok_or_else(|| SecretError::Unset {
                    setting: setting.to_string(),
                    variable: var.clone(),
                })?;
                (v, format!("environment variable {var}"))
            }
            SecretSource::File(path) => {
                let v = std::fs::read_to_string(path).map_err(|source| SecretError::File {
                    setting: setting.to_string(),
                    path: path.display().to_string(),
                    source,
                })?;
                let v = v
                    .strip_suffix("\r\n")
                    .or_else(|| v.strip_suffix('\n'))
                    .unwrap_or(&v)
                    .to_string();
                (v, path.display().to_string())
            }
        };
        if value.is_empty() {
            return Err(SecretError::Empty {
                setting: setting.to_string(),
                from,
            });
        }
        Ok(Some(Secret::new(value)))
    }
}

/// `text` (a URL, or a message quoting one) with the password of any `scheme://user:password@`
/// and the value of any `password=` query parameter masked, whatever the scheme.
pub(crate) fn mask_url(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(i) = rest.find("://") {
        let (head, tail) = rest.split_at(i + 3);
        out.push_str(head);
        // The authority ends at the first '/', '?', '#', quote or space.
        let end = tail
            .find(['/', '?', '#', '"', '\'', ' ', '\n'])
            .unwrap_or(tail.len());
        let authority = &tail[..end];
        match (authority.rfind('@'), authority.find(':')) {
            (Some(at), Some(colon)) if colon < at => {
                out.push_str(&authority[..colon + 1]);
                out.push_str(crate::diagnostic::MASK);
                out.push_str(&authority[at..]);
            }
            _ => out.push_str(authority),
        }
        rest = &tail[end..];
    }
    out.push_str(rest);
    mask_password_parameters(&out)
}

/// `password=VALUE` (libpq's URL parameter, any case) masked up to the next `&`, space or quote.
fn mask_password_parameters(text: &str) -> String {
    let lower = text.to_ascii_lowercase();
    let mut out = String::with_capacity(text.len());
    let mut from = 0;
    for (i, _) in lower.match_indices("password=") {
        if i < from {
            continue;
        }
        let start = i + "password=".len();
        out.push_str(&text[from..start]);
        let end = text[start..]
            .find(['&', ' ', '"', '\'', '\n', '#'])
            .map_or(text.len(), |e| start + e);
        if end > start {
            out.push_str(crate::diagnostic::MASK);
        }
        from = end;
    }
    out.push_str(&text[from..]);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_never_print() {
        let s = Secret::new("hunter2".into());
        assert_eq!(format!("{s} {s:?}"), "***** *****");
    }

    #[test]
    fn a_secret_comes_from_one_variable_or_one_file() {
        assert_eq!(SecretSource::of("", ""), Ok(SecretSource::None));
        assert_eq!(
            SecretSource::of("PW", ""),
            Ok(SecretSource::Env("PW".into()))
        );
        assert!(SecretSource::of("PW", "/run/pw").is_err());

        let env = SecretSource::Env("PW".into());
        let got = env
            .read_with("state.password_env", |v| {
                (v == "PW").then(|| "env-secret-1".into())
            })
            .unwrap()
            .unwrap();
        assert_eq!(got.expose(), "env-secret-1");
        let err = env.read_with("state.password_env", |_| None).unwrap_err();
        assert_eq!(
            err.to_string(),
            "state.password_env reads environment variable PW, which is not set"
        );
        let err = env
            .read_with("state.password_env", |_| Some(String::new()))
            .unwrap_err();
        assert!(err.to_string().contains("which is empty"), "{err}");

        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("pw");
        // One trailing newline is not part of the secret; anything else is.
        std::fs::write(&path, "file secret 2 \n").unwrap();
        let file = SecretSource::File(path.clone());
        assert_eq!(
            file.read("x_file").unwrap().unwrap().expose(),
            "file secret 2 "
        );
        std::fs::write(&path, "file-secret-3\r\n").unwrap();
        assert_eq!(
            file.read("x_file").unwrap().unwrap().expose(),
            "file-secret-3"
        );
        let missing = SecretSource::File(dir.path().join("absent"));
        let err = missing.read("x_file").unwrap_err();
        let text = crate::diagnostic::chain(&err);
        assert!(
            text.starts_with("x_file reads ") && text.contains("absent"),
            "{text}"
        );
    }

    #[test]
    fn urls_are_masked_whatever_their_scheme() {
        assert_eq!(
            mask_url("state.url \"mysql://app:s3cret@db:3306/x\" is neither"),
            "state.url \"mysql://app:*****@db:3306/x\" is neither"
        );
        assert_eq!(
            mask_url("postgres://u:p@h/db?sslmode=verify-full&password=pw2&x=1"),
            "postgres://u:*****@h/db?sslmode=verify-full&password=*****&x=1"
        );
        assert_eq!(mask_url("https://am:9093/x"), "https://am:9093/x");
        assert_eq!(mask_url("http://user@h/"), "http://user@h/");
        assert_eq!(
            mask_url("a https://u:p@h and ftp://v:q@i"),
            "a https://u:*****@h and ftp://v:*****@i"
        );
        assert_eq!(mask_url("PASSWORD=x y"), "PASSWORD=***** y");
    }
}
