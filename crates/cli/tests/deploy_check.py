"""Checks deploy/compose.yaml's structure where `docker compose config` cannot run: the services
the README describes, each crest server behind the proxy, started only after the migrations, with
a readiness check, no privileges, and the app's own database role (never the superuser)."""
import sys

import yaml

compose = yaml.safe_load(open(sys.argv[1]))
services = compose["services"]
problems = []
for name in ["postgres", "migrate", "crest-1", "crest-2", "proxy"]:
    if name not in services:
        problems.append(f"no service {name}")
for name in ["crest-1", "crest-2"]:
    s = services.get(name, {})
    cmd = s.get("command", [])
    if cmd[:1] != ["serve"] or "--behind-proxy" not in cmd:
        problems.append(f"{name} does not run crest serve --behind-proxy: {cmd}")
    if "/readyz" not in " ".join(s.get("healthcheck", {}).get("test", [])):
        problems.append(f"{name} has no readiness check on /readyz")
    if s.get("depends_on", {}).get("migrate", {}).get("condition") != "service_completed_successfully":
        problems.append(f"{name} may start before the migrations are applied")
    url = s.get("environment", {}).get("CREST_DB", "")
    if not url.startswith("postgres://crest_app:"):
        problems.append(f"{name} does not use the app's own role: {url}")
    if s.get("cap_drop") != ["ALL"] or not s.get("read_only") or s.get("privileged"):
        problems.append(f"{name} is not locked down (cap_drop ALL, read_only)")
    if "server_key" not in s.get("secrets", []):
        problems.append(f"{name} gets no server key")
migrate = services.get("migrate", {})
if migrate.get("command") != ["init"] or "crest_owner" not in migrate.get("environment", {}).get("CREST_DB", ""):
    problems.append("migrate does not run crest init as the schema's owner")
proxy = services.get("proxy", {})
if "443:443" not in proxy.get("ports", []):
    problems.append("the proxy does not terminate TLS on 443")
caddyfile = open(sys.argv[1].replace("compose.yaml", "Caddyfile")).read()
if "@ops path /healthz /readyz /metrics" not in caddyfile or "respond @ops 404" not in caddyfile:
    problems.append("the proxy passes the operators' endpoints to the outside world")
if "pgdata" not in compose.get("volumes", {}):
    problems.append("PostgreSQL's data is not on a volume")
if problems:
    print("\n".join(problems))
    sys.exit(1)
print("compose file ok:", ", ".join(sorted(services)))
