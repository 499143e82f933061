//! Reading a whole text file a user names (configuration, schemes, score inputs): bounded in
//! size, so that a link to `/dev/zero` or a runaway export is an error and not the machine's
//! memory, and strict about presence, so that a file which is there in any form (a dangling or
//! looping link, a directory, no permission) is an error rather than a fallback to a default.
//! A leaf: it imports nothing of the crate.

use std::io::Read;
use std::path::{Path, PathBuf};

/// Largest configuration or scheme file read (the shipped ones are a few kilobytes).
pub(crate) const CONFIG_LIMIT: u64 = 1 << 20;

/// Largest score-input file read (a year of every measure and region is well under a
/// megabyte).
pub(crate) const INPUT_LIMIT: u64 = 16 << 20;

/// Why a file could not be read as text. Every variant names the file.
#[derive(Debug, thiserror::Error)]
pub enum TextFileError {
    /// A symbolic link whose target does not exist.
    #[error("{path}: a link to {target}, which does not exist")]
    Dangling {
        /// The file named.
        path: PathBuf,
        /// Where the link points.
        target: PathBuf,
    },
    /// A directory where a file was expected.
    #[error("{path}: is a directory, not a file")]
    Directory {
        /// The path.
        path: PathBuf,
    },
    /// Larger than the limit for its kind.
    #[error("{path}: larger than {limit} bytes, the most a {what} may hold: not read")]
    TooLarge {
        /// The file.
        path: PathBuf,
        /// The limit.
        limit: u64,
        /// What kind of file it was read as.
        what: &'static str,
    },
    /// Not UTF-8.
    #[error("{path}: not UTF-8 text (invalid byte at offset {offset})")]
    NotText {
        /// The file.
        path: PathBuf,
        /// The first invalid byte's offset.
        offset: usize,
    },
    /// Any other failure to open or read (no permission, a link that loops).
    #[error("{path}: cannot be read")]
    Io {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
}

/// The text of `path`, at most `limit` bytes (`what` names the kind of file in the error).
pub(crate) fn read(path: &Path, limit: u64, what: &'static str) -> Result<String, TextFileError> {
    let io = |source| TextFileError::Io {
        path: path.to_path_buf(),
        source,
    };
    let mut f = match std::fs::File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            // A link that exists but leads nowhere says so; anything else is plainly absent.
            return Err(match std::fs::read_link(path) {
                Ok(target) => TextFileError::Dangling {
                    path: path.to_path_buf(),
                    target,
                },
                Err(_) => io(e),
            });
        }
        Err(e) => return Err(io(e)),
    };
    if f.metadata().map_err(io)?.is_dir() {
        return Err(TextFileError::Directory {
            path: path.to_path_buf(),
        });
    }
    // Read one byte past the limit, never more, whatever the file claims to be (a FIFO, a
    // device, a file still growing).
    let mut bytes = Vec::new();
    (&mut f)
        .take(limit.saturating_add(1))
        .read_to_end(&mut bytes)
        .map_err(io)?;
    if bytes.len() as u64 > limit {
        return Err(TextFileError::TooLarge {
            path: path.to_path_buf(),
            limit,
            what,
        });
    }
    String::from_utf8(bytes).map_err(|e| TextFileError::NotText {
        path: path.to_path_buf(),
        offset: e.utf8_error().valid_up_to(),
    })
}

/// [`read`], with `None` only when nothing at all is at `path`. A dangling link, a directory,
/// a file without permission: each is an error, never `None`, so that no caller falls back to a
/// default while the user's file is there.
pub(crate) fn read_optional(
    path: &Path,
    limit: u64,
    what: &'static str,
) -> Result<Option<String>, TextFileError> {
    match std::fs::symlink_metadata(path) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        _ => read(path, limit, what).map(Some),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_form_of_a_file_that_is_there_is_read_or_refused_never_absent() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        assert!(
            read_optional(&d.join("none.toml"), 10, "file")
                .unwrap()
                .is_none()
        );
        std::fs::write(d.join("ok.toml"), "a = 1\n").unwrap();
        assert_eq!(
            read_optional(&d.join("ok.toml"), 10, "file")
                .unwrap()
                .as_deref(),
            Some("a = 1\n")
        );

        std::os::unix::fs::symlink(d.join("missing"), d.join("dangling.toml")).unwrap();
        let e = read_optional(&d.join("dangling.toml"), 10, "file").unwrap_err();
        assert!(e.to_string().contains("which does not exist"), "{e}");

        std::os::unix::fs::symlink(d.join("loop.toml"), d.join("loop.toml")).unwrap();
        let e = read_optional(&d.join("loop.toml"), 10, "file").unwrap_err();
        assert!(matches!(e, TextFileError::Io { .. }), "{e}");

        std::fs::create_dir(d.join("dir.toml")).unwrap();
        let e = read_optional(&d.join("dir.toml"), 10, "file").unwrap_err();
        assert!(e.to_string().ends_with("is a directory, not a file"), "{e}");

        let e = read(Path::new("/dev/zero"), 1000, "configuration file").unwrap_err();
        assert_eq!(
            e.to_string(),
            "/dev/zero: larger than 1000 bytes, the most a configuration file may hold: not read"
        );

        std::fs::write(d.join("bin"), b"ab\xffcd").unwrap();
        let e = read(&d.join("bin"), 10, "file").unwrap_err();
        assert!(e.to_string().contains("offset 2"), "{e}");
    }
}
