"""The optional vision step (COPILOT_VLM_MODEL, off by default): each new defect's crop - the region of its
detection box in the kept, privacy-blurred copy of the photo that found it - goes to the endpoint's vision
model, and its one-line description is stored on the defect and added to the defect's work order.

It never holds up or fails detection: it runs in its own task once the photo's transaction has committed
(`defects_describe_enqueue`), on the default queue so the vision workers go on detecting while it waits on
the endpoint; a timeout or an error leaves the defect without a description, and a log line says why."""
from __future__ import annotations

import io
import logging
from collections.abc import Sequence

from django.conf import settings
from django.core.files.storage import default_storage
from django.db import transaction
from PIL import Image, UnidentifiedImageError

from city_ops.copilot.llm import LlmUnavailable
from city_ops.copilot.vision import vision_describe, vision_enabled
from city_ops.core.services import audit_record
from city_ops.queues import Queue
from city_ops.workorders.models import WorkOrder

from ..models import Defect

log = logging.getLogger(__name__)

PROMPT = ("A road inspection detector found a {class_name} in this crop of a street photo. Describe the road "
          "damage you see in one short line (its size, depth and surroundings); if you see none, say so.")
# Around the box: the model judges a pothole better with some road around it.
CROP_MARGIN = 0.15


def vision_note(text: str) -> str:
    """The line a work order's description carries (work-order descriptions are written in English)."""
    return f"Vision model: {text}"


def defects_describe_enqueue(*, defect_ids: Sequence[int]) -> None:
    """Ask for the new defects' descriptions once the current transaction commits (nothing when off)."""
    ids = [int(i) for i in defect_ids]
    if not ids or not vision_enabled():
        return

    def _send():
        from ..tasks import describe_defects

        describe_defects.apply_async(args=[ids], queue=Queue.DEFAULT.value)

    transaction.on_commit(_send)


def defect_crop_jpeg(*, defect: Defect) -> bytes | None:
    """The defect's box (from its sighting in its best photo) with a margin, cut from the kept copy, as JPEG;
    None when there is no kept image. Boxes are in original pixels; the kept copy may be smaller."""
    photo = defect.best_photo
    sighting = defect.sightings.filter(photo=photo).order_by("pk").first() if photo else None
    if sighting is None or not photo.image:
        return None
    with default_storage.open(photo.image.name) as fh:
        image = Image.open(io.BytesIO(fh.read())).convert("RGB")
    sx, sy = image.width / (photo.width or image.width), image.height / (photo.height or image.height)
    x1, y1, x2, y2 = sighting.box
    mx, my = (x2 - x1) * CROP_MARGIN, (y2 - y1) * CROP_MARGIN
    box = (max(0, int((x1 - mx) * sx)), max(0, int((y1 - my) * sy)),
           min(image.width, int((x2 + mx) * sx) + 1), min(image.height, int((y2 + my) * sy) + 1))
    out = io.BytesIO()
    image.crop(box).save(out, format="JPEG", quality=85)
    return out.getvalue()


@transaction.atomic
def defect_description_store(*, defect: Defect, text: str) -> None:
    """Store the description on the defect and add it to the defect's work order, if it has one by now (an
    order created later takes it from the defect)."""
    defect.vision_description = text
    defect.save(update_fields=["vision_description", "updated_at"])
    if defect.work_order_id:
        order = WorkOrder.objects.select_for_update().get(pk=defect.work_order_id)
        order.description = f"{order.description}\n{vision_note(text)}".strip()
        order.save(update_fields=["description", "updated_at"])
    audit_record(action="defect.described", obj=defect, actor_label=f"vision model {settings.COPILOT_VLM_MODEL}",
                 changes={"vision_description": text, "work_order": defect.work_order_id})


def defect_describe(*, defect_id: int) -> bool:
    """Describe one defect (once: one already described is left as it is); False, logged, when it could not
    be described."""
    defect = Defect.objects.select_related("best_photo").filter(pk=defect_id).first()
    if defect is None or defect.vision_description:
        return False
    try:
        jpeg = defect_crop_jpeg(defect=defect)
        if jpeg is None:
            log.info("defect %s: no kept image to describe", defect_id)
            return False
        text = vision_describe(jpeg=jpeg, prompt=PROMPT.format(class_name=defect.class_name))
    except (LlmUnavailable, OSError, UnidentifiedImageError) as exc:
        log.warning("defect %s: no vision description: %s", defect_id, exc)
        return False
    defect_description_store(defect=defect, text=text)
    return True


def defects_describe(*, defect_ids: Sequence[int]) -> int:
    """Describe each defect in turn (one failing never stops the others); how many were described."""
    return sum(defect_describe(defect_id=i) for i in defect_ids)
