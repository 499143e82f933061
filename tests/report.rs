//! `srv-opr report`: a simulated regulatory year made into the workbook, charts and HTML page,
//! then opened by the tools their readers use: openpyxl walks every cell against the CSVs
//! (`tests/report_check.py`), LibreOffice converts the workbook to PDF (one page per sheet) and
//! headless Chromium renders the page. Debian's `libreoffice-calc-nogui`, `chromium`,
//! `python3-openpyxl`, `python3-pil` and `poppler-utils` are installed by `scripts/test`.

use std::path::Path;
use std::process::{Command, Output};

use crate::support::srv_ok;

/// Debian's Python, which has the packages `scripts/test` installs (a pyenv shim may not).
const PYTHON: &str = "/usr/bin/python3";

fn srv(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_srv-opr"))
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap()
}

fn external_inputs() -> String {
    format!(
        "{}/config/opr/RY23-24-external.csv",
        env!("CARGO_MANIFEST_DIR")
    )
}

fn tool(cmd: &mut Command) -> Output {
    let o = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    assert!(
        o.status.success(),
        "{cmd:?}: {}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    o
}

/// The register of the reported year: an incident in every view, maintenance in the PMR's only.
const REGISTER: &str = r#"
[[exemption]]
id = "INC000001065262"
reason = "exceptional_event"
from = "2023-08-14T09:00:00+01:00"
to = "2023-08-14T15:00:00+01:00"
approved_by = "Head of Performance"
approved_at = "2023-09-01"
note = "Category 2: DUIS unavailable"

[[exemption]]
id = "CHG0034127"
reason = "planned_maintenance"
from = "2023-11-05T01:00:00Z"
to = "2023-11-05T05:00:00Z"
views = ["pmr"]
"#;

/// A year of traffic (central a little slow, so misses and buckets show) replayed into a report
/// with [`REGISTER`].
fn simulated_report(dir: &Path) -> std::path::PathBuf {
    std::fs::write(dir.join("register.toml"), REGISTER).unwrap();
    srv_ok(
        dir,
        &[
            "simulate",
            "--from",
            "2023-04-01T00:00:00Z",
            "--to",
            "2024-04-01T00:00:00Z",
            "--rate",
            "0.004",
            "--seed",
            "11",
            "--quality",
            "central:slow=0.01,error=0.004",
            "--out",
            "year.jsonl.gz",
        ],
        &[],
    );
    let o = srv_ok(
        dir,
        &[
            "report",
            "--year",
            "RY23/24",
            "--inputs",
            &external_inputs(),
            "--replay",
            "year.jsonl.gz",
            "--exemptions",
            "register.toml",
            "--out",
            "report",
        ],
        &[],
    );
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert!(stdout.contains("Total"), "the Table 7 is printed: {stdout}");
    dir.join("report")
}

#[test]
fn a_reported_year_reads_the_same_in_every_tool() {
    let tmp = tempfile::tempdir().unwrap();
    let out = simulated_report(tmp.path());
    let workbook = "opr-RY23-24.xlsx";
    for f in [
        "rpl.csv",
        "failures.csv",
        "opr-inputs.csv",
        "summary.json",
        "score.csv",
        "score.json",
        workbook,
        "index.html",
    ] {
        assert!(out.join(f).is_file(), "{f} written");
    }

    // openpyxl: every number of every sheet equals its figure in the CSVs and score.json, and
    // every formula computes its cached value.
    let o = tool(Command::new(PYTHON).args([
        &format!("{}/tests/report_check.py", env!("CARGO_MANIFEST_DIR")),
        out.to_str().unwrap(),
        workbook,
        "2023",
    ]));
    let checked: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let sheets = checked["sheets"].as_array().unwrap().len();
    for s in [
        "Summary",
        "SDM1",
        "SDM2",
        "SDM2 counts",
        "MP242",
        "Failures",
        "Time segments",
        "Exemptions",
    ] {
        assert!(
            checked["sheets"].as_array().unwrap().iter().any(|x| x == s),
            "sheet {s}: {checked}"
        );
    }
    assert!(checked["formulas_evaluated"].as_u64().unwrap() > 100);

    // LibreOffice opens it without repair and prints one page per sheet.
    let profile = tmp.path().join("lo-profile");
    tool(Command::new("libreoffice").args([
        &format!("-env:UserInstallation=file://{}", profile.display()),
        "--headless",
        "--convert-to",
        "pdf",
        "--outdir",
        tmp.path().join("pdf").to_str().unwrap(),
        out.join(workbook).to_str().unwrap(),
    ]));
    let pdf = tmp.path().join("pdf/opr-RY23-24.pdf");
    let info = tool(Command::new("pdfinfo").arg(&pdf));
    let info = String::from_utf8_lossy(&info.stdout);
    let pages: usize = info
        .lines()
        .find_map(|l| l.strip_prefix("Pages:"))
        .map(|p| p.trim().parse().unwrap())
        .unwrap_or_else(|| panic!("no page count: {info}"));
    assert_eq!(pages, sheets, "one page per sheet");

    // The charts: every PNG is a non-blank 800×450 image; the page embeds every SVG.
    let html = std::fs::read_to_string(out.join("index.html")).unwrap();
    let mut charts: Vec<String> = std::fs::read_dir(out.join("charts"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".png"))
        .collect();
    charts.sort();
    assert!(
        charts.iter().any(|c| c == "rpl-PM4.3.png")
            && charts.iter().any(|c| c.starts_with("rt-PM4.3-")),
        "{charts:?}"
    );
    for c in &charts {
        let svg = c.replace(".png", ".svg");
        assert!(html.contains(&format!("charts/{svg}")), "{svg} on the page");
        assert!(out.join("charts").join(&svg).is_file());
    }
    // Where the time went (the simulator acknowledges 60 % of requests) and the users with
    // the most misses (issue 32), each a table of the page.
    for table in ["<table id=\"segments\">", "<table id=\"users\">"] {
        assert!(html.contains(table), "{table} on the page");
    }
    assert!(
        html.contains("<td>90-B3-D5-1F-30-0"),
        "a service user named"
    );
    // The year's last month is not final (the events end with it): the page says so, and the
    // workbook marks it (report_check.py holds each marked month to its note).
    assert!(
        html.contains("Mar 24 (not final)"),
        "provisional month flagged"
    );
    // What the register took out, per view and incident, with the register's hash.
    let exemptions = html
        .split("<table id=\"exemptions\">")
        .nth(1)
        .and_then(|t| t.split("</table>").next())
        .unwrap_or_else(|| panic!("no exemptions table: {html}"));
    for (view, id) in [
        ("opr", "INC000001065262"),
        ("pmr", "INC000001065262"),
        ("pmr", "CHG0034127"),
    ] {
        assert!(
            exemptions.contains(&format!("<tr><td>{view}</td>"))
                && exemptions.contains(&format!("<td>{id}</td>")),
            "{view} {id}: {exemptions}"
        );
    }
    assert!(!exemptions.contains("<tr><td>opr</td><td>planned_maintenance"));
    let summary: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("summary.json")).unwrap()).unwrap();
    let sha = summary["exemptions_sha256"].as_str().unwrap();
    assert!(html.contains(&format!("exemption register SHA-256 {sha}")));
    // The worst buckets link to the requests behind them.
    let linked: Vec<&str> = html
        .split("href=\"evidence/")
        .skip(1)
        .filter_map(|rest| rest.split('"').next())
        .collect();
    assert!(!linked.is_empty(), "the failure table links evidence");
    for f in &linked {
        let text = std::fs::read_to_string(out.join("evidence").join(f)).unwrap();
        assert!(text.lines().count() > 1, "{f} lists requests");
    }
    let check_pngs = "import sys\nfrom PIL import Image\nfor p in sys.argv[1:]:\n    im = Image.open(p).convert('RGB')\n    \
         assert im.size == (800, 450), (p, im.size)\n    colours = len(im.getcolors(1 << 20) or [])\n    \
         ink = sum(1 for px in im.getdata() if px != (255, 255, 255))\n    \
         assert colours > 20 and ink > 5000, (p, colours, ink)\nprint(len(sys.argv) - 1)";
    let paths: Vec<String> = charts
        .iter()
        .map(|c| out.join("charts").join(c).display().to_string())
        .collect();
    tool(Command::new(PYTHON).arg("-c").arg(check_pngs).args(&paths));

    // Headless Chromium renders the page with its charts: the regions' line colours are on
    // screen (they appear only in the charts).
    let shot = tmp.path().join("page.png");
    tool(Command::new("chromium").args([
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--hide-scrollbars",
        &format!("--user-data-dir={}", tmp.path().join("chromium").display()),
        &format!("--screenshot={}", shot.display()),
        "--window-size=1700,2400",
        &format!("file://{}", out.join("index.html").display()),
    ]));
    let check_shot = "import sys\nfrom PIL import Image\nim = Image.open(sys.argv[1]).convert('RGB')\n\
         assert im.size == (1700, 2400), im.size\ncounts = {}\nfor px in im.getdata():\n    counts[px] = counts.get(px, 0) + 1\n\
         for name, rgb in [('north', (31, 119, 180)), ('central', (255, 127, 14)), ('south', (44, 160, 44))]:\n    \
         n = sum(c for px, c in counts.items() if max(abs(a - b) for a, b in zip(px, rgb)) < 40)\n    \
         assert n > 2000, (name, n)\nprint('ok')";
    tool(Command::new(PYTHON).arg("-c").arg(check_shot).arg(&shot));
}

