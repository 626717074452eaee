"""Case ascertainment recomputed independently of crest, for tests/ascertainment.rs.

Reads the synthetic programmes, episodes and expected-patients files (paths and the period as
JSON on standard input) and writes every row `crest ascertainment` should print, as JSON:
counts by programme, region and nation, in all and by condition, with the exact Poisson 95%
interval from scipy's chi-square quantiles.
"""
import csv
import json
import sys

from scipy.stats import chi2

args = json.load(sys.stdin)
frm, to = args["from"], args["to"]

region_of = {}
with open(args["programmes"], newline="") as f:
    for row in csv.DictReader(f):
        region_of[row["programme_code"]] = row["region"]


def quarter(date):
    y, m = int(date[:4]), int(date[5:7])
    return f"{y}-Q{(m - 1) // 3 + 1}"


def quarter_days(q):
    y, n = int(q[:4]), int(q[6])
    first = f"{y}-{3 * (n - 1) + 1:02d}-01"
    last = {1: "03-31", 2: "06-30", 3: "09-30", 4: "12-31"}[n]
    return first, f"{y}-{last}"


def condition(event, treatment):
    # Bypass first, then a heart attack (with or without a stent), a stent alone, heart failure.
    if treatment == "cabg":
        return "cabg"
    if event.startswith("mi_"):
        return "mi"
    if treatment == "pci":
        return "pci"
    if event == "heart_failure":
        return "heart_failure"
    return "other"


expected = {}
with open(args["expected"], newline="") as f:
    for row in csv.DictReader(f):
        first, last = quarter_days(row["quarter"])
        if first >= frm and last <= to and row["programme_code"] in region_of:
            key = (row["programme_code"], row["quarter"], row["condition"])
            expected[key] = expected.get(key, 0) + int(row["expected"])
quarters = {k[1] for k in expected}

seen = {}
with open(args["episodes"], newline="") as f:
    for row in csv.DictReader(f):
        d = row["referral_date"]
        if not (frm <= d <= to) or quarter(d) not in quarters:
            continue
        key = (row["programme_code"], quarter(d), condition(row["initiating_event"], row["treatment"]))
        r, s = seen.get(key, (0, 0))
        seen[key] = (r + 1, s + (1 if row["core_start_date"] else 0))

CONDITIONS = ["mi", "pci", "cabg", "heart_failure", "other"]
# area -> condition -> [expected, referred, started]
totals = {}
for (code, q, c), n in expected.items():
    r, s = seen.get((code, q, c), (0, 0))
    for level, area in (("programme", code), ("region", region_of[code]), ("nation", "All programmes")):
        for cond in ("all", c):
            t = totals.setdefault((level, area), {}).setdefault(cond, [0, 0, 0])
            t[0] += n
            t[1] += r
            t[2] += s


def ratio(o, e):
    low = chi2.ppf(0.025, 2 * o) / 2 if o > 0 else 0.0
    high = chi2.ppf(0.975, 2 * o + 2) / 2
    return o / e, low / e, high / e


rows = []
for (level, area), by in totals.items():
    for cond, (e, r, s) in by.items():
        if e == 0:
            continue
        value, low, high = ratio(r, e)
        rows.append({
            "level": level, "area": area, "condition": cond,
            "expected": e, "referred": r, "started": s,
            "ascertainment": value, "low": low, "high": high,
            "uptake_of_eligible": s / e,
            "flag": "under_80" if value < 0.8 else "",
        })
json.dump(rows, sys.stdout)
