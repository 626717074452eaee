"""crest at national scale: ten years of synthetic episodes (10,000,000 by default).

1. `crest import` of the whole CSV into SQLite against DuckDB's durable typed load of the same
   file (a table in a database file, checkpointed to disk), with peak memory;
2. `crest kpis` over all ten years and over one year against DuckDB's query from its table;
3. on PostgreSQL: every programme's submission of one year built, then all received into a
   national store (timed as a whole);
4. on PostgreSQL, two `crest serve` processes behind one address (nginx, round robin): the lead
   dashboard of a ~10,000-episode programme and the national dashboard, each under 32 clients
   (wrk) for 60 s.

Prints one table of figures against the targets of shared/spec/architecture.md and issue 26.
"""
import argparse, json, os, re, shutil, subprocess, sys, tempfile, time

sys.path.insert(0, os.path.dirname(__file__))
from bench import KPI_SQL, median, run  # noqa: E402
from web import LUA, free_port, get, login, sh, signing_key, wait_for  # noqa: E402

FIRST, LAST = "2015-04-01", "2025-03-31"
YEAR = ("2024-04-01", "2025-03-31")
PG = os.environ.get("CREST_TEST_POSTGRES", "postgres://postgres@127.0.0.1:5432/postgres")


def kpi_sql(start, end):
    """bench.py's DuckDB KPI query over another period."""
    return KPI_SQL.replace("2024-04-01", start).replace("2025-03-31", end)


