"""Walks every cell of a report's workbook (openpyxl, as a reader of the file would) and checks
each number against the report's rpl.csv, failures.csv, opr-inputs.csv, score.csv and
score.json; evaluates every formula from the cached values it refers to. Exits non-zero with
the first problems listed. Usage: report_check.py OUT_DIR WORKBOOK YEAR_START (e.g. 2023)."""

import csv
import json
import re
import sys
from collections import defaultdict
from decimal import Decimal
from pathlib import Path

import openpyxl
from openpyxl.utils import range_boundaries, get_column_letter

out = Path(sys.argv[1])
book = out / sys.argv[2]
start = int(sys.argv[3])

MONTHS = [f"{start + (m > 12):04d}-{(m - 1) % 12 + 1:02d}" for m in range(4, 16)]
NAMES = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]
LABEL = {f"{NAMES[int(m[5:]) - 1]} {m[2:4]}": m for m in MONTHS}
FIRST_MONTH_COL = 4  # D, 1-based
ANNUAL_COL = FIRST_MONTH_COL + 12
HEADER_ROW = 4

problems = []
checked = set()


def fail(msg):
    problems.append(msg)


def close(a, b, tol=1e-9):
    return a is not None and b is not None and abs(float(a) - float(b)) <= tol * max(1.0, abs(float(b)))


