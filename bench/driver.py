#!/usr/bin/env python3
"""Side-by-side benchmark of gatehouse; run through bench/run.sh, which builds first.

One run measures, on this machine, with wrk as the load generator:
  - the CPU cost of one token, HS256 next to EdDSA and RS256 (bench/src/bin/jwt_cost.rs);
  - GET /users/me/ of gatehouse (SQLite with HS256, SQLite with EdDSA, PostgreSQL), of
    the JWT-only ceiling and of a plain poem "hello" (bench/src/bin/ceiling.rs), and of the
    FastAPI tutorial app;
  - POST /token logins per second at several client counts (HS256 and EdDSA), against
    the argon2 ceiling (bench/src/bin/argon2_ceiling.rs), and how many verifies run at once;
  - the refresh grant per second (SQLite and PostgreSQL), against the single-row commits
    per second SQLite makes with the same durability (bench/src/bin/sqlite_commits.rs);
  - peak RSS under a login flood, idle RSS, and time from start to the first 200;
then prints a table with ratios and writes bench/RESULTS.md. Standard library only.
"""

import argparse
import datetime
import http.client
import json
import os
import platform
import re
import resource
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RELEASE = ROOT / "target" / "release"
VENV = ROOT / "target" / "bench-venv"
# Any key of 32+ bytes; the tutorial's published key is refused by gatehouse.
SECRET_KEY = "bench-only-signing-key-0123456789abcdef"
LOGIN_BODY = "username=johndoe&password=secret"
MIB = 1024 * 1024
# The local PostgreSQL server; a fresh database is created on it for the run.
POSTGRES = {"host": "127.0.0.1", "port": "5432", "user": "postgres"}
# Logins come from this many client addresses (X-Forwarded-For from a trusted proxy), as a
# login service sees them; from one address, gatehouse's per-client share of the hashing
# pool would answer most of a large burst 503.
LOGIN_ADDRESSES = 64


# ---------------------------------------------------------------- processes


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def http_request(port, method, path, headers=None, body=None, timeout=5.0):
    """(status, body bytes) of one request on a fresh connection."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        resp = conn.getresponse()
        return resp.status, resp.read()
    finally:
        conn.close()


def proc_status(pid):
    """VmRSS and VmHWM of `pid` in bytes (0 when gone)."""
    out = {"VmRSS": 0, "VmHWM": 0}
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                key, _, value = line.partition(":")
                if key in out:
                    out[key] = int(value.split()[0]) * 1024
    except OSError:
        pass
    return out


def proc_cpu(pid):
    """(CPU seconds, context switches) used so far by all live threads of `pid`."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        cpu = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
        tasks = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return 0.0, 0
    switches = 0
    for tid in tasks:
        try:
            with open(f"/proc/{pid}/task/{tid}/status") as f:
                for line in f:
                    key, _, value = line.partition(":")
                    if key in ("voluntary_ctxt_switches", "nonvoluntary_ctxt_switches"):
                        switches += int(value)
        except OSError:
            continue
    return cpu, switches


def thread_states(pid, prefix):
    """(ids of threads whose name starts with `prefix`, ids of those running or runnable)."""
    names, running = set(), set()
    try:
        tasks = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return names, running
    for tid in tasks:
        try:
            with open(f"/proc/{pid}/task/{tid}/stat") as f:
                stat = f.read()
        except OSError:
            continue
        name = stat[stat.index("(") + 1 : stat.rindex(")")]
        state = stat[stat.rindex(")") + 2]
        if name.startswith(prefix):
            names.add(tid)
            if state == "R":
                running.add(tid)
    return names, running


class Server:
    """One server process: started, probed until its first 200, measured, stopped."""

    def __init__(self, name, argv, env, port, probe_path, probe_headers=None, cwd=None):
        self.name = name
        self.argv = argv
        self.env = {**os.environ, **env}
        self.port = port
        self.probe_path = probe_path
        self.probe_headers = probe_headers or {}
        self.cwd = cwd
        self.proc = None
        self.log = None

    @property
    def pid(self):
        return self.proc.pid

    def url(self, path):
        return f"http://127.0.0.1:{self.port}{path}"

    def start(self, log_path, timeout=60.0):
        """Starts the process; returns seconds from spawn to the first 200 of the probe."""
        self.log = open(log_path, "ab")
        start = time.monotonic()
        self.proc = subprocess.Popen(
            self.argv, env=self.env, cwd=self.cwd, stdout=self.log, stderr=self.log
        )
        while time.monotonic() - start < timeout:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.name} exited with {self.proc.returncode}; see {log_path}")
            try:
                status, _ = http_request(self.port, "GET", self.probe_path, self.probe_headers, timeout=2)
                if status == 200:
                    return time.monotonic() - start
            except OSError:
                pass
            time.sleep(0.001)
        self.stop()
        raise RuntimeError(f"{self.name} gave no 200 on {self.probe_path} within {timeout}s; see {log_path}")

    def memory(self):
        return proc_status(self.pid)

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self.log:
            self.log.close()
            self.log = None


class Sampler(threading.Thread):
    """Samples a process's RSS and busy hashing threads every few milliseconds."""

    def __init__(self, pid, thread_prefix=None, every=0.005):
        super().__init__(daemon=True)
        self.pid = pid
        self.prefix = thread_prefix
        self.every = every
        self.stop_event = threading.Event()
        self.max_rss = 0
        self.max_busy = 0
        self.threads = 0
        self.samples = 0

    def run(self):
        streaks = {}
        while not self.stop_event.is_set():
            self.max_rss = max(self.max_rss, proc_status(self.pid)["VmRSS"])
            if self.prefix:
                names, running = thread_states(self.pid, self.prefix)
                self.threads = max(self.threads, len(names))
                # A verify keeps its thread running for ~100 ms; taking a job or freeing
                # the 64 MiB afterwards takes a few ms. Busy = running for 5 samples in a row.
                streaks = {tid: streaks.get(tid, 0) + 1 for tid in running}
                self.max_busy = max(self.max_busy, sum(n >= 5 for n in streaks.values()))
            self.samples += 1
            time.sleep(self.every)

    def __enter__(self):
        self.start()
        return self

    def __exit__(self, *exc):
        self.stop_event.set()
        self.join()


