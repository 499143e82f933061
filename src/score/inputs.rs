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

/// Problems kept per file; past it they are only counted (a file of a million bad rows must not
/// take a million lines of memory, nor of terminal).
const MAX_PROBLEMS: usize = 200;

/// Longest value echoed back in a problem.
const ECHO: usize = 40;

impl std::fmt::Display for Period {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Period::Month(m) => f.write_str(m),
            Period::Year(y) => write!(f, "{y}"),
        }
    }
}

/// Parses one CSV file (`name` for messages), as CSV: quoted fields, a byte-order mark, blank
/// lines and `#` comment lines are all what a spreadsheet or a script may write. Every
/// malformed row is reported (the first few hundred of them, and how many more).
pub fn parse(name: &str, text: &str) -> Result<Vec<InputRow>, super::problems::Problems> {
    parse_rows(name, text)
}

/// A value exactly as written: a number `rust_decimal` holds without rounding.
fn exact(origin: &str, what: &str, s: &str) -> Result<Decimal, String> {
    let shown = crate::echo::cut(s, ECHO);
    match Decimal::from_str_exact(s) {
        Ok(v) => Ok(v),
        Err(_) if s.parse::<Decimal>().is_ok() => Err(format!(
            "{origin}: {what} {shown:?} has more digits than can be held exactly (28 at most)"
        )),
        Err(_) => Err(format!("{origin}: {what} {shown:?} is not a number")),
    }
}

fn parse_rows(name: &str, text: &str) -> Result<Vec<InputRow>, super::problems::Problems> {
    // The mark first, so that a comment line after it is still a comment.
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    // One row per line, each line read as CSV on its own: the csv crate's positions skip the
    // blank and comment lines it skips (and miscount CRLF), and a row's number must be the one
    // the user's editor shows. A field spanning lines has no place in these files.
    let mut builder = csv::ReaderBuilder::new();
    builder
        .has_headers(false)
        .flexible(true)
        .trim(csv::Trim::All);
    let mut rows = Vec::new();
    let mut problems = Vec::new();
    let mut more = 0usize;
    let mut with_counts = None;
    for (i, line) in text.lines().enumerate() {
        let line_no = i + 1;
        if line.trim().is_empty() || line.trim_start().starts_with('#') {
            continue;
        }
        let mut records = builder.from_reader(line.as_bytes()).into_records();
        let record = match (records.next(), records.next()) {
            (Some(Ok(r)), None) => r,
            (Some(Err(e)), _) => {
                let e = crate::echo::cut(&e.to_string(), 120);
                push(
                    &mut problems,
                    &mut more,
                    format!("{name}:{line_no}: not CSV: {e}"),
                );
                continue;
            }
            _ => {
                let p = format!("{name}:{line_no}: not CSV: a quoted field spans lines");
                push(&mut problems, &mut more, p);
                continue;
            }
        };
        let line = line_no;
        let origin = format!("{name}:{line}");
        let f: Vec<&str> = record.iter().collect();
        let Some(counts_given) = with_counts else {
            let header = f.join(",");
            with_counts = if header == HEADER {
                Some(false)
            } else if header == format!("{HEADER},numerator,denominator") {
                Some(true)
            } else {
                return Err(super::Problems::new(vec![format!(
                    "{origin}: header must be `{HEADER}[,numerator,denominator]`, found `{}`",
                    crate::echo::cut(&header, 120)
                )]));
            };
            continue;
        };
        match row(&origin, &f, counts_given) {
            Ok(r) => rows.push(r),
            Err(e) => push(&mut problems, &mut more, e),
        }
    }
    if with_counts.is_none() {
        return Err(super::Problems::new(vec![format!(
            "{name}: empty (no header)"
        )]));
    }
    if problems.is_empty() {
        Ok(rows)
    } else {
        Err(super::problems::Problems {
            list: problems,
            more,
        })
    }
}

