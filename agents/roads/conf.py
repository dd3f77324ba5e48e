"""The road agent's settings, each read from Django settings with a default (so a deployment overrides any
of them in its environment-driven settings without this app changing)."""

from __future__ import annotations

from agents.runtime.conf import settings_reader

DEFAULTS: dict[str, object] = {
    # Originals (unblurred) are kept for admins this long, then deleted; the same period applies to the
    # crew's own position sent with an upload. 0 deletes the original right after detection.
    "ROADS_ORIGINAL_RETENTION_DAYS": 30,
    # A detection more than this far from every road segment is not a road defect (a courtyard, a park).
    "ROADS_SNAP_TOLERANCE_M": 25.0,
    # Sightings of one class on one segment closer than this are the same damage (phone GPS is ~5 m).
    "ROADS_MERGE_DISTANCE_M": 8.0,
    # Defects whose priority score (0-100) reaches this get a work order.
    "ROADS_ORDER_THRESHOLD": 45.0,
    # Time to repair by defect class and order priority, in hours: the order's due time (its SLA). Potholes
    # are patched within days (an urgent one made safe within a day); cracks are sealed within weeks to
    # months, in the dry season's sealing campaigns. A class or priority left out gets the platform's SLA.
    "ROADS_REPAIR_SLA_HOURS": {
        "pothole": {"urgent": 24, "high": 72, "normal": 336, "low": 720},
        "crack": {"urgent": 168, "high": 720, "normal": 2160, "low": 4320},
    },
    # Orders go to the least-loaded field crew member when True; to the dispatcher's queue when False.
    "ROADS_AUTO_ASSIGN": True,
    # A photo's location must lie within the city's bounds grown by this margin.
    "ROADS_CITY_MARGIN_M": 2000.0,
    "ROADS_MAX_FILES_PER_REQUEST": 20,
    # Images per model call on the vision worker (camera runs are sent in batches of this size).
    "ROADS_BATCH_SIZE": 8,
    # Confidence threshold; None = the model card's recommended one.
    "ROADS_CONF": None,
    # The blurred copy that is kept and shown is scaled down to this longest side (1600 lets a 12 MP JPEG be
    # decoded at half scale).
    "ROADS_KEPT_MAX_SIDE": 1600,
    # Camera frames closer than this to the previous kept frame are near-duplicates (vehicle stopped).
    "ROADS_FRAME_MIN_SPACING_M": 4.0,
    # A frame whose time is further than this outside the GPS track is not placed.
    "ROADS_TRACK_TOLERANCE_S": 30.0,
    # Ground width a photo covers, by source, for the size estimate in metres (a rough figure).
    "ROADS_GROUND_WIDTH_M": {"crew": 4.0, "vehicle": 7.0, "fixed": 12.0},
    # A photo still received/processing after this long lost its message; the daily run re-queues it.
    "ROADS_REQUEUE_AFTER_S": 900,
    # TTF font for the PDF report; None = DejaVu Sans where the system has it, "" = the PDF core font (Latin-1).
    "ROADS_PDF_FONT": None,
}


conf = settings_reader(DEFAULTS)  # the value of a ROADS_* setting (Django settings first, then the default above)
