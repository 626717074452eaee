#!/usr/bin/env python3
"""An attacker who solves everything an annual report publishes at once (integer programming,
scipy's milp with HiGHS), written apart from crest's own auditor, which splits the problem by
region: this checks the split misses nothing.

Reads the report's published tables (`crest report annual --tables DIR`) and the programme list
(which region each programme is in: public knowledge). The unknowns are each programme's exact
referred, started, completed, with assessment 1, completed with assessment 1 and with
assessment 2; each lies in what its published cell allows (0 is 0; * is 1 to 7; a rounded
count v is v-2 to v+2 and at least 8), each is at most the count it is part of, and:

- each region's, nation's and the national referred and started (published, rounded from the
  exact sums, or * when withheld: then anything) are the sums of their programmes';
- each region's and nation's assessment 1 percentage, with its published started count, gives
  its rounded count of patients with assessment 1;
- uptake by each grouping adds up to the national referred and started (where its rows are all
  published; a * group is anything from 0).

For every programme count shown as *, the least and greatest value; for every hidden
assessment 1 or 2 result (met flag *), whether the counts decide it. Prints a JSON object:
`pinned` (counts narrowed to one value), `decided` (hidden results decided), `checked`.
Usage: attack_report_jointly.py TABLES_DIR PROGRAMMES_CSV
"""
import csv
import json
import math
import sys
from pathlib import Path

import numpy as np
from scipy.optimize import Bounds, LinearConstraint, milp

THRESHOLDS = {"England": (0.80, 0.60), "Northern Ireland": (0.88, 0.60), "Wales": (0.68, 0.60)}
MEASURES = ["referred", "started", "completed", "a1", "a2_of", "a2"]
ANY = 10_000_000


def table(folder, name):
    with open(Path(folder) / f"{name}.csv", newline="") as f:
        return list(csv.DictReader(f))


def interval(cell):
    if cell == "*":
        return (1, 7)
    v = int(cell)
    return (0, 0) if v == 0 else (max(8, v - 2), v + 2)


def main(folder, programmes_csv):
    out = attack(folder, programmes_csv, groups=True)
    if out.get("infeasible"):
        # A group withheld to protect another shows * like a group of 1 to 7; taken as 1 to 7
        # it makes the groups add up to nothing consistent: solve without them.
        out = attack(folder, programmes_csv, groups=False)
        out["groups_left_out"] = True
    print(json.dumps(out))


def attack(folder, programmes_csv, groups):
    with open(programmes_csv, newline="") as f:
        region = {r["programme_code"]: r["region"] for r in csv.DictReader(f)}
    uptake = {r["programme_code"]: r for r in table(folder, "uptake")}
    funnels = {(r["kpi"], r["programme_code"]): r for r in table(folder, "funnels")}
    flags = {r["programme_code"]: r for r in table(folder, "programmes")}
    codes = sorted(uptake)
    index = {}
    lo, hi, names = [], [], []

    def var(name, bounds):
        index[name] = len(lo)
        lo.append(bounds[0])
        hi.append(bounds[1])
        names.append(name)
        return index[name]

    for c in codes:
        u = uptake[c]
        cells = {"referred": u["referred"], "started": u["started"]}
        for kpi, num, den in (("completion", "completed", "started"), ("assessment1", "a1", "started"),
                              ("assessment2", "a2", "a2_of")):
            row = funnels.get((kpi, c))
            cells[num] = row["numerator"] if row else "0"
            if den not in cells:
                cells[den] = row["denominator"] if row else "0"
        for m in MEASURES:
            var((c, m), interval(cells[m]))
    rows, rlo, rhi = [], [], []

    def relation(terms, low, high):
        rows.append(terms)
        rlo.append(low)
        rhi.append(high)

    for c in codes:
        for part, whole in (("started", "referred"), ("completed", "started"), ("a1", "started"),
                            ("a2_of", "completed"), ("a2_of", "a1"), ("a2", "a2_of")):
            relation([(index[(c, part)], 1), (index[(c, whole)], -1)], -np.inf, 0)
    places = table(folder, "nations_regions")
    nation_of = {c: uptake[c]["nation"] for c in codes}
    for p in places:
        members = [c for c in codes if nation_of[c] == p["nation"]
                   and (p["region"] == "all regions" or region.get(c) == p["region"])]
        for m in ("referred", "started"):
            if p[m] == "*":
                continue
            a, b = interval(p[m])
            relation([(index[(c, m)], 1) for c in members], a, b)
        # The assessment 1 percentage (to 0.1%) of the rounded started count bounds the
        # rounded count with assessment 1, and so the exact one within 2 of it.
        if p["assessment1"].endswith("%") and p["started"] not in ("*", "0"):
            share, started = float(p["assessment1"][:-1]) / 100, int(p["started"])
            a = max(0, math.floor((share - 0.0005) * started) - 2)
            b = math.ceil((share + 0.0005) * started) + 2
            relation([(index[(c, "a1")], 1) for c in members], a, b)
    summary = {r["measure"]: r["value"] for r in table(folder, "summary")}
    for m in ("referred", "started"):
        if summary.get(m, "*") != "*":
            a, b = interval(summary[m])
            relation([(index[(c, m)], 1) for c in codes], a, b)
    for name in ("sex", "age_band", "ethnic_group", "deprivation", "priority_group") if groups else ():
        rows_of = table(folder, f"uptake_by_{name}")
        for m in ("referred", "started"):
            terms = []
            for g in rows_of:
                terms.append((var((name, g["group"], m), interval(g[m])), 1))
            # The groups are every patient: they add up to the programmes' total.
            relation(terms + [(index[(c, m)], -1) for c in codes], 0, 0)
    a_matrix = np.zeros((len(rows), len(lo)))
    for r, terms in enumerate(rows):
        for i, coeff in terms:
            a_matrix[r, i] += coeff
    constraint = LinearConstraint(a_matrix, rlo, rhi)
    bounds = Bounds(lo, hi)
    integral = np.ones(len(lo))

    def extreme(objective, sign):
        r = milp(sign * np.asarray(objective, dtype=float), constraints=constraint,
                 integrality=integral, bounds=bounds)
        return None if r.status != 0 else sign * r.fun

    out = {"pinned": [], "decided": [], "checked": 0}
    if extreme(np.zeros(len(lo)), 1) is None:
        out["infeasible"] = True
        return out
    for i, name in enumerate(names):
        if not isinstance(name[0], str) or len(name) != 2 or (lo[i], hi[i]) != (1, 7):
            continue
        out["checked"] += 1
        e = np.zeros(len(lo))
        e[i] = 1
        least, greatest = extreme(e, 1), extreme(e, -1)
        if least is None or greatest is None or round(least) == round(greatest):
            out["pinned"].append(f"{name[0]} {name[1]}: {least} to {greatest}")
    for c in codes:
        t1, t2 = THRESHOLDS[nation_of[c]]
        for kpi, num, den, t in (("assessment1", "a1", "started", t1), ("assessment2", "a2", "a2_of", t2)):
            if flags[c][f"{kpi}_met"] != "*" or (kpi, c) not in funnels:
                continue
            out["checked"] += 1
            e = np.zeros(len(lo))
            e[index[(c, num)]] = 1
            e[index[(c, den)]] = -t
            least, greatest = extreme(e, 1), extreme(e, -1)
            if least is not None and least >= -1e-9:
                out["decided"].append(f"{c} {kpi}: met")
            elif greatest is not None and greatest < -1e-6:
                out["decided"].append(f"{c} {kpi}: not met")
    return out


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
