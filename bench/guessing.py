"""Online-guessing scenarios against the real binary (issue 11, items 2-4).

Usage: python3 bench/guessing.py target/debug/gatehouse [2] [3] [3s] [4]

  2   lockout resistance: the owner logs in from one address, 114 wrong passwords come
      from 6 others (19 each), then the owner logs in again from hers and from a new one
  3   exact limit: a burst of 48 and 64 concurrent wrong logins from one address against
      the limit of 20, with the default pool and with HASH_WORKERS=8 (401 = one check)
  3s  the same, 64 connections retrying for 10 s
  4   fairness: one address logs in over 64 connections without pause while 43 other
      addresses log in, 4 at a time

Each scenario runs a fresh server on a temp SQLite database, with TRUSTED_PROXIES=127.0.0.1
so X-Forwarded-For names the simulated client addresses. No argument: 2, 3 and 4.
"""
import collections, http.client, os, shutil, socket, subprocess, sys, tempfile, threading, time, urllib.parse

BIN = sys.argv[1]
SECRET = "test-secret-key-that-is-long-enough-0123456789"

def free_port():
    s = socket.socket(); s.bind(("127.0.0.1", 0)); p = s.getsockname()[1]; s.close(); return p

class Server:
    def __init__(self, env_extra):
        self.dir = tempfile.mkdtemp()
        self.port = free_port()
        env = {"DATABASE_URL": f"sqlite://{self.dir}/g.db?mode=rwc", "SECRET_KEY": SECRET,
               "GATEHOUSE_BIND": f"127.0.0.1:{self.port}", "TRUSTED_PROXIES": "127.0.0.1",
               "RUST_LOG": "info", "PATH": os.environ["PATH"]}
        env.update(env_extra)
        self.env = env
        p = subprocess.run([BIN, "user", "add", "carol"], input="carol-pass-123\n", env=env, capture_output=True, text=True)
        assert p.returncode == 0, p.stderr
        self.log = open(f"{self.dir}/log", "w")
        self.proc = subprocess.Popen([BIN, "serve", "--demo"], env=env, stderr=self.log, stdout=subprocess.DEVNULL)
        for _ in range(200):
            try:
                socket.create_connection(("127.0.0.1", self.port), 0.2).close(); break
            except OSError: time.sleep(0.05)
    def stop(self):
        self.proc.terminate(); self.proc.wait(); self.log.close()
        shutil.rmtree(self.dir, ignore_errors=True)

def login(conn, xff, user, pw):
    body = urllib.parse.urlencode({"username": user, "password": pw})
    conn.request("POST", "/token", body, {"Content-Type": "application/x-www-form-urlencoded", "X-Forwarded-For": xff})
    r = conn.getresponse(); r.read()
    return r.status, r.getheader("Retry-After")

def conn_for(srv):
    return http.client.HTTPConnection("127.0.0.1", srv.port, timeout=120)

def item2():
    srv = Server({})
    try:
        c = conn_for(srv)
        first = login(c, "198.51.100.7", "carol", "carol-pass-123")
        counts = collections.Counter(); lock = threading.Lock()
        def guesser(n):
            cc = conn_for(srv)
            for i in range(19):
                s, _ = login(cc, f"203.0.113.{n}", "carol", f"wrong{i}")
                with lock: counts[s] += 1
        t0 = time.time()
        ts = [threading.Thread(target=guesser, args=(n,)) for n in range(1, 7)]
        [t.start() for t in ts]; [t.join() for t in ts]
        took = time.time() - t0
        owner_known = login(conn_for(srv), "198.51.100.7", "carol", "carol-pass-123")
        owner_new = login(conn_for(srv), "192.0.2.1", "carol", "carol-pass-123")
        attacker_new = login(conn_for(srv), "192.0.2.2", "carol", "wrong-again")
        print(f"item 2: owner's first login from 198.51.100.7: {first[0]}; 114 guesses from 6 addresses in {took:.1f} s: {dict(counts)}; "
              f"owner from 198.51.100.7 afterwards: {owner_known[0]}; owner from new address: {owner_new}; guesser from new address: {attacker_new}")
    finally:
        srv.stop()

def burst(env, n):
    srv = Server(env)
    try:
        counts = collections.Counter(); lock = threading.Lock()
        barrier = threading.Barrier(n)
        def one():
            cc = conn_for(srv); cc.connect()
            barrier.wait()
            s, _ = login(cc, "203.0.113.9", "carol", "wrong")
            with lock: counts[s] += 1
        ts = [threading.Thread(target=one) for _ in range(n)]
        [t.start() for t in ts]; [t.join() for t in ts]
        time.sleep(0.5)
        print(f"item 3: {env or 'defaults'}, {n} connections, limit 20: {dict(sorted(counts.items()))} -> password checks = {counts[401]}")
    finally:
        srv.stop()

def item4(others_total=43, conc=4, env=None):
    srv = Server(env or {})
    try:
        stop = threading.Event(); hog = collections.Counter(); lock = threading.Lock()
        def hogger():
            cc = conn_for(srv)
            while not stop.is_set():
                s, _ = login(cc, "198.51.100.1", "johndoe", "secret")
                with lock: hog[s] += 1
        hs = [threading.Thread(target=hogger) for _ in range(64)]
        [t.start() for t in hs]
        time.sleep(1.0)
        res = []; lat = []
        def other(i):
            cc = conn_for(srv); t0 = time.time()
            s, _ = login(cc, f"192.0.2.{i+1}", "alice", "secret2")
            with lock: res.append(s); lat.append(time.time() - t0)
        i = 0
        while i < others_total:
            ts = [threading.Thread(target=other, args=(j,)) for j in range(i, min(i + conc, others_total))]
            [t.start() for t in ts]; [t.join() for t in ts]; i += conc
        stop.set(); [t.join() for t in hs]
        ok = sum(1 for s in res if s == 200)
        lat.sort()
        print(f"item 4: one address over 64 connections ({dict(hog)}); other addresses: {ok}/{len(res)} = {100*ok/len(res):.0f}% succeeded "
              f"{dict(collections.Counter(res))}, latency median {lat[len(lat)//2]:.2f} s max {lat[-1]:.2f} s")
    finally:
        srv.stop()

def sustained(env, n, secs=10):
    srv = Server(env)
    try:
        counts = collections.Counter(); lock = threading.Lock(); stop = time.time() + secs
        def one():
            cc = conn_for(srv)
            while time.time() < stop:
                s, _ = login(cc, "203.0.113.9", "carol", "wrong")
                with lock: counts[s] += 1
        ts = [threading.Thread(target=one) for _ in range(n)]
        [t.start() for t in ts]; [t.join() for t in ts]
        print(f"item 3 (sustained {secs} s, retrying): {env or 'defaults'}, {n} connections, limit 20: {dict(sorted(counts.items()))} -> password checks = {counts[401]}")
    finally:
        srv.stop()


which = sys.argv[2:] or ["2", "3", "4"]
if "2" in which: item2()
if "3" in which:
    for n in (48, 64):
        burst({}, n)
        burst({"HASH_WORKERS": "8"}, n)
if "4" in which: item4()
if "3s" in which:
    for env in ({}, {"HASH_WORKERS": "8"}):
        sustained(env, 64)