#[test]
fn report_errors_name_the_problem() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let o = srv(dir, &["report", "--year", "2023", "--replay", "x.jsonl"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("RY23/24"));

    // No store configured and nothing to replay.
    let o = srv(dir, &["report", "--year", "RY23/24"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("state store")
            && String::from_utf8_lossy(&o.stderr).contains("--replay"),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );

    // External inputs that also give a streaming component: the row is named.
    srv_ok(
        dir,
        &[
            "simulate",
            "--month",
            "2023-05",
            "--rate",
            "0.01",
            "--seed",
            "2",
            "--out",
            "may.jsonl",
        ],
        &[],
    );
    let seed = format!(
        "{}/tests/fixtures/seed-ry2324.csv",
        env!("CARGO_MANIFEST_DIR")
    );
    let o = srv(
        dir,
        &[
            "report",
            "--year",
            "RY23/24",
            "--inputs",
            &seed,
            "--replay",
            "may.jsonl",
            "--out",
            "r",
        ],
    );
    assert_eq!(o.status.code(), Some(1));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("PM4.3") && err.contains("seed-ry2324.csv"),
        "{err}"
    );
}

#[test]
fn the_workbook_writes_hostile_text_as_text_never_as_a_formula() {
    // A scheme whose measure name is a formula (a scheme file is edited by hand, and could be
    // handed on): the workbook must show it as text, and no cell may run it.
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let scheme = std::fs::read_to_string(root.join("config/opr/RY23-24.toml")).unwrap();
    let hostile = "=HYPERLINK(\"http://attacker.example/\",\"open me\")";
    let edited = scheme.replace(
        "name = \"Service availability\"",
        &format!("name = {}", toml::Value::String(hostile.into())),
    );
    assert_ne!(edited, scheme);
    std::fs::create_dir_all(dir.join("cfg/opr")).unwrap();
    std::fs::write(dir.join("cfg/opr/RY23-24.toml"), edited).unwrap();
    srv_ok(
        dir,
        &[
            "simulate",
            "--month",
            "2023-05",
            "--rate",
            "0.01",
            "--seed",
            "4",
            "--out",
            "may.jsonl",
        ],
        &[],
    );
    srv_ok(
        dir,
        &[
            "--config",
            "cfg",
            "report",
            "--year",
            "RY23/24",
            "--inputs",
            &external_inputs(),
            "--replay",
            "may.jsonl",
            "--out",
            "report",
        ],
        &[],
    );
    // The file itself, as any spreadsheet reads it: the name is a shared string, and no formula
    // anywhere holds it.
    let check = "import sys, zipfile\nz = zipfile.ZipFile(sys.argv[1])\n\
        strings = z.read('xl/sharedStrings.xml').decode()\n\
        assert '=HYPERLINK(\"http://attacker.example/' in strings, strings[:300]\n\
        sheets = [n for n in z.namelist() if n.startswith('xl/worksheets/sheet')]\n\
        assert sheets\n\
        for n in sheets:\n    x = z.read(n).decode()\n    assert 'attacker' not in x, n\n\
        print(len(sheets))";
    tool(
        Command::new(PYTHON)
            .arg("-c")
            .arg(check)
            .arg(dir.join("report/opr-RY23-24.xlsx")),
    );
}

