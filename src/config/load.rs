//! The effective configuration ([`Config`]): the built-in files, `srv-opr.toml` and
//! `measures.toml` from a directory, the environment's overrides and the exemption register,
//! loaded with every problem collected; and what a pipeline is built from.

use std::path::{Path, PathBuf};

use crate::engine::definitions::Definitions;

use super::measures::DEFAULT_MEASURES;
use super::problems::{ConfigError, Problems};
use super::settings::Settings;
use super::{exemptions, measures, read};

/// The effective configuration of one run.
#[derive(Debug, Clone)]
pub struct Config {
    /// Service settings.
    pub settings: Settings,
    /// Regulatory definitions.
    pub definitions: Definitions,
    /// Human-readable list of what was read, for logs and `summary.json`.
    pub sources: Vec<String>,
    /// The configuration directory, if one was used (OPR schemes are looked up in its `opr/`).
    pub dir: Option<PathBuf>,
    /// The exemption register (empty when there is none).
    pub register: crate::engine::exemption::Register,
}

impl Config {
    /// The built-in configuration, ignoring files and environment (tests, benches, `demo`).
    pub fn builtin() -> Result<Config, ConfigError> {
        Config::load(None, &[])
    }

    /// Loads `srv-opr.toml` and `measures.toml` from `dir` (each optional: the built-in
    /// defaults stand in for a missing file) and applies `SRV_OPR__…` overrides from `env`.
    pub fn load(dir: Option<&Path>, env: &[(String, String)]) -> Result<Config, ConfigError> {
        let mut problems = Problems::default();
        let mut sources = vec!["built-in defaults".to_string()];

        let read = |name: &str, sources: &mut Vec<String>, problems: &mut Problems| {
            let path: PathBuf = dir?.join(name);
            // Absent means nothing at all there: a file that is there in any form and cannot
            // be read is an error, never a silent fall back to the built-in definitions.
            let read = crate::textfile::read_optional(
                &path,
                crate::textfile::CONFIG_LIMIT,
                "configuration file",
            );
            match read {
                Ok(Some(text)) => {
                    sources.push(path.display().to_string());
                    Some((path.display().to_string(), text))
                }
                Ok(None) => None,
                Err(e) => {
                    problems.0.push(crate::diagnostic::chain(&e));
                    // Nothing else is judged against defaults the user did not choose.
                    problems.0.push(format!(
                        "{}: not using the built-in {name} instead: fix or remove the file",
                        path.display()
                    ));
                    None
                }
            }
        };
        let settings_file = read("srv-opr.toml", &mut sources, &mut problems);
        let measures_file = read("measures.toml", &mut sources, &mut problems);

        let settings = read::settings(settings_file.as_ref(), env, &mut problems, &mut sources);
        let (measures_name, measures_text) = measures_file.unwrap_or_else(|| {
            (
                "built-in measures.toml".to_string(),
                DEFAULT_MEASURES.to_string(),
            )
        });
        let zone = settings.as_ref().map(|s| s.time.zone.clone());
        let definitions = measures::load(
            &measures_name,
            &measures_text,
            zone.as_deref().unwrap_or("Europe/London"),
            &mut problems,
        );
        let (Some(settings), Some(definitions)) = (settings, definitions) else {
            return Err(ConfigError { problems });
        };
        if !problems.is_empty() {
            return Err(ConfigError { problems });
        }
        // The register: `[exemptions] file` (relative to the directory), else exemptions.toml
        // there when present, else none.
        let named = &settings.exemptions.file;
        let path = match (named.is_empty(), dir) {
            (false, Some(d)) => Some(d.join(named)),
            (false, None) => Some(PathBuf::from(named)),
            (true, Some(d)) => {
                let p = d.join("exemptions.toml");
                (std::fs::symlink_metadata(&p).is_ok()).then_some(p)
            }
            (true, None) => None,
        };
        let register = match &path {
            Some(p) => {
                let r = exemptions::load(p, &definitions)?;
                sources.push(p.display().to_string());
                r
            }
            None => crate::engine::exemption::Register::default(),
        };
        Ok(Config {
            settings,
            definitions,
            sources,
            dir: dir.map(Path::to_path_buf),
            register,
        })
    }

    /// This configuration with the register at `path` instead (`--exemptions FILE`).
    pub fn with_register(mut self, path: &Path) -> Result<Config, ConfigError> {
        self.register = exemptions::load(path, &self.definitions)?;
        self.sources.push(path.display().to_string());
        Ok(self)
    }