# ---------------------------------------------------------------- wrk


def parse_duration_ms(text):
    m = re.fullmatch(r"([\d.]+)(us|ms|s|m)", text)
    if not m:
        return float("nan")
    value, unit = float(m.group(1)), m.group(2)
    return value * {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60000.0}[unit]


def wrk(url, connections, seconds, headers=(), script=None, server_pid=None):
    """Runs wrk with ONE thread (the client shares the cores with the server).

    With `server_pid`, also the server's CPU time and context switches per request; and
    always wrk's own CPU use, which tells when the client, not the server, is the limit.
    """
    cmd = ["wrk", "-t1", f"-c{connections}", f"-d{seconds}s", "--latency", "--timeout", "10s"]
    for h in headers:
        cmd += ["-H", h]
    if script:
        cmd += ["-s", script]
    cmd.append(url)
    before = proc_cpu(server_pid) if server_pid else (0.0, 0)
    client_before = resource.getrusage(resource.RUSAGE_CHILDREN)
    out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    client_after = resource.getrusage(resource.RUSAGE_CHILDREN)
    after = proc_cpu(server_pid) if server_pid else (0.0, 0)
    m = re.search(r"(\d+) requests in ([\d.]+)(\w+)", out)
    requests = int(m.group(1))
    elapsed = parse_duration_ms(m.group(2) + m.group(3)) / 1000.0
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    non2xx = int(non2xx.group(1)) if non2xx else 0
    errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    errors = sum(int(g) for g in errors.groups()) if errors else 0
    latency = {
        p: parse_duration_ms(v)
        for p, v in re.findall(r"^\s+(50|75|90|99)%\s+(\S+)\s*$", out, re.M)
    }
    client_cpu = (client_after.ru_utime + client_after.ru_stime) - (client_before.ru_utime + client_before.ru_stime)
    return {
        "server_cpu_us": (after[0] - before[0]) * 1e6 / max(requests, 1),
        "server_switches": (after[1] - before[1]) / max(requests, 1),
        "client_cpu": client_cpu / elapsed,
        "requests": requests,
        "seconds": elapsed,
        "rps": requests / elapsed,
        "ok_rps": (requests - non2xx) / elapsed,
        "non2xx": non2xx,
        "socket_errors": errors,
        "p50_ms": latency.get("50", float("nan")),
        "p99_ms": latency.get("99", float("nan")),
    }


# ---------------------------------------------------------------- machine


def sh(cmd):
    try:
        return subprocess.run(cmd, shell=True, capture_output=True, text=True).stdout.strip()
    except OSError:
        return ""


def loadavg():
    with open("/proc/loadavg") as f:
        return " ".join(f.read().split()[:3])


def machine():
    cpu = sh("grep -m1 'model name' /proc/cpuinfo | cut -d: -f2").strip()
    mem = sh("awk '/MemTotal/ {printf \"%.1f GiB\", $2/1048576}' /proc/meminfo")
    os_name = sh(". /etc/os-release && echo $PRETTY_NAME")
    return {
        "cpu": cpu or platform.processor(),
        "cores": os.cpu_count(),
        "memory": mem,
        "os": os_name,
        "kernel": platform.release(),
        "rustc": sh("rustc --version"),
        "wrk": sh("wrk -v 2>&1 | head -1"),
        "python": platform.python_version(),
        "commit": sh(f"git -C {ROOT} rev-parse --short HEAD") + (" (dirty)" if sh(f"git -C {ROOT} status --porcelain --untracked-files=no") else ""),
    }


# ---------------------------------------------------------------- the run


def median(values):
    return statistics.median(values) if values else float("nan")


def gatehouse_token(port):
    status, body = http_request(
        port, "POST", "/token",
        {"Content-Type": "application/x-www-form-urlencoded"}, LOGIN_BODY, timeout=30,
    )
    if status != 200:
        raise RuntimeError(f"login failed with {status}: {body[:200]!r}")
    return json.loads(body)["access_token"]


def login_script(path):
    """A wrk script of logins, each from the next of LOGIN_ADDRESSES client addresses."""
    path.write_text(
        "local n = 0\n"
        "request = function()\n"
        "  n = n + 1\n"
        "  local headers = {}\n"
        "  headers[\"Content-Type\"] = \"application/x-www-form-urlencoded\"\n"
        f"  headers[\"X-Forwarded-For\"] = \"10.1.0.\" .. (n % {LOGIN_ADDRESSES})\n"
        f"  return wrk.format(\"POST\", nil, headers, \"{LOGIN_BODY}\")\n"
        "end\n"
    )
    return str(path)


def refresh_tokens(port, count):
    """`count` refresh tokens of as many new sessions (logins, two at a time)."""
    def one(i):
        status, body = http_request(
            port, "POST", "/token",
            {"Content-Type": "application/x-www-form-urlencoded", "X-Forwarded-For": f"10.2.0.{i % 200}"},
            LOGIN_BODY, timeout=60,
        )
        if status != 200:
            raise RuntimeError(f"login failed with {status}: {body[:200]!r}")
        return json.loads(body)["refresh_token"]
    import concurrent.futures
    with concurrent.futures.ThreadPoolExecutor(2) as pool:
        return list(pool.map(one, range(count)))


