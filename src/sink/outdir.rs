//! An output directory whose files appear together or not at all: a command writes every file
//! into a staging directory inside it (`.srv-opr-staging-PID-N`), and only when all are complete
//! and on disk does [`OutDir::publish`] move them into place. A failure (a full disk), an
//! error or a signal leaves the directory as it was: never a mix of two runs, never a
//! temporary file (the signal handler removes the staging directories, [`remove_staged`]).
//! Only the files a command writes are replaced; anything else in the directory stays.

use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

/// The staging directories of this process not yet published or removed: what a signal must
/// clean up. Held while a set is published, so a signal never cuts a publication in half.
static STAGES: Mutex<Vec<PathBuf>> = Mutex::new(Vec::new());

fn stages() -> std::sync::MutexGuard<'static, Vec<PathBuf>> {
    STAGES
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// The prefix of a staging directory's name; its process id follows.
const STAGE_PREFIX: &str = ".srv-opr-staging-";

/// Removes every staging directory of this process (a signal is ending it) and keeps the lock,
/// so that nothing can stage or publish again before the process exits.
pub fn remove_staged() -> std::sync::MutexGuard<'static, Vec<PathBuf>> {
    let mut held = stages();
    for stage in held.drain(..) {
        let _ = std::fs::remove_dir_all(&stage);
    }
    held
}

/// The directory a command writes into.
#[derive(Debug)]
pub struct OutDir {
    dir: PathBuf,
    stage: PathBuf,
    published: bool,
}

/// `what` failed on `path`, said with the path (the OS error alone names no file).
fn at(path: &Path, what: &str, e: io::Error) -> io::Error {
    io::Error::new(e.kind(), format!("{what} {}: {e}", path.display()))
}

impl OutDir {
    /// Creates `dir` (and its parents) if missing, and a staging directory inside it. Staging
    /// directories that a killed process left behind are removed first.
    pub fn create(dir: &Path) -> io::Result<OutDir> {
        std::fs::create_dir_all(dir).map_err(|e| at(dir, "cannot create output directory", e))?;
        remove_stale(dir);
        // One stage per OutDir, even two on one directory in one process.
        static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let stage = dir.join(format!("{STAGE_PREFIX}{}-{n}", std::process::id()));
        let mut held = stages();
        let _ = std::fs::remove_dir_all(&stage);
        std::fs::create_dir(&stage).map_err(|e| at(&stage, "cannot create", e))?;
        held.push(stage.clone());
        Ok(OutDir {
            dir: dir.to_path_buf(),
            stage,
            published: false,
        })
    }

    /// The directory.
    pub fn path(&self) -> &Path {
        &self.dir
    }

    /// Starts writing `name` (a path relative to the directory, `evidence/PM4.3.csv`):
    /// nothing is visible under that name until [`OutDir::publish`].
    pub(crate) fn file(&self, name: &str) -> io::Result<AtomicFile> {
        let target = self.dir.join(name);
        let staged = self.stage.join(name);
        // Under the lock, and only while the stage is registered: after a signal has removed
        // it, nothing may create it again.
        let held = stages();
        if !held.contains(&self.stage) {
            return Err(io::Error::other(format!(
                "cannot write {}: the command is being stopped",
                target.display()
            )));
        }
        if let Some(parent) = staged.parent() {
            std::fs::create_dir_all(parent).map_err(|e| at(&target, "cannot write", e))?;
        }
        let f = File::create(&staged).map_err(|e| at(&target, "cannot write", e))?;
        drop(held);
        Ok(AtomicFile {
            w: Some(BufWriter::with_capacity(1 << 16, f)),
            staged,
            target,
        })
    }

    /// Writes a whole file at once.
    pub fn write(&self, name: &str, bytes: &[u8]) -> io::Result<()> {
        let mut f = self.file(name)?;
        f.write_all(bytes)?;
        f.commit()
    }

    /// Moves every committed file into place, replacing those of an earlier run, and removes
    /// the staging directory. Every file was written and synced before: what is left is a
    /// rename per file, which needs no space.
    pub fn publish(mut self) -> io::Result<()> {
        let held = stages();
        let mut files = Vec::new();
        staged_files(&self.stage, Path::new(""), &mut files)
            .map_err(|e| at(&self.stage, "cannot read", e))?;
        for rel in &files {
            let target = self.dir.join(rel);
            if let Some(parent) = target.parent() {
                std::fs::create_dir_all(parent).map_err(|e| at(parent, "cannot create", e))?;
            }
            std::fs::rename(self.stage.join(rel), &target)
                .map_err(|e| at(&target, "cannot move into place", e))?;
        }
        // The renames themselves on disk.
        if let Ok(d) = File::open(&self.dir) {
            let _ = d.sync_all();
        }
        self.published = true;
        drop(held);
        self.discard();
        Ok(())
    }

    /// Removes the staging directory and forgets it.
    fn discard(&mut self) {
        let mut held = stages();
        if let Some(i) = held.iter().position(|s| *s == self.stage) {
            held.swap_remove(i);
            let _ = std::fs::remove_dir_all(&self.stage);
        }
    }
}

impl Drop for OutDir {
    fn drop(&mut self) {
        // Not published (an error on the way): nothing of this run appears.
        self.discard();
    }
}

