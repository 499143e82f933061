//! The exemption register file (`exemptions.toml`, `--exemptions FILE`): read, bounded and
//! validated into the core's [`Register`]. Every problem of every entry is reported at once,
//! naming the entry and key, as the other configuration files' are; a register that cannot be
//! read or does not parse stops the command, never a silent "no exemptions".

use std::collections::BTreeSet;
use std::path::Path;

use sha2::{Digest, Sha256};
use toml::{Table, Value};

use super::problems::{ConfigError, Problems};
use crate::engine::definitions::Definitions;
use crate::engine::domain::{Provider, Region};
use crate::engine::exemption::{Exemption, OPR, Reason, Register};
use crate::engine::time::{NANOS_PER_SEC, Ts, parse_rfc3339};

/// The keys an entry may have.
const KEYS: [&str; 13] = [
    "id",
    "reason",
    "from",
    "to",
    "measures",
    "regions",
    "providers",
    "srvs",
    "interfaces",
    "views",
    "approved_by",
    "approved_at",
    "note",
];

/// Longest free text kept for the audit trail (`approved_by`, `approved_at`, `note`), and the
/// longest id.
const MAX_TEXT: usize = 4096;
const MAX_ID: usize = 128;

/// Reads and validates the register at `path` against `defs`.
pub fn load(path: &Path, defs: &Definitions) -> Result<Register, ConfigError> {
    let mut problems = Problems::default();
    let text =
        match crate::textfile::read(path, crate::textfile::CONFIG_LIMIT, "exemption register") {
            Ok(t) => t,
            Err(e) => {
                problems.push(
                    &crate::diagnostic::chain(&e),
                    "",
                    "the exemption register cannot be read: no figure is computed without it"
                        .into(),
                );
                return Err(ConfigError { problems });
            }
        };
    let register = parse(&path.display().to_string(), &text, defs, &mut problems);
    match register {
        Some(r) if problems.is_empty() => Ok(r),
        _ => Err(ConfigError { problems }),
    }
}

/// Validates a register's text (`name` is for messages): `None` when it has a problem, each
/// pushed to `problems`.
pub fn parse(
    name: &str,
    text: &str,
    defs: &Definitions,
    problems: &mut Problems,
) -> Option<Register> {
    let before = problems.len();
    let top: Table = match text.parse() {
        Ok(t) => t,
        Err(e) => {
            problems.push(name, "", format!("not valid TOML: {e}"));
            return None;
        }
    };
    for key in top.keys().filter(|k| *k != "exemption") {
        problems.push(name, key, "unknown key (known: exemption)".into());
    }
    let items: &[Value] = match top.get("exemption") {
        None => &[],
        Some(Value::Array(a)) => a,
        Some(_) => {
            problems.push(
                name,
                "exemption",
                "must be an array of tables ([[exemption]])".into(),
            );
            &[]
        }
    };
    let mut entries = Vec::new();
    let mut view_names: Vec<String> = vec![OPR.to_string()];
    let mut seen_ids = BTreeSet::new();
    for (i, item) in items.iter().enumerate() {
        let mut e = Entry {
            name,
            key: format!(
                "exemption[{i}] (id {:?})",
                crate::echo::cut(item.get("id").and_then(Value::as_str).unwrap_or("?"), 64)
            ),
            problems,
        };
        if let Some(parsed) = e.entry(item, defs, &mut seen_ids, &mut view_names) {
            entries.push(parsed);
        }
    }
    if problems.len() > before {
        return None;
    }
    // An entry without `views` applies to every view the register names, and `opr`.
    let all: BTreeSet<usize> = (0..view_names.len()).collect();
    let exemptions = entries
        .into_iter()
        .map(|(mut ex, views)| {
            ex.views = match views {
                None => all.clone(),
                Some(names) => names
                    .iter()
                    .filter_map(|v| view_names.iter().position(|n| n == v))
                    .collect(),
            };
            ex
        })
        .collect();
    let sha: String = Sha256::digest(text.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let mut register = Register::new(exemptions, view_names, Some(sha));
    register.text = text.to_string();
    Some(register)
}

/// One entry being read: where it is, for messages.
struct Entry<'a> {
    name: &'a str,
    key: String,
    problems: &'a mut Problems,
}

