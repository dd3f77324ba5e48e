"""Fill readings in, from the sensor gateway (API) or a CSV file: idempotent, bad rows reported by their
row or line number while the good ones are kept.

A row names its bin by `sensor_id` (or `bin`, the bin's code), its time `at` (ISO 8601; a time without an
offset is read in the city's zone) and the level as `fill` (0-1.5, a fraction of the bin) or `fill_pct`
(0-150). A (bin, time) pair already stored, or repeated in the same batch, is a duplicate, not an error:
sending the same file twice changes nothing."""
from __future__ import annotations

import csv
import datetime as dt
import io
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from django.db import transaction
from django.utils import timezone

from city_ops.core.services import audit_record
from city_ops.core.timeutil import city_tz

from ..models import Bin, FillReading

MAX_FILL = 1.5
FUTURE_SLACK = dt.timedelta(minutes=10)
BATCH = 5000


class IngestFileError(ValueError):
    """The file cannot be read as a readings CSV at all (missing, not text, no usable header)."""


@dataclass(frozen=True)
class RowError:
    """A refused row: its row number (1-based in a batch) or line number (in a file), and why."""

    row: int
    message: str

    def as_dict(self) -> dict:
        return {"row": self.row, "message": self.message}


@dataclass
class IngestResult:
    """How a batch went: rows stored, duplicates skipped, rows refused."""

    created: int = 0
    duplicates: int = 0
    errors: list[RowError] = field(default_factory=list)

    @property
    def received(self) -> int:
        return self.created + self.duplicates + len(self.errors)

    def as_dict(self) -> dict:
        return {"received": self.received, "created": self.created, "duplicates": self.duplicates,
                "rejected": len(self.errors), "errors": [e.as_dict() for e in self.errors]}


def _parse_time(value) -> dt.datetime:
    if isinstance(value, dt.datetime):
        at = value
    else:
        text = str(value or "").strip()
        if not text:
            raise ValueError("no time ('at')")
        try:
            at = dt.datetime.fromisoformat(text)
        except ValueError:
            raise ValueError(f"time {text!r} is not ISO 8601 (e.g. 2026-03-01T06:00:00+02:00)") from None
    if at.tzinfo is None:
        at = at.replace(tzinfo=city_tz())
    return at


def _parse_fill(row: Mapping) -> float:
    raw, scale = row.get("fill"), 1.0
    if raw in (None, ""):
        raw, scale = row.get("fill_pct"), 100.0
        if raw in (None, ""):
            raise ValueError("no fill level ('fill' 0-1.5 or 'fill_pct' 0-150)")
    try:
        value = float(str(raw).strip().rstrip("%")) / scale
    except ValueError:
        raise ValueError(f"fill level {raw!r} is not a number") from None
    if math.isnan(value) or not 0.0 <= value <= MAX_FILL:
        raise ValueError(f"fill level {raw!r} is outside 0-{MAX_FILL:g} (0-{MAX_FILL * 100:g} %)")
    return value


def fill_readings_ingest(*, rows: Iterable[tuple[int, Mapping]], source: str = "sensor",
                         actor_label: str = "") -> IngestResult:
    """Store readings; `rows` are (row number, mapping). Good rows are kept whatever the bad ones do."""
    result = IngestResult()
    by_sensor = dict(Bin.objects.exclude(sensor_id="").values_list("sensor_id", "id"))
    by_code = dict(Bin.objects.values_list("code", "id"))
    now = timezone.now()
    parsed: list[tuple[int, int, dt.datetime, float]] = []
    for number, row in rows:
        try:
            sensor = str(row.get("sensor_id") or "").strip()
            code = str(row.get("bin") or "").strip()
            if sensor:
                bin_id = by_sensor.get(sensor)
                if bin_id is None:
                    raise ValueError(f"no bin has sensor {sensor!r}")
            elif code:
                bin_id = by_code.get(code)
                if bin_id is None:
                    raise ValueError(f"no bin with code {code!r}")
            else:
                raise ValueError("no bin ('sensor_id' or 'bin')")
            at = _parse_time(row.get("at"))
            if at > now + FUTURE_SLACK:
                raise ValueError(f"time {at.isoformat()} is in the future")
            parsed.append((number, bin_id, at, _parse_fill(row)))
        except ValueError as exc:
            result.errors.append(RowError(number, str(exc)))
    seen: set[tuple[int, dt.datetime]] = set()
    fresh: list[FillReading] = []
    for start in range(0, len(parsed), BATCH):
        chunk = parsed[start:start + BATCH]
        keys = {(b, at) for _, b, at, _ in chunk}
        existing = set(FillReading.objects.filter(
            bin_id__in={b for b, _ in keys}, at__gte=min(at for _, at in keys), at__lte=max(at for _, at in keys),
        ).values_list("bin_id", "at"))
        for _number, bin_id, at, fill in chunk:
            key = (bin_id, at)
            if key in existing or key in seen:
                result.duplicates += 1
                continue
            seen.add(key)
            fresh.append(FillReading(bin_id=bin_id, at=at, fill=fill, source=source))
    with transaction.atomic():
        # ignore_conflicts: a concurrent batch with the same rows must not fail this one.
        FillReading.objects.bulk_create(fresh, batch_size=BATCH, ignore_conflicts=True)
        result.created = len(fresh)
        if fresh or result.errors:
            audit_record(action="sanitation.fills_ingested", object_type="agent_sanitation.fillreading",
                         object_id="batch", actor_label=actor_label or source,
                         changes={"created": result.created, "duplicates": result.duplicates,
                                  "rejected": len(result.errors)})
    return result


def fill_readings_csv_ingest(*, path: str | Path | None = None, text: str | None = None,
                             actor_label: str = "csv") -> IngestResult:
    """Ingest a CSV (header: sensor_id or bin, at, fill or fill_pct). Errors carry the file's line number."""
    if text is None:
        try:
            raw = Path(path).read_bytes()
        except OSError as exc:
            raise IngestFileError(f"cannot read {path}: {exc.strerror or exc}") from None
        try:
            text = raw.decode("utf-8-sig")
        except UnicodeDecodeError:
            raise IngestFileError(f"{path} is not UTF-8 text") from None
    reader = csv.DictReader(io.StringIO(text))
    header = [h.strip() for h in (reader.fieldnames or [])]
    if not header:
        raise IngestFileError("the file is empty: expected a header line 'sensor_id,at,fill'")
    reader.fieldnames = header
    if not ({"sensor_id", "bin"} & set(header)) or "at" not in header or not ({"fill", "fill_pct"} & set(header)):
        raise IngestFileError(f"header {','.join(header)!r} lacks sensor_id (or bin), at, and fill (or fill_pct)")

    def rows():
        for row in reader:
            if not any((v or "").strip() for v in row.values() if isinstance(v, str)):
                continue  # a blank line
            yield reader.line_num, row

    return fill_readings_ingest(rows=rows(), source="csv", actor_label=actor_label)
