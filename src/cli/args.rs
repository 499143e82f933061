//! Values the commands parse from their arguments, as types: a month, a margin in £m, a
//! librdkafka `-X KEY=VALUE`, a region's `--quality`. Each says what is wrong in the user's
//! terms; a failure is a usage error (exit 2).

use std::str::FromStr;

use rust_decimal::Decimal;

use crate::engine::calendar::Month;
use crate::engine::domain::Region;
use crate::error::Error;
use crate::simulate::Quality;

/// `--month YYYY-MM`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct MonthArg(pub Month);

impl FromStr for MonthArg {
    type Err = Error;
    fn from_str(s: &str) -> Result<MonthArg, Error> {
        if let Some(m) = Month::parse(s) {
            return Ok(MonthArg(m));
        }
        // The shape is right but the month is not one: say so, not "not YYYY-MM".
        let out_of_range = s
            .split_once('-')
            .filter(|(y, m)| {
                y.len() == 4
                    && m.len() == 2
                    && (y.chars().chain(m.chars())).all(|c| c.is_ascii_digit())
            })
            .map(|(_, m)| m.to_string());
        Err(Error::Usage(match out_of_range {
            Some(m) => format!("--month {s:?}: there is no month {m} (months are 01 to 12)"),
            None => format!("--month {s:?} is not YYYY-MM (for example 2024-03)"),
        }))
    }
}

/// `--margin 8.938` (also `£8.938m`): exact £m.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Margin(pub Decimal);

impl Margin {
    /// The optional `--margin` of a command.
    pub fn of(arg: Option<&str>) -> Result<Option<Decimal>, Error> {
        arg.map(|m| m.parse::<Margin>().map(|m| m.0)).transpose()
    }
}

impl FromStr for Margin {
    type Err = Error;
    fn from_str(s: &str) -> Result<Margin, Error> {
        s.trim_start_matches('£')
            .trim_end_matches('m')
            .parse::<Decimal>()
            .map(Margin)
            .map_err(|_| Error::Usage("--margin must be a number of £m, e.g. 8.938".into()))
    }
}

/// `-X KEY=VALUE`: one librdkafka property.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Property {
    /// The property's name.
    pub key: String,
    /// Its value.
    pub value: String,
}

impl FromStr for Property {
    type Err = Error;
    fn from_str(kv: &str) -> Result<Property, Error> {
        kv.split_once('=')
            .map(|(k, v)| Property {
                key: k.trim().to_string(),
                value: v.trim().to_string(),
            })
            .ok_or_else(|| Error::Usage(format!("-X {kv:?}: expected KEY=VALUE")))
    }
}

/// One `--quality REGION:slow=0.03,error=0.01,lost=0.002`: shares of a region's requests.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct QualityArg {
    /// As written, for messages.
    text: String,
    /// The region.
    pub region: Region,
    /// The keys set, in order.
    pub shares: Vec<(QualityKey, f64)>,
}

/// What a `--quality` share sets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum QualityKey {
    /// Answered successfully but after the TRT.
    Slow,
    /// Answered with a failure code.
    Error,
    /// Never answered.
    Lost,
}

impl FromStr for QualityArg {
    type Err = Error;
    fn from_str(q: &str) -> Result<QualityArg, Error> {
        let usage = |m: String| Error::Usage(m);
        let (region, kvs) = q
            .split_once(':')
            .ok_or_else(|| usage(format!("--quality {q:?}: expected REGION:key=value,…")))?;
        let region = Region::parse(region)
            .ok_or_else(|| usage(format!("--quality: unknown region {region:?}")))?;
        let mut shares = Vec::new();
        for kv in kvs.split(',') {
            let (k, v) = kv
                .split_once('=')
                .ok_or_else(|| usage(format!("--quality {q:?}: expected key=value")))?;
            let v: f64 = v
                .parse()
                .ok()
                .filter(|v| (0.0..=1.0).contains(v))
                .ok_or_else(|| {
                    usage(format!(
                        "--quality {q:?}: {k} must be a share between 0 and 1"
                    ))
                })?;
            let key = match k {
                "slow" => QualityKey::Slow,
                "error" => QualityKey::Error,
                "lost" => QualityKey::Lost,
                _ => {
                    return Err(usage(format!(
                        "--quality: unknown key {k:?} (slow, error, lost)"
                    )));
                }
            };
            shares.push((key, v));
        }
        Ok(QualityArg {
            text: q.to_string(),
            region,
            shares,
        })
    }
}