/// Files under `dir` (relative to the stage, `rel`), depth first.
fn staged_files(dir: &Path, rel: &Path, out: &mut Vec<PathBuf>) -> io::Result<()> {
    let mut entries: Vec<_> = std::fs::read_dir(dir)?.collect::<Result<_, _>>()?;
    entries.sort_by_key(std::fs::DirEntry::file_name);
    for e in entries {
        let name = rel.join(e.file_name());
        if e.file_type()?.is_dir() {
            staged_files(&e.path(), &name, out)?;
        } else {
            out.push(name);
        }
    }
    Ok(())
}

/// Removes staging directories in `dir` whose process is gone (killed with SIGKILL, or a
/// machine that stopped): what they hold was never published.
fn remove_stale(dir: &Path) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let name = e.file_name();
        let Some(pid) = name
            .to_str()
            .and_then(|n| n.strip_prefix(STAGE_PREFIX))
            .and_then(|p| p.split('-').next())
            .and_then(|p| p.parse::<u32>().ok())
        else {
            continue;
        };
        if pid != std::process::id() && !Path::new(&format!("/proc/{pid}")).exists() {
            let _ = std::fs::remove_dir_all(e.path());
        }
    }
}

/// A file being written into the staging directory.
pub(crate) struct AtomicFile {
    /// `None` once committed.
    w: Option<BufWriter<File>>,
    staged: PathBuf,
    target: PathBuf,
}

impl AtomicFile {
    /// Flushes and syncs the file: it is complete, and appears with the others when the
    /// directory is published.
    pub fn commit(mut self) -> io::Result<()> {
        let w = self
            .w
            .take()
            .ok_or_else(|| io::Error::other("file already committed"))?;
        let f = w
            .into_inner()
            .map_err(|e| at(&self.target, "cannot write", e.into_error()))?;
        f.sync_all()
            .map_err(|e| at(&self.target, "cannot write", e))?;
        // Committed: Drop leaves it for the publication.
        self.staged.clear();
        Ok(())
    }

    fn writer(&mut self) -> io::Result<&mut BufWriter<File>> {
        self.w
            .as_mut()
            .ok_or_else(|| io::Error::other("file already committed"))
    }
}

impl Write for AtomicFile {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let target = self.target.clone();
        self.writer()?
            .write(buf)
            .map_err(|e| at(&target, "cannot write", e))
    }
    fn write_all(&mut self, buf: &[u8]) -> io::Result<()> {
        let target = self.target.clone();
        self.writer()?
            .write_all(buf)
            .map_err(|e| at(&target, "cannot write", e))
    }
    fn flush(&mut self) -> io::Result<()> {
        let target = self.target.clone();
        self.writer()?
            .flush()
            .map_err(|e| at(&target, "cannot write", e))
    }
}

impl Drop for AtomicFile {
    fn drop(&mut self) {
        // Not committed (an error on the way): it is not part of the set.
        if !self.staged.as_os_str().is_empty() {
            let _ = std::fs::remove_file(&self.staged);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn files_appear_together_on_publish_and_not_at_all_without_it() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        std::fs::write(d.join("keep.txt"), "not ours").unwrap();
        std::fs::write(d.join("a.csv"), "old").unwrap();
        // A command that fails half way: nothing of it appears, the old file stays.
        {
            let out = OutDir::create(d).unwrap();
            out.write("a.csv", b"new").unwrap();
            out.write("evidence/x.csv", b"x").unwrap();
        }
        assert_eq!(std::fs::read_to_string(d.join("a.csv")).unwrap(), "old");
        assert!(!d.join("evidence").exists());
        let names: Vec<_> = std::fs::read_dir(d)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        assert_eq!(names.len(), 2, "{names:?}");
        // One that finishes: all of it, at once; what it does not write stays.
        let out = OutDir::create(d).unwrap();
        out.write("a.csv", b"new").unwrap();
        out.write("evidence/x.csv", b"x").unwrap();
        let mut unfinished = out.file("b.csv").unwrap();
        unfinished.write_all(b"half").unwrap();
        drop(unfinished);
        assert_eq!(std::fs::read_to_string(d.join("a.csv")).unwrap(), "old");
        out.publish().unwrap();
        assert_eq!(std::fs::read_to_string(d.join("a.csv")).unwrap(), "new");
        assert_eq!(
            std::fs::read_to_string(d.join("evidence/x.csv")).unwrap(),
            "x"
        );
        assert_eq!(
            std::fs::read_to_string(d.join("keep.txt")).unwrap(),
            "not ours"
        );
        assert!(
            !d.join("b.csv").exists(),
            "an uncommitted file was published"
        );
        assert!(
            std::fs::read_dir(d).unwrap().all(|e| !e
                .unwrap()
                .file_name()
                .to_string_lossy()
                .starts_with('.')),
            "a staging directory is left"
        );
    }

    #[test]
    fn a_stage_left_by_a_dead_process_is_removed() {
        let dir = tempfile::tempdir().unwrap();
        // No process has this id (above the kernel's pid_max).
        let stale = dir.path().join(format!("{STAGE_PREFIX}4294967290-0"));
        std::fs::create_dir(&stale).unwrap();
        std::fs::write(stale.join("rpl.csv"), "half").unwrap();
        drop(OutDir::create(dir.path()).unwrap());
        assert!(!stale.exists());
    }
}