/// A view's name becomes part of a file name (`rpl.<view>.csv`): letters, digits, `-`, `_`.
fn valid_view(v: &str) -> bool {
    !v.is_empty()
        && v.len() <= 32
        && v.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
}

impl Entry<'_> {
    fn push(&mut self, key: &str, problem: String) {
        let at = format!("{}.{key}", self.key);
        self.problems.push(self.name, &at, problem);
    }

    /// A string value (`None`, with a problem, if of another type).
    fn string<'v>(&mut self, t: &'v Table, key: &str) -> Option<&'v str> {
        match t.get(key)? {
            Value::String(s) => Some(s),
            other => {
                self.push(key, format!("must be a string, found {}", other.type_str()));
                None
            }
        }
    }

    /// A free-text value, bounded.
    fn text(&mut self, t: &Table, key: &str) -> Option<String> {
        let s = self.string(t, key)?;
        if s.len() > MAX_TEXT {
            self.push(key, format!("longer than {MAX_TEXT} bytes"));
            return None;
        }
        Some(s.to_string())
    }

    /// A list of strings: absent is `None` (every one); present must be non-empty.
    fn list(&mut self, t: &Table, key: &str) -> Option<Result<Vec<String>, ()>> {
        let v = t.get(key)?;
        let Value::Array(items) = v else {
            self.push(
                key,
                format!("must be a list of strings, found {}", v.type_str()),
            );
            return Some(Err(()));
        };
        if items.is_empty() {
            self.push(
                key,
                "is empty, which would exempt nothing: leave it out to mean every one".into(),
            );
            return Some(Err(()));
        }
        let mut out = Vec::with_capacity(items.len());
        for item in items {
            match item.as_str() {
                Some(s) => out.push(s.to_string()),
                None => {
                    self.push(key, format!("must hold strings, found {}", item.type_str()));
                    return Some(Err(()));
                }
            }
        }
        Some(Ok(out))
    }

    /// A list whose every value `known` resolves: the resolved set, or a problem per unknown.
    fn known<T: Ord>(
        &mut self,
        t: &Table,
        key: &str,
        what: &str,
        known: impl Fn(&str) -> Option<T>,
    ) -> Result<Option<BTreeSet<T>>, ()> {
        let Some(list) = self.list(t, key) else {
            return Ok(None);
        };
        let list = list?;
        let mut out = BTreeSet::new();
        let mut bad = false;
        for v in &list {
            match known(v) {
                Some(x) => {
                    out.insert(x);
                }
                None => {
                    self.push(
                        key,
                        format!(
                            "{:?} is not {what} the definitions know",
                            crate::echo::cut(v, 64)
                        ),
                    );
                    bad = true;
                }
            }
        }
        if bad { Err(()) } else { Ok(Some(out)) }
    }

    /// A window bound: RFC 3339 with an offset, in whole minutes.
    fn bound(&mut self, t: &Table, key: &str) -> Option<Ts> {
        let Some(s) = self.string(t, key) else {
            if !t.contains_key(key) {
                self.push(key, "missing: every window has a from and a to".into());
            }
            return None;
        };
        let Some(ts) = parse_rfc3339(s.as_bytes()) else {
            self.push(
                key,
                format!(
                    "{:?} is not an RFC 3339 time with an offset, like 2023-08-14T09:12:00+01:00",
                    crate::echo::cut(s, 64)
                ),
            );
            return None;
        };
        if ts.0.rem_euclid(60 * NANOS_PER_SEC) != 0 {
            self.push(
                key,
                format!("{s:?} is not a whole minute: windows are whole minutes (seconds 00)"),
            );
            return None;
        }
        Some(ts)
    }

    /// The entry, validated, and the view names it gives (`None`: every view).
    fn entry(
        &mut self,
        item: &Value,
        defs: &Definitions,
        seen_ids: &mut BTreeSet<String>,
        view_names: &mut Vec<String>,
    ) -> Option<(Exemption, Option<Vec<String>>)> {
        let Value::Table(t) = item else {
            self.push("", "must be a table".into());
            return None;
        };
        let before = self.problems.len();
        for k in t.keys().filter(|k| !KEYS.contains(&k.as_str())) {
            self.push(k, format!("unknown key (known: {})", KEYS.join(", ")));
        }
        let id = self.id(t, seen_ids);
        let reason = self.reason(t);
        let from = self.bound(t, "from");
        let to = self.bound(t, "to");
        if let (Some(f), Some(t)) = (from, to)
            && f >= t
        {
            self.push(
                "to",
                "must be later than from: the window is [from, to)".into(),
            );
        }
        let measures = self.known(t, "measures", "a measure", |m| {
            defs.measure_index(m).map(|i| i as u16)
        });
        let regions = self.known(t, "regions", "a region", Region::parse);
        let providers = self.known(t, "providers", "a provider", Provider::parse);
        let interfaces = self.known(t, "interfaces", "an interface", |i| {
            defs.interface_index(i).map(|_| i.to_string())
        });
        let srvs = self.srvs(t);
        let Ok(views) = self.views(t, view_names) else {
            return None;
        };
        let approved_by = self.text(t, "approved_by");
        let approved_at = self.text(t, "approved_at");
        let note = self.text(t, "note");
        if self.problems.len() > before {
            return None;
        }
        Some((
            Exemption {
                id: id?,
                reason: reason?,
                from: from?,
                to: to?,
                measures: measures.ok()?,
                regions: regions.ok()?,
                providers: providers.ok()?,
                srvs: srvs.ok()?,
                interfaces: interfaces.ok()?,
                views: BTreeSet::new(),
                approved_by,
                approved_at,
                note,
            },
            views,
        ))
    }

    /// The entry's `id`: present, not empty, not too long, not an earlier entry's.
    fn id(&mut self, t: &Table, seen_ids: &mut BTreeSet<String>) -> Option<String> {
        match self.string(t, "id") {
            Some(id) if id.trim().is_empty() => {
                self.push("id", "is empty".into());
                None
            }
            Some(id) if id.len() > MAX_ID => {
                self.push("id", format!("longer than {MAX_ID} bytes"));
                None
            }
            Some(id) if !seen_ids.insert(id.to_string()) => {
                self.push(
                    "id",
                    format!("{id:?} is used by an earlier entry: ids are unique"),
                );
                None
            }
            Some(id) => Some(id.to_string()),
            None => {
                if !t.contains_key("id") {
                    self.push("id", "missing".into());
                }
                None
            }
        }
    }

    /// The entry's `reason`, one of the four.
    fn reason(&mut self, t: &Table) -> Option<Reason> {
        match self.string(t, "reason") {
            Some(r) => Reason::parse(r).or_else(|| {
                self.push(
                    "reason",
                    format!(
                        "{:?} is not exceptional_event, planned_maintenance, duplicate_incident \
                     or other",
                        crate::echo::cut(r, 64)
                    ),
                );
                None
            }),
            None => {
                if !t.contains_key("reason") {
                    self.push(
                        "reason",
                        "missing: exceptional_event, planned_maintenance, duplicate_incident or \
                     other"
                            .into(),
                    );
                }
                None
            }
        }
    }

    /// The entry's `srvs`, when it names any: none empty or too long.
    fn srvs(&mut self, t: &Table) -> Result<Option<BTreeSet<String>>, ()> {
        match self.list(t, "srvs") {
            None => Ok(None),
            Some(Err(())) => Err(()),
            Some(Ok(v)) => {
                if v.iter().any(|s| s.trim().is_empty() || s.len() > MAX_ID) {
                    self.push("srvs", "an SRV is empty or longer than 128 bytes".into());
                    Err(())
                } else {
                    Ok(Some(v.into_iter().collect::<BTreeSet<String>>()))
                }
            }
        }
    }

    /// The entry's `views`, when it names any (each new name noted in `view_names`); `Err`
    /// when the key is not a list of texts.
    fn views(
        &mut self,
        t: &Table,
        view_names: &mut Vec<String>,
    ) -> Result<Option<Vec<String>>, ()> {
        match self.list(t, "views") {
            None => Ok(None),
            Some(Err(())) => Err(()),
            Some(Ok(v)) => {
                for name in &v {
                    if !valid_view(name) {
                        self.push(
                            "views",
                            format!(
                                "{:?} is not a view name (lower-case letters, digits, - and _, \
                             up to 32: it names the file rpl.<view>.csv)",
                                crate::echo::cut(name, 64)
                            ),
                        );
                    } else if !view_names.contains(name) {
                        view_names.push(name.clone());
                    }
                }
                Ok(Some(v))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn defs() -> Definitions {
        crate::config::load::Config::builtin().unwrap().definitions
    }

    fn problems(text: &str) -> String {
        let mut p = Problems::default();
        assert!(parse("ex.toml", text, &defs(), &mut p).is_none(), "{text}");
        p.to_string()
    }

    #[test]
    fn a_register_is_read_with_its_views_and_scopes() {
        let text = r#"
[[exemption]]
id = "INC000001065262"
reason = "exceptional_event"
from = "2023-08-14T09:12:00+01:00"
to = "2023-08-14T15:40:00+01:00"
measures = ["PM4.3", "SRV8.11"]
regions = ["north", "south"]
views = ["pmr"]
approved_by = "Head of Performance"
note = "Category 2: E20 across regions"

[[exemption]]
id = "CHG-1"
reason = "planned_maintenance"
from = "2023-08-20T01:00:00Z"
to = "2023-08-20T03:00:00Z"
providers = ["s1sp"]
srvs = ["4.1.1"]
"#;
        let mut p = Problems::default();
        let r = parse("ex.toml", text, &defs(), &mut p).unwrap();
        assert!(p.is_empty(), "{p}");
        assert_eq!(r.views, vec!["opr", "pmr"]);
        let a = &r.exemptions[0];
        assert_eq!(a.views, BTreeSet::from([1]), "named views only");
        assert_eq!(a.measures.as_ref().unwrap().len(), 2);
        assert_eq!(
            a.from,
            parse_rfc3339(b"2023-08-14T08:12:00Z").unwrap(),
            "the offset is kept"
        );
        assert_eq!(r.exemptions[1].views, BTreeSet::from([0, 1]), "every view");
        assert_eq!(r.sha256.as_ref().map(String::len), Some(64));
        // No entry: a register that exempts nothing.
        let empty = parse("ex.toml", "", &defs(), &mut p).unwrap();
        assert!(empty.is_empty() && empty.views == vec!["opr"]);
    }

    #[test]
    fn every_problem_of_every_entry_is_reported_at_once() {
        let text = r#"
title = "x"
[[exemption]]
id = "A"
reason = "storm"
from = "2023-08-14T09:12:30+01:00"
to = "2023-08-14 09:00"
measures = ["PM9"]
regions = ["east"]
providers = []
interfaces = ["FTP"]
views = ["PMR report"]
colour = "red"

[[exemption]]
id = "A"
reason = "other"
from = "2023-08-14T10:00:00Z"
to = "2023-08-14T09:00:00Z"

[[exemption]]
reason = "other"
to = "2023-08-14T09:00:00Z"
"#;
        let text = problems(text);
        for want in [
            "ex.toml: title: unknown key",
            "exemption[0] (id \"A\").reason: \"storm\" is not exceptional_event",
            "exemption[0] (id \"A\").from: \"2023-08-14T09:12:30+01:00\" is not a whole minute",
            "exemption[0] (id \"A\").to: \"2023-08-14 09:00\" is not an RFC 3339 time",
            "exemption[0] (id \"A\").measures: \"PM9\" is not a measure",
            "exemption[0] (id \"A\").regions: \"east\" is not a region",
            "exemption[0] (id \"A\").providers: is empty",
            "exemption[0] (id \"A\").interfaces: \"FTP\" is not an interface",
            "exemption[0] (id \"A\").views: \"PMR report\" is not a view name",
            "exemption[0] (id \"A\").colour: unknown key",
            "exemption[1] (id \"A\").id: \"A\" is used by an earlier entry",
            "exemption[1] (id \"A\").to: must be later than from",
            "exemption[2] (id \"?\").id: missing",
            "exemption[2] (id \"?\").from: missing",
        ] {
            assert!(text.contains(want), "{want:?} not in:\n{text}");
        }
        assert!(problems("exemption = 3").contains("must be an array of tables"));
        assert!(problems("[[exemption]\n").contains("not valid TOML"));
    }
}
