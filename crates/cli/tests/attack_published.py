#!/usr/bin/env python3
"""An attacker with the published tables of an annual report (`crest report annual --tables
DIR`) and nothing else, written apart from crest's own rules so it does not check them against
themselves.

For every programme it works out which exact counts each published count may stand for
(0 is 0; * is 1 to 7; a rounded count v is v-2 to v+2 and at least 8), takes what several tables
publish of the same quantity together (assessment 1's denominator is the started count of the
uptake funnel), and tries every exact count in those ranges. It reports:

- decided: a hidden met flag (*) that every possible count decides the same way;
- contradicted: a published flag that some possible count contradicts, or a published
  percentage on the wrong side of the threshold for its flag;
- pinned: a funnel level published beside a hidden count (a level narrows the count);
- graded: a withheld grade that the published and decided flags settle.

Prints a JSON object with those lists and how many hidden flags it tried.
"""
import csv
import json
import sys
from pathlib import Path

THRESHOLDS = {  # kpis.md: assessment 1 and assessment 2, by nation
    "england": (0.80, 0.60),
    "northern_ireland": (0.88, 0.60),
    "wales": (0.68, 0.60),
}


def table(folder, name):
    with open(Path(folder) / f"{name}.csv", newline="") as f:
        return list(csv.DictReader(f))


def possible(cell):
    if cell == "*":
        return set(range(1, 8))
    v = int(cell)
    if v == 0:
        return {0}
    return set(range(max(8, v - 2), v + 3))


def grade(met):
    return "green" if met >= 7 else "amber" if met >= 4 else "red"


def main(folder):
    programmes = {r["programme_code"]: r for r in table(folder, "programmes")}
    nation = {r["programme_code"]: r["nation"] for r in table(folder, "uptake")}
    funnels = {(r["kpi"], r["programme_code"]): r for r in table(folder, "funnels")}
    out = {"decided": [], "contradicted": [], "pinned": [], "graded": [], "hidden_tried": 0}
    for (kpi, code), r in funnels.items():
        if "*" in (r["numerator"], r["denominator"]) and r["level"] != "too_few":
            out["pinned"].append(f"{code} {kpi}: {r['numerator']}/{r['denominator']} at {r['level']}")
    for code, p in programmes.items():
        t1, t2 = THRESHOLDS[nation[code].lower().replace(" ", "_")]
        decided = 0
        for kpi, t in (("assessment1", t1), ("assessment2", t2)):
            row = funnels.get((kpi, code))
            flag = p[f"{kpi}_met"]
            if row is None:
                continue
            ks, ns = possible(row["numerator"]), possible(row["denominator"])
            if kpi == "assessment1" and ("uptake", code) in funnels:
                # Started patients: the uptake funnel's numerator, published there too.
                ns &= possible(funnels[("uptake", code)]["numerator"])
            sides = {k / n >= t for k in ks for n in ns if n > 0 and k <= n}
            value = p[kpi]
            if flag == "*":
                out["hidden_tried"] += 1
                if len(sides) == 1:
                    out["decided"].append(f"{code} {kpi}: {row['numerator']}/{row['denominator']} is {'met' if True in sides else 'not met'}")
                    decided += 1 if True in sides else 0
            else:
                if sides != {flag == "yes"}:
                    out["contradicted"].append(f"{code} {kpi}: {flag} but {row['numerator']}/{row['denominator']}")
                if value.endswith("%") and (float(value[:-1]) / 100 >= t) != (flag == "yes"):
                    out["contradicted"].append(f"{code} {kpi}: {value} beside {flag}")
        if p["grade"] == "withheld":
            met = sum(1 for k, v in p.items() if k.endswith("_met") and v == "yes") + decided
            hidden = sum(1 for k, v in p.items() if k.endswith("_met") and v == "*") - len(
                [d for d in out["decided"] if d.startswith(code + " ")]
            )
            if len({grade(met + j) for j in range(hidden + 1)}) == 1:
                out["graded"].append(f"{code}: {grade(met)}")
    print(json.dumps(out))


if __name__ == "__main__":
    main(sys.argv[1])
