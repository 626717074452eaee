"""crest national benchmark: the national dashboard over a national store of ~1,000,000 episodes
(every programme of bench/web.py's store submitted and received), for a national analyst, under
32 concurrent clients on loopback (wrk). Reports the first (cold) render and p50/p95/p99 under load,
and the time to submit and receive every programme.
"""
import argparse, json, os, re, subprocess, sys, time

sys.path.insert(0, os.path.dirname(__file__))
from web import FROM, TO, LUA, free_port, get, login, sh, signing_key, wait_for  # noqa: E402


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--crest", required=True)
    ap.add_argument("--web-out", default="bench/out-web", help="where bench/web.py left its store")
    ap.add_argument("--out", default="bench/out-national")
    ap.add_argument("--clients", type=int, default=32)
    ap.add_argument("--seconds", type=int, default=20)
    a = ap.parse_args()
    local = os.path.join(a.web_out, "web.sqlite")
    if not os.path.exists(local):
        sys.exit(f"run bench/web.sh first: it makes {local}")
    os.makedirs(a.out, exist_ok=True)
    sh([a.crest, "init"], env=dict(os.environ, CREST_DB=local))  # migrates a store left by an older build
    national = os.path.join(a.out, "national.sqlite")
    env = dict(os.environ, CREST_DB=local)
    nenv = dict(os.environ, CREST_DB=national)
    sk, nk = os.path.join(a.out, "submission.key"), os.path.join(a.out, "national.key")
    if not os.path.exists(national):
        for k in (sk, nk):
            if not os.path.exists(k):
                sh([a.crest, "keys", "new", "--out", k])
        sh([a.crest, "agreements", "add", "--id", "bench", "--recipient", "National audit", "--legal-basis",
            "CAG 99/CAG/0001", "--from", "2020-01-01", "--to", "2099-12-31", "--opt-out-exempt"], env=env)
        sh([a.crest, "init", "--national"], env=nenv)
        sh([a.crest, "programmes", "import", "--national", os.path.join(a.web_out, "programmes.csv")], env=nenv)
        codes = re.findall(r"^(P\d+)", sh([a.crest, "programmes", "list"], env=env), re.M)
        t = time.perf_counter()
        for i, code in enumerate(codes):
            f = os.path.join(a.out, f"{code}.jsonl")
            key = signing_key(a.crest, os.path.join(a.out, "signing"), code, nenv)
            sh([a.crest, "submission", "build", "--programme", code, "--from", FROM, "--to", TO,
                "--key", sk, "--signing-key", key, "--out", f], env=env)
            sh([a.crest, "submission", "receive", f, "--submission-key", sk, "--national-key", nk], env=nenv)
            os.remove(f)
            print(f"\rsubmitted {i + 1}/{len(codes)}", end="", flush=True)
        print(f"\nsubmitted and received {len(codes)} programmes in {time.perf_counter() - t:.1f} s")
    out = sh([a.crest, "users", "add", "bench-analyst", "--role", "national_analyst"], env=env) \
        if "bench-analyst" not in sh([a.crest, "users", "list"], env=env) \
        else sh([a.crest, "users", "reset-password", "bench-analyst"], env=env)
    password = re.search(r"password:? (\S+)", out).group(1)
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    server = subprocess.Popen([a.crest, "serve", "--addr", f"127.0.0.1:{port}", "--national-db", national,
                               "--national-key", nk, "--submission-key", sk], env=env,
                              stdout=subprocess.DEVNULL,
                              # The server logs a line per request: to a file, never an unread pipe
                              # (a full pipe would stall the server).
                              stderr=open(os.path.join(os.path.dirname(os.path.abspath(__file__)), "out-server.log"), "w"))
    try:
        wait_for(port)
        cookie = login(base, "bench-analyst", password)
        url = f"{base}/national/dashboard?from={FROM}&to={TO}"
        cold, body = get(url, cookie)
        referred = re.search(rb"(\d+) programme\(s\): (\d+) referred", body)
        lua = os.path.join(a.out, "report.lua")
        with open(lua, "w") as f:
            f.write(LUA)
        res = sh(["wrk", "-t2", f"-c{a.clients}", f"-d{a.seconds}s", "-s", lua, "-H", f"Cookie: {cookie}", url])
        m = re.search(r"RESULT (\d+) (\d+) (\d+) (\d+) ([\d.]+) ([\d.]+) ([\d.]+) ([\d.]+)", res)
        reqs, bad, errs, dur = (int(m.group(i)) for i in range(1, 5))
        p50, p95, p99, mx = (float(m.group(i)) for i in range(5, 9))
        print(json.dumps({
            # The page's summary line, when it still reads this way (None otherwise).
            "programmes": referred and int(referred.group(1)),
            "episodes_in_period": referred and int(referred.group(2)),
            "cold_ms": round(cold, 1), "requests_per_s": round(reqs / (dur / 1e6), 1),
            "non_200": bad, "socket_errors": errs, "p50_ms": p50, "p95_ms": p95, "p99_ms": p99,
            "max_ms": mx, "target_p95_ms": 100, "met": p95 <= 100 and bad == 0 and errs == 0,
        }, indent=2))
    finally:
        server.terminate()
        server.wait()
    for ext in ("html", "pdf"):
        out = os.path.join(a.out, f"annual.{ext}")
        t = time.perf_counter()
        sh([a.crest, "report", "annual", "--from", FROM, "--to", TO, "--out", out], env=nenv)
        print(f"annual report ({ext}): {time.perf_counter() - t:.1f} s (target <= 30 s)")


if __name__ == "__main__":
    main()
