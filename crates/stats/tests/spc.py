"""An independent implementation of NHSRplotthedots' XmR chart (ptd_spc with its defaults:
outliers screened from the mean moving range) in numpy, for crates/stats/tests/spc.rs.

Written from the package's R definitions, vector by vector as R computes them (padded vectors,
windows over them), not from crest's code. Reads {"series": [{"values": [...], "improvement":
"increase"|"decrease", "phase_starts": [...], "target": x|null}, ...]} on standard input and
prints, for each series, every point's centre, limits, signal and variation, and the assurance.

crest's one addition, also here: a phase of fewer than 12 points has no limits and no signals.
"""
import json
import sys

import numpy as np

LIMIT = 2.66
LIMIT_CLOSE = 2 * (LIMIT / 3)
MIN_POINTS = 12


def seven_point_one_side_mean(v):
    vp = np.concatenate([np.zeros(6), v])
    return np.array(
        [float(np.all(vp[i] == vp[i - 6 : i]) and vp[i] != 0) for i in range(6, len(vp))]
    )


def part_of_seven(v):
    vp = np.concatenate([v, np.zeros(6)])
    return np.array([float(np.any(np.abs(vp[i : i + 7]) == 1)) for i in range(len(v))])


def seven_point_trend(y):
    if len(y) < 7:
        return np.zeros(len(y))
    out = np.zeros(len(y))
    for i in range(6, len(y)):
        # y[i], y[i-1], ..., y[i-6]; R's sign(diff(.)) * -1.
        window = y[i - 6 : i + 1][::-1]
        d = -np.sign(np.diff(window))
        if np.all(d == 1):
            out[i] = 1
        elif np.all(d == -1):
            out[i] = -1
    return out


def two_in_three(v, rtm):
    vp = np.concatenate([[0, 0], v, [0, 0]])
    rp = np.concatenate([[0, 0], rtm, [0, 0]])
    out = []
    for i in range(len(v)):
        hit = False
        for a in (i, i + 1, i + 2):
            if vp[a : a + 3].sum() >= 2 and abs(rp[a : a + 3].sum()) == 3:
                hit = True
        out.append(float(hit))
    return np.array(out)


def phase(y, direction):
    n = len(y)
    if n < MIN_POINTS:
        return [
            {"centre": None, "lower": None, "upper": None, "signal": "none", "variation": "common"}
            for _ in y
        ]
    mean = float(np.mean(y))
    mr = np.abs(np.diff(y))
    amr = float(np.mean(mr))
    kept = mr[mr < 3.267 * amr]
    amr = float(np.mean(kept)) if len(kept) else 0.0
    lpl, upl = mean - LIMIT * amr, mean + LIMIT * amr
    nlpl, nupl = mean - LIMIT_CLOSE * amr, mean + LIMIT_CLOSE * amr
    outside = (y > upl) | (y < lpl)
    rtm = np.sign(y - mean)
    close = (~outside) & ((y < nlpl) | (y > nupl))
    trend = part_of_seven(seven_point_trend(y))
    two = (two_in_three(close.astype(float), rtm) == 1) & close
    shift = part_of_seven(seven_point_one_side_mean(rtm))
    sdy = np.sign(np.diff(y))
    right = np.concatenate([sdy, sdy[-1:]])
    left = np.concatenate([[0], sdy])
    nxt = np.concatenate([trend[1:], [0]])
    sdy = np.where((nxt != 0) & (trend != 0), right, left)
    points = []
    for i in range(n):
        if outside[i]:
            signal, v = "outside", 1 if rtm[i] == 1 else -1
        elif trend[i] != 0:
            signal, v = "trend", 1 if sdy[i] == 1 else -1
        elif two[i]:
            signal, v = "two_of_three", 1 if rtm[i] > 0 else -1
        elif shift[i] != 0:
            signal, v = "shift", 1 if rtm[i] > 0 else -1
        else:
            signal, v = "none", 0
        v *= direction
        variation = "improvement" if v > 0 else "concern" if v < 0 else "common"
        points.append(
            {"centre": mean, "lower": lpl, "upper": upl, "signal": signal, "variation": variation}
        )
    return points


def chart(s):
    y = np.array(s["values"], dtype=float)
    direction = 1 if s["improvement"] == "increase" else -1
    starts = sorted({i for i in s["phase_starts"] if 0 < i < len(y)})
    bounds = [0] + starts + [len(y)]
    points = []
    for a, b in zip(bounds, bounds[1:]):
        points += phase(y[a:b], direction)
    assurance = None
    t = s.get("target")
    if t is not None and points and points[-1]["upper"] is not None:
        last = points[-1]
        if t > last["upper"]:
            assurance = "consistent_fail" if direction == 1 else "consistent_pass"
        elif t < last["lower"]:
            assurance = "consistent_pass" if direction == 1 else "consistent_fail"
        else:
            assurance = "inconsistent"
    return {"points": points, "assurance": assurance}


data = json.load(sys.stdin)
print(json.dumps([chart(s) for s in data["series"]]))
