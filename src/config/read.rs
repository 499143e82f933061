//! Reading `srv-opr.toml`'s layers (the built-in defaults, the file, the environment) into the
//! typed settings, every problem of every setting reported at once under the key and the place
//! its value came from.

use toml::{Table, Value};

use super::layer::{self, Origins};
use super::problems::Problems;
use super::rules::Check;
use super::settings::{AlertmanagerSettings, DEFAULT_SETTINGS, Settings};

/// Layers the defaults, the file (`(name, text)`) and the environment, then reads the typed
/// settings, every problem of every setting reported before any is given up on.
pub(super) fn settings(
    file: Option<&(String, String)>,
    env: &[(String, String)],
    problems: &mut Problems,
    sources: &mut Vec<String>,
) -> Option<Settings> {
    let (schema, mut merged, origins) = merged(file, env, problems, sources)?;
    let mut c = Check::new(&origins);
    let settings = typed::<Settings>(&schema, &mut merged, None, &mut c);
    // The `alertmanager_…` keys of `[alerts]` are their own struct, read from the same table.
    let alertmanager = typed::<AlertmanagerSettings>(&schema, &mut merged, Some("alerts"), &mut c);
    let settings = match (settings, alertmanager) {
        (Some(mut s), Some(a)) => {
            s.alerts.alertmanager = a;
            s.finish(&mut c);
            Some(s)
        }
        _ => None,
    };
    let clean = c.is_clean();
    c.report(DEFAULT_SETTINGS, problems);
    settings.filter(|_| clean)
}

/// The merged table (or its table `within`) read into `T`. A value its rule refuses is noted
/// under its key, put back to its default and the whole read again, so that every refused
/// value is reported at once (the defaults are valid, so each round refuses one value fewer);
/// what is read then has the checks across settings run on it too. `None` only when a
/// refused value cannot be put back.
fn typed<T: serde::de::DeserializeOwned>(
    schema: &Table,
    merged: &mut Table,
    within: Option<&str>,
    c: &mut Check<'_>,
) -> Option<T> {
    loop {
        let value = match within {
            None => Value::Table(merged.clone()),
            Some(t) => merged.get(t).cloned().unwrap_or(Value::Table(Table::new())),
        };
        match serde_path_to_error::deserialize(value) {
            Ok(v) => return Some(v),
            Err(e) => {
                // A list's element is reported as the list (`kafka.topics`, not `…[0]`): that
                // is the key its origin and its default are kept under.
                let path = e.path().to_string();
                let path = path.split('[').next().unwrap_or_default();
                let key = match within {
                    None => path.to_string(),
                    Some(t) => format!("{t}.{path}"),
                };
                c.push(&key, e.inner().message().to_string());
                if !put_back(merged, schema, &key) {
                    return None;
                }
            }
        }
    }
}

/// Puts `key`'s built-in value back in `merged` (or removes a key the built-in table does
/// not have, under a free-form table); false when there is nothing to put back.
fn put_back(merged: &mut Table, schema: &Table, key: &str) -> bool {
    let Some((section, name)) = key.split_once('.') else {
        return false;
    };
    let (Some(Value::Table(m)), Some(Value::Table(s))) =
        (merged.get_mut(section), schema.get(section))
    else {
        return false;
    };
    if let Some(v) = s.get(name) {
        return m.insert(name.to_string(), v.clone()).as_ref() != Some(v);
    }
    // A key of a free-form table (`kafka.properties.X`): drop it.
    let Some((table, entry)) = name.split_once('.') else {
        return false;
    };
    match m.get_mut(table) {
        Some(Value::Table(t)) => t.remove(entry).is_some(),
        _ => false,
    }
}

/// The built-in settings with the file and then the environment layered over them, shape-checked
/// (values of the wrong type or under unknown keys are reported and not merged), and where each
/// value came from.
fn merged(
    file: Option<&(String, String)>,
    env: &[(String, String)],
    problems: &mut Problems,
    sources: &mut Vec<String>,
) -> Option<(Table, Table, Origins)> {
    let schema: Table = match DEFAULT_SETTINGS.parse() {
        Ok(t) => t,
        Err(e) => {
            problems.push("built-in srv-opr.toml", "", e.to_string());
            return None;
        }
    };
    let mut merged = schema.clone();
    let mut origins = Origins::new();
    if let Some((name, text)) = file {
        match text.parse::<Table>() {
            Ok(t) => layer::merge(&mut merged, &schema, &t, "", name, &mut origins, problems),
            Err(e) => problems.push(name, "", format!("not valid TOML: {e}")),
        }
    }
    for (source, t) in layer::env_layer(env, &schema, problems) {
        sources.push(source.clone());
        layer::merge(
            &mut merged,
            &schema,
            &t,
            "",
            &source,
            &mut origins,
            problems,
        );
    }
    Some((schema, merged, origins))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Each refused value is reported under its key, with every other refused value.
    #[test]
    fn every_refused_value_is_reported_under_its_key() {
        let mut problems = Problems::default();
        let file = (
            "f.toml".to_string(),
            "[time]\nallowed_lateness = \"5 minutes\"\ncoverage_max_gap = \"1m\"\n\
             [input]\nignore_types = [\"x\", 3]\n\
             [kafka]\nworkers = 300\n[kafka.properties]\n\"a.b\" = \"x\"\n\
             [alerts]\nfast_burn_windows = [\"5m\", \"1h\"]\nalertmanager_timeout = \"0s\"\n"
                .to_string(),
        );
        let got = settings(Some(&file), &[], &mut problems, &mut Vec::new());
        assert!(got.is_none());
        let text = problems.to_string();
        for want in [
            "f.toml: time.allowed_lateness: `5 minutes`: unknown unit",
            "f.toml: time.coverage_max_gap: must be at least 15m",
            "f.toml: input.ignore_types: invalid type: integer `3`, expected a string",
            "f.toml: kafka.workers: must be 0 (automatic) to 256, found 300",
            "f.toml: alerts.fast_burn_windows: the short window (1h) must be shorter",
            "f.toml: alerts.alertmanager_timeout: must be longer than zero",
        ] {
            assert!(text.contains(want), "{want:?} not in:\n{text}");
        }
        assert_eq!(problems.len(), 6, "{text}");
    }
}