    /// What every pipeline of this process is built from.
    pub fn pipeline(
        &self,
    ) -> Result<crate::engine::pipeline::PipelineConfig, crate::engine::calendar::UnknownZone> {
        let t = &self.settings.time;
        Ok(crate::engine::pipeline::PipelineConfig {
            definitions: std::sync::Arc::new(self.definitions.clone()),
            calendar: crate::engine::calendar::Calendar::new(&t.zone)?,
            max_event_bytes: self.settings.input.max_event_bytes,
            ignore_types: self.settings.input.ignore_types.clone().into(),
            correlator: crate::engine::correlate::CorrelatorConfig {
                longest_deadline: self.definitions.longest_deadline,
                dedupe_horizon: t.dedupe_horizon,
                orphan_wait: self.orphan_wait(),
                max_waiting_responses: t.max_waiting_responses,
            },
            register: std::sync::Arc::new(self.register.clone()),
            evidence_sample: self.settings.evidence.sample,
            misses: None,
            coverage_max_gap: t.coverage_max_gap,
        })
    }

    /// How long a response waits for its request: `orphan_wait`, or the longest deadline.
    pub fn orphan_wait(&self) -> crate::engine::time::Dur {
        self.settings
            .time
            .orphan_wait
            .unwrap_or(self.definitions.longest_deadline)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{schemes, secrets};

    #[test]
    fn builtin_configuration_loads() {
        let c = Config::builtin().unwrap();
        assert_eq!(c.settings.time.zone, "Europe/London");
        assert!(c.definitions.measures.len() >= 12);
    }

    #[test]
    fn the_repository_schemes_equal_the_builtin_ones() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("config/opr");
        for (year, text) in schemes::BUILT_IN {
            let file = dir.join(format!("{}.toml", year.replace('/', "-")));
            assert_eq!(
                std::fs::read_to_string(&file).unwrap(),
                text,
                "{}",
                file.display()
            );
        }
    }

