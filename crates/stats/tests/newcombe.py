"""Newcombe's hybrid score interval for a difference of two proportions, from statsmodels, for
crates/stats/tests/spc.rs: reads {"pairs": [[k1, n1, k2, n2], ...]} on standard input and prints
[[diff, low, high], ...] (diff = k1/n1 - k2/n2)."""
import json
import sys

from statsmodels.stats.proportion import confint_proportions_2indep

pairs = json.load(sys.stdin)["pairs"]
out = []
for k1, n1, k2, n2 in pairs:
    low, high = confint_proportions_2indep(k1, n1, k2, n2, method="newcomb", compare="diff")
    out.append([k1 / n1 - k2 / n2, float(low), float(high)])
print(json.dumps(out))