def refresh_script(path, tokens):
    """A wrk script of refresh grants: each request spends a refresh token from a queue
    that each answer refills with the token it returns, so every request presents a live,
    unspent token (a spent one would end its session). A non-200 loses its token; once the
    queue is empty, requests present an unknown token and count as errors."""
    entries = ", ".join(f'"{t}"' for t in tokens)
    path.write_text(
        f"local queue = {{{entries}}}\n"
        "local head, tail = 1, #queue + 1\n"
        "request = function()\n"
        "  local token = queue[head] or \"spent\"\n"
        "  queue[head] = nil\n"
        "  head = head + 1\n"
        "  local headers = {}\n"
        "  headers[\"Content-Type\"] = \"application/x-www-form-urlencoded\"\n"
        "  return wrk.format(\"POST\", nil, headers, \"grant_type=refresh_token&refresh_token=\" .. token)\n"
        "end\n"
        "response = function(status, headers, body)\n"
        "  local token = body:match('\"refresh_token\"%s*:%s*\"([^\"]+)\"')\n"
        "  if token then\n"
        "    queue[tail] = token\n"
        "    tail = tail + 1\n"
        "  end\n"
        "end\n"
    )
    return str(path)


def psql(*args, database="postgres"):
    return subprocess.run(
        ["psql", "-h", POSTGRES["host"], "-p", POSTGRES["port"], "-U", POSTGRES["user"], "-d", database,
         "-v", "ON_ERROR_STOP=1", "-qAt", *args],
        capture_output=True, text=True, timeout=30,
    )


