//! Layering of `srv-opr.toml`: built-in defaults, then the file, then `SRV_OPR__…` environment
//! variables; every unknown key and wrong type is found in one pass and named with where it
//! came from.
//!
//! The built-in defaults spell out every key, so they double as the schema: a key a layer has
//! that the defaults lack is unknown, and a value whose TOML type differs from the default's is
//! of the wrong type. Tables listed in `FREE_FORM` accept any key.

use std::collections::BTreeMap;

use toml::{Table, Value};

use super::problems::Problems;

/// Tables whose keys are open: librdkafka properties, and the environment variables of secrets.
const FREE_FORM: &[&str] = &["kafka.properties", "kafka.secrets", "kafka.secret_files"];

/// Prefix of environment variables that override `srv-opr.toml`.
pub(crate) const ENV_PREFIX: &str = "SRV_OPR__";

/// Where each leaf value came from, by dotted key, for error messages.
pub(crate) type Origins = BTreeMap<String, String>;

fn type_name(v: &Value) -> &'static str {
    match v {
        Value::String(_) => "a string",
        Value::Integer(_) => "an integer",
        Value::Float(_) => "a number",
        Value::Boolean(_) => "true or false",
        Value::Datetime(_) => "a date-time",
        Value::Array(_) => "an array",
        Value::Table(_) => "a table",
    }
}

fn same_kind(schema: &Value, v: &Value) -> bool {
    matches!(
        (schema, v),
        (Value::String(_), Value::String(_))
            | (Value::Integer(_), Value::Integer(_))
            | (Value::Float(_), Value::Float(_) | Value::Integer(_))
            | (Value::Boolean(_), Value::Boolean(_))
            | (Value::Array(_), Value::Array(_))
            | (Value::Table(_), Value::Table(_))
    )
}

/// Settings that are a number or a word: a bare number is accepted for them.
const NUMBER_OR_WORD: &[&str] = &["evidence.sample"];

/// Merges `layer` (from `source`) into `base`, reporting keys `schema` does not know and values
/// of the wrong type; records the origin of every value taken.
pub fn merge(
    base: &mut Table,
    schema: &Table,
    layer: &Table,
    prefix: &str,
    source: &str,
    origins: &mut Origins,
    problems: &mut Problems,
) {
    for (key, value) in layer {
        let path = if prefix.is_empty() {
            key.clone()
        } else {
            format!("{prefix}.{key}")
        };
        let free = FREE_FORM.contains(&prefix);
        match schema.get(key) {
            None if !free => {
                let known: Vec<&str> = schema.keys().map(String::as_str).collect();
                problems.push(
                    source,
                    &path,
                    format!("unknown key (known here: {})", known.join(", ")),
                );
            }
            Some(Value::Table(sub_schema)) => match value {
                Value::Table(sub_layer) => {
                    let entry = base
                        .entry(key.clone())
                        .or_insert_with(|| Value::Table(Table::new()));
                    if let Value::Table(sub_base) = entry {
                        merge(
                            sub_base, sub_schema, sub_layer, &path, source, origins, problems,
                        );
                    }
                }
                other => problems.push(
                    source,
                    &path,
                    format!("must be a table, found {}", type_name(other)),
                ),
            },
            // A whole number for a setting that is a number or a word (`[evidence] sample =
            // 50` beside `"all"`) is taken as its text: the setting's own check reads it.
            Some(Value::String(_))
                if matches!(value, Value::Integer(_))
                    && NUMBER_OR_WORD.contains(&path.as_str()) =>
            {
                origins.insert(path, source.to_string());
                base.insert(key.clone(), Value::String(value.to_string()));
            }
            Some(schema_value) if !same_kind(schema_value, value) => problems.push(
                source,
                &path,
                format!(
                    "must be {}, found {}",
                    type_name(schema_value),
                    type_name(value)
                ),
            ),
            _ => {
                origins.insert(path, source.to_string());
                base.insert(key.clone(), value.clone());
            }
        }
    }
}