fn push(problems: &mut Vec<String>, more: &mut usize, p: String) {
    if problems.len() < MAX_PROBLEMS {
        problems.push(p);
    } else {
        *more += 1;
    }
}

/// One data row, checked.
fn row(origin: &str, f: &[&str], with_counts: bool) -> Result<InputRow, String> {
    let want = if with_counts { 7 } else { 5 };
    if f.len() != want && !(with_counts && f.len() == 5) {
        return Err(format!(
            "{origin}: expected {want} fields, found {}",
            f.len()
        ));
    }
    let period = if let Some(y) = RegYear::parse(f[3]) {
        Period::Year(y)
    } else if RegYear::of_month(f[3]).is_some() {
        Period::Month(f[3].to_string())
    } else {
        return Err(format!(
            "{origin}: period {:?} is neither a month (2023-04) nor a year (RY23/24)",
            crate::echo::cut(f[3], ECHO)
        ));
    };
    let region = match f[2] {
        "" => None,
        r if Region::parse(r).is_some() => Some(r.to_string()),
        other => {
            return Err(format!(
                "{origin}: region {:?} is not north, central, south or empty",
                crate::echo::cut(other, ECHO)
            ));
        }
    };
    let value = exact(origin, "value", f[4])?;
    let counts = if f.len() == 7 && !(f[5].is_empty() && f[6].is_empty()) {
        let (n, d) = (
            exact(origin, "numerator", f[5])?,
            exact(origin, "denominator", f[6])?,
        );
        if !(d > Decimal::ZERO && n >= Decimal::ZERO && n <= d) {
            return Err(format!(
                "{origin}: counts must satisfy 0 ≤ numerator ≤ denominator, denominator > 0"
            ));
        }
        Some((n, d))
    } else {
        None
    };
    if f[0].is_empty() || f[1].is_empty() {
        return Err(format!("{origin}: measure and component are required"));
    }
    Ok(InputRow {
        origin: origin.to_string(),
        // As srv-opr's own opr-inputs.csv neutralised them against formula injection.
        measure: crate::csv_text::unneutralised(f[0]).to_string(),
        component: crate::csv_text::unneutralised(f[1]).to_string(),
        region,
        period,
        value,
        counts,
    })
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

    #[test]
    fn read_as_csv_exactly_as_written() {
        // A quoted value, a byte-order mark before a comment line, CRLF line ends.
        let text = "\u{feff}# exported\r\nmeasure,component,region,period,value\r\n\
                    SUM1,DUIS,,2023-04,\"97.21\"\r\n";
        let rows = parse("q.csv", text).unwrap();
        assert_eq!(rows[0].value, Decimal::new(9721, 2));
        assert_eq!(rows[0].origin, "q.csv:3");

        // More digits than a decimal holds is refused, not rounded to 100.
        let text = "measure,component,region,period,value\n\
                    SUM1,DUIS,,2023-04,100.0000000000000000000000000001\n";
        let errs = parse("d.csv", text).unwrap_err();
        assert!(
            errs[0].contains("more digits than can be held exactly"),
            "{errs:?}"
        );

        // A huge value is cut in its error; a flood of bad rows is capped.
        let long = "9".repeat(10_000);
        let mut text = String::from("measure,component,region,period,value\n");
        text.push_str(&format!("SUM1,DUIS,,{long},1\n"));
        for _ in 0..1000 {
            text.push_str("SUM1,DUIS,,2023-04,x\n");
        }
        let errs = parse("f.csv", &text).unwrap_err();
        assert!(errs[0].len() < 200, "{}", errs[0]);
        assert!(errs[0].contains("(10000 bytes)"), "{}", errs[0]);
        assert_eq!(errs.len(), MAX_PROBLEMS);
        assert_eq!(errs.total(), 1001);
        assert!(errs.to_string().ends_with("\n… and 951 more"), "{errs}");
        assert_eq!(Period::Month("2023-04".into()).to_string(), "2023-04");
    }
}
