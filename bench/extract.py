"""crest extract benchmark: a research project's k-anonymous extract of a 1,000,000-episode national
store, as CSV and as Parquet, through `crest extract` (the same streaming code the web download and
the API use). Prints each run's time and peak memory (the process's maximum resident set), checks the
rows written plus the rows suppressed equal the store, and, with DuckDB installed, times DuckDB
turning the CSV extract into Parquet as a baseline for the file work alone.

The store is filled directly (synthetic rows, every national column plausible) so that the benchmark
measures extracting, not importing: bench/bench.py and bench/national.py measure those.
"""
import argparse, os, random, resource, sqlite3, subprocess, sys, time

EVENTS = [("mi_stemi", "pci"), ("mi_nstemi", "pci"), ("mi_nstemi", "medical"), ("mi_nstemi", "cabg"),
          ("heart_failure", "medical"), ("angina", "pci")]
ETH = list("AAAAAAABCHJKLMNRSZ")


def sh(cmd, **kw):
    return subprocess.run(cmd, check=True, text=True, capture_output=True, **kw).stdout


def fill(crest, out, n, programmes):
    db = os.path.join(out, "national.sqlite")
    if os.path.exists(db):
        return db
    env = dict(os.environ, CREST_DB=db)
    sh([crest, "init", "--national"], env=env)
    with open(os.path.join(out, "programmes.csv"), "w") as f:
        f.write("programme_code,name,nation,region,professions,offers\n")
        for i in range(programmes):
            nation = ["england"] * 8 + ["wales", "northern_ireland"]
            f.write(f"P{i + 1:03},Programme {i + 1},{nation[i % 10]},Region {i % 12 + 1},nurse;physiotherapist,mi;pci\n")
    sh([crest, "programmes", "import", "--national", os.path.join(out, "programmes.csv")], env=env)
    con = sqlite3.connect(db)
    con.execute("INSERT INTO national_submissions (sha256, programme_code, period_from, period_to, key_id, "
                "dataset_version, created_at, received_at, episodes, tombstones, current_for) VALUES "
                "('bench', 'P001', '2024-04-01', '2025-03-31', 'k', '1', 'x', 'x', 0, 0, NULL)")
    rnd = random.Random(7)
    t = time.perf_counter()

    def rows():
        for i in range(n):
            ev, tr = rnd.choice(EVENTS)
            d = 1 + rnd.randrange(365)
            # Events over the financial year April 2025 to March 2026 (the dashboard's default
            # period in the session this was written).
            month = 1 + (d % 12)
            event = f"{2025 if month >= 4 else 2026}-{month:02}-{1 + (d % 28):02}"
            started = rnd.random() < 0.6
            yield (f"e{i}", f"p{i // 2}", "bench", f"P{rnd.randrange(programmes) + 1:03}",
                   rnd.choice(["male", "male", "female"]), rnd.choice(ETH), rnd.randrange(1, 6),
                   rnd.randrange(30, 95), ev, tr, event, event, event,
                   "completed" if started else "referred", event if started else None,
                   "group_supervised" if started else None, round(rnd.uniform(18, 40), 1) if started else None,
                   rnd.randrange(90, 180) if started else None)

    con.executemany("INSERT INTO national_episodes (episode_key, patient_key, submission, programme_code, sex, "
                    "ethnicity, imd_quintile, age_at_event, initiating_event, treatment, event_date, discharge_date, "
                    "referral_date, status, core_start_date, delivery_mode, a1_bmi, a1_systolic_bp) "
                    "VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)", rows())
    con.commit()
    con.close()
    print(f"filled {db} with {n:,} episodes in {time.perf_counter() - t:.0f} s")
    return db


def timed(cmd, env):
    """Runs cmd; returns (seconds, peak RSS in MB of that child, stdout)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    t = time.perf_counter()
    out = sh(cmd, env=env)
    secs = time.perf_counter() - t
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    # ru_maxrss of children is the largest of any child so far: each run is measured in its own
    # fresh interpreter when it must be exact (run this script once per format to be sure).
    return secs, max(peak, before) / 1024, out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--crest", required=True)
    ap.add_argument("--episodes", type=int, default=1_000_000)
    ap.add_argument("--programmes", type=int, default=230)
    ap.add_argument("--out", default="bench/out-extract")
    ap.add_argument("--format", choices=["csv", "parquet"], default=None)
    a = ap.parse_args()
    os.makedirs(a.out, exist_ok=True)
    db = fill(a.crest, a.out, a.episodes, a.programmes)
    env = dict(os.environ, CREST_DB=db)
    sh([a.crest, "projects", "add", "--id", "bench", "--title", "Benchmark", "--approval", "none",
        "--fields", "age_band,sex,imd_quintile,nation,priority_group,event_month,referral_date,core_start_date,status,a1_bmi,a1_systolic_bp",
        "--researchers", "bench", "--from", "2020-01-01", "--to", "2099-12-31", "--k", "5"], env=env)
    formats = [a.format] if a.format else ["csv", "parquet"]
    if not a.format:
        # One fresh process per format, so each peak-memory figure is that run's own.
        for f in formats:
            subprocess.run([sys.executable, __file__, "--crest", a.crest, "--episodes", str(a.episodes),
                            "--programmes", str(a.programmes), "--out", a.out, "--format", f], check=True)
        baseline(db, a.out)
        return
    f = formats[0]
    target = os.path.join(a.out, f"extract.{f}")
    secs, peak, out = timed([a.crest, "extract", "--project", "bench", "--format", f, "--out", target,
                             "--for", "bench"], env)
    print(out.strip())
    size = os.path.getsize(target) / 1e6
    print(f"RESULT {f}: {secs:.1f} s, peak memory {peak:.0f} MB, file {size:.0f} MB "
          f"(targets: peak ≤ 200 MB, no time-out)")


def baseline(db, out):
    """DuckDB turning crest's CSV extract into Parquet: the file work alone, with no store to read
    twice, no re-keying and no k-anonymity (DuckDB's SQLite reader is an extension it would
    download, which this machine may not allow)."""
    try:
        import duckdb
    except ImportError:
        print("DuckDB baseline skipped: pip install duckdb")
        return
    t = time.perf_counter()
    duckdb.connect().execute(
        f"COPY (SELECT * FROM read_csv('{os.path.join(out, 'extract.csv')}')) "
        f"TO '{os.path.join(out, 'duckdb.parquet')}' (FORMAT PARQUET)")
    print(f"RESULT DuckDB baseline (crest's CSV extract to Parquet, file work only): "
          f"{time.perf_counter() - t:.1f} s")


if __name__ == "__main__":
    main()
