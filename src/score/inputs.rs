//! Score input rows (SPEC §7): `measure,component,region,period,value[,numerator,denominator]`,
//! parsed exactly (decimals, never floats), each remembering its `file:line` for error messages.

use rust_decimal::Decimal;

use super::scheme::RegYear;
use crate::engine::domain::Region;

/// The period of a row.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Period {
    /// A month, `YYYY-MM`.
    Month(String),
    /// The whole regulatory year.
    Year(RegYear),
}

/// One input row.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InputRow {
    /// `file:line`.
    pub origin: String,
    /// Scheme measure id.
    pub measure: String,
    /// Component id (or `score` / a sub-question id for VMM).
    pub component: String,
    /// `north`, `central`, `south`, or `None` for a non-regional component.
    pub region: Option<String>,
    /// Month or year.
    pub period: Period,
    /// Percentage (0–100), or a score (0–3) for VMM.
    pub value: Decimal,
    /// The counts behind a percentage, when given.
    pub counts: Option<(Decimal, Decimal)>,
}

const HEADER: &str = "measure,component,region,period,value";

/// Parses one CSV file (`name` for messages). Blank lines and `#` comments are skipped. Every
/// malformed row is reported.
pub fn parse(name: &str, text: &str) -> Result<Vec<InputRow>, super::Problems> {
    parse_rows(name, text).map_err(super::Problems)
}

/// [`parse`], its problems as a list.
fn parse_rows(name: &str, text: &str) -> Result<Vec<InputRow>, Vec<String>> {
    let mut rows = Vec::new();
    let mut problems = Vec::new();
    let mut lines = text.lines().enumerate().filter(|(_, l)| {
        let t = l.trim();
        !t.is_empty() && !t.starts_with('#')
    });
    let with_counts = match lines.next() {
        Some((_, h)) if h.trim().trim_start_matches('\u{feff}') == HEADER => false,
        Some((_, h))
            if h.trim().trim_start_matches('\u{feff}')
                == format!("{HEADER},numerator,denominator") =>
        {
            true
        }
        Some((i, h)) => {
            return Err(vec![format!(
                "{name}:{}: header must be `{HEADER}[,numerator,denominator]`, found `{}`",
                i + 1,
                h.trim()
            )]);
        }
        None => return Err(vec![format!("{name}: empty (no header)")]),
    };
    for (i, line) in lines {
        let origin = format!("{name}:{}", i + 1);
        let f: Vec<&str> = line
            .trim_end_matches('\r')
            .split(',')
            .map(str::trim)
            .collect();
        let want = if with_counts { 7 } else { 5 };
        if f.len() != want && !(with_counts && f.len() == 5) {
            problems.push(format!(
                "{origin}: expected {want} fields, found {}",
                f.len()
            ));
            continue;
        }
        let period = if let Some(y) = RegYear::parse(f[3]) {
            Period::Year(y)
        } else if RegYear::of_month(f[3]).is_some() {
            Period::Month(f[3].to_string())
        } else {
            problems.push(format!(
                "{origin}: period {:?} is neither a month (2023-04) nor a year (RY23/24)",
                f[3]
            ));
            continue;
        };
        let region = match f[2] {
            "" => None,
            r if Region::parse(r).is_some() => Some(r.to_string()),
            other => {
                problems.push(format!(
                    "{origin}: region {other:?} is not north, central, south or empty"
                ));
                continue;
            }
        };
        let num = |s: &str, what: &str| {
            s.parse::<Decimal>()
                .map_err(|_| format!("{origin}: {what} {s:?} is not a number"))
        };
        let value = match num(f[4], "value") {
            Ok(v) => v,
            Err(e) => {
                problems.push(e);
                continue;
            }
        };
        let counts = if f.len() == 7 && !(f[5].is_empty() && f[6].is_empty()) {
            match (num(f[5], "numerator"), num(f[6], "denominator")) {
                (Ok(n), Ok(d)) if d > Decimal::ZERO && n >= Decimal::ZERO && n <= d => Some((n, d)),
                (Ok(_), Ok(_)) => {
                    problems.push(format!(
                        "{origin}: counts must satisfy 0 ≤ numerator ≤ denominator, denominator > 0"
                    ));
                    continue;
                }
                (Err(e), _) | (_, Err(e)) => {
                    problems.push(e);
                    continue;
                }
            }
        } else {
            None
        };
        if f[0].is_empty() || f[1].is_empty() {
            problems.push(format!("{origin}: measure and component are required"));
            continue;
        }
        rows.push(InputRow {
            origin,
            measure: f[0].to_string(),
            component: f[1].to_string(),
            region,
            period,
            value,
            counts,
        });
    }
    if problems.is_empty() {
        Ok(rows)
    } else {
        Err(problems)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_with_and_without_counts() {
        let text = "measure,component,region,period,value,numerator,denominator\n\
                    SDM2,PM4.3,north,2023-04,99.5,199,200\n\
                    # a comment\n\
                    \n\
                    SUM1,DUIS,,RY23/24,99.81,,\n";
        let rows = parse("in.csv", text).unwrap();
        assert_eq!(rows.len(), 2);
        assert_eq!(
            rows[0].counts,
            Some((Decimal::from(199), Decimal::from(200)))
        );
        assert_eq!(rows[0].origin, "in.csv:2");
        assert_eq!(
            rows[1].period,
            Period::Year(RegYear::parse("RY23/24").unwrap())
        );
        assert_eq!(rows[1].region, None);
        assert_eq!(rows[1].origin, "in.csv:5");
    }

    #[test]
    fn every_bad_row_is_named() {
        let text = "measure,component,region,period,value\n\
                    SUM1,DUIS,,2023-13,99\n\
                    SUM1,DUIS,west,2023-04,99\n\
                    SUM1,DUIS,,2023-04,lots\n\
                    SUM1,DUIS,,2023-04\n";
        let errs = parse("in.csv", text).unwrap_err();
        assert_eq!(errs.len(), 4, "{errs:?}");
        assert!(errs[0].starts_with("in.csv:2: period"));
        assert!(errs[1].starts_with("in.csv:3: region"));
        assert!(errs[2].starts_with("in.csv:4: value"));
        assert!(errs[3].starts_with("in.csv:5: expected 5 fields"));
        assert!(parse("x.csv", "a,b\n").unwrap_err()[0].contains("header"));
    }
}
