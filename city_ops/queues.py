"""The named Celery queues. Workers subscribe by name (`-Q planning,default`), so a GPU machine can take
only `vision` and a small box can skip it."""
from enum import StrEnum


class Queue(StrEnum):
    DEFAULT = "default"  # short bookkeeping: events, notifications, reaper
    PLANNING = "planning"  # nightly plans and re-plans: minutes of CPU each
    VISION = "vision"  # ONNX inference on photos: GPU workers where there are any
    REALTIME = "realtime"  # sensor and vehicle-position evaluation: must not wait behind plans
