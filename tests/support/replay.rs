//! Helpers shared by the replay tests.

use std::path::{Path, PathBuf};

use srv_opr::cli;
use srv_opr::config::Config;
use srv_opr::source::files::inputs_from_paths;

/// What a replay wrote.
pub struct Replayed {
    pub rpl: String,
    pub failures: String,
    pub dead: Vec<serde_json::Value>,
    pub summary: serde_json::Value,
    /// `evidence/<file>` → text.
    pub evidence: std::collections::BTreeMap<String, String>,
}

impl Replayed {
    /// Dead letters as (reason, origin).
    pub fn dead_reasons(&self) -> Vec<(String, String)> {
        self.dead
            .iter()
            .map(|d| {
                (
                    d["reason"].as_str().unwrap().to_string(),
                    d["origin"].as_str().unwrap().to_string(),
                )
            })
            .collect()
    }

    /// Count of dead letters with `reason`.
    pub fn dead_count(&self, reason: &str) -> usize {
        self.dead.iter().filter(|d| d["reason"] == reason).count()
    }

    /// The `rpl.csv` line for a month, measure and region, split into fields.
    pub fn row(&self, month: &str, measure: &str, region: &str) -> Vec<String> {
        let prefix = format!("{month},{measure},{region},");
        let line = self
            .rpl
            .lines()
            .find(|l| l.starts_with(&prefix))
            .unwrap_or_else(|| panic!("no row {prefix} in\n{}", self.rpl));
        line.split(',').map(String::from).collect()
    }
}

pub fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

pub fn read_outputs(dir: &Path) -> Replayed {
    let read = |n: &str| std::fs::read_to_string(dir.join(n)).unwrap();
    Replayed {
        rpl: read("rpl.csv"),
        failures: read("failures.csv"),
        dead: read("deadletter.jsonl")
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect(),
        summary: serde_json::from_str(&read("summary.json")).unwrap(),
        // The sampled files (the streams of `[evidence] sample = "all"` are gzip: read apart).
        evidence: std::fs::read_dir(dir.join("evidence"))
            .map(|entries| {
                entries
                    .filter(|e| {
                        e.as_ref()
                            .map_or(true, |e| !e.file_name().to_string_lossy().ends_with(".gz"))
                    })
                    .map(|e| {
                        let e = e.unwrap();
                        (
                            e.file_name().to_string_lossy().into_owned(),
                            std::fs::read_to_string(e.path()).unwrap(),
                        )
                    })
                    .collect()
            })
            .unwrap_or_default(),
    }
}

/// Replays files with the built-in configuration through the library.
pub fn replay(paths: &[PathBuf]) -> Replayed {
    replay_with(&Config::builtin().unwrap(), paths)
}

pub fn replay_with(cfg: &Config, paths: &[PathBuf]) -> Replayed {
    let out = tempfile::tempdir().unwrap();
    cli::replay::replay(cfg, &inputs_from_paths(paths), out.path(), false).unwrap();
    read_outputs(out.path())
}