impl QualityArg {
    /// Sets this region's shares in `quality` (north, central, south); the shares of a region
    /// may not add up to more than 1.
    pub fn apply(&self, quality: &mut [Quality; 3]) -> Result<(), Error> {
        let slot = &mut quality[self.region as usize];
        for (k, v) in &self.shares {
            match k {
                QualityKey::Slow => slot.slow = *v,
                QualityKey::Error => slot.error = *v,
                QualityKey::Lost => slot.lost = *v,
            }
        }
        if slot.slow + slot.error + slot.lost > 1.0 {
            return Err(Error::Usage(format!(
                "--quality {:?}: the shares add up to more than 1",
                self.text
            )));
        }
        Ok(())
    }
}

/// A positive, finite rate (`--rate`, `--produce-rate`).
pub fn positive(name: &str, v: f64) -> Result<f64, Error> {
    if v > 0.0 && v.is_finite() {
        Ok(v)
    } else {
        Err(Error::Usage(format!("--{name} must be a positive number")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn usage<T: std::fmt::Debug>(r: Result<T, Error>) -> String {
        match r {
            Err(Error::Usage(m)) => m,
            other => panic!("expected a usage error, got {other:?}"),
        }
    }

    #[test]
    fn values_parse_or_say_what_is_wrong() {
        assert_eq!(
            "2024-03".parse::<MonthArg>().unwrap().0,
            Month::new(2024, 3)
        );
        assert!(usage("2024-3".parse::<MonthArg>()).contains("is not YYYY-MM"));
        // What is wrong, said: a month out of range is not a format problem.
        let e = usage("2024-13".parse::<MonthArg>());
        assert!(e.contains("there is no month 13"), "{e}");
        let e = usage("2024-00".parse::<MonthArg>());
        assert!(e.contains("there is no month 00"), "{e}");
        assert_eq!(
            Margin::of(Some("£8.938m")).unwrap(),
            Some("8.938".parse().unwrap())
        );
        assert!(usage(Margin::of(Some("lots"))).contains("£m"));
        let p: Property = "security.protocol = SASL_SSL".parse().unwrap();
        assert_eq!(
            (p.key.as_str(), p.value.as_str()),
            ("security.protocol", "SASL_SSL")
        );
        assert!(usage("novalue".parse::<Property>()).contains("KEY=VALUE"));
        assert!(usage(positive("rate", 0.0)).contains("--rate"));
    }

    #[test]
    fn quality_sets_a_region_and_refuses_more_than_everything() {
        let mut q = [Quality::default(); 3];
        let a: QualityArg = "central:slow=0.02,error=0.01".parse().unwrap();
        a.apply(&mut q).unwrap();
        assert_eq!((q[1].slow, q[1].error), (0.02, 0.01));
        assert_eq!(q[0], Quality::default());
        let over: QualityArg = "north:slow=0.6,error=0.5".parse().unwrap();
        assert!(usage(over.apply(&mut q)).contains("more than 1"));
        assert!(usage("west:slow=0.1".parse::<QualityArg>()).contains("unknown region"));
        assert!(usage("north:fast=0.1".parse::<QualityArg>()).contains("unknown key"));
        assert!(usage("north:slow=2".parse::<QualityArg>()).contains("between 0 and 1"));
        assert!(usage("north".parse::<QualityArg>()).contains("REGION:key=value"));
    }
}

/// `--exemptions FILE`: the exemption register to use instead of the configured one (issue 29).
#[derive(clap::Args, Debug, Clone, Default)]
pub struct Exemptions {
    /// The exemption register (TOML [[exemption]] entries) to apply, instead of
    /// `[exemptions] file` or the configuration directory's exemptions.toml.
    #[arg(long, value_name = "FILE")]
    pub exemptions: Option<std::path::PathBuf>,
}

impl Exemptions {
    /// `cfg` with the register this names, or `cfg` as it is.
    pub fn apply<'a>(
        &self,
        cfg: &'a crate::config::Config,
    ) -> Result<std::borrow::Cow<'a, crate::config::Config>, crate::error::Error> {
        match &self.exemptions {
            None => Ok(std::borrow::Cow::Borrowed(cfg)),
            Some(path) => Ok(std::borrow::Cow::Owned(cfg.clone().with_register(path)?)),
        }
    }
}