/// `report --month` (issue 33): the analyst's month from a replay of February and March, no
/// external input: the page's figures are `rpl.csv`'s, the change is from February's row, the
/// coverage and finality are said; openpyxl reads the workbook's sheets with the same figures and
/// A4 printing (landscape, one page wide, the header row repeated), and LibreOffice opens it.
#[test]
fn a_month_report_says_each_measure_against_its_levels_and_the_change_in_every_tool() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    for (month, seed, out) in [("2024-02", "3", "feb.jsonl"), ("2024-03", "4", "mar.jsonl")] {
        let o = srv(
            d,
            &[
                "simulate",
                "--month",
                month,
                "--rate",
                "0.01",
                "--seed",
                seed,
                "--quality",
                "central:slow=0.03",
                "--out",
                out,
            ],
        );
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    }
    let o = srv(
        d,
        &[
            "report",
            "--month",
            "2024-03",
            "--replay",
            "feb.jsonl",
            "mar.jsonl",
            "--out",
            "m",
        ],
    );
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let out = d.join("m");
    let html = std::fs::read_to_string(out.join("index.html")).unwrap();
    let rpl = std::fs::read_to_string(out.join("rpl.csv")).unwrap();
    let row = |month: &str, m: &str, r: &str| -> Vec<String> {
        rpl.lines()
            .find(|l| l.starts_with(&format!("{month},{m},{r},")))
            .unwrap_or_else(|| panic!("{month} {m} {r} not in rpl.csv"))
            .split(',')
            .map(String::from)
            .collect()
    };
    for (m, r) in [
        ("PM4.3", "north"),
        ("PM4.3", "central"),
        ("SRV8.11", "south"),
        ("PM1.1-DSP", "all"),
    ] {
        let key = format!("data-measure=\"{m}\" data-region=\"{r}\"");
        let tr = html
            .split(&key)
            .nth(1)
            .and_then(|t| t.split("</tr>").next())
            .unwrap_or_else(|| panic!("{m} {r} not on the page"));
        let (mar, feb) = (row("2024-03", m, r), row("2024-02", m, r));
        assert!(tr.contains(&format!(">{}<", mar[3])), "requests: {tr}");
        assert!(tr.contains(&format!(">{}<", mar[7])), "RPL: {tr}");
        assert!(
            tr.contains(&format!(">{}<", feb[7])),
            "February's RPL: {tr}"
        );
        let change = (mar[7].parse::<f64>().unwrap() - feb[7].parse::<f64>().unwrap()) * 100.0;
        let shown = tr
            .rsplit("<td class=\"num\">")
            .next()
            .and_then(|t| t.split('<').next())
            .unwrap();
        assert!(
            (shown.parse::<f64>().unwrap() * 100.0 - change).abs() <= 1.0,
            "change {shown} against {change}: {tr}"
        );
    }
    assert!(html.contains("BELOW TARGET"), "central is degraded");
    // The month in one line first: the judged rows below target, by name (issue 33).
    let headline = html
        .split("id=\"headline\"")
        .nth(1)
        .and_then(|t| t.split("</p>").next())
        .unwrap_or_else(|| panic!("no headline: {html}"));
    assert!(
        headline.contains("PM4.3 central (below target)"),
        "{headline}"
    );
    assert!(!headline.contains("north"), "{headline}");
    assert!(html.contains("data-complete=\"true\""), "{html}");
    assert!(
        !html.contains("data-measure=\"PM4.3\" data-region=\"all\""),
        "judged rows only"
    );

    let check = r#"