def jwt_cost():
    out = subprocess.run([str(RELEASE / "jwt_cost")], capture_output=True, text=True, check=True).stdout
    print(out, end="", flush=True)
    return {alg: {"sign_ns": float(sign), "verify_ns": float(verify)}
            for alg, sign, verify in re.findall(r"^(HS256|EdDSA|RS256)\s+sign\s+([\d.]+) ns/op\s+verify\s+([\d.]+) ns/op", out, re.M)}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seconds", type=int, default=10, help="duration of each wrk measurement")
    ap.add_argument("--rounds", type=int, default=3, help="rounds of the GET comparison (median reported)")
    ap.add_argument("--connections", type=int, default=64, help="connections of the GET comparison")
    ap.add_argument("--login-clients", default="1,2,8,32")
    ap.add_argument("--flood", type=int, default=256, help="connections of the login flood")
    ap.add_argument("--starts", type=int, default=5, help="restarts timed to the first 200 (median)")
    ap.add_argument("--no-fastapi", action="store_true", help="skip the FastAPI tutorial app")
    ap.add_argument("--no-postgres", action="store_true", help="skip gatehouse on PostgreSQL")
    ap.add_argument("--refresh-connections", type=int, default=64, help="connections of the refresh grant run")
    ap.add_argument("--no-write", action="store_true", help="print only; leave bench/RESULTS.md")
    ap.add_argument("--out", default=str(ROOT / "bench" / "RESULTS.md"))
    ap.add_argument("--ab", metavar="VAR=A,B",
                    help="only an A/B of GET /users/me/ on gatehouse with VAR=A against VAR=B, "
                         "alternating round by round (--rounds each); prints, writes nothing")
    args = ap.parse_args()
    if args.ab:
        return ab(args)
    login_clients = [int(c) for c in args.login_clients.split(",")]
    fastapi = not args.no_fastapi and (VENV / "bin" / "uvicorn").exists()
    if not args.no_fastapi and not fastapi:
        print(f"note: {VENV}/bin/uvicorn missing; FastAPI comparison skipped", file=sys.stderr)

    work = Path(tempfile.mkdtemp(prefix="gatehouse-bench-"))
    logs = ROOT / "target" / "bench-logs"
    logs.mkdir(parents=True, exist_ok=True)
    load_before = loadavg()
    started_at = datetime.datetime.now(datetime.timezone.utc)
    print(f"load average before: {load_before}; scratch: {work}; logs: {logs}", flush=True)

    results = {"start_s": {}, "idle_rss": {}, "get": {}, "logins": {}, "flood": {}, "refresh": {}}
    results["jwt_cost"] = jwt_cost()

    gh_bin = str(RELEASE / "gatehouse")
    # Every gatehouse runs with default settings, but for the proxy the login clients'
    # addresses come through (see LOGIN_ADDRESSES).
    base_env = {"SECRET_KEY": SECRET_KEY, "RUST_LOG": os.environ.get("RUST_LOG", "info"),
                "TRUSTED_PROXIES": "127.0.0.1/32"}
    variants = {
        "gatehouse": {"DATABASE_URL": f"sqlite://{work / 'gatehouse.db'}?mode=rwc"},
        "gatehouse-eddsa": {"DATABASE_URL": f"sqlite://{work / 'gatehouse-eddsa.db'}?mode=rwc",
                            "JWT_ALGORITHM": "EdDSA"},
    }
    pg_db = f"gatehouse_bench_{os.getpid()}"
    if not args.no_postgres:
        made = psql("-c", f"CREATE DATABASE {pg_db}") if shutil.which("psql") else None
        if made and made.returncode == 0:
            variants["gatehouse-pg"] = {
                "DATABASE_URL": f"postgres://{POSTGRES['user']}@{POSTGRES['host']}:{POSTGRES['port']}/{pg_db}"}
        else:
            print(f"note: no PostgreSQL at {POSTGRES['host']}:{POSTGRES['port']} "
                  f"({made.stderr.strip() if made else 'psql missing'}); skipped", file=sys.stderr)
    ports = {name: free_port() for name in variants}
    envs = {name: base_env | v for name, v in variants.items()}
    tokens = {}

    # A fresh database with the demo users for each, then a token; the servers below reuse both.
    for name in variants:
        seed = Server(f"{name}-seed", [gh_bin, "serve", "--demo", "--bind", f"127.0.0.1:{ports[name]}"],
                      envs[name], ports[name], "/openapi.json")
        seed.start(logs / f"{name}-seed.log")
        tokens[name] = gatehouse_token(ports[name])
        seed.stop()
    token = tokens["gatehouse"]
    auth = {"Authorization": f"Bearer {token}"}

    def gatehouse_server(name="gatehouse"):
        return Server(name, [gh_bin, "serve", "--bind", f"127.0.0.1:{ports[name]}"],
                      envs[name], ports[name], "/users/me/", {"Authorization": f"Bearer {tokens[name]}"})

    fa_token = None
    fa_port = free_port()

    def fastapi_server(probe_headers):
        return Server("fastapi", [str(VENV / "bin" / "uvicorn"), "tutorial_app:app", "--host", "127.0.0.1",
                                  "--port", str(fa_port), "--workers", "1"],
                      {}, fa_port, "/users/me/" if probe_headers else "/docs", probe_headers,
                      cwd=str(ROOT / "bench" / "fastapi"))

    # ---- start-up time on an existing database: spawn to first 200 of GET /users/me/.
    times = []
    for _ in range(args.starts):
        s = gatehouse_server()
        times.append(s.start(logs / "gatehouse.log"))
        s.stop()
    results["start_s"]["gatehouse"] = {"median": median(times), "all": times}
    if fastapi:
        s = fastapi_server(None)
        s.start(logs / "fastapi.log")
        status, body = http_request(fa_port, "POST", "/token",
                                    {"Content-Type": "application/x-www-form-urlencoded"}, LOGIN_BODY, timeout=30)
        s.stop()
        fa_token = json.loads(body)["access_token"]
        times = []
        for _ in range(args.starts):
            s = fastapi_server({"Authorization": f"Bearer {fa_token}"})
            times.append(s.start(logs / "fastapi.log"))
            s.stop()
        results["start_s"]["fastapi"] = {"median": median(times), "all": times}
    print("start to first 200:", {k: f"{v['median'] * 1000:.0f} ms" for k, v in results["start_s"].items()}, flush=True)

    # ---- the servers of the comparison, all started, loaded one at a time.
    jwt_port, hello_port = free_port(), free_port()
    servers = {
        **{name: gatehouse_server(name) for name in variants},
        "jwt-ceiling": Server("jwt-ceiling", [str(RELEASE / "ceiling"), "jwt", f"127.0.0.1:{jwt_port}"],
                              {"SECRET_KEY": SECRET_KEY}, jwt_port, "/users/me/", auth),
        "hello": Server("hello", [str(RELEASE / "ceiling"), "hello", f"127.0.0.1:{hello_port}"],
                        {}, hello_port, "/"),
    }
    if fastapi:
        servers["fastapi"] = fastapi_server({"Authorization": f"Bearer {fa_token}"})
    try:
        for name, s in servers.items():
            s.start(logs / f"{name}.log")
            time.sleep(1.0)
            results["idle_rss"][name] = s.memory()["VmRSS"]
        print("idle RSS:", {k: f"{v / MIB:.1f} MiB" for k, v in results["idle_rss"].items()}, flush=True)

        paths = {name: "/" if name == "hello" else "/users/me/" for name in servers}
        for r in range(args.rounds):
            for name, s in servers.items():
                tok = fa_token if name == "fastapi" else tokens.get(name, token)
                res = wrk(s.url(paths[name]), args.connections, args.seconds, [f"Authorization: Bearer {tok}"],
                          server_pid=s.pid)
                results["get"].setdefault(name, []).append(res)
                print(f"GET round {r + 1} {name:12} {res['rps']:9.0f} req/s  p50 {res['p50_ms']:.2f} ms"
                      f"  p99 {res['p99_ms']:.2f} ms  server {res['server_cpu_us']:.0f} us CPU + {res['server_switches']:.1f}"
                      f" switches /req  wrk {res['client_cpu']:.0%} CPU  non-2xx {res['non2xx']}", flush=True)

        # ---- the argon2 ceiling, measured now, in this run, with the servers idle.
        out = subprocess.run([str(RELEASE / "argon2_ceiling")], capture_output=True, text=True, check=True).stdout
        results["argon2"] = json.loads(out)
        a = results["argon2"]
        print(f"argon2: {a['cpu_s_per_verify'] * 1000:.1f} ms CPU per verify with {a['cores']} at once "
              f"({a['single_cpu_s_per_verify'] * 1000:.1f} ms alone, {a['fresh_cpu_s_per_verify'] * 1000:.1f} ms with fresh memory) -> ceiling {a['ceiling_per_s']:.1f} logins/s; "
              f"achieved {a['wall_per_s']:.1f}/s of wall-clock time", flush=True)

        script = login_script(work / "login.lua")
        login_servers = ["gatehouse", "gatehouse-eddsa"] + (["fastapi"] if fastapi else [])
        for c in login_clients:
            for name in login_servers:
                s = servers[name]
                prefix = "argon2-" if name.startswith("gatehouse") else None
                with Sampler(s.pid, prefix) as sampler:
                    res = wrk(s.url("/token"), c, args.seconds, script=str(script), server_pid=s.pid)
                res.update(max_busy=sampler.max_busy, hash_threads=sampler.threads, max_rss=sampler.max_rss)
                results["logins"].setdefault(name, {})[c] = res
                print(f"logins {c:3} clients {name:10} {res['ok_rps']:6.1f} ok/s  503s {res['non2xx']:5}"
                      f"  p99 {res['p99_ms']:.0f} ms  busy hashing threads <= {res['max_busy']}", flush=True)

        # ---- the refresh grant, after the commit ceiling of this file system.
        out = subprocess.run([str(RELEASE / "sqlite_commits"), str(work), "5"],
                             capture_output=True, text=True, check=True).stdout
        results["sqlite_commits"] = json.loads(out)
        print(f"SQLite single-row commits (WAL, synchronous=FULL): {results['sqlite_commits']['commits_per_s']:.0f}/s",
              flush=True)
        for name in [n for n in ("gatehouse", "gatehouse-pg") if n in servers]:
            s = servers[name]
            # One more than connections: wrk calls `request()` once to check the script.
            pool = refresh_tokens(s.port, args.refresh_connections + 1)
            res = wrk(s.url("/token"), args.refresh_connections, args.seconds,
                      script=refresh_script(work / f"refresh-{name}.lua", pool), server_pid=s.pid)
            results["refresh"][name] = res
            print(f"refresh {name:15} {res['ok_rps']:7.0f} ok/s  p50 {res['p50_ms']:.2f} ms  p99 {res['p99_ms']:.2f} ms"
                  f"  non-2xx {res['non2xx']}  server {res['server_cpu_us']:.0f} us CPU/req", flush=True)

        for name in [n for n in login_servers if n != "gatehouse-eddsa"]:
            s = servers[name]
            prefix = "argon2-" if name == "gatehouse" else None
            with Sampler(s.pid, prefix) as sampler:
                res = wrk(s.url("/token"), args.flood, args.seconds, script=str(script))
            # Logins still queued when wrk stops finish first (gatehouse: no hashing thread
            # running; FastAPI: the process stops using CPU); then the memory should be back.
            settle = time.monotonic()
            while time.monotonic() - settle < 120:
                if prefix:
                    if not thread_states(s.pid, prefix)[1]:
                        break
                    time.sleep(0.2)
                else:
                    cpu = proc_cpu(s.pid)[0]
                    time.sleep(1.0)
                    if proc_cpu(s.pid)[0] - cpu < 0.05:
                        break
            time.sleep(2.0)
            mem = s.memory()
            res.update(max_busy=sampler.max_busy, hash_threads=sampler.threads, max_rss=sampler.max_rss,
                       vmhwm=mem["VmHWM"], rss_after=mem["VmRSS"])
            results["flood"][name] = res
            print(f"flood {args.flood} {name:10} {res['ok_rps']:6.1f} ok/s  non-2xx {res['non2xx']}"
                  f"  peak RSS {res['vmhwm'] / MIB:.0f} MiB  RSS once idle {res['rss_after'] / MIB:.1f} MiB", flush=True)
    finally:
        for s in servers.values():
            s.stop()
        shutil.rmtree(work, ignore_errors=True)
        if "gatehouse-pg" in variants:
            psql("-c", f"DROP DATABASE IF EXISTS {pg_db}")

    results["machine"] = machine()
    results["load"] = {"before": load_before, "after": loadavg()}
    results["started_at"] = started_at.strftime("%Y-%m-%d %H:%M UTC")
    results["settings"] = vars(args) | {"login_clients": login_clients}
    (ROOT / "target" / "bench-results.json").write_text(json.dumps(results, indent=2, default=str))
    report = render(results, fastapi)
    print()
    print(report)
    if not args.no_write:
        Path(args.out).write_text(report)
        print(f"written to {args.out}")


