"""The reference computation of `scripts/bench`: what a data engineer would write in DuckDB to get
the month × measure × region counts of `rpl.csv` from a JSON Lines file of SRV events.

Each request is joined to its final response: the earliest non-acknowledgement by `at`; on
equal `at` a non-success code wins, then the lowest code. Then the TRT and deadline rules are
applied per measure (the measure's TRT, else the table's by SRV, else by class, else the
default), and requests are grouped by calendar month in the configured zone and by region.
Measures, classes and TRTs are read from `measures.toml`, so both sides use one definition.

The dataset must be clean apart from acknowledgements and disorder (`simulate --bad 0
--duplicates 0 --late 0`): dead letters, duplicates and lateness are srv-opr's business and
out of this query's scope.

Usage: bench_duckdb.py EVENTS.jsonl MEASURES.toml OUT.csv [THREADS]
Prints the wall seconds of the query on stdout.
"""

import csv
import re
import sys
import time
import tomllib

import duckdb

events, measures_toml, out = sys.argv[1], sys.argv[2], sys.argv[3]
threads = int(sys.argv[4]) if len(sys.argv) > 4 else 2

with open(measures_toml, "rb") as f:
    defs = tomllib.load(f)

UNITS = {"ms": 1, "s": 1000, "m": 60_000, "min": 60_000, "h": 3_600_000, "d": 86_400_000}


def ms(text):
    m = re.fullmatch(r"\s*([0-9]+)\s*([a-z]+)\s*", str(text))
    if not m or m.group(2) not in UNITS:
        sys.exit(f"bench_duckdb.py: cannot read the duration {text!r}")
    return int(m.group(1)) * UNITS[m.group(2)]


trt = defs.get("trt", {})
default_trt = ms(trt.get("default", "30s"))
by_srv = {k: ms(v) for k, v in trt.get("srv", {}).items()}
by_class = {k: ms(v) for k, v in trt.get("class", {}).items()}
classes = defs.get("classes", {})
class_of = {}
for name, srvs in classes.items():
    for s in srvs:
        # The first class listing an SRV gives its class TRT (classes rarely overlap in TRT).
        class_of.setdefault(s, name)


def table_trt(srv):
    if srv in by_srv:
        return by_srv[srv]
    if srv in class_of and class_of[srv] in by_class:
        return by_class[class_of[srv]]
    return default_trt


responses = defs.get("responses", {})
acks = responses.get("ack_codes", ["I99"])
successes = responses.get("success_codes", ["I0"])
zone = defs.get("zone", "Europe/London")

# One row per (srv, provider) a measure selects: the join table of measure membership.
members = []
measure_ids = []
for m in defs["measure"]:
    measure_ids.append(m["id"])
    srvs = list(m.get("srvs", [])) + list(classes.get(m.get("class"), []))
    providers = m.get("providers", ["dsp", "s1sp", "csp"])
    for s in srvs:
        for p in providers:
            members.append(
                (
                    m["id"],
                    s,
                    p,
                    m["basis"],
                    ms(m["trt"]) if "trt" in m else table_trt(s),
                    ms(m.get("deadline", "24h")),
                )
            )

con = duckdb.connect()
con.execute(f"SET threads = {threads}")
con.execute(
    "CREATE TABLE members (measure VARCHAR, srv VARCHAR, provider VARCHAR, basis VARCHAR, "
    "trt_ms BIGINT, deadline_ms BIGINT)"
)
con.executemany("INSERT INTO members VALUES (?, ?, ?, ?, ?, ?)", members)

started = time.monotonic()
quote = lambda xs: ", ".join("'" + x.replace("'", "''") + "'" for x in xs)
rows = con.execute(
    f"""
WITH ev AS (
    SELECT * FROM read_ndjson(?, columns = {{
        'type': 'VARCHAR', 'id': 'VARCHAR', 'srv': 'VARCHAR', 'region': 'VARCHAR',
        'provider': 'VARCHAR', 'code': 'VARCHAR', 'at': 'VARCHAR'}})
),
req AS (
    SELECT id, srv, region, provider, CAST("at" AS TIMESTAMPTZ) AS ts
    FROM ev WHERE type = 'request'
),
fin AS (
    SELECT id,
           arg_min({{'t': epoch_ms(CAST("at" AS TIMESTAMPTZ)),
                     's': code IN ({quote(successes)}), 'c': code}},
                   {{'t': epoch_ms(CAST("at" AS TIMESTAMPTZ)),
                     's': code IN ({quote(successes)}), 'c': code}}) AS f
    FROM ev WHERE type = 'response' AND code NOT IN ({quote(acks)})
    GROUP BY id
),
judged AS (
    SELECT strftime(timezone('{zone}', req.ts), '%Y-%m') AS month,
           m.measure, req.region,
           fin.f.t - epoch_ms(req.ts) AS rt,
           fin.f.s AS ok,
           m.trt_ms, m.deadline_ms
    FROM req
    JOIN members m ON m.srv = req.srv AND m.provider = req.provider
    LEFT JOIN fin ON fin.id = req.id
)
SELECT month, measure, region,
       count(*) AS requests,
       count(*) FILTER (WHERE ok AND rt <= deadline_ms AND rt <= trt_ms) AS within_target,
       count(*) FILTER (WHERE ok AND rt <= deadline_ms) AS succeeded,
       count(*) FILTER (WHERE rt IS NULL OR rt > deadline_ms) AS no_response
FROM judged
GROUP BY ALL
""",
    [events],
).fetchall()
seconds = time.monotonic() - started

# The pooled `all` row per month and measure, as rpl.csv has it.
order = {m: i for i, m in enumerate(measure_ids)}
regions = ["north", "central", "south"]
table = {}
for month, measure, region, *counts in rows:
    table[(month, measure, region)] = counts
alls = {}
for (month, measure, region), counts in list(table.items()):
    a = alls.setdefault((month, measure), [0, 0, 0, 0])
    for i, c in enumerate(counts):
        a[i] += c
for (month, measure), counts in alls.items():
    table[(month, measure, "all")] = counts
with open(out, "w", newline="") as f:
    w = csv.writer(f, lineterminator="\n")
    w.writerow(["month", "measure", "region", "requests", "within_target", "succeeded", "no_response"])
    for key in sorted(table, key=lambda k: (k[0], order.get(k[1], 99), (regions + ["all"]).index(k[2]))):
        if table[key][0] > 0:
            w.writerow([*key, *table[key]])
print(f"{seconds:.3f}")