import sys, openpyxl, json
wb = openpyxl.load_workbook(sys.argv[1])
out = {"sheets": wb.sheetnames}
ws = wb["Month"]
rows = {}
for r in ws.iter_rows(min_row=5, values_only=True):
    if r[0]:
        rows[r[0] + " " + r[1]] = [r[2], r[3], r[4]]
out["rows"] = rows
for s in wb.worksheets:
    ps = s.page_setup
    assert ps.orientation == "landscape", (s.title, ps.orientation)
    assert str(ps.paperSize) == "9", (s.title, ps.paperSize)
    assert s.sheet_properties.pageSetUpPr.fitToPage, s.title
    assert ps.fitToWidth in (None, 1, "1"), (s.title, ps.fitToWidth)  # absent: 1
    assert ps.fitToHeight in (0, "0"), (s.title, ps.fitToHeight)
    assert s.print_title_rows.replace("$", "") == "4:4", (s.title, s.print_title_rows)
print(json.dumps(out))
"#;
    let o = tool(
        Command::new(PYTHON)
            .arg("-c")
            .arg(check)
            .arg(out.join("srv-opr-2024-03.xlsx")),
    );
    let got: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    for s in [
        "Month",
        "Failures",
        "Time segments",
        "Users",
        "Availability",
        "Exemptions",
    ] {
        assert!(
            got["sheets"].as_array().unwrap().iter().any(|x| x == s),
            "{got}"
        );
    }
    let mar = row("2024-03", "PM4.3", "central");
    let cells = &got["rows"]["PM4.3 central"];
    assert_eq!(cells[0], mar[3].parse::<u64>().unwrap(), "{got}");
    let rpl_cell = cells[2].as_f64().unwrap() * 100.0;
    assert!(
        (rpl_cell - mar[7].parse::<f64>().unwrap()).abs() < 1e-9,
        "{got}"
    );
    let profile = d.join("lo-profile");
    tool(Command::new("libreoffice").args([
        &format!("-env:UserInstallation=file://{}", profile.display()),
        "--headless",
        "--convert-to",
        "pdf",
        "--outdir",
        d.join("pdf").to_str().unwrap(),
        out.join("srv-opr-2024-03.xlsx").to_str().unwrap(),
    ]));
    assert!(d.join("pdf/srv-opr-2024-03.pdf").is_file());
}
