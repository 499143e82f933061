//! The live status page for the person on shift: `/` (HTML, [`page`]) and `/status.json` (the
//! same as data, [`model`]), served beside `/metrics`. A thread of its own (`sampler`) keeps
//! what a request cannot compute on the spot (the group's figures from the state store, the
//! 24-hour trend, dead letters of the last hour, the event rate); `collect` puts a status
//! together from that and the live view at each request.

mod collect;
pub mod model;
pub mod page;
mod sampler;

use std::sync::{Arc, Mutex};

use crate::config::Config;
use crate::engine::pipeline::PipelineConfig;
use crate::ops::alerts::AlertBoard;
use crate::ops::live::Live;

/// The status page's state: its thread, and what a request reads.
pub struct StatusPages {
    sources: collect::Sources,
    /// Stops its thread when dropped.
    _sampler: sampler::Sampler,
}

impl StatusPages {
    /// Starts the status thread over `live` (and the store `cfg` names, if any); `board` is
    /// the alert evaluator's, `interfaces` what `/metrics` and the evaluator judge the
    /// interfaces with.
    pub fn start(
        cfg: &Config,
        pipeline: &PipelineConfig,
        live: Arc<Live>,
        board: Option<Arc<Mutex<AlertBoard>>>,
        interfaces: crate::ops::interfaces::Interfaces,
    ) -> std::io::Result<StatusPages> {
        let s = sampler::Sampler::start(cfg, pipeline, live.clone())?;
        Ok(StatusPages {
            sources: collect::Sources::new(cfg, pipeline, live, board, s.kept.clone(), interfaces),
            _sampler: s,
        })
    }

    /// The status now.
    pub fn status(&self) -> model::Status {
        self.sources.status()
    }

    /// `/status.json`'s body.
    pub fn json(&self) -> String {
        serde_json::to_string_pretty(&self.status()).unwrap_or_else(|e| {
            // Serialising plain data cannot fail; say so rather than panic if it ever did.
            serde_json::json!({ "error": e.to_string() }).to_string()
        })
    }

    /// `/`'s body.
    pub fn html(&self) -> String {
        page::render(&self.status())
    }

    /// `/evidence/<file>`'s body (`file` as in `evidence/` of `rollup`, `PM4.3.csv`): the
    /// sampled requests behind the shown month's misses, from the group's figures; why not
    /// otherwise.
    pub fn evidence(&self, file: &str) -> Result<String, String> {
        self.sources.evidence(file)
    }
}
