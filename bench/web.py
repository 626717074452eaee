"""crest web benchmark: the dashboard of a ~10,000-episode programme in a store of 1,000,000,
under 32 concurrent clients on loopback (wrk), signed in as the programme's lead.

Reports the first (cold) render, single-client latency, and p50/p95/p99 and requests/s under load.
"""
import argparse, http.cookiejar, json, os, re, shutil, socket, sqlite3, subprocess, sys, time
import urllib.parse, urllib.request

FROM, TO = "2024-04-01", "2025-03-31"

LUA = r"""
done = function(summary, latency, requests)
  io.write(string.format("RESULT %d %d %d %d %.1f %.1f %.1f %.1f\n",
    summary.requests, summary.errors.status, summary.errors.connect + summary.errors.read +
    summary.errors.write + summary.errors.timeout, summary.duration,
    latency:percentile(50) / 1000, latency:percentile(95) / 1000,
    latency:percentile(99) / 1000, latency.max / 1000))
end
"""


def sh(cmd, **kw):
    return subprocess.run(cmd, check=True, text=True, capture_output=True, **kw).stdout


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def wait_for(port):
    """Waits (up to 30 s) until something answers on `port`."""
    for _ in range(300):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            time.sleep(0.1)
    sys.exit(f"nothing answered on port {port}")


def signing_key(crest, folder, code, national_env):
    """Programme `code`'s signing key file in `folder` (made once), its public key registered in
    the national store: a submission is only received when its programme signed it."""
    os.makedirs(folder, exist_ok=True)
    key = os.path.join(folder, f"{code}.key")
    if not os.path.exists(key):
        sh([crest, "keys", "new", "--signing", "--programme", code, "--out", key])
    with open(key) as f:
        public = re.search(r"^public: (\S+)", f.read(), re.M).group(1)
    sh([crest, "programmes", "keys", "add", "--programme", code, "--public-key", public], env=national_env)
    return key


def login(base, user, password):
    jar = http.cookiejar.CookieJar()
    op = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar))
    page = op.open(base + "/login").read().decode()
    csrf = re.search(r'name="csrf" value="([^"]+)"', page).group(1)
    body = urllib.parse.urlencode({"username": user, "password": password, "csrf": csrf}).encode()
    op.open(base + "/login", body).read()
    session = [c for c in jar if c.name == "crest_session"]
    if not session:
        sys.exit("could not sign in")
    return f"crest_session={session[0].value}"


def get(url, cookie):
    t = time.perf_counter()
    req = urllib.request.Request(url, headers={"Cookie": cookie})
    with urllib.request.urlopen(req) as r:
        body = r.read()
        assert r.status == 200, r.status
    return (time.perf_counter() - t) * 1000, body


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--crest", required=True)
    ap.add_argument("--episodes", type=int, default=1_000_000)
    ap.add_argument("--programmes", type=int, default=230)
    ap.add_argument("--target", type=int, default=10_000, help="episodes of the dashboard's programme")
    ap.add_argument("--clients", type=int, default=32)
    ap.add_argument("--seconds", type=int, default=20)
    ap.add_argument("--out", default="bench/out-web")
    a = ap.parse_args()

    db = os.path.join(a.out, "web.sqlite")
    env = dict(os.environ, CREST_DB=db)
    if not os.path.exists(db):
        shutil.rmtree(a.out, ignore_errors=True)
        os.makedirs(a.out)
        print(f"generating and importing {a.episodes:,} episodes ...", flush=True)
        sh([a.crest, "synth", "--programmes", str(a.programmes), "--episodes", str(a.episodes),
            "--seed", "7", "--from", FROM, "--to", TO, "--out", a.out])
        sh([a.crest, "init"], env=env)
        sh([a.crest, "programmes", "import", os.path.join(a.out, "programmes.csv")], env=env)
        sh([a.crest, "import", os.path.join(a.out, "episodes.csv")], env=env)
    sh([a.crest, "init"], env=env)  # migrates a store left by an older build
    # The dashboard shows ascertainment against the expected patients (loading again changes
    # nothing).
    sh([a.crest, "expected", "import", os.path.join(a.out, "expected.csv")], env=env)
    con = sqlite3.connect(db)
    total = con.execute("SELECT count(*) FROM episodes").fetchone()[0]
    code, n = con.execute(
        "SELECT programme_code, count(*) AS n FROM episodes WHERE referral_date BETWEEN ? AND ? "
        "GROUP BY programme_code ORDER BY abs(count(*) - ?) LIMIT 1", (FROM, TO, a.target)).fetchone()
    known = con.execute("SELECT count(*) FROM users WHERE username = 'bench'").fetchone()[0]
    con.close()
    if known:
        out = sh([a.crest, "users", "reset-password", "bench"], env=env)
    else:
        out = sh([a.crest, "users", "add", "bench", "--role", "programme_lead", "--programme", code],
                 env=env)
    password = re.search(r"password:? (\S+)", out).group(1)

    port = free_port()
    base = f"http://127.0.0.1:{port}"
    server = subprocess.Popen([a.crest, "serve", "--addr", f"127.0.0.1:{port}"], env=env,
                              stdout=subprocess.DEVNULL,
                              # The server logs a line per request: to a file, never an unread pipe
                              # (a full pipe would stall the server).
                              stderr=open(os.path.join(os.path.dirname(os.path.abspath(__file__)), "out-server.log"), "w"))
    try:
        wait_for(port)
        cookie = login(base, "bench", password)
        url = f"{base}/p/{code}/dashboard?from={FROM}&to={TO}"
        cold, body = get(url, cookie)
        if f"{n} referred".encode() not in body:
            sys.exit(f"the dashboard does not show {n} referrals")
        if b"eligible patients expected" not in body:
            sys.exit("the dashboard does not show its case ascertainment")
        single = sorted(get(url, cookie)[0] for _ in range(20))
        lua = os.path.join(a.out, "report.lua")
        with open(lua, "w") as f:
            f.write(LUA)
        res = sh(["wrk", "-t2", f"-c{a.clients}", f"-d{a.seconds}s", "-s", lua,
                  "-H", f"Cookie: {cookie}", url])
        m = re.search(r"RESULT (\d+) (\d+) (\d+) (\d+) ([\d.]+) ([\d.]+) ([\d.]+) ([\d.]+)", res)
        reqs, bad_status, socket_errors, dur_us = (int(m.group(i)) for i in range(1, 5))
        p50, p95, p99, mx = (float(m.group(i)) for i in range(5, 9))
        result = {
            "store_episodes": total, "programme": code, "programme_episodes": n,
            "clients": a.clients, "cold_ms": round(cold, 1),
            "single_client_median_ms": round(single[len(single) // 2], 1),
            "requests": reqs, "requests_per_s": round(reqs / (dur_us / 1e6), 1),
            "non_200": bad_status, "socket_errors": socket_errors,
            "p50_ms": p50, "p95_ms": p95, "p99_ms": p99, "max_ms": mx,
            "target_p95_ms": 100, "met": p95 <= 100 and bad_status == 0 and socket_errors == 0,
        }
        print(json.dumps(result, indent=2))
    finally:
        server.terminate()
        server.wait()


if __name__ == "__main__":
    main()
