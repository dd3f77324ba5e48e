"""Snapping a point to the nearest road segment in metres: `segment_nearest` (the GiST index picks candidates in
a degree box, the exact geography distance orders them) against the plain geography query it replaced (the
reference: exact, but it casts every segment), on the same points in one run, with the same answers checked.

    .venv/bin/python bench/nearest.py [--points 300] [--within 30] [--json]

Needs a loaded city (make demo, or `manage.py load_demo_city --synthetic --scale 20` for a larger one)."""
from __future__ import annotations

import argparse
import json
import math
import sys
import time

import numpy as np
from _django import django_setup

PLAIN = ("SELECT ST_Distance(geom::geography, ST_GeomFromEWKT(%s)::geography) FROM city_roadsegment "
         "WHERE ST_DWithin(geom::geography, ST_GeomFromEWKT(%s)::geography, %s) ORDER BY 1 LIMIT 1")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--points", type=int, default=300)
    ap.add_argument("--within", type=float, default=30.0, help="metres")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    django_setup()
    from django.contrib.gis.geos import Point
    from django.db import connection

    from city_ops.city.models import CityProfile, RoadSegment
    from city_ops.city.selectors import segment_nearest

    profile = CityProfile.objects.first()
    if not RoadSegment.objects.exists() or profile is None or profile.bounds is None:
        print("no city loaded: run `make demo` or manage.py load_demo_city first", file=sys.stderr)
        return 1
    x1, y1, x2, y2 = profile.bounds.extent
    rng = np.random.default_rng(1)
    points = [Point(float(x), float(y), srid=4326)
              for x, y in zip(rng.uniform(x1, x2, args.points), rng.uniform(y1, y2, args.points))]

    t0 = time.perf_counter()
    with connection.cursor() as cur:
        plain = []
        for p in points:
            cur.execute(PLAIN, [p.ewkt, p.ewkt, args.within])
            row = cur.fetchone()
            plain.append(row[0] if row else None)
    t_plain = time.perf_counter() - t0
    t0 = time.perf_counter()
    found = [segment_nearest(point=p, within_m=args.within) for p in points]
    t_index = time.perf_counter() - t0

    # Same answers: none where the reference found none, else a segment at the reference's distance.
    same = True
    with connection.cursor() as cur:
        for p, seg, d in zip(points, found, plain):
            if (seg is None) != (d is None):
                same = False
            elif seg is not None:
                cur.execute("SELECT ST_Distance(geom::geography, ST_GeomFromEWKT(%s)::geography) "
                            "FROM city_roadsegment WHERE id = %s", [p.ewkt, seg.pk])
                same = same and math.isclose(cur.fetchone()[0], d, abs_tol=1e-6)
    out = {
        "city": profile.name, "segments": RoadSegment.objects.count(), "points": args.points,
        "within_m": args.within, "snapped": sum(d is not None for d in plain),
        "plain_geography_ms_per_point": round(t_plain * 1000 / args.points, 3),
        "indexed_ms_per_point": round(t_index * 1000 / args.points, 3),
        "speedup": round(t_plain / t_index, 1), "same_answers": same,
    }
    if args.json:
        print(json.dumps(out))
    else:
        print(f"{out['city']}: {out['segments']} segments, {args.points} points, within {args.within:g} m "
              f"({out['snapped']} snapped)")
        print(f"  plain geography query  {out['plain_geography_ms_per_point']:8.3f} ms per point (reference)")
        print(f"  segment_nearest        {out['indexed_ms_per_point']:8.3f} ms per point (GiST index)")
        print(f"  ratio                  {out['speedup']:8.1f} x faster; same answers: {same}")
    return 0 if same else 1


if __name__ == "__main__":
    sys.exit(main())