def read_csv(name):
    with open(out / name, newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


rpl = {(r["month"], r["measure"], r["region"]): r for r in read_csv("rpl.csv")}
failures = read_csv("failures.csv")
opr_inputs = {
    (r["measure"], r["component"], r["region"], r["period"]): r for r in read_csv("opr-inputs.csv")
}
score_csv = {r["measure"]: r for r in read_csv("score.csv")}
score = json.loads((out / "score.json").read_text())
measures_in_rpl = {k[1] for k in rpl}

values = openpyxl.load_workbook(book, data_only=True)
formulas = openpyxl.load_workbook(book, data_only=False)


def cell(ws, row, col):
    v = ws.cell(row=row, column=col).value
    return v


def mark(ws, row, col):
    checked.add((ws.title, row, col))


def expect(ws, row, col, want, what, tol=1e-9):
    got = cell(ws, row, col)
    mark(ws, row, col)
    if not close(got, want, tol):
        fail(f"{ws.title}!{get_column_letter(col)}{row} ({what}): {got!r} != {want!r}")


def pct4(frac):
    """An RPL cell (a fraction) as rpl.csv writes it: 4 decimals, half away from zero."""
    if not isinstance(frac, (int, float)):
        return repr(frac)
    return str((Decimal(repr(frac)) * 100).quantize(Decimal("0.0001"), rounding="ROUND_HALF_UP"))


def month_columns(ws):
    cols = {}
    for c in range(FIRST_MONTH_COL, FIRST_MONTH_COL + 12):
        label = cell(ws, HEADER_ROW, c)
        # A month not final yet is marked with `*` (explained above the table).
        if isinstance(label, str) and label.endswith("*"):
            label = label[:-1]
            if not str(cell(ws, HEADER_ROW - 1, 1)).startswith("* not final"):
                fail(f"{ws.title}: a provisional month without the note")
        if label not in LABEL:
            fail(f"{ws.title}: column {c} header {label!r} is not a month of the year")
        else:
            cols[c] = LABEL[label]
    return cols


# --- Summary (Table 7) --------------------------------------------------------------------
ws = values["Summary"]
expect(ws, 2, 3, Decimal(score["margin_at_risk"]), "margin at risk")
row = HEADER_ROW + 1
seen = []
while cell(ws, row, 1):
    m = cell(ws, row, 1)
    s = score_csv.get(m)
    if s is None:
        fail(f"Summary row {row}: {m} is not in score.csv")
        break
    seen.append(m)
    expect(ws, row, 3, Decimal(s["weight"]) / 100, f"{m} weight", 1e-6)
    if s["retained_percent"]:
        got = cell(ws, row, 5)
        mark(ws, row, 5)
        if got is None or f"{Decimal(repr(got * 100)).quantize(Decimal('0.01'), rounding='ROUND_HALF_UP')}" != s["retained_percent"]:
            fail(f"Summary {m} retained %: {got!r} vs {s['retained_percent']}")
    expect(ws, row, 6, Decimal(s["retained_gbp_m"]), f"{m} retained", 1e-6)
    expect(ws, row, 7, Decimal(s["lost_gbp_m"]), f"{m} lost", 1e-6)
    row += 1
if seen != list(score_csv):
    fail(f"Summary measures {seen} != score.csv {list(score_csv)}")

# --- Scheme measure sheets ----------------------------------------------------------------
for m in score["measures"]:
    comps = [c for c in m["components"] if c["annual"] is not None]
    if m["mechanism"] == "VMM" or not comps:
        continue
    mid = m["measure"]
    if mid not in values.sheetnames:
        fail(f"no sheet for {mid}")
        continue
    ws = values[mid]
    cols = month_columns(ws)
    counts_ws = values[f"{mid} counts"] if f"{mid} counts" in values.sheetnames else None
    by_key = {(c["component"], c["region"]): c for c in comps}
    row = HEADER_ROW + 1
    n = 0
    while cell(ws, row, 1) not in (None, "TPL", "MPL"):
        comp, region = cell(ws, row, 1), cell(ws, row, 2)
        region = None if region == "—" else region
        c = by_key.get((comp, region))
        if c is None:
            fail(f"{mid} row {row}: {comp}/{region} not in score.json")
            row += 1
            continue
        n += 1
        for col, month in cols.items():
            v = cell(ws, row, col)
            if month in c["months"]:
                expect(ws, row, col, Decimal(c["months"][month]) / 100, f"{comp} {region} {month}")
                if comp in measures_in_rpl:
                    line = rpl.get((month, comp, region or "all"))
                    if line is None or pct4(v) != line["rpl_percent"]:
                        fail(f"{mid} {comp} {region} {month}: {v!r} vs rpl.csv {line and line['rpl_percent']}")
            elif v is not None:
                fail(f"{mid} {comp} {region} {month}: a value {v!r} with no input")
        expect(ws, row, ANNUAL_COL, Decimal(c["annual"]) / 100, f"{comp} {region} annual")
        row += 1
    if n != len(comps):
        fail(f"{mid}: {n} component rows, score.json has {len(comps)}")
    for label, key in (("TPL", "tpl"), ("MPL", "mpl")):
        if m[key] is None:
            continue
        if cell(ws, row, 1) != label:
            fail(f"{mid}: row {row} should be {label}")
            continue
        for col in range(FIRST_MONTH_COL, ANNUAL_COL + 1):
            expect(ws, row, col, Decimal(m[key]) / 100, f"{mid} {label}")
        row += 1
    while cell(ws, row, 1) != "Part":
        row += 1
        if row > 500:
            fail(f"{mid}: no Part table")
            break
    row += 1
    for p in m["parts"]:
        if cell(ws, row, 2) != p["scope"]:
            fail(f"{mid} part row {row}: {cell(ws, row, 2)!r} != {p['scope']}")
        expect(ws, row, 3, Decimal(p["rpl"]) / 100, f"{mid} {p['scope']} RPL")
        expect(ws, row, 4, Decimal(p["share"]), f"{mid} {p['scope']} share")
        for col, key in ((5, "allocation"), (6, "kept"), (7, "lost")):
            expect(ws, row, col, Decimal(p[key]), f"{mid} {p['scope']} {key}")
        row += 1
    if counts_ws is not None:
        r = HEADER_ROW + 1
        while cell(counts_ws, r, 1):
            comp, region, what = cell(counts_ws, r, 1), cell(counts_ws, r, 2), cell(counts_ws, r, 3)
            region = "" if region == "—" else region
            total = 0
            for col, month in month_columns(counts_ws).items():
                row_in = opr_inputs.get((mid, comp, region, month))
                if row_in is None:
                    if cell(counts_ws, r, col) is not None:
                        fail(f"{mid} counts {comp} {region} {month}: a count with no input")
                    continue
                want = int(row_in["numerator" if what == "hits" else "denominator"])
                total += want
                expect(counts_ws, r, col, want, f"{mid} counts {comp} {region} {what} {month}")
                line = rpl.get((month, comp, region or "all"))
                if line is not None:
                    field = "requests" if what == "requests" else None
                    if field and int(line[field]) != want:
                        fail(f"{mid} counts {comp} {month}: requests {want} != rpl.csv {line[field]}")
            expect(counts_ws, r, ANNUAL_COL, total, f"{mid} counts {comp} {region} {what} year")
            r += 1

# --- Streaming sheets (MP242, Other measures) ---------------------------------------------
for name in ("MP242", "Other measures"):
    if name not in values.sheetnames:
        continue
    ws, cws = values[name], values[f"{name} counts"]
    cols = month_columns(ws)
    row = HEADER_ROW + 1
    k = 0
    while cell(ws, row, 1):
        mid, region = cell(ws, row, 1), cell(ws, row, 2)
        crow = HEADER_ROW + 1 + 2 * k
        fracs = []
        totals = [0, 0]
        for col, month in cols.items():
            line = rpl.get((month, mid, region))
            v = cell(ws, row, col)
            if line is None:
                if v is not None:
                    fail(f"{name} {mid} {region} {month}: {v!r} with no rpl.csv row")
                continue
            mark(ws, row, col)
            if pct4(v) != line["rpl_percent"]:
                fail(f"{name} {mid} {region} {month}: {v!r} vs rpl.csv {line['rpl_percent']}")
            fracs.append(v if isinstance(v, (int, float)) else float("nan"))
            hits = int(line["succeeded"] if mid.startswith("MP242") else line["within_target"])
            expect(cws, crow, col, hits, f"{mid} {region} {month} hits")
            expect(cws, crow + 1, col, int(line["requests"]), f"{mid} {region} {month} requests")
            totals[0] += hits
            totals[1] += int(line["requests"])
        expect(cws, crow, ANNUAL_COL, totals[0], f"{mid} {region} hits year")
        expect(cws, crow + 1, ANNUAL_COL, totals[1], f"{mid} {region} requests year")
        expect(ws, row, ANNUAL_COL, sum(fracs) / len(fracs), f"{mid} {region} annual")
        if cell(ws, row, 3) is not None:
            mark(ws, row, 3)  # the measure's TPL, from measures.toml (checked below)
        row += 1
        k += 1

# --- Failures ------------------------------------------------------------------------------
ws = values["Failures"]
year_buckets = defaultdict(int)
misses = defaultdict(int)
for f in failures:
    if f["month"] in MONTHS and f["region"] != "all":
        year_buckets[(f["measure"], f["region"], f["bucket"])] += int(f["count"])
        misses[(f["measure"], f["region"])] += int(f["count"])
row = HEADER_ROW + 1
while cell(ws, row, 1) and cell(ws, row, 4) is not None:
    key = (cell(ws, row, 1), cell(ws, row, 2), cell(ws, row, 3))
    expect(ws, row, 4, year_buckets.get(key), f"failures {key}")
    expect(ws, row, 5, year_buckets.get(key, 0) / max(1, misses[key[:2]]), f"failures share {key}")
    row += 1

# --- Time segments: counts are rpl.csv's summed; each percentile lies between the months' ----
ws = values["Time segments"]
row = HEADER_ROW + 1
while cell(ws, row, 1) and cell(ws, row, 3) is not None:
    measure, region = cell(ws, row, 1), cell(ws, row, 2)
    months = [r for (m, me, re), r in rpl.items() if m in MONTHS and me == measure and re == region]
    requests = sum(int(r["requests"]) for r in months)
    acked = sum(int(r["acked"]) for r in months)
    expect(ws, row, 3, requests, f"segments requests {measure} {region}")
    expect(ws, row, 4, acked, f"segments acked {measure} {region}")
    expect(ws, row, 5, acked / max(1, requests), f"segments share {measure} {region}")
    for col, field in ((6, "ack_p50_ms"), (7, "ack_p95_ms"), (8, "after_ack_p95_ms"), (9, "p95_ms")):
        got = cell(ws, row, col)
        mark(ws, row, col)
        monthly = [int(r[field]) for r in months if r[field]]
        if got is None:
            if monthly:
                fail(f"Time segments {measure} {region} {field}: empty, months have {monthly}")
            continue
        # A quantile of months merged lies between the months' own (each within 0.1 %).
        if not monthly or not (min(monthly) * 0.998 - 1 <= got <= max(monthly) * 1.002 + 1):
            fail(f"Time segments {measure} {region} {field}: {got} outside the months' {monthly}")
    row += 1

# --- Exemptions: each incident's and reason's year equals exemptions.csv summed -----------
ws = values["Exemptions"]
before = defaultdict(int)
for (month, measure, region), r in rpl.items():
    if month in MONTHS and region == "all":
        before[measure] += int(r["requests"]) + int(r["exempted"])
by_incident = defaultdict(int)
by_reason = defaultdict(int)
if (out / "exemptions.csv").exists():
    for e in read_csv("exemptions.csv"):
        if e["month"] in MONTHS and e["region"] == "all":
            by_incident[(e["view"], e["reason"], e["exemption"], e["measure"])] += int(e["requests_exempted"])
            by_reason[(e["view"], e["reason"], e["measure"])] += int(e["requests_exempted"])
seen = set()
row = HEADER_ROW + 1
while cell(ws, row, 1):
    key = (cell(ws, row, 1), cell(ws, row, 2), cell(ws, row, 3), cell(ws, row, 4))
    if key[0] == "By reason":
        break
    seen.add(key)
    expect(ws, row, 5, by_incident.get(key), f"exempted {key}")
    expect(ws, row, 6, before.get(key[3]), f"requests before {key}")
    expect(ws, row, 7, by_incident.get(key, 0) / max(1, before.get(key[3], 0)), f"share {key}")
    row += 1
if seen != set(by_incident):
    fail(f"Exemptions: incidents {sorted(seen)} != exemptions.csv's {sorted(by_incident)}")
while cell(ws, row, 1) != "By reason" and row < ws.max_row:
    row += 1
row += 2
seen = set()
while cell(ws, row, 1):
    key = (cell(ws, row, 1), cell(ws, row, 2), cell(ws, row, 4))
    seen.add(key)
    expect(ws, row, 5, by_reason.get(key), f"exempted by reason {key}")
    expect(ws, row, 6, before.get(key[2]), f"requests before {key}")
    expect(ws, row, 7, by_reason.get(key, 0) / max(1, before.get(key[2], 0)), f"share by reason {key}")
    row += 1
if seen != set(by_reason):
    fail(f"Exemptions: reasons {sorted(seen)} != exemptions.csv's {sorted(by_reason)}")

# --- Formulas: each evaluates, from the cached values it names, to its own cached value ---
REF = r"(?:'([^']+)'!)?\$?([A-Z]+)\$?([0-9]+)"


def ref_value(default_sheet, text):
    m = re.fullmatch(REF, text)
    if not m:
        raise ValueError(text)
    sheet = m.group(1) or default_sheet
    return values[sheet][f"{m.group(2)}{m.group(3)}"].value


def arg_values(default_sheet, arg):
    arg = arg.strip()
    if ":" in arg:
        sheet = default_sheet
        if "!" in arg:
            sheet, arg = arg.rsplit("!", 1)
            sheet = sheet.strip("'")
        c0, r0, c1, r1 = range_boundaries(arg.replace("$", ""))
        ws = values[sheet]
        return [ws.cell(row=r, column=c).value for r in range(r0, r1 + 1) for c in range(c0, c1 + 1)]
    return [ref_value(default_sheet, arg)]


n_formulas = 0
for wsf in formulas.worksheets:
    for row in wsf.iter_rows():
        for c in row:
            if not (isinstance(c.value, str) and c.value.startswith("=")):
                continue
            n_formulas += 1
            f = c.value
            cached = values[wsf.title][c.coordinate].value
            m = re.fullmatch(r"=(SUM|AVERAGE)\((.*)\)", f)
            try:
                if m:
                    nums = [v for a in m.group(2).split(",") for v in arg_values(wsf.title, a) if isinstance(v, (int, float))]
                    got = sum(nums) if m.group(1) == "SUM" else sum(nums) / len(nums)
                else:
                    m = re.fullmatch(f"=({REF})/({REF})", f)
                    if not m:
                        fail(f"{wsf.title}!{c.coordinate}: unexpected formula {f}")
                        continue
                    a = ref_value(wsf.title, m.group(1))
                    b = ref_value(wsf.title, m.group(5))
                    got = a / b
            except Exception as e:  # a reference to an empty or missing cell
                fail(f"{wsf.title}!{c.coordinate}: {f} cannot be evaluated: {e!r}")
                continue
            if not close(got, cached, 1e-9):
                fail(f"{wsf.title}!{c.coordinate}: {f} = {got!r} but the cell holds {cached!r}")

# --- Every number was checked ---------------------------------------------------------------
unchecked = []
for ws in values.worksheets:
    for row in ws.iter_rows():
        for c in row:
            if isinstance(c.value, (int, float)) and not isinstance(c.value, bool):
                if (ws.title, c.row, c.column) not in checked:
                    unchecked.append(f"{ws.title}!{c.coordinate}={c.value}")
if unchecked:
    fail(f"{len(unchecked)} numbers no check covered: {unchecked[:10]}")

if problems:
    print(f"{len(problems)} problem(s):", *problems[:40], sep="\n")
    sys.exit(1)
print(
    json.dumps(
        {
            "sheets": values.sheetnames,
            "numbers_checked": len(checked),
            "formulas_evaluated": n_formulas,
        }
    )
)
