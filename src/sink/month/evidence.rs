//! `evidence/<measure>.csv`: per month, region and failure bucket, the sample of requests
//! behind the misses (id, user, device).

use std::fmt::Write as _;

use crate::csv_text::field as csv_field;

use super::rpl::RplLine;

/// `evidence/<measure>.csv` header.
pub(crate) const EVIDENCE_HEADER: &str = "month,measure,region,bucket,id,user,device";

/// `PM4.3.csv`: a measure's evidence file name inside `evidence/` (any character of the id
/// outside letters, digits, `.`, `-` and `_` becomes `_`).
pub(crate) fn evidence_file_name(measure: &str) -> String {
    let stem: String = measure
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_') {
                c
            } else {
                '_'
            }
        })
        .collect();
    format!("{stem}.csv")
}

/// The evidence files, `(file name, text)`: one per measure of `measures`, always (a header
/// alone when it has no sampled miss, so a rerun into the same directory leaves no stale
/// evidence). Each lists, per month, region and failure bucket (largest first, as
/// `failures.csv`), the sampled requests (at most [`crate::engine::aggregate::SAMPLE_SIZE`], by key
/// order): their id, user and device. The pooled `all` rows are left out: they are the
/// regions' requests again.
pub fn evidence_files<'a>(
    lines: impl IntoIterator<Item = &'a RplLine>,
    measures: &[&str],
) -> Vec<(String, String)> {
    let file_of = evidence_file_name;
    let mut files: Vec<(String, String)> = measures
        .iter()
        .map(|m| (file_of(m), format!("{EVIDENCE_HEADER}\n")))
        .collect();
    for l in lines.into_iter().filter(|l| l.region != "all") {
        if l.row.samples.is_empty() {
            continue;
        }
        let name = file_of(&l.measure);
        let i = match files.iter().position(|(n, _)| *n == name) {
            Some(i) => i,
            None => {
                files.push((name, format!("{EVIDENCE_HEADER}\n")));
                files.len() - 1
            }
        };
        let text = &mut files[i].1;
        let mut buckets: Vec<(&crate::engine::catalog::Bucket, &u64)> =
            l.row.buckets.iter().collect();
        buckets.sort_by(|a, b| b.1.cmp(a.1).then_with(|| a.0.name().cmp(&b.0.name())));
        for (bucket, _) in buckets {
            let Some(sample) = l.row.samples.get(bucket) else {
                continue;
            };
            for (_, packed) in sample {
                let (id, user, device) = crate::engine::correlate::evidence_parts(packed);
                let _ = writeln!(
                    text,
                    "{},{},{},{},{},{},{}",
                    l.month,
                    csv_field(&l.measure),
                    l.region,
                    bucket.name(),
                    csv_field(id),
                    csv_field(user),
                    csv_field(device)
                );
            }
        }
    }
    files
}
