"""The project's own reading formats: CSV (`sensor,parameter,time,value[,unit]`) and the same keys as JSON."""

from __future__ import annotations

import csv
import datetime as dt
import io
from collections.abc import Iterable

from .parse_common import ReadingsCollector, ReadingsFormatError, RowRejected, number_parse, time_parse

REQUIRED_COLUMNS = ("sensor", "time", "value")


def _row_take(
    *, collector: ReadingsCollector, fields: dict[str, object], row: int, tz: dt.tzinfo | None
) -> None:
    """One CSV/JSON record into a reading, or a rejection naming the first problem found."""
    try:
        sensor = fields.get("sensor")
        if sensor is None or not str(sensor).strip():
            raise RowRejected("missing sensor")
        sensor = str(sensor).strip()
        parameter = collector.parameter_resolve(sensor=sensor, parameter=fields.get("parameter"))  # type: ignore[arg-type]
        time = time_parse(fields.get("time"), tz=tz)
        value = number_parse(fields.get("value"))
        unit = fields.get("unit")
        collector.add(
            sensor=sensor,
            parameter=parameter,
            time=time,
            value=value,
            unit=str(unit) if unit not in (None, "") else None,
            row=row,
        )
    except RowRejected as exc:
        collector.reject(row=row, reason=str(exc))


def csv_parse(*, text: str, collector: ReadingsCollector, tz: dt.tzinfo | None) -> None:
    """CSV with a header on line 1; each row's number is its line number in the file."""
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        header = next(reader)
    except StopIteration:
        raise ReadingsFormatError("empty CSV file") from None
    names = [name.strip().lower().lstrip("\ufeff") for name in header]
    missing = [name for name in REQUIRED_COLUMNS if name not in names]
    if missing:
        raise ReadingsFormatError(
            f"CSV header (line 1) lacks column(s) {', '.join(missing)}; expected "
            f"sensor,parameter,time,value (parameter and unit optional), got {','.join(names)}"
        )
    try:
        for cells in reader:
            row = reader.line_num
            if not cells or all(not cell.strip() for cell in cells):
                continue
            if len(cells) > len(names):
                collector.reject(row=row, reason=f"{len(cells)} fields where the header has {len(names)}")
                continue
            fields = {name: (cells[i].strip() if i < len(cells) else None) for i, name in enumerate(names)}
            _row_take(collector=collector, fields=fields, row=row, tz=tz)
    except csv.Error as exc:
        raise ReadingsFormatError(f"CSV broken at line {reader.line_num}: {exc}") from None


def json_records_parse(
    *, records: Iterable[object], collector: ReadingsCollector, tz: dt.tzinfo | None
) -> None:
    """A list of {sensor, parameter, time, value[, unit]} objects; row = 1-based index in the list."""
    for index, record in enumerate(records, start=1):
        if not isinstance(record, dict):
            collector.reject(row=index, reason=f"item is a {type(record).__name__}, not an object")
            continue
        _row_take(
            collector=collector, fields={str(k).lower(): v for k, v in record.items()}, row=index, tz=tz
        )
