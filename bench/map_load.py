"""The console map under load (issue 18): 16 concurrent clients, each signed in as a dispatcher, looking at
random viewports at city, district and street zoom, against the production server (gunicorn with the
production settings, as deploy/ runs it, on this machine and database). Two ways of serving the layers,
measured on the same viewports:

- tiles: the road, defect, bin and sensor layers as vector tiles (`/api/city/tiles/<layer>/{z}/{x}/{y}.mvt`,
  every tile a 1280 x 800 viewport shows), first with the tile cache emptied (cold), then the same viewports
  again (warm: what dispatchers looking at one city share); the closures as the console reads them (GeoJSON);
- geojson: each layer as one simplified, capped GeoJSON for the viewport (`/api/city/layers/<layer>.geojson`);
- floor: `/healthz` (a database and a Redis round trip, no layer) at the same concurrency: the least any
  request costs on this server under this load, the reference the layers' figures stand beside.

Per mode, layer and zoom: requests, p50/p95/max milliseconds, mean bytes and how many responses the feature
cap cut; beside them the CPU the generator took (it shares the machine's cores with the server), the
server's CPU and peak memory, and the load average.

    set -a && . .run/env && set +a
    DATABASE_URL=postgis://cityops:$CITY_OPS_DB_PASSWORD@127.0.0.1:55432/cityops_scale250 \\
        nice -n 5 .venv/bin/python bench/map_load.py [--json] [--seconds 30] [--clients 16] [--modes floor,tiles,geojson]

Writes to the database only a bench user (`bench-map`, a dispatcher) and its session.
"""
from __future__ import annotations

import argparse
import http.client
import itertools
import json
import math
import os
import random
import resource
import statistics
import subprocess
import sys
import threading
import time
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import psutil
from _django import django_setup

ROOT = Path(__file__).resolve().parent.parent
ZOOMS = {"city": 10, "district": 13, "street": 16}
TILED = ("roads", "roads-defects", "sanitation-bins", "flood-sensors")
LAYERS = TILED + ("closures", "healthz")
VIEW_W, VIEW_H = 1280, 800
TARGET_P95_MS = 150


def log(*args) -> None:
    print(*args, file=sys.stderr, flush=True)


# --- viewports --------------------------------------------------------------------------------------------

def _world_px(lon: float, lat: float, z: int) -> tuple[float, float]:
    size = 256 * 2 ** z
    return (lon + 180) / 360 * size, (1 - math.asinh(math.tan(math.radians(lat))) / math.pi) / 2 * size


def _lonlat(px: float, py: float, z: int) -> tuple[float, float]:
    size = 256 * 2 ** z
    return px / size * 360 - 180, math.degrees(math.atan(math.sinh(math.pi * (1 - 2 * py / size))))


@dataclass(frozen=True)
class Viewport:
    level: str
    zoom: int
    bbox: tuple[float, float, float, float]
    tiles: tuple[tuple[int, int], ...]


