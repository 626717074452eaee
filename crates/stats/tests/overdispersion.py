"""An independent implementation of Spiegelhalter (2005)'s overdispersed funnel limits with
numpy and scipy, for crates/stats/tests/overdispersion.rs: reads {"points": [[k, n], ...]} on
standard input and prints phi, tau2, the overdispersion test's p-value and the default's choice,
and every programme's level under each method as JSON (limits: Wilson at the effective sample
size, never inside the plain Wilson limits)."""
import json
import sys

import numpy as np
from scipy.stats import chi2
from scipy.stats.mstats import winsorize

Z95, Z998 = 1.959964, 3.090232

data = json.load(sys.stdin)
k = np.array([p[0] for p in data["points"]], dtype=float)
n = np.array([p[1] for p in data["points"]], dtype=float)
keep = n > 0
k, n = k[keep], n[keep]
p0 = k.sum() / n.sum()
y = k / n
s = np.sqrt(p0 * (1 - p0) / n)
z = (y - p0) / s
zw = np.asarray(winsorize(z, limits=(0.1, 0.1)))
I = len(z)
phi = float(np.mean(zw ** 2))
w = 1 / s ** 2
tau2 = max(0.0, (I * phi - (I - 1)) / (w.sum() - (w ** 2).sum() / w.sum()))


def wilson(zq, size):
    half = zq * np.sqrt(zq ** 2 + 4 * size * p0 * (1 - p0))
    d = 2 * (size + zq ** 2)
    return (2 * size * p0 + zq ** 2 - half) / d, (2 * size * p0 + zq ** 2 + half) / d


# The overdispersion test: I*phi against chi-squared on I - 1 degrees of freedom.
p_value = float(chi2.sf(I * phi, I - 1)) if I > 1 else 1.0
chosen = "multiplicative" if p_value < 0.05 else "plain"


def limits(method, zq):
    """Wilson limits at the effective sample size, never inside the plain ones."""
    if method == "auto":
        method = chosen
    plain = wilson(zq, n)
    if method == "multiplicative" and phi > 1:
        size = n / phi
    elif method == "additive" and tau2 > 0:
        size = p0 * (1 - p0) / (s ** 2 + tau2)
    else:
        return plain
    lo, hi = wilson(zq, size)
    return np.minimum(lo, plain[0]), np.maximum(hi, plain[1])


levels = {}
for method in ["auto", "plain", "multiplicative", "additive"]:
    out = []
    lo95, hi95 = limits(method, Z95)
    lo998, hi998 = limits(method, Z998)
    for i in range(I):
        if y[i] < lo998[i]:
            out.append("alarm_low")
        elif y[i] > hi998[i]:
            out.append("alarm_high")
        elif y[i] < lo95[i]:
            out.append("alert_low")
        elif y[i] > hi95[i]:
            out.append("alert_high")
        else:
            out.append("within")
    levels[method] = out
print(json.dumps({"p0": p0, "phi": phi, "tau2": tau2, "p_value": p_value, "chosen": chosen, "levels": levels}))
