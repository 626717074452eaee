"""crest benchmark: import and KPIs over synthetic data on SQLite, with DuckDB as the baseline.

Times whole `crest` processes (wall clock, peak RSS from wait4) and the same load and KPIs in
DuckDB, then checks that both computed the same numbers for every programme.
"""
import argparse, json, os, shutil, subprocess, sys, time

FROM, TO = "2024-04-01", "2025-03-31"


def run(cmd, env=None, stdout=subprocess.DEVNULL):
    t = time.perf_counter()
    p = subprocess.Popen(cmd, stdout=stdout, stderr=subprocess.PIPE, env=env)
    out = p.stdout.read() if stdout == subprocess.PIPE else None
    _, status, usage = os.wait4(p.pid, 0)
    wall = time.perf_counter() - t
    err = p.stderr.read().decode(errors="replace")
    if status != 0:
        sys.exit(f"failed ({status}): {' '.join(cmd)}\n{err[-2000:]}")
    return wall, usage.ru_maxrss / 1024, out  # seconds, MiB, stdout


KPI_SQL = f"""
WITH e AS (
  SELECT programme_code, referral_date, core_start_date, core_end_date, assessment1_date, assessment2_date, status,
    CASE WHEN treatment = 'cabg' THEN 'cabg'
         WHEN initiating_event IN ('mi_stemi','mi_nstemi','mi_unspecified') AND treatment = 'pci' THEN 'mi_pci'
         WHEN treatment = 'pci' THEN 'pci'
         WHEN initiating_event IN ('mi_stemi','mi_nstemi','mi_unspecified') AND treatment = 'medical' THEN 'mi'
         WHEN initiating_event = 'heart_failure' THEN 'heart_failure' ELSE 'other' END AS grp
  FROM episodes WHERE referral_date BETWEEN DATE '{FROM}' AND DATE '{TO}'),
k AS (
  SELECT programme_code,
    count(*) AS referred,
    count(core_start_date) AS started,
    median(core_end_date - core_start_date) FILTER (WHERE core_start_date IS NOT NULL AND core_end_date IS NOT NULL) AS duration,
    count(*) FILTER (WHERE core_start_date IS NOT NULL AND assessment1_date IS NOT NULL) AS a1_num,
    median(core_start_date - referral_date) FILTER (WHERE core_start_date IS NOT NULL AND grp = 'cabg') AS wait_cabg,
    median(core_start_date - referral_date) FILTER (WHERE core_start_date IS NOT NULL AND grp IN ('mi','mi_pci','pci')) AS wait_mi_pci,
    count(*) FILTER (WHERE core_start_date IS NOT NULL AND assessment1_date IS NOT NULL AND status = 'completed') AS a2_den,
    count(*) FILTER (WHERE core_start_date IS NOT NULL AND assessment1_date IS NOT NULL AND status = 'completed'
                     AND assessment2_date IS NOT NULL AND assessment2_date - assessment1_date <= 140) AS a2_num
  FROM e GROUP BY programme_code),
t(nation, a1, wcabg, wmipci, a2) AS (VALUES ('england', 0.80, 46, 33, 0.60), ('northern_ireland', 0.88, 52, 40, 0.60), ('wales', 0.68, 42, 26, 0.60)),
g AS (
  SELECT p.programme_code, k.*, 
    (CASE WHEN coalesce(p.professions, '') = '' THEN 0 ELSE len(list_distinct(string_split(p.professions, ';'))) END >= 3)::INT
    + (coalesce(len(list_intersect(string_split(coalesce(p.offers, ''), ';'), ['mi','mi_pci','pci','cabg','heart_failure'])), 0) = 5)::INT
    + coalesce((k.duration >= 56)::INT, 0)
    + coalesce((k.a1_num / nullif(k.started, 0) >= t.a1)::INT, 0)
    + coalesce((k.wait_cabg <= t.wcabg)::INT, 0)
    + coalesce((k.wait_mi_pci <= t.wmipci)::INT, 0)
    + coalesce((k.a2_num / nullif(k.a2_den, 0) >= t.a2)::INT, 0) AS met
  FROM programmes p JOIN t ON t.nation = p.nation LEFT JOIN k USING (programme_code))
SELECT programme_code, coalesce(referred, 0), coalesce(started, 0), duration, wait_cabg, wait_mi_pci, a1_num, a2_num, a2_den, met,
  CASE WHEN met = 7 THEN 'green' WHEN met >= 4 THEN 'amber' ELSE 'red' END
FROM g ORDER BY programme_code
"""