/// Turns `SRV_OPR__TIME__ALLOWED_LATENESS=10m` into a one-key table `{time = {allowed_lateness =
/// "10m"}}`, typed after the schema's value at that key (numbers, booleans and arrays are read
/// as TOML; strings are taken verbatim). Returns the table and the variable names used.
pub(crate) fn env_layer(
    vars: &[(String, String)],
    schema: &Table,
    problems: &mut Problems,
) -> Vec<(String, Table)> {
    let mut layers = Vec::new();
    for (name, raw) in vars {
        let Some(rest) = name.strip_prefix(ENV_PREFIX) else {
            continue;
        };
        let path: Vec<String> = rest.split("__").map(|s| s.to_ascii_lowercase()).collect();
        let source = format!("environment variable {name}");
        if path.iter().any(String::is_empty) {
            problems.push(
                &source,
                rest,
                "empty key segment (use `__` between keys)".into(),
            );
            continue;
        }
        // Find the schema value to learn the expected type.
        let mut cursor: Option<&Value> = None;
        let mut table = Some(schema);
        for seg in &path {
            cursor = table.and_then(|t| t.get(seg));
            table = match cursor {
                Some(Value::Table(t)) => Some(t),
                _ => None,
            };
        }
        let value = match cursor {
            Some(Value::String(_)) | None => Value::String(raw.clone()),
            Some(_) => match raw.parse::<Value>() {
                Ok(v) => v,
                Err(_) => match format!("v = {raw}").parse::<Table>() {
                    Ok(mut t) => t.remove("v").unwrap_or(Value::String(raw.clone())),
                    Err(_) => Value::String(raw.clone()),
                },
            },
        };
        let mut leaf = value;
        for seg in path.iter().rev() {
            let mut t = Table::new();
            t.insert(seg.clone(), leaf);
            leaf = Value::Table(t);
        }
        if let Value::Table(t) = leaf {
            layers.push((source, t));
        }
    }
    layers
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table(s: &str) -> Table {
        s.parse().unwrap()
    }

    #[test]
    fn merge_reports_every_unknown_key_and_type() {
        let schema = table("[time]\nzone = \"UTC\"\nlimit = 3\n[input]\nmax = 1\n");
        let mut base = schema.clone();
        let layer =
            table("[time]\nzone = 5\nzoen = \"x\"\n[inptu]\nmax = 2\n[input]\nmax = \"big\"\n");
        let mut problems = Problems::default();
        let mut origins = Origins::new();
        merge(
            &mut base,
            &schema,
            &layer,
            "",
            "f.toml",
            &mut origins,
            &mut problems,
        );
        let text = problems.to_string();
        assert!(
            text.contains("f.toml: time.zone: must be a string, found an integer"),
            "{text}"
        );
        assert!(text.contains("f.toml: time.zoen: unknown key"), "{text}");
        assert!(text.contains("f.toml: inptu: unknown key"), "{text}");
        assert!(
            text.contains("f.toml: input.max: must be an integer, found a string"),
            "{text}"
        );
        assert_eq!(problems.len(), 4);
    }

    #[test]
    fn env_values_take_the_schema_type() {
        let schema = table("[time]\nzone = \"UTC\"\nlimit = 3\ncodes = [\"a\"]\n");
        let mut problems = Problems::default();
        let vars = vec![
            ("SRV_OPR__TIME__LIMIT".to_string(), "7".to_string()),
            (
                "SRV_OPR__TIME__ZONE".to_string(),
                "Europe/London".to_string(),
            ),
            (
                "SRV_OPR__TIME__CODES".to_string(),
                "[\"x\", \"y\"]".to_string(),
            ),
            ("OTHER".to_string(), "1".to_string()),
        ];
        let layers = env_layer(&vars, &schema, &mut problems);
        assert_eq!(layers.len(), 3);
        let mut base = schema.clone();
        let mut origins = Origins::new();
        for (src, l) in &layers {
            merge(&mut base, &schema, l, "", src, &mut origins, &mut problems);
        }
        assert!(problems.is_empty(), "{problems}");
        assert_eq!(base["time"]["limit"].as_integer(), Some(7));
        assert_eq!(base["time"]["zone"].as_str(), Some("Europe/London"));
        assert_eq!(base["time"]["codes"].as_array().map(Vec::len), Some(2));
        assert_eq!(
            origins["time.limit"],
            "environment variable SRV_OPR__TIME__LIMIT"
        );
    }
}