def pg_database(name):
    """A new, empty PostgreSQL database beside the server's default one; its URL."""
    sh(["psql", PG, "-q", "-c", f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"])
    sh(["psql", PG, "-q", "-c", f"CREATE DATABASE {name}"])
    return PG.rsplit("/", 1)[0] + "/" + name


def load(url, cookie, clients, seconds, out):
    """wrk against `url`: (requests/s, p50, p95, p99 ms, non-200 answers, socket errors)."""
    lua = os.path.join(out, "report.lua")
    with open(lua, "w") as f:
        f.write(LUA)
    res = sh(["wrk", "-t2", f"-c{clients}", f"-d{seconds}s", "-s", lua, "-H", f"Cookie: {cookie}", url])
    m = re.search(r"RESULT (\d+) (\d+) (\d+) (\d+) ([\d.]+) ([\d.]+) ([\d.]+) ([\d.]+)", res)
    reqs, bad, errs, dur = (int(m.group(i)) for i in range(1, 5))
    p50, p95, p99 = (float(m.group(i)) for i in range(5, 8))
    return reqs / (dur / 1e6), p50, p95, p99, bad, errs


def nginx(port, upstreams, out):
    """nginx on `port` sharing requests round robin between `upstreams`; its process."""
    conf = os.path.join(out, "nginx.conf")
    servers = "".join(f"server 127.0.0.1:{p};" for p in upstreams)
    with open(conf, "w") as f:
        f.write(f"""daemon off; worker_processes 1; pid {out}/nginx.pid; error_log {out}/nginx.err warn;
events {{ worker_connections 1024; }}
http {{ access_log off; upstream crest {{ {servers} keepalive 64; }}
  server {{ listen 127.0.0.1:{port};
    location / {{ proxy_pass http://crest; proxy_http_version 1.1; proxy_set_header Connection "";
                  proxy_set_header Host $host; proxy_set_header X-Forwarded-For $remote_addr; }} }} }}
""")
    return subprocess.Popen(["nginx", "-c", conf, "-p", out], stderr=subprocess.DEVNULL)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--crest", required=True)
    ap.add_argument("--episodes", type=int, default=10_000_000)
    ap.add_argument("--programmes", type=int, default=230)
    ap.add_argument("--clients", type=int, default=32)
    ap.add_argument("--seconds", type=int, default=60)
    ap.add_argument("--out", default="bench/out-scale")
    ap.add_argument("--reuse-pg", action="store_true",
                    help="keep the PostgreSQL store an earlier run loaded (skips its import)")
    ap.add_argument("--parts", default="sqlite,web",
                    help="sqlite (parts 1-2), web (parts 3-4, PostgreSQL), or both; dashboards-only (part 4 "
                         "on the stores an earlier run left, with --reuse-pg)")
    a = ap.parse_args()
    os.makedirs(a.out, exist_ok=True)
    out = os.path.abspath(a.out)
    csv = os.path.join(out, "episodes.csv")
    rows = []  # (work, seconds, peak MiB, target, met)

    def row(work, t, mib=None, target="", met=None):
        rows.append((work, t, mib, target, met))
        print(f"{work}: {t:.2f} s" + ("" if mib is None else f", {mib:.0f} MiB"), flush=True)

    made = os.path.join(out, "made.txt")  # what the synthetic data there was made with
    wanted = f"{a.episodes} {a.programmes}"
    if not os.path.exists(csv) or not os.path.exists(made) or open(made).read() != wanted:
        t, m, _ = run([a.crest, "synth", "--programmes", str(a.programmes), "--episodes", str(a.episodes),
                       "--seed", "10", "--from", FIRST, "--to", LAST, "--out", out])
        row("crest synth", t, m)
        with open(made, "w") as f:
            f.write(wanted)
    size = os.path.getsize(csv) / 2**20

    if "sqlite" in a.parts:
        sqlite_parts(a, out, csv, size, row)
    if "web" in a.parts or "dashboards-only" in a.parts:
        web(a, out, csv, row)

    print(f"\n{a.episodes:,} episodes over ten years, {a.programmes} programmes, {os.cpu_count()} cores\n")
    print(f"{'work':<58} {'seconds':>8} {'peak MiB':>9}  target")
    for work, t, m, target, met in rows:
        verdict = "" if met is None else ("  met" if met else "  NOT MET")
        print(f"{work:<58} {t:>8.2f} {('' if m is None else f'{m:.0f}'):>9}  {target}{verdict}")
    return 0


DUCKDB = """
import duckdb, json, sys, time
csv, programmes, path, periods = sys.argv[1], sys.argv[2], sys.argv[3], json.loads(sys.argv[4])
con = duckdb.connect(path)
con.execute("SET enable_progress_bar = false")
t = time.perf_counter()
con.execute(f"CREATE TABLE episodes AS SELECT * FROM read_csv('{csv}', header = true)")
con.execute(f"CREATE TABLE programmes AS SELECT * FROM read_csv('{programmes}', header = true, all_varchar = true)")
con.execute("CHECKPOINT")
load = time.perf_counter() - t
queries = []
for sql in periods:
    runs = []
    for _ in range(3):
        t = time.perf_counter()
        con.execute(sql).fetchall()
        runs.append(time.perf_counter() - t)
    queries.append(sorted(runs)[1])
print(json.dumps({"load": load, "queries": queries}))
"""


def sqlite_parts(a, out, csv, size, row):
    """Parts 1 and 2: the import and the KPIs on SQLite, against DuckDB. DuckDB runs in a process
    of its own: a child forked from a driver holding DuckDB's tables would count the driver's
    memory as its own peak."""
    db = os.path.join(out, "scale.sqlite")
    for f in os.listdir(out):
        if f.startswith("scale.sqlite") or f.startswith("scale.duckdb"):
            os.remove(os.path.join(out, f))
    env = dict(os.environ, CREST_DB=db)
    run([a.crest, "init"], env)
    run([a.crest, "programmes", "import", os.path.join(out, "programmes.csv")], env)
    t_imp, m_imp, _ = run([a.crest, "import", csv], env)
    periods = (("ten years", (FIRST, LAST), 1.0, 1024), ("one year", YEAR, 0.5, None))
    # The median of three runs of each (the first reads from disk).
    kpis = [median([run([a.crest, "kpis", "--from", start, "--to", end, "--format", "json"], env,
                        stdout=subprocess.PIPE)[:2] for _ in range(3)]) for _, (start, end), _, _ in periods]
    duck = json.loads(sh([sys.executable, "-c", DUCKDB, csv, os.path.join(out, "programmes.csv"),
                          os.path.join(out, "scale.duckdb"),
                          json.dumps([kpi_sql(start, end) for _, (start, end), _, _ in periods])]).splitlines()[-1])
    t_dload = duck["load"]
    row(f"crest import ({size:,.0f} MiB CSV, validated) → SQLite", t_imp, m_imp,
        f"≤ 3× DuckDB ({3 * t_dload:.0f} s), ≤ 1,536 MiB", t_imp <= 3 * t_dload and m_imp <= 1536)
    row("DuckDB durable typed load", t_dload)
    for (label, _, factor, mem), (t_kpi, m_kpi), t_dq in zip(periods, kpis, duck["queries"]):
        target = f"≤ {factor:g}× DuckDB ({factor * t_dq:.2f} s)" + (f", ≤ {mem:,} MiB" if mem else "")
        row(f"crest kpis, {label} (end to end)", t_kpi, m_kpi, target,
            t_kpi <= factor * t_dq and (mem is None or m_kpi <= mem))
        row(f"DuckDB KPIs, {label} (query only)", t_dq)


def web(a, out, csv, row):
    """Parts 3 and 4, on PostgreSQL."""
    if shutil.which("nginx") is None or shutil.which("wrk") is None:
        sys.exit("part 4 needs nginx and wrk: apt-get install nginx-light wrk")
    local = PG.rsplit("/", 1)[0] + "/crest_scale"
    env = dict(os.environ, CREST_DB=local)
    if not a.reuse_pg:
        local = pg_database("crest_scale")
        sh([a.crest, "init"], env=env)
        sh([a.crest, "programmes", "import", os.path.join(out, "programmes.csv")], env=env)
        load_year(a, out, csv, env, row)
        sh([a.crest, "agreements", "add", "--id", "scale", "--recipient", "National audit", "--legal-basis",
            "CAG 99/CAG/0001", "--from", "2015-01-01", "--to", "2099-12-31", "--opt-out-exempt"], env=env)
    national = PG.rsplit("/", 1)[0] + "/crest_scale_national"
    if "dashboards-only" not in a.parts:
        national = pg_database("crest_scale_national")
        receive_year(a, out, env, dict(os.environ, CREST_DB=national), row)
    serve_dashboards(a, out, local, national, env, row)


def load_year(a, out, csv, env, row):
    """Imports the year the dashboards show and the programmes submit (about a tenth of the
    episodes) into the PostgreSQL store."""
    # The year the dashboards show and the programmes submit (about a tenth of the episodes).
    year = os.path.join(out, "year.csv")
    if not os.path.exists(year):
        with open(csv) as src, open(year + ".part", "w") as dst:
            header = src.readline()
            dst.write(header)
            at = header.rstrip("\n").split(",").index("referral_date")
            for line in src:
                if YEAR[0] <= line.split(",", at + 1)[at] <= YEAR[1]:
                    dst.write(line)
        os.rename(year + ".part", year)
    t, m, _ = run([a.crest, "import", year], env)
    row("crest import of one year → PostgreSQL", t, m)


def keys(a, out):
    """The submission and national keys, and every programme's signing key (made once)."""
    sk, nk = os.path.join(out, "submission.key"), os.path.join(out, "national.key")
    for k in (sk, nk):
        if not os.path.exists(k):
            sh([a.crest, "keys", "new", "--out", k])
    return sk, nk, os.path.join(out, "signing")


def receive_year(a, out, env, nenv, row):
    """Every programme's submission of the year built, then all received (timed)."""
    sk, nk, signing = keys(a, out)
    sh([a.crest, "init", "--national"], env=nenv)
    sh([a.crest, "programmes", "import", "--national", os.path.join(out, "programmes.csv")], env=nenv)
    codes = re.findall(r"^(P\d+)", sh([a.crest, "programmes", "list"], env=env), re.M)
    files = []
    with tempfile.TemporaryDirectory() as tmp:
        for code in codes:
            key = signing_key(a.crest, signing, code, nenv)
            f = os.path.join(tmp, f"{code}.jsonl")
            sh([a.crest, "submission", "build", "--programme", code, "--from", YEAR[0], "--to", YEAR[1],
                "--key", sk, "--signing-key", key, "--out", f], env=env)
            files.append(f)
        t0 = time.perf_counter()
        for f in files:
            sh([a.crest, "submission", "receive", f, "--submission-key", sk, "--national-key", nk], env=nenv)
        t_recv = time.perf_counter() - t0
    row(f"receive all {len(codes)} programmes' submissions of one year", t_recv, None, "≤ 60 s", t_recv <= 60)


def serve_dashboards(a, out, local, national, env, row):
    """Two servers on one store, behind nginx: the lead and national dashboards under load."""
    sk, nk, _ = keys(a, out)
    lead_code = sh(["psql", local, "-At", "-c",
                    "SELECT programme_code FROM episodes WHERE referral_date BETWEEN "
                    f"'{YEAR[0]}' AND '{YEAR[1]}' GROUP BY programme_code "
                    "ORDER BY abs(count(*) - 10000) LIMIT 1"]).strip()
    users = sh([a.crest, "users", "list"], env=env)
    passwords = {}
    for user, args in (("scale-lead", ["--role", "programme_lead", "--programme", lead_code]),
                       ("scale-analyst", ["--role", "national_analyst"])):
        said = sh([a.crest, "users", "reset-password", user], env=env) if user in users \
            else sh([a.crest, "users", "add", user, *args], env=env)
        passwords[user] = re.search(r"password:? (\S+)", said).group(1)
    ports = [free_port(), free_port()]
    front = free_port()
    # Without --behind-proxy: its cookies are Secure, and this proxy speaks plain HTTP on loopback.
    servers = [subprocess.Popen([a.crest, "serve", "--addr", f"127.0.0.1:{p}",
                                 "--national-db", national, "--national-key", nk, "--submission-key", sk],
                                env=env, stdout=subprocess.DEVNULL,
                                stderr=open(os.path.join(out, f"serve-{p}.log"), "w")) for p in ports]
    proxy = None
    try:
        for p in ports:
            wait_for(p)
        proxy = nginx(front, ports, out)
        wait_for(front)
        base = f"http://127.0.0.1:{front}"
        for user, url in (("scale-lead", f"{base}/p/{lead_code}/dashboard?from={YEAR[0]}&to={YEAR[1]}"),
                          ("scale-analyst", f"{base}/national/dashboard?from={YEAR[0]}&to={YEAR[1]}")):
            cookie = login(base, user, passwords[user])
            cold, _ = get(url, cookie)
            # The other server's first render too (requests alternate), before the load.
            for _ in range(3):
                get(url, cookie)
            rps, p50, p95, p99, bad, errs = load(url, cookie, a.clients, a.seconds, out)
            what = "lead dashboard" if user == "scale-lead" else "national dashboard"
            row(f"{what}: first render", cold / 1000)
            row(f"{what}: p95 at {a.clients} clients, {a.seconds} s ({rps:,.0f}/s, p50 {p50:.0f}, "
                f"p99 {p99:.0f} ms, {bad} not 200, {errs} socket errors)", p95 / 1000, None, "p95 ≤ 0.100 s, no errors",
                p95 <= 100 and bad == 0 and errs == 0)
    finally:
        if proxy:
            proxy.terminate()
        for s in servers:
            s.terminate()
            s.wait()


if __name__ == "__main__":
    sys.exit(main())