def median(runs):
    """The run with the median time, as (seconds, peak MiB)."""
    return sorted(runs)[len(runs) // 2]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--crest", required=True)
    ap.add_argument("--episodes", type=int, default=1_000_000)
    ap.add_argument("--programmes", type=int, default=230)
    ap.add_argument("--out", default="bench/out")
    ap.add_argument("--repeat", type=int, default=3)
    a = ap.parse_args()
    import duckdb

    shutil.rmtree(a.out, ignore_errors=True)
    os.makedirs(a.out)
    db = os.path.join(a.out, "bench.sqlite")
    env = dict(os.environ, CREST_DB=db)
    c = a.crest
    rows = []
    t, m, _ = run([c, "synth", "--programmes", str(a.programmes), "--episodes", str(a.episodes), "--seed", "1",
                   "--from", FROM, "--to", TO, "--out", a.out], env)
    size = os.path.getsize(os.path.join(a.out, "episodes.csv")) / 2**20
    rows.append(("crest synth", t, m))
    # The machine is shared and noisy: every timing is the median of REPEAT runs.
    imports = []
    for _ in range(a.repeat):
        for f in os.listdir(a.out):
            if f.startswith("bench.sqlite"):
                os.remove(os.path.join(a.out, f))
        run([c, "init"], env)
        run([c, "programmes", "import", os.path.join(a.out, "programmes.csv")], env)
        imports.append(run([c, "import", os.path.join(a.out, "episodes.csv")], env)[:2])
    t_imp, m_imp = median(imports)
    rows.append((f"crest import ({size:.0f} MiB CSV, validated) → SQLite", t_imp, m_imp))
    kpis = [run([c, "kpis", "--from", FROM, "--to", TO, "--format", "json"], env, stdout=subprocess.PIPE)
            for _ in range(a.repeat)]
    t_kpi, m_kpi = median([k[:2] for k in kpis])
    rows.append(("crest kpis --format json (end to end)", t_kpi, m_kpi))
    crest = json.loads(kpis[-1][2])

    ddb_path = os.path.join(a.out, "bench.duckdb")
    loads, queries = [], []
    for _ in range(a.repeat):
        if os.path.exists(ddb_path):
            os.remove(ddb_path)
        con = duckdb.connect(ddb_path)
        t0 = time.perf_counter()
        con.execute(f"CREATE TABLE episodes AS SELECT * FROM read_csv('{a.out}/episodes.csv', header = true)")
        con.execute(f"CREATE TABLE programmes AS SELECT * FROM read_csv('{a.out}/programmes.csv', header = true, all_varchar = true)")
        loads.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        result = con.execute(KPI_SQL).fetchall()
        queries.append(time.perf_counter() - t0)
        con.close()
    t_dload, t_dkpi = sorted(loads)[len(loads) // 2], sorted(queries)[len(queries) // 2]
    rows.append(("DuckDB load (no validation)", t_dload, None))
    rows.append(("DuckDB KPIs from its own table (query only)", t_dkpi, None))

    # Both must agree on every programme.
    mismatches = 0
    for p, r in zip(crest["programmes"], result):
        k = p["kpis"]
        ours = (p["programme_code"], p["referred"], p["started"], k["duration"]["value"], k["wait_cabg"]["value"],
                k["wait_mi_pci"]["value"], k["assessment1"]["numerator"], k["assessment2"]["numerator"],
                k["assessment2"]["denominator"], p["kpis_met"], p["grade"])
        theirs = tuple(float(x) if isinstance(x, (int, float)) and not isinstance(x, bool) and i in (3, 4, 5) else x
                       for i, x in enumerate(r))
        if ours != theirs:
            mismatches += 1
            if mismatches <= 5:
                print("MISMATCH crest", ours, "\n         duckdb", theirs)
    if len(crest["programmes"]) != len(result):
        mismatches += 1

    print(f"\n{a.episodes:,} episodes, {a.programmes} programmes, {os.cpu_count()} cores, median of {a.repeat} runs\n")
    print(f"{'work':<58} {'seconds':>8} {'peak MiB':>9}")
    for name, t, m in rows:
        print(f"{name:<58} {t:>8.2f} {('' if m is None else f'{m:.0f}'):>9}")
    print(f"\nimport / DuckDB load: {t_imp / t_dload:.1f}×   (target: ≤ 15 s and ≤ 3×)")
    print(f"kpis / DuckDB KPIs:   {t_kpi / t_dkpi:.1f}×   (target: ≤ 1 s, no slower than DuckDB)")
    print(f"KPIs peak memory {m_kpi:.0f} MiB (target ≤ 1024)")
    print(f"crest and DuckDB agree on all {len(result)} programmes" if mismatches == 0 else f"{mismatches} programmes DISAGREE")
    return 1 if mismatches else 0


if __name__ == "__main__":
    sys.exit(main())