def viewport_at(level: str, lon: float, lat: float) -> Viewport:
    z = ZOOMS[level]
    cx, cy = _world_px(lon, lat, z)
    x1, y1, x2, y2 = cx - VIEW_W / 2, cy - VIEW_H / 2, cx + VIEW_W / 2, cy + VIEW_H / 2
    west, north = _lonlat(x1, y1, z)
    east, south = _lonlat(x2, y2, z)
    tiles = tuple((tx, ty) for tx in range(int(x1 // 256), int(x2 // 256) + 1)
                  for ty in range(int(y1 // 256), int(y2 // 256) + 1))
    return Viewport(level, z, (west, south, east, north), tiles)


def viewports(extent, *, per_level: int, seed: int) -> list[Viewport]:
    """Random viewports inside the city, `per_level` at each zoom, shuffled together."""
    rnd = random.Random(seed)
    west, south, east, north = extent
    out = [viewport_at(level, rnd.uniform(west, east), rnd.uniform(south, north))
           for level in ZOOMS for _ in range(per_level)]
    rnd.shuffle(out)
    return out


# --- the server -------------------------------------------------------------------------------------------

def server_env() -> dict[str, str]:
    """Production settings, as deploy/ runs them, on plain HTTP on this machine (no TLS proxy here)."""
    return {**os.environ, "DJANGO_SETTINGS_MODULE": "city_ops.settings.production", "PYTHONPATH": str(ROOT),
            "SESSION_COOKIE_SECURE": "False", "CSRF_COOKIE_SECURE": "False", "SECURE_HSTS_SECONDS": "0",
            "ALLOWED_HOSTS": "127.0.0.1,localhost"}


def server_start(port: int, workers: int) -> subprocess.Popen:
    # The command line of deploy/docker-compose.yml's web service, bound to this machine only.
    cmd = [str(ROOT / ".venv" / "bin" / "gunicorn"), "city_ops.wsgi", "--bind", f"127.0.0.1:{port}",
           "--workers", str(workers), "--timeout", "120", "--error-logfile", "-"]
    proc = subprocess.Popen(cmd, cwd=ROOT, env=server_env(), stdout=subprocess.DEVNULL, stderr=sys.stderr)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
            conn.request("GET", "/healthz")
            if conn.getresponse().status in (200, 503):
                return proc
        except OSError:
            time.sleep(0.5)
    proc.terminate()
    raise SystemExit("gunicorn did not answer /healthz within 120 s")


def _db_backends(workers: list[psutil.Process]) -> list[psutil.Process]:
    """The PostgreSQL backends serving the gunicorn workers' connections (their title names the client port)."""
    ports = set()
    for w in workers:
        try:
            ports |= {c.laddr.port for c in w.net_connections(kind="tcp") if c.raddr and c.raddr.port == _db_port()}
        except psutil.Error:
            pass
    found = []
    for p in psutil.process_iter(["name", "cmdline"]):
        title = " ".join(p.info["cmdline"] or ())
        if title.startswith("postgres: ") and any(f"({port})" in title for port in ports):
            found.append(p)
    return found


def _db_port() -> int:
    from django.db import connection

    return int(connection.settings_dict.get("PORT") or 5432)


def server_cpu(proc: psutil.Process) -> dict[int, float]:
    """CPU seconds by process id: the gunicorn master, its workers and the database backends serving them."""
    workers = [proc, *proc.children(recursive=True)]
    out = {}
    for p in workers + _db_backends(workers):
        try:
            t = p.cpu_times()
            out[p.pid] = t.user + t.system
        except psutil.Error:
            pass
    return out


def server_peak_rss_mb(proc: psutil.Process) -> float:
    rss = 0.0
    for p in [proc, *proc.children(recursive=True)]:
        try:
            rss = max(rss, p.memory_info().rss / 2 ** 20)
        except psutil.Error:
            pass
    return rss


# --- the clients ------------------------------------------------------------------------------------------

def session_cookie() -> str:
    """A dispatcher's session, made the way a login makes it (the server shares the database and key)."""
    from django.conf import settings
    from django.test import Client

    from city_ops.core.roles import Role
    from city_ops.core.services import user_create

    user = user_create(username="bench-map", password=os.urandom(12).hex(), roles=[Role.DISPATCHER])
    client = Client()
    client.force_login(user)
    return f"{settings.SESSION_COOKIE_NAME}={client.cookies[settings.SESSION_COOKIE_NAME].value}"


def requests_for(mode: str, vp: Viewport) -> list[tuple[str, str]]:
    """(layer, path) for every request a client makes to draw `vp`'s layers in this mode."""
    if mode == "floor":
        return [("healthz", "/healthz")]
    bbox = ",".join(f"{v:.6f}" for v in vp.bbox)
    out = [("closures", "/api/city/closures.geojson")]  # the console's path for closures, in both modes
    if mode == "geojson":
        return [(layer, f"/api/city/layers/{layer}.geojson?bbox={bbox}&zoom={vp.zoom}") for layer in TILED] + out
    return [(layer, f"/api/city/tiles/{layer}/{vp.zoom}/{x}/{y}.mvt") for layer in TILED for x, y in vp.tiles] + out


@dataclass
class Sample:
    ms: list[float] = field(default_factory=list)
    bytes: int = 0
    truncated: int = 0
    errors: int = 0
    failures: dict = field(default_factory=dict)  # what each error was: an HTTP status or an exception

    def fail(self, what: str) -> None:
        self.errors += 1
        self.failures[what] = self.failures.get(what, 0) + 1


def client_loop(port: int, cookie: str, work: list[Viewport], mode: str, deadline: float, out: dict, lock) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    headers = {"Cookie": cookie, "Accept": "application/json"}
    mine: dict[tuple[str, str], Sample] = defaultdict(Sample)
    for vp in itertools.cycle(work):
        if time.monotonic() > deadline:
            break
        level = "-" if mode == "floor" else vp.level  # the floor has no viewport
        for layer, path in requests_for(mode, vp):
            t0 = time.perf_counter()
            try:
                conn.request("GET", path, headers=headers)
                resp = conn.getresponse()
                body = resp.read()
            except (OSError, http.client.HTTPException) as exc:
                conn.close()
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
                mine[(layer, level)].fail(type(exc).__name__)
                continue
            s = mine[(layer, level)]
            s.ms.append((time.perf_counter() - t0) * 1000)
            s.bytes += len(body)
            if resp.status not in (200, 204):
                s.fail(f"HTTP {resp.status}")
            s.truncated += resp.getheader("X-Truncated") == "1" or b'"truncated":true' in body[-200:]
    with lock:
        for key, s in mine.items():
            agg = out[key]
            agg.ms += s.ms
            agg.bytes += s.bytes
            agg.truncated += s.truncated
            agg.errors += s.errors
            for what, n in s.failures.items():
                agg.failures[what] = agg.failures.get(what, 0) + n


def run_mode(mode: str, *, port: int, cookie: str, views: list[Viewport], clients: int, seconds: float,
             server: psutil.Process) -> dict:
    """Every client walks the viewports from its own starting point until the time is up."""
    out: dict[tuple[str, str], Sample] = defaultdict(Sample)
    lock = threading.Lock()
    deadline = time.monotonic() + seconds
    cpu0, wall0, srv0 = time.process_time(), time.perf_counter(), server_cpu(server)
    threads = []
    for i in range(clients):
        start = i * len(views) // clients
        work = views[start:] + views[:start]
        threads.append(threading.Thread(target=client_loop, args=(port, cookie, work, mode, deadline, out, lock)))
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - wall0
    srv1 = server_cpu(server)
    app_pids = {server.pid, *(p.pid for p in server.children(recursive=True))}
    app_cpu = sum(t - srv0.get(pid, 0.0) for pid, t in srv1.items() if pid in app_pids)
    db_cpu = sum(t - srv0.get(pid, 0.0) for pid, t in srv1.items() if pid not in app_pids)
    rows = []
    for (layer, level), s in sorted(out.items(), key=lambda kv: (LAYERS.index(kv[0][0]), ZOOMS.get(kv[0][1], 0))):
        ms = sorted(s.ms)
        rows.append({"layer": layer, "zoom": level, "requests": len(ms), "errors": s.errors,
                     "p50_ms": round(statistics.median(ms), 1) if ms else None,
                     "p95_ms": round(ms[max(0, math.ceil(0.95 * len(ms)) - 1)], 1) if ms else None,
                     "max_ms": round(ms[-1], 1) if ms else None,
                     "mean_kb": round(s.bytes / len(ms) / 1024, 1) if ms else None, "truncated": s.truncated,
                     "failures": s.failures})
    every = sorted(m for s in out.values() for m in s.ms)
    return {"mode": mode, "wall_s": round(wall, 1), "requests": len(every),
            "requests_per_s": round(len(every) / wall, 1),
            "p95_ms_all": round(every[math.ceil(0.95 * len(every)) - 1], 1) if every else None,
            "generator_cpu_s": round(time.process_time() - cpu0, 1),
            "server_cpu_s": round(app_cpu, 1), "db_cpu_s": round(db_cpu, 1),
            "cpu_ms_per_request": round((app_cpu + db_cpu) * 1000 / max(1, len(every)), 1),
            "server_worker_peak_rss_mb": round(server_peak_rss_mb(server)),
            "loadavg_after": [round(x, 2) for x in os.getloadavg()], "rows": rows}


def tile_cache_clear() -> int:
    """Empty the tile cache (only the map's keys) so the cold pass measures tiles being made."""
    from django.core.cache import cache

    client = cache._cache.get_client()
    keys = list(client.scan_iter(match=cache.make_key("maptile:*")))
    for key in keys:
        client.delete(key)
    return len(keys)


def print_table(result: dict) -> None:
    print(f"\n== {result['mode']}: {result['requests']} requests in {result['wall_s']} s "
          f"({result['requests_per_s']}/s), p95 over all {result['p95_ms_all']} ms; generator CPU "
          f"{result['generator_cpu_s']} s, server CPU {result['server_cpu_s']} s + database {result['db_cpu_s']} s "
          f"({result['cpu_ms_per_request']} ms a request), worker peak RSS "
          f"{result['server_worker_peak_rss_mb']} MB, load after {result['loadavg_after']}")
    print(f"{'layer':16s} {'zoom':9s} {'n':>6s} {'p50':>7s} {'p95':>7s} {'max':>7s} {'kB':>7s} {'cut':>5s} {'err':>4s}")
    for r in result["rows"]:
        flag = "" if r["p95_ms"] is not None and r["p95_ms"] < TARGET_P95_MS else "  > target"
        print(f"{r['layer']:16s} {r['zoom']:9s} {r['requests']:6d} {r['p50_ms']:7.1f} {r['p95_ms']:7.1f} "
              f"{r['max_ms']:7.1f} {r['mean_kb']:7.1f} {r['truncated']:5d} {r['errors']:4d}{flag}"
              + (f"  {r['failures']}" if r["failures"] else ""))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--clients", type=int, default=16)
    ap.add_argument("--seconds", type=float, default=30, help="per mode")
    ap.add_argument("--modes", default="floor,tiles,geojson",
                    help="any of floor, tiles (runs cold, then warm) and geojson, comma-separated")
    ap.add_argument("--per-level", type=int, default=30, help="viewports per zoom level")
    ap.add_argument("--workers", type=int, default=3, help="gunicorn workers (deploy/ runs 3)")
    ap.add_argument("--port", type=int, default=8765)
    ap.add_argument("--seed", type=int, default=18)
    ap.add_argument("--json", action="store_true", help="print the results as JSON alone on stdout")
    args = ap.parse_args()

    django_setup()
    from django.db import connection

    from city_ops.city.geovalidate import city_extent

    extent = city_extent()
    if extent is None:
        raise SystemExit("no road network in this database")
    views = viewports(extent, per_level=args.per_level, seed=args.seed)
    cookie = session_cookie()
    log(f"database {connection.settings_dict['NAME']}, city {extent}, {len(views)} viewports, "
        f"{args.clients} clients, {args.seconds:g} s per mode; load {os.getloadavg()}")
    proc = server_start(args.port, args.workers)
    server = psutil.Process(proc.pid)
    results = []
    try:
        for mode in args.modes.split(","):
            passes = [("tiles (cold cache)", True), ("tiles (warm cache)", False)] if mode == "tiles" else [(mode, False)]
            for name, cold in passes:
                if cold:
                    log(f"tile cache: {tile_cache_clear()} tiles dropped")
                log(f"running {name} ...")
                result = run_mode(mode, port=args.port, cookie=cookie, views=views, clients=args.clients,
                                  seconds=args.seconds, server=server)
                results.append({**result, "mode": name})
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    report = {"database": connection.settings_dict["NAME"], "clients": args.clients, "workers": args.workers,
              "viewport_px": [VIEW_W, VIEW_H], "zooms": ZOOMS, "target_p95_ms": TARGET_P95_MS,
              "generator_peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
              "cpus": os.cpu_count(), "results": results}
    if args.json:
        print(json.dumps(report))
    else:
        for result in results:
            print_table(result)
        print(f"\ngenerator peak RSS {report['generator_peak_rss_mb']} MB; {report['cpus']} CPUs shared")


if __name__ == "__main__":
    main()