# ---------------------------------------------------------------- A/B


def ab(args):
    """GET /users/me/ of gatehouse with one environment variable at two values, A and B:
    both servers run side by side (each on its own copy of the demo database) and take
    turns under the same load, ABBA..., so that drift on a shared machine falls on both."""
    var, _, values = args.ab.partition("=")
    values = values.split(",")
    if not var or len(values) != 2:
        sys.exit("--ab takes VAR=A,B")
    work = Path(tempfile.mkdtemp(prefix="gatehouse-ab-"))
    logs = ROOT / "target" / "bench-logs"
    logs.mkdir(parents=True, exist_ok=True)
    load_before = loadavg()
    print(f"load average before: {load_before}; A/B of {var}: {values[0]} vs {values[1]}", flush=True)
    gh_bin = str(RELEASE / "gatehouse")
    base_env = {"SECRET_KEY": SECRET_KEY, "RUST_LOG": os.environ.get("RUST_LOG", "info"),
                "TRUSTED_PROXIES": "127.0.0.1/32"}
    names = [f"{var}={v}" for v in values]
    envs = {name: base_env | {var: v, "DATABASE_URL": f"sqlite://{work / f'ab-{i}.db'}?mode=rwc"}
            for i, (name, v) in enumerate(zip(names, values))}
    ports = {name: free_port() for name in names}
    tokens = {}
    for name in names:
        seed = Server(f"{name}-seed", [gh_bin, "serve", "--demo", "--bind", f"127.0.0.1:{ports[name]}"],
                      envs[name], ports[name], "/openapi.json")
        seed.start(logs / f"ab-{names.index(name)}-seed.log")
        tokens[name] = gatehouse_token(ports[name])
        seed.stop()
    servers = {name: Server(name, [gh_bin, "serve", "--bind", f"127.0.0.1:{ports[name]}"], envs[name],
                            ports[name], "/users/me/", {"Authorization": f"Bearer {tokens[name]}"})
               for name in names}
    runs = {name: [] for name in names}
    idle = {}
    try:
        for i, (name, s) in enumerate(servers.items()):
            s.start(logs / f"ab-{i}.log")
            time.sleep(1.0)
            idle[name] = s.memory()["VmRSS"]
        for r in range(args.rounds):
            for name in (names if r % 2 == 0 else names[::-1]):
                s = servers[name]
                res = wrk(s.url("/users/me/"), args.connections, args.seconds,
                          [f"Authorization: Bearer {tokens[name]}"], server_pid=s.pid)
                runs[name].append(res)
                print(f"round {r + 1} {name:28} {res['rps']:8.0f} req/s  p99 {res['p99_ms']:.2f} ms"
                      f"  server {res['server_cpu_us']:.1f} us CPU + {res['server_switches']:.2f} switches /req"
                      f"  wrk {res['client_cpu']:.0%} CPU"
                      f"  non-2xx {res['non2xx'] + res['socket_errors']}", flush=True)
        after = {name: s.memory()["VmRSS"] for name, s in servers.items()}
    finally:
        for s in servers.values():
            s.stop()
        shutil.rmtree(work, ignore_errors=True)

    print(f"\nA/B of {var}, GET /users/me/ at {args.connections} connections, {args.seconds} s x "
          f"{args.rounds} rounds each; load average before {load_before}, after {loadavg()}")
    print("| | req/s per round | median | spread (max-min)/median | server CPU µs/req per round | median | spread | context switches/req | p99 ms | RSS idle, after |")
    print("|---|---|---:|---:|---|---:|---:|---:|---:|---:|")
    summary = {}
    for name in names:
        rps = [r["rps"] for r in runs[name]]
        m = median(rps)
        summary[name] = {"rps": m, "cpu": median([r["server_cpu_us"] for r in runs[name]]),
                         "switches": median([r["server_switches"] for r in runs[name]])}
        cpu = [r["server_cpu_us"] for r in runs[name]]
        print(f"| {name} | {', '.join(f'{x:.0f}' for x in rps)} | {m:.0f} | {(max(rps) - min(rps)) / m:.1%} | "
              f"{', '.join(f'{x:.1f}' for x in cpu)} | {summary[name]['cpu']:.1f} | "
              f"{(max(cpu) - min(cpu)) / summary[name]['cpu']:.1%} | {summary[name]['switches']:.2f} | "
              f"{median([r['p99_ms'] for r in runs[name]]):.2f} | "
              f"{idle[name] / MIB:.1f}, {after[name] / MIB:.1f} MiB |")
    a, b = names
    paired = [y["rps"] / x["rps"] for x, y in zip(runs[a], runs[b])]
    paired_cpu = [y["server_cpu_us"] / x["server_cpu_us"] for x, y in zip(runs[a], runs[b])]
    print(f"\n{b} / {a}: req/s {summary[b]['rps'] / summary[a]['rps']:.3f} (medians), per round "
          f"{', '.join(f'{x:.3f}' for x in paired)}; server CPU per request "
          f"{summary[b]['cpu'] / summary[a]['cpu']:.3f} (medians), per round "
          f"{', '.join(f'{x:.3f}' for x in paired_cpu)}")


