#!/usr/bin/env python3
"""An attacker who asked for many published aggregates and solves them together (integer
programming, scipy's milp), written apart from crest's rules.

Reads JSON on stdin: {"answers": [{"from": "2024-04-01", "to": "2024-06-30",
"rows": [["P001", "25"], ...]}, ...]}, each a count by programme over a period. The unknowns are
each programme's exact count in each calendar month; every published cell says the sum of its
months lies in a range (0 is 0, * is 1 to 7, a rounded v is v-2 to v+2 and at least 8). For every
suppressed cell it finds the least and greatest sum the answers allow; a cell whose least and
greatest agree is recovered. Prints {"suppressed": n, "recovered": [...]}.
"""
import json
import sys

import numpy as np
from scipy.optimize import Bounds, LinearConstraint, milp


def months(frm, to):
    y, m = int(frm[:4]), int(frm[5:7])
    ty, tm = int(to[:4]), int(to[5:7])
    out = []
    while (y, m) <= (ty, tm):
        out.append((y, m))
        m += 1
        if m == 13:
            y, m = y + 1, 1
    return out


def possible(cell):
    if cell == "*":
        return 1, 7
    v = int(cell)
    return (0, 0) if v == 0 else (max(8, v - 2), v + 2)


def main():
    data = json.load(sys.stdin)
    cells = {}  # (programme, months) -> published cell
    for a in data["answers"]:
        span = tuple(months(a["from"], a["to"]))
        for row in a["rows"]:
            cells[(row[0], span)] = row[-1]
    programmes = sorted({p for p, _ in cells})
    result = {"suppressed": 0, "recovered": []}
    for p in programmes:
        mine = {span: c for (q, span), c in cells.items() if q == p}
        all_months = sorted({m for span in mine for m in span})
        index = {m: i for i, m in enumerate(all_months)}
        rows, lo, hi = [], [], []
        for span, c in mine.items():
            row = np.zeros(len(all_months))
            for m in span:
                row[index[m]] = 1
            a, b = possible(c)
            rows.append(row)
            lo.append(a)
            hi.append(b)
        constraint = LinearConstraint(np.array(rows), lo, hi)
        integral = np.ones(len(all_months))
        bounds = Bounds(0, np.inf)
        for span, c in mine.items():
            if c != "*":
                continue
            result["suppressed"] += 1
            row = np.zeros(len(all_months))
            for m in span:
                row[index[m]] = 1
            ends = []
            for sign in (1, -1):
                r = milp(sign * row, constraints=constraint, integrality=integral, bounds=bounds)
                if not r.success:
                    raise SystemExit(f"{p}: the answers cannot be solved ({r.message})")
                ends.append(round(sign * r.fun))
            if ends[0] == ends[1]:
                result["recovered"].append(f"{p} {span[0]}..{span[-1]} = {ends[0]}")
    print(json.dumps(result))


if __name__ == "__main__":
    main()