    #[test]
    fn the_repository_files_equal_the_builtin_defaults() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("config");
        let from_files = Config::load(Some(&dir), &[]).unwrap();
        let builtin = Config::builtin().unwrap();
        assert_eq!(from_files.definitions.sha256, builtin.definitions.sha256);
        assert_eq!(
            format!("{:?}", from_files.settings),
            format!("{:?}", builtin.settings)
        );
    }

    #[test]
    fn kafka_properties_are_open_but_secrets_must_come_from_the_environment() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("srv-opr.toml"),
            "[kafka.properties]\n\"security.protocol\" = \"SASL_SSL\"\n\"sasl.password\" = \"hunter2\"\n\
             [kafka.secrets]\n\"ssl.key.password\" = \"KEY_PW\"\n",
        )
        .unwrap();
        let err = Config::load(Some(dir.path()), &[])
            .unwrap_err()
            .problems
            .to_string();
        assert!(
            err.contains("kafka.properties.sasl.password: is a secret"),
            "{err}"
        );
        assert!(
            !err.contains("hunter2"),
            "a secret value never reaches a message"
        );
        std::fs::write(
            dir.path().join("srv-opr.toml"),
            "[kafka.properties]\n\"security.protocol\" = \"SASL_SSL\"\n[kafka.secrets]\n\"sasl.password\" = \"PW\"\n",
        )
        .unwrap();
        let env = vec![(
            "SRV_OPR__KAFKA__TOPICS".to_string(),
            "[\"a\", \"b\"]".to_string(),
        )];
        let c = Config::load(Some(dir.path()), &env).unwrap();
        let k = &c.settings.kafka;
        assert_eq!(
            k.properties,
            vec![("security.protocol".to_string(), "SASL_SSL".to_string())]
        );
        assert_eq!(
            k.secrets,
            vec![(
                "sasl.password".to_string(),
                secrets::SecretSource::Env("PW".to_string())
            )]
        );
        assert_eq!(k.topics, vec!["a", "b"]);
    }

    #[test]
    fn secure_connection_settings_are_checked_and_never_echo_a_password() {
        use secrets::SecretSource;
        let load = |toml: &str| {
            let dir = tempfile::tempdir().unwrap();
            std::fs::write(dir.path().join("srv-opr.toml"), toml).unwrap();
            Config::load(Some(dir.path()), &[])
        };
        let problems = |toml: &str| load(toml).unwrap_err().problems.to_string();

        let c = load(
            "[alerts]\nalertmanager_url = \"https://am:9093/\"\nalertmanager_ca_file = \"ca.pem\"\n\
             alertmanager_username = \"srv\"\nalertmanager_password_file = \"/run/am/pw\"\n\
             [state]\npassword_env = \"\"\npassword_file = \"/run/pg/pw\"\n\
             [kafka.secret_files]\n\"sasl.password\" = \"/run/kafka/pw\"\n",
        )
        .unwrap();
        let am = &c.settings.alerts.alertmanager;
        assert_eq!(am.url, "https://am:9093");
        assert_eq!(am.password, SecretSource::File("/run/am/pw".into()));
        assert_eq!(
            c.settings.state.password,
            SecretSource::File("/run/pg/pw".into())
        );
        assert_eq!(
            c.settings.kafka.secrets,
            vec![(
                "sasl.password".to_string(),
                SecretSource::File("/run/kafka/pw".into())
            )]
        );

        let text = problems(
            "[alerts]\nalertmanager_url = \"https://srv:am-url-secret@am:9093\"\n\
             alertmanager_username = \"srv\"\nalertmanager_password_env = \"A\"\n\
             alertmanager_password_file = \"/f\"\nalertmanager_cert_file = \"c.pem\"\n\
             [state]\nurl = \"mysql://app:state-url-secret@db/x\"\n\
             [kafka.secrets]\n\"sasl.password\" = \"PW\"\n\
             [kafka.secret_files]\n\"sasl.password\" = \"/pw\"\n",
        );
        for want in [
            "alerts.alertmanager_url: \"https://srv:*****@am:9093\" carries credentials",
            "alerts.alertmanager_password_file: set the _env or the _file form",
            "alerts.alertmanager_cert_file: a client certificate needs its key",
            "state.url: \"mysql://app:*****@db/x\" is neither",
            "kafka.secret_files.sasl.password: is also under [kafka.secrets]",
        ] {
            assert!(text.contains(want), "{want:?} not in:\n{text}");
        }
        assert!(!text.contains("url-secret"), "{text}");

        let text = problems(
            "[alerts]\nalertmanager_url = \"http://am:9093\"\nalertmanager_ca_file = \"ca.pem\"\n\
             alertmanager_username = \"srv\"\n",
        );
        assert!(text.contains("TLS files need an https://"), "{text}");
        assert!(text.contains("basic auth needs both"), "{text}");
        let text = problems(
            "[alerts]\nalertmanager_url = \"https://am\"\nalertmanager_username = \"srv\"\n\
             alertmanager_password_env = \"P\"\nalertmanager_bearer_token_env = \"T\"\n",
        );
        assert!(
            text.contains("basic auth or a bearer token, not both"),
            "{text}"
        );
    }

    #[test]
    fn every_problem_is_reported_at_once_with_file_and_key() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("srv-opr.toml"),
            "[time]\nzone = \"Mars/Olympus\"\nallowed_lateness = \"5 minutes\"\nlatenes = 3\n",
        )
        .unwrap();
        std::fs::write(
            dir.path().join("measures.toml"),
            DEFAULT_MEASURES.replace("basis = \"success\"", "basis = \"speed\""),
        )
        .unwrap();
        let env = vec![(
            "SRV_OPR__INPUT__MAX_EVENT_BYTES".to_string(),
            "lots".to_string(),
        )];
        let err = Config::load(Some(dir.path()), &env).unwrap_err();
        let text = err.problems.to_string();
        let settings = dir.path().join("srv-opr.toml").display().to_string();
        assert!(
            text.contains(&format!("{settings}: time.latenes: unknown key")),
            "{text}"
        );
        assert!(
            text.contains(&format!("{settings}: time.allowed_lateness:")),
            "{text}"
        );
        assert!(
            text.contains(&format!("{settings}: time.zone: unknown time zone")),
            "{text}"
        );
        assert!(
            text.contains("environment variable SRV_OPR__INPUT__MAX_EVENT_BYTES: input.max_event_bytes: must be an integer"),
            "{text}"
        );
        assert!(text.contains("basis"), "{text}");
        assert!(err.problems.len() >= 5, "{text}");
    }

    #[test]
    fn ignore_types_are_other_types_only() {
        let env = |v: &str| vec![("SRV_OPR__INPUT__IGNORE_TYPES".to_string(), v.to_string())];
        let cfg = Config::load(None, &env(r#"["alert", "dcc_alert", "alert"]"#)).unwrap();
        assert_eq!(cfg.settings.input.ignore_types, ["alert", "dcc_alert"]);
        let err = Config::load(None, &env(r#"["request", ""]"#)).unwrap_err();
        let text = err.problems.to_string();
        assert!(
            text.contains("\"request\" is a type srv-opr reads: it cannot be ignored"),
            "{text}"
        );
        assert!(text.contains("\"\" is not a type name"), "{text}");
    }

    #[test]
    fn evidence_sample_is_a_number_or_all() {
        let cfg = Config::builtin().unwrap();
        assert_eq!(
            (cfg.settings.evidence.sample, cfg.settings.evidence.all),
            (20, false)
        );
        let env = |v: &str| vec![("SRV_OPR__EVIDENCE__SAMPLE".to_string(), v.to_string())];
        let all = Config::load(None, &env("all")).unwrap();
        assert!(all.settings.evidence.all);
        assert_eq!(
            Config::load(None, &env("50"))
                .unwrap()
                .settings
                .evidence
                .sample,
            50
        );
        // In a file, a bare number is read as well as a quoted one.
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("srv-opr.toml"), "[evidence]\nsample = 7\n").unwrap();
        let cfg = Config::load(Some(dir.path()), &[]).unwrap();
        assert_eq!(cfg.settings.evidence.sample, 7);
        for bad in ["0", "1001", "some", "-3"] {
            let text = Config::load(None, &env(bad))
                .unwrap_err()
                .problems
                .to_string();
            assert!(text.contains("evidence.sample"), "{bad}: {text}");
        }
    }
}
