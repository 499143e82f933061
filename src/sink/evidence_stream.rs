//! Every missed request as it is decided (`[evidence] sample = "all"`): one gzip stream per
//! measure, `evidence/<measure>.csv.gz`, with the columns of the sampled `evidence/<measure>.csv`
//! (`month,measure,region,bucket,id,user,device`). Written into the command's staging directory
//! and published with its other outputs; memory stays one compressor per measure, whatever the
//! number of misses.

use std::collections::HashMap;
use std::io::{self, Write};
use std::sync::Mutex;

use flate2::Compression;
use flate2::write::GzEncoder;

use crate::csv_text::field as csv_field;
use crate::engine::pipeline::{MissSink, Missed};
use crate::sink::month::{EVIDENCE_HEADER, evidence_file_name};
use crate::sink::outdir::{AtomicFile, OutDir};

/// The streams of one command.
pub(crate) struct EvidenceStream {
    files: Mutex<HashMap<String, GzEncoder<AtomicFile>>>,
}

impl std::fmt::Debug for EvidenceStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("EvidenceStream")
    }
}

impl EvidenceStream {
    /// A stream per measure of `measures` in `outdir`, each with its header.
    pub fn create(outdir: &OutDir, measures: &[&str]) -> io::Result<EvidenceStream> {
        let mut files = HashMap::new();
        for m in measures {
            let name = format!("evidence/{}.gz", evidence_file_name(m));
            let mut gz = GzEncoder::new(outdir.file(&name)?, Compression::fast());
            gz.write_all(EVIDENCE_HEADER.as_bytes())?;
            gz.write_all(b"\n")?;
            files.insert(m.to_string(), gz);
        }
        Ok(EvidenceStream {
            files: Mutex::new(files),
        })
    }

    /// Ends every stream and commits its file (it appears when the directory is published).
    pub fn finish(&self) -> io::Result<()> {
        let files = std::mem::take(
            &mut *self
                .files
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner),
        );
        for (_, gz) in files {
            gz.finish()?.commit()?;
        }
        Ok(())
    }
}

impl MissSink for EvidenceStream {
    fn missed(&self, m: &Missed<'_>) -> io::Result<()> {
        let mut files = self
            .files
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let Some(gz) = files.get_mut(m.measure) else {
            return Ok(());
        };
        let (id, user, device) = crate::engine::correlate::evidence_parts(m.evidence);
        writeln!(
            gz,
            "{},{},{},{},{},{},{}",
            m.month,
            csv_field(m.measure),
            m.region.as_str(),
            m.bucket.name(),
            csv_field(id),
            csv_field(user),
            csv_field(device)
        )
    }
}
