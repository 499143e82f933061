//! Month sign-offs as the store keeps them (schema version 4): append-only rows, each the
//! figures of one month and view as they stood when someone signed them, with who, when, why,
//! and what they were counted under. Neither backend lets a row be changed or deleted (a
//! trigger refuses it); signing again adds a row.

use serde::{Deserialize, Serialize};

use super::error::StoreError;
use crate::engine::calendar::Month;

/// One sign-off: what was submitted for a month and view.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignOff {
    /// Its row's id in the store (0 before it is recorded); later sign-offs have larger ones.
    #[serde(skip)]
    pub id: i64,
    /// The month.
    #[serde(skip)]
    pub month: Option<Month>,
    /// The view (`opr`, or another the exemption register names).
    #[serde(skip)]
    pub view: String,
    /// When it was recorded (RFC 3339, UTC, nanoseconds).
    pub signed_at: String,
    /// Who signed.
    pub signed_by: String,
    /// What they said, if anything.
    pub note: Option<String>,
    /// Why a month not yet final was signed (`--force --reason`); `None`: it was final.
    pub forced: Option<String>,
    /// The combined watermark when it was signed (RFC 3339).
    pub watermark: String,
    /// SHA-256 of the measure definitions its figures were counted under.
    pub definitions_sha256: String,
    /// SHA-256 of the exemption register's file (empty: no register).
    pub register_sha256: String,
    /// The register's exemption ids.
    pub register_ids: Vec<String>,
    /// The register's text (empty: none), so a later one can be compared entry by entry.
    pub register_text: String,
    /// The largest id of the revision history when it was signed: revisions after it came
    /// later.
    pub revisions_seen: i64,
    /// The month's `rpl.csv` rows of the view, header included, as `rollup` writes them.
    pub rpl_csv: String,
    /// The month's `availability.csv` rows of the view, header included.
    pub availability_csv: String,
}

impl SignOff {
    /// The document stored in the row (everything but id, month and view, which are columns).
    pub(super) fn document(&self) -> Result<String, StoreError> {
        serde_json::to_string(self)
            .map_err(|e| StoreError::Backend(format!("encoding a sign-off: {e}")))
    }

    /// A stored row back.
    pub(super) fn of_row(
        id: i64,
        month: &str,
        view: String,
        document: &str,
    ) -> Result<SignOff, StoreError> {
        let mut s: SignOff = serde_json::from_str(document).map_err(|e| {
            StoreError::Backend(format!("sign-off {id} of {month} does not decode: {e}"))
        })?;
        s.id = id;
        s.month = Some(super::error::month_of(month)?);
        s.view = view;
        Ok(s)
    }

    /// A key that makes recording it again (a retry after a lost connection) a no-op.
    pub(super) fn token(&self) -> Result<String, StoreError> {
        use sha2::Digest;
        let mut h = sha2::Sha256::new();
        h.update(self.month.map(|m| m.to_string()).unwrap_or_default());
        h.update([0]);
        h.update(&self.view);
        h.update([0]);
        h.update(self.document()?);
        Ok(hex(&h.finalize()))
    }
}

/// Why a store of schema `version` (before 4) cannot take a sign-off.
pub(super) fn too_old(version: i64) -> StoreError {
    StoreError::Refused(format!(
        "the state store has schema version {version}, which holds no sign-offs: open it once \
         with this srv-opr's `run` or `signoff` to migrate it"
    ))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Records a sign-off (its token unique: a second insert of the same one does nothing).
pub(super) const PUT_SIGNOFF: &str = "
    INSERT INTO signoffs (month, view, signed_at, token, document) VALUES ($1, $2, $3, $4, $5)
    ON CONFLICT (token) DO NOTHING";

/// The sign-offs of one month (or all, `$1` null), oldest first: id, month, view, document.
pub(super) const SIGNOFFS: &str = "
    SELECT id, month, view, document FROM signoffs
    WHERE CAST($1 AS TEXT) IS NULL OR month = $1 ORDER BY id";

/// The id of a recorded sign-off, by token.
pub(super) const SIGNOFF_ID: &str = "SELECT id FROM signoffs WHERE token = $1";

/// The revision history's largest id (0 when empty).
pub(super) const REVISION_MARK: &str = "SELECT COALESCE(MAX(id), 0) FROM revisions";