# ---------------------------------------------------------------- report


def per_login(r):
    """Server CPU milliseconds per successful login (503s included in the cost)."""
    ok = r["requests"] - r["non2xx"]
    return r["server_cpu_us"] * r["requests"] / ok / 1000 if ok else float("nan")


def render(res, fastapi):
    m = res["machine"]
    get = {name: {"rps": median([r["rps"] for r in runs]),
                  "p50": median([r["p50_ms"] for r in runs]),
                  "p99": median([r["p99_ms"] for r in runs]),
                  "non2xx": sum(r["non2xx"] + r["socket_errors"] for r in runs),
                  "cpu_us": median([r["server_cpu_us"] for r in runs]),
                  "switches": median([r["server_switches"] for r in runs]),
                  "client": median([r["client_cpu"] for r in runs]),
                  "all": [r["rps"] for r in runs]}
           for name, runs in res["get"].items()}
    a = res["argon2"]
    ceiling = a["ceiling_per_s"]
    s = res["settings"]
    gh = get["gatehouse"]
    goals = []
    lines = []
    w = lines.append

    w("# gatehouse benchmark results")
    w("")
    w(f"Generated by `bash bench/run.sh` on {res['started_at']} (commit {m['commit']}). "
      "Every figure below comes from this one run on one machine; compare the ratios, not the "
      "absolute numbers: the machine is a shared 2-core VM (other builds may run beside the "
      "benchmark), so absolute throughput and latency are noisy from run to run.")
    w("")
    w(f"- Machine: {m['cpu']}, {m['cores']} cores, {m['memory']}; {m['os']}, Linux {m['kernel']}")
    w(f"- Tools: {m['rustc']}; {m['wrk']}; Python {m['python']}")
    w(f"- Load average (1/5/15 min) before the run: {res['load']['before']}; after: {res['load']['after']}")
    w(f"- Client: wrk with ONE thread on the same 2 cores as the server (`wrk -t1`), "
      f"{s['seconds']} s per measurement; GET at {s['connections']} connections, "
      f"{s['rounds']} interleaved rounds, median shown")
    w("- gatehouse: release build, SQLite in a temp dir (WAL, `synchronous=FULL`), default settings "
      "(HS256, hashing pool = one thread per core, request log at `info` to a file), but "
      f"`TRUSTED_PROXIES=127.0.0.1/32`: logins come from {LOGIN_ADDRESSES} client addresses in "
      "`X-Forwarded-For`, as a login service sees them; "
      "the same with `JWT_ALGORITHM=EdDSA`, and on the local PostgreSQL 15 (a fresh database); "
      "FastAPI: the tutorial app under uvicorn, 1 worker, default logging (access log to a file)")
    w("")

    w(f"## GET /users/me/ ({s['connections']} connections)")
    w("")
    w("| server | req/s (median) | p50 ms | p99 ms | server CPU µs/req | context switches/req | wrk CPU | rounds req/s | errors |")
    w("|---|---:|---:|---:|---:|---:|---:|---|---:|")
    labels = {"gatehouse": "gatehouse (JWT + SQLite lookup)",
              "gatehouse-eddsa": "gatehouse, EdDSA tokens (JWT + SQLite lookup)",
              "gatehouse-pg": "gatehouse on PostgreSQL (JWT + lookup)",
              "jwt-ceiling": "JWT-only poem handler (framework ceiling)",
              "hello": "poem \"hello\" (transport ceiling)",
              "fastapi": "FastAPI tutorial (uvicorn, 1 worker)"}
    for name, g in get.items():
        w(f"| {labels[name]} | {g['rps']:.0f} | {g['p50']:.2f} | {g['p99']:.2f} | {g['cpu_us']:.0f} | "
          f"{g['switches']:.1f} | {g['client']:.0%} | {', '.join(f'{x:.0f}' for x in g['all'])} | {g['non2xx']} |")
    w("")
    jwt_ratio = gh["rps"] / get["jwt-ceiling"]["rps"]
    p99_ratio = gh["p99"] / get["jwt-ceiling"]["p99"]
    w(f"- gatehouse / JWT-only ceiling: **{jwt_ratio:.2f}**; p99 {p99_ratio:.2f}x the ceiling's")
    w(f"- CPU cost per request, JWT-only ceiling / gatehouse: {get['jwt-ceiling']['cpu_us'] / gh['cpu_us']:.2f} "
      "(independent of how busy the machine is; when wrk's CPU is near 100% the client, not the "
      "server, limits that server's req/s)")
    w(f"- JWT-only ceiling / hello: {get['jwt-ceiling']['rps'] / get['hello']['rps']:.2f}; "
      f"gatehouse / hello: {gh['rps'] / get['hello']['rps']:.2f}")
    if fastapi:
        fa_ratio = gh["rps"] / get["fastapi"]["rps"]
        w(f"- gatehouse / FastAPI: **{fa_ratio:.1f}x** the throughput, "
          f"p99 {gh['p99']:.2f} ms vs {get['fastapi']['p99']:.2f} ms")
    for name, label in (("gatehouse-eddsa", "EdDSA"), ("gatehouse-pg", "PostgreSQL")):
        if name in get:
            w(f"- gatehouse {label} / JWT-only ceiling: {get[name]['rps'] / get['jwt-ceiling']['rps']:.2f} "
              f"({get[name]['rps'] / gh['rps']:.2f} of gatehouse on SQLite with HS256)")
    goals.append(("/users/me/ throughput >= 60% of the JWT-only ceiling", jwt_ratio >= 0.6, f"{jwt_ratio:.0%}"))
    if fastapi:
        goals.append(("/users/me/ throughput >= 15x FastAPI (1 worker)", fa_ratio >= 15, f"{fa_ratio:.1f}x"))
    goals.append(("/users/me/ p99 <= 1.5x the JWT-only ceiling's p99", p99_ratio <= 1.5, f"{p99_ratio:.2f}x"))
    goals.append((f"/users/me/ p99 < 5 ms at {s['connections']} connections", gh["p99"] < 5.0, f"{gh['p99']:.2f} ms"))
    w("")

    w("## POST /token logins")
    w("")
    w(f"argon2 ceiling: one verify of the tutorial hash (argon2id m=64 MiB, t=3, p=4) costs "
      f"{a['cpu_s_per_verify'] * 1000:.1f} ms of CPU with {a['cores']} verifying at once "
      f"({a['single_cpu_s_per_verify'] * 1000:.1f} ms alone; {a['fresh_cpu_s_per_verify'] * 1000:.1f} ms when its "
      f"64 MiB are freshly allocated, as for an idle server's first login), so {a['cores']} cores can do at most "
      f"**{ceiling:.1f} logins/s**. The same threads achieved {a['wall_per_s']:.1f} verifies/s of wall-clock "
      f"time ({a['wall_per_s'] / ceiling:.0%} of the ceiling): what the other processes on the machine left.")
    w("")
    w("| clients | gatehouse ok/s | / ceiling | p50 ms | p99 ms | 503s | server CPU ms per 200 | busy hashing threads (max seen) | EdDSA ok/s | / ceiling |"
      + (" FastAPI ok/s | p99 ms | gatehouse / FastAPI |" if fastapi else ""))
    w("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|" + ("---:|---:|---:|" if fastapi else ""))
    gl = res["logins"]["gatehouse"]
    for c, r in gl.items():
        e = res["logins"]["gatehouse-eddsa"][c]
        row = (f"| {c} | {r['ok_rps']:.1f} | {r['ok_rps'] / ceiling:.0%} | {r['p50_ms']:.0f} | {r['p99_ms']:.0f} | "
               f"{r['non2xx']} | {per_login(r):.0f} | {r['max_busy']} of {r['hash_threads']} | "
               f"{e['ok_rps']:.1f} | {e['ok_rps'] / ceiling:.0%} |")
        if fastapi:
            f = res["logins"]["fastapi"][c]
            row += f" {f['ok_rps']:.1f} | {f['p99_ms']:.0f} | {r['ok_rps'] / f['ok_rps']:.1f}x |"
        w(row)
    w("")
    w(f"Server CPU per successful login vs one verify ({a['cpu_s_per_verify'] * 1000:.0f} ms): the overhead of "
      "HTTP, the lookup, the token and any 503s, independent of how busy the machine is.")
    w("")
    high = [r["ok_rps"] / ceiling for c, r in gl.items() if c >= 8]
    pool = max(r["hash_threads"] for r in gl.values())
    busy = max(r["max_busy"] for r in list(gl.values()) + [res["flood"]["gatehouse"]])
    w("Verifies in flight: the hashing pool has one thread per worker (`argon2-N`) and each runs "
      "one verify at a time, so no more than pool-size verifies can be in flight by construction; "
      "the harness also samples `/proc/<pid>/task/*/stat` every 5 ms during each load and counts "
      f"`argon2-*` threads in state R (running or runnable) in 5 samples in a row (a verify runs ~100 ms; "
      "taking a job or freeing its memory a few ms): at most "
      f"**{busy} of {pool}** were busy. "
      "Logins beyond the pool wait in a bounded queue (HASH_QUEUE_PER_WORKER, 16 by default) and "
      "past it get 503 at once, which is why the flood run shows 503s.")
    w("")
    goals.append(("logins/s >= 90% of the argon2 ceiling at 8+ clients", min(high) >= 0.9,
                  ", ".join(f"{x:.0%}" for x in high)))
    goals.append(("never more than pool-size verifies in flight", busy <= pool, f"max {busy} of {pool}"))

    w("## HS256 and EdDSA")
    w("")
    jc = res["jwt_cost"]
    w("| | sign one token µs | verify one µs | GET /users/me/ req/s | logins/s at " + ", ".join(str(c) for c in gl) + " clients |")
    w("|---|---:|---:|---:|---|")
    for alg, name in (("HS256", "gatehouse"), ("EdDSA", "gatehouse-eddsa")):
        w(f"| {alg} | {jc[alg]['sign_ns'] / 1000:.1f} | {jc[alg]['verify_ns'] / 1000:.1f} | {get[name]['rps']:.0f} | "
          + ", ".join(f"{r['ok_rps']:.1f}" for r in res["logins"][name].values()) + " |")
    w("")
    w(f"EdDSA / HS256: sign {jc['EdDSA']['sign_ns'] / jc['HS256']['sign_ns']:.0f}x, verify "
      f"{jc['EdDSA']['verify_ns'] / jc['HS256']['verify_ns']:.0f}x the CPU (`bench/src/bin/jwt_cost.rs`, best of 5 "
      f"rounds); GET /users/me/ with EdDSA tokens: {get['gatehouse-eddsa']['rps'] / gh['rps']:.2f} of HS256's throughput. "
      "A login's cost is the password hash, so the two modes log in at the same rate.")
    if "RS256" in jc:
        w("")
        w(f"RS256 (RSA 2048, measured by jwt_cost only): sign {jc['RS256']['sign_ns'] / 1000:.1f} µs, verify "
          f"{jc['RS256']['verify_ns'] / 1000:.1f} µs; {jc['RS256']['sign_ns'] / jc['HS256']['sign_ns']:.0f}x and "
          f"{jc['RS256']['verify_ns'] / jc['HS256']['verify_ns']:.0f}x HS256's CPU.")
    w("")

    if res["refresh"]:
        sc = res["sqlite_commits"]
        w(f"## Refresh grant ({s['refresh_connections']} connections)")
        w("")
        w(f"The commit ceiling: one connection inserting one row per transaction into a SQLite file in the "
          f"same directory, WAL with `synchronous=FULL` as gatehouse opens it, made **{sc['commits_per_s']:.0f} "
          f"commits/s** (`bench/src/bin/sqlite_commits.rs`). A refresh needs no password hash: it reads the "
          "token, spends it and stores its successor in one transaction (one commit), and signs an access token.")
        w("")
        w("| server | ok/s | / SQLite commits/s | p50 ms | p99 ms | non-2xx | server CPU µs/req |")
        w("|---|---:|---:|---:|---:|---:|---:|")
        for name, r in res["refresh"].items():
            w(f"| {labels[name]} | {r['ok_rps']:.0f} | {r['ok_rps'] / sc['commits_per_s']:.2f} | {r['p50_ms']:.2f} | "
              f"{r['p99_ms']:.2f} | {r['non2xx'] + r['socket_errors']} | {r['server_cpu_us']:.0f} |")
        w("")
        w("Each request presents a live refresh token: the wrk script keeps a queue of them, "
          "refilled by each answer's new one.")
        w("")
        if "gatehouse" in res["refresh"]:
            ratio = res["refresh"]["gatehouse"]["ok_rps"] / sc["commits_per_s"]
            goals.append(("refresh grant >= 0.5x SQLite single-row commits/s", ratio >= 0.5, f"{ratio:.2f}x"))

    w(f"## Memory and start-up")
    w("")
    w("| | gatehouse" + (" | FastAPI | gatehouse / FastAPI" if fastapi else "") + " |")
    w("|---|---:" + ("|---:|---:" if fastapi else "") + "|")
    fl = res["flood"]
    rows = [
        ("idle RSS (after start and one request)", lambda n: res["idle_rss"][n] / MIB, "{:.1f} MiB"),
        (f"peak RSS (VmHWM) under a {s['flood']}-connection login flood", lambda n: fl[n]["vmhwm"] / MIB, "{:.0f} MiB"),
        ("RSS once the queued logins are done", lambda n: fl[n]["rss_after"] / MIB, "{:.1f} MiB"),
        ("logins/s during the flood (200s only)", lambda n: fl[n]["ok_rps"], "{:.1f}"),
        ("non-200 answers during the flood", lambda n: fl[n]["non2xx"] + fl[n]["socket_errors"], "{}"),
        ("start to first 200 of GET /users/me/, existing database (median)",
         lambda n: res["start_s"][n]["median"] * 1000, "{:.0f} ms"),
    ]
    for label, get_value, fmt in rows:
        row = f"| {label} | {fmt.format(get_value('gatehouse'))}"
        if fastapi:
            gv, fv = get_value("gatehouse"), get_value("fastapi")
            row += f" | {fmt.format(fv)} | {gv / fv:.2f} " if fv else f" | {fmt.format(fv)} | - "
        w(row + "|")
    w("")
    w("Start-up times of each restart (ms): " + "; ".join(
        f"{n}: {', '.join(f'{t * 1000:.0f}' for t in v['all'])}" for n, v in res["start_s"].items()))
    w(f"Idle RSS of the ceilings: JWT-only {res['idle_rss']['jwt-ceiling'] / MIB:.1f} MiB, "
      f"hello {res['idle_rss']['hello'] / MIB:.1f} MiB.")
    w("")
    limit = pool * 64 + 64
    peak = fl["gatehouse"]["vmhwm"] / MIB
    idle = res["idle_rss"]["gatehouse"] / MIB
    start_ms = res["start_s"]["gatehouse"]["median"] * 1000
    goals.append((f"peak RSS under the flood <= pool x 64 MiB + 64 MiB = {limit} MiB", peak <= limit, f"{peak:.0f} MiB"))
    goals.append(("idle RSS < 20 MiB", idle < 20, f"{idle:.1f} MiB"))
    goals.append(("first 200 within 150 ms of start", start_ms <= 150, f"{start_ms:.0f} ms"))

    w("## Goals")
    w("")
    w("| goal | measured | met |")
    w("|---|---:|:---:|")
    for goal, ok, measured in goals:
        w(f"| {goal} | {measured} | {'yes' if ok else '**no**'} |")
    w("")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
