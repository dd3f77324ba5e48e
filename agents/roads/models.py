"""What the road inspection agent owns: inspection photos and their detections, camera runs and fixed cameras,
defects on road segments with their sighting history, and a condition index per segment.

Geometry is WGS84 (SRID 4326) like the city model; distances are measured as geography (metres)."""
from __future__ import annotations

from django.conf import settings
from django.contrib.gis.db import models
from django.db.models import Q
from django.utils.translation import pgettext_lazy

from city_ops.core.models import RestrictedQuerySet


def _is_dispatcher(user) -> bool:
    from city_ops.core.roles import Role, user_has_role

    return user_has_role(user, Role.DISPATCHER)


def _is_crew(user) -> bool:
    from city_ops.core.roles import Role, user_has_role

    return user_has_role(user, Role.FIELD_CREW)


class PhotoQuerySet(RestrictedQuerySet):
    @staticmethod
    def restrict_for(qs, user, action):
        """Dispatchers see every photo; a field crew member only the photos they uploaded."""
        if _is_dispatcher(user):
            return qs
        if _is_crew(user):
            return qs.filter(uploader=user)
        return qs.none()


class CameraRun(models.Model):
    """One patrol drive of a camera vehicle: frames placed on its GPS track and sent to detection in batches.

    The counters are the run's progress (the console and `ingest_camera_run` show them)."""

    class Status(models.TextChoices):
        RECEIVING = "receiving"  # frames still arriving
        PROCESSING = "processing"  # all frames in; detection under way
        DONE = "done"

    vehicle = models.CharField(max_length=60)
    track_name = models.CharField(max_length=200, blank=True)
    track = models.LineStringField(srid=4326, null=True, blank=True)
    track_points = models.JSONField(default=list, blank=True, help_text="[[epoch_s, lon, lat], ...] in time order")
    track_start = models.DateTimeField(null=True, blank=True)
    track_end = models.DateTimeField(null=True, blank=True)
    status = models.CharField(max_length=12, choices=Status.choices, default=Status.RECEIVING, db_index=True)
    frames_received = models.PositiveIntegerField(default=0)
    frames_placed = models.PositiveIntegerField(default=0)
    frames_duplicate = models.PositiveIntegerField(default=0)
    frames_off_track = models.PositiveIntegerField(default=0)
    frames_rejected = models.PositiveIntegerField(default=0, help_text="not a usable image")
    frames_processed = models.PositiveIntegerField(default=0)
    frames_failed = models.PositiveIntegerField(default=0)
    defects_found = models.PositiveIntegerField(default=0)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)
    client_name = models.CharField(max_length=100, blank=True, help_text="the API client that posted it")
    created_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    objects = RestrictedQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"camera run #{self.pk} {self.vehicle}"

    @property
    def progress_pct(self) -> int:
        """Share of placed frames that detection has finished (processed or failed), in percent."""
        if not self.frames_placed:
            return 100 if self.status == self.Status.DONE else 0
        return min(100, round(100 * (self.frames_processed + self.frames_failed) / self.frames_placed))


class FixedCamera(models.Model):
    """A camera fixed at a place, registered with the road segment it watches; it posts snapshots."""

    name = models.CharField(max_length=100, unique=True)
    location = models.PointField(srid=4326)
    segment = models.ForeignKey("city.RoadSegment", null=True, blank=True, on_delete=models.SET_NULL,
                                related_name="+", help_text="the road segment it watches")
    active = models.BooleanField(default=True)
    synthetic = models.BooleanField(default=False)
    created_at = models.DateTimeField(auto_now_add=True)

    objects = RestrictedQuerySet.as_manager()

    def __str__(self) -> str:
        return self.name


class InspectionPhoto(models.Model):
    """A road photo from a crew's phone, a patrol vehicle's camera or a fixed camera, and what the detector
    found in it.

    The content hash makes re-uploading the same file idempotent. The original is kept only until detection
    (and then, if a retention period is set, for admins until `original_expires_at`); what is kept and shown
    is `image`, a copy with faces and number plates blurred and the EXIF block (GPS, serials) removed.
    Boxes in `detections` are in pixels of the full-resolution upright original (`width` x `height`)."""

    class Source(models.TextChoices):
        CREW = "crew"
        VEHICLE = "vehicle"
        FIXED = "fixed"

    class Status(models.TextChoices):
        RECEIVED = "received"
        PROCESSING = "processing"
        DONE = "done"
        FAILED = "failed"

    class LocationSource(models.TextChoices):
        EXIF = "exif"
        PHONE = "phone"
        PIN = "pin"
        TRACK = "track"
        CAMERA = "camera"

    sha256 = models.CharField(max_length=64, unique=True)
    source = models.CharField(max_length=8, choices=Source.choices, default=Source.CREW)
    uploader = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                 related_name="inspection_photos")
    client_name = models.CharField(max_length=100, blank=True, help_text="the API client that posted it")
    original = models.FileField(upload_to="roads/originals/%Y/%m/", blank=True, max_length=200)
    original_expires_at = models.DateTimeField(null=True, blank=True)
    image = models.FileField(upload_to="roads/photos/%Y/%m/", blank=True, max_length=200,
                             help_text="faces and plates blurred, no EXIF")
    file_name = models.CharField(max_length=200, blank=True)
    image_format = models.CharField(max_length=10, blank=True)
    width = models.PositiveIntegerField(null=True, blank=True)
    height = models.PositiveIntegerField(null=True, blank=True)
    taken_at = models.DateTimeField(db_index=True)
    taken_at_source = models.CharField(max_length=10, help_text="exif, request, filename, mtime or received")
    location = models.PointField(srid=4326)
    location_source = models.CharField(max_length=8, choices=LocationSource.choices)
    location_accuracy_m = models.FloatField(null=True, blank=True)
    device_location = models.PointField(srid=4326, null=True, blank=True,
                                        help_text="the phone's own position; purged after the retention period")
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.RECEIVED, db_index=True)
    error = models.TextField(blank=True)
    attempts = models.PositiveSmallIntegerField(default=0)
    claimed_at = models.DateTimeField(null=True, blank=True)
    camera_run = models.ForeignKey(CameraRun, null=True, blank=True, on_delete=models.SET_NULL, related_name="photos")
    fixed_camera = models.ForeignKey(FixedCamera, null=True, blank=True, on_delete=models.SET_NULL,
                                     related_name="photos")
    detections = models.JSONField(default=list, blank=True,
                                  help_text='[{"class", "class_id", "confidence", "box": [x1, y1, x2, y2]}]')
    model_name = models.CharField(max_length=100, blank=True)
    inference_ms = models.FloatField(null=True, blank=True, help_text="model time per image in its batch")
    processing_ms = models.FloatField(null=True, blank=True, help_text="decode + model + boxes per image")
    privacy_mode = models.CharField(max_length=14, blank=True, help_text="faces_plates or context")
    privacy_regions = models.PositiveIntegerField(default=0)
    synthetic = models.BooleanField(default=False, help_text="generated for the demo")
    uploaded_at = models.DateTimeField(auto_now_add=True, db_index=True)
    processed_at = models.DateTimeField(null=True, blank=True)

    objects = PhotoQuerySet.as_manager()
    restrict_for = PhotoQuerySet.restrict_for

    class Meta:
        ordering = ["-uploaded_at", "-id"]
        indexes = [models.Index(fields=["uploader", "-uploaded_at"])]

    def __str__(self) -> str:
        return f"photo #{self.pk} ({self.status})"

    @property
    def box_count(self) -> int:
        """How many boxes the detector drew."""
        return len(self.detections or [])


class DefectQuerySet(RestrictedQuerySet):
    OPEN_STATES = ("open", "ordered")

    def active(self):
        """Defects not yet repaired or dismissed."""
        return self.filter(status__in=self.OPEN_STATES)

    @staticmethod
    def restrict_for(qs, user, action):
        """Dispatchers see every defect; a crew member those on their own photos or their own orders."""
        if _is_dispatcher(user):
            return qs
        if _is_crew(user):
            return qs.filter(Q(sightings__photo__uploader=user) | Q(work_order__assignee=user)).distinct()
        return qs.none()


class Defect(models.Model):
    """One piece of road damage on one road segment, merged from every sighting of it (same class, within a
    few metres on the same segment, across photos and days), ranked, and repaired through a work order."""

    class Status(models.TextChoices):
        OPEN = "open"
        ORDERED = "ordered"  # a work order exists and is not closed
        REPAIRED = "repaired"
        DISMISSED = "dismissed"  # the dispatcher cancelled its order

    class DefectClass(models.TextChoices):
        # The detector's two classes (vision.engine.DEFECT_CLASSES: the engine maps any model's names onto
        # these); RDD2022's longitudinal, transverse and alligator cracks are one class until typed data exists.
        POTHOLE = "pothole", pgettext_lazy("road defect class", "pothole")
        CRACK = "crack", pgettext_lazy("road defect class", "crack")

    class_name = models.CharField(max_length=60, choices=DefectClass.choices)
    confidence = models.FloatField(help_text="highest confidence over its sightings")
    area_share = models.FloatField(help_text="largest box area over image area")
    width_m = models.FloatField(null=True, blank=True, help_text="rough estimate from the box")
    length_m = models.FloatField(null=True, blank=True, help_text="rough estimate from the box")
    segment = models.ForeignKey("city.RoadSegment", null=True, on_delete=models.SET_NULL, related_name="defects")
    location = models.PointField(srid=4326, help_text="on the segment (snapped)")
    offset_m = models.FloatField(default=0, help_text="distance from the photo's position to the segment")
    severity = models.FloatField(help_text="0-1, from class, size and confidence")
    severity_level = models.PositiveSmallIntegerField(help_text="1 minor .. 4 critical")
    priority_score = models.FloatField(help_text="0-100, severity x road class (traffic) x sightings")
    priority = models.PositiveSmallIntegerField(help_text="work-order priority 1 low .. 4 urgent")
    first_seen = models.DateTimeField()
    last_seen = models.DateTimeField()
    sightings_count = models.PositiveIntegerField(default=0, help_text="distinct photos that saw it")
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.OPEN, db_index=True)
    work_order = models.ForeignKey("workorders.WorkOrder", null=True, blank=True, on_delete=models.SET_NULL,
                                   related_name="+")
    best_photo = models.ForeignKey(InspectionPhoto, null=True, blank=True, on_delete=models.SET_NULL,
                                   related_name="+")
    synthetic = models.BooleanField(default=False)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    resolved_at = models.DateTimeField(null=True, blank=True)
    vision_description = models.CharField(
        max_length=300, blank=True, default="",
        help_text="one line from the endpoint's vision model about its crop (COPILOT_VLM_MODEL; empty: none)")

    objects = DefectQuerySet.as_manager()
    restrict_for = DefectQuerySet.restrict_for

    class Meta:
        ordering = ["-priority_score", "-last_seen"]
        indexes = [models.Index(fields=["segment", "class_name", "status"])]

    def __str__(self) -> str:
        return f"defect #{self.pk} {self.class_name} ({self.status})"

    @property
    def severity_label(self) -> str:
        """'minor', 'moderate', 'severe' or 'critical'."""
        from .domain.ranking import SEVERITY_LABELS

        return SEVERITY_LABELS.get(self.severity_level, "")

    @property
    def crack_length(self) -> float | None:
        """A crack's estimated length in metres (its box diagonal); None for a pothole or without a size."""
        from .domain.ranking import crack_length_m

        if self.class_name != self.DefectClass.CRACK or not self.width_m:
            return None
        return crack_length_m(width_m=self.width_m, length_m=self.length_m)


class DefectSighting(models.Model):
    """One detection of a defect in one photo: the history a merged defect keeps."""

    defect = models.ForeignKey(Defect, on_delete=models.CASCADE, related_name="sightings")
    photo = models.ForeignKey(InspectionPhoto, on_delete=models.CASCADE, related_name="sightings")
    detection_index = models.PositiveSmallIntegerField(help_text="index into the photo's detections")
    box = models.JSONField(help_text="[x1, y1, x2, y2] in original pixels")
    confidence = models.FloatField()
    area_share = models.FloatField()
    location = models.PointField(srid=4326, help_text="the photo's position")
    distance_m = models.FloatField(default=0, help_text="from the defect's location when merged")
    seen_at = models.DateTimeField()

    class Meta:
        ordering = ["seen_at", "id"]
        constraints = [models.UniqueConstraint(fields=["photo", "detection_index"], name="one_sighting_per_detection")]

    def __str__(self) -> str:
        return f"sighting of defect {self.defect_id} in photo {self.photo_id}"


class SegmentCondition(models.Model):
    """The condition index of one road segment (100 = no open defects), kept current as defects change."""

    segment = models.OneToOneField("city.RoadSegment", on_delete=models.CASCADE, related_name="road_condition")
    condition_index = models.FloatField()
    open_defects = models.PositiveIntegerField(default=0)
    open_potholes = models.PositiveIntegerField(default=0)
    open_cracks = models.PositiveIntegerField(default=0)
    worst_severity = models.PositiveSmallIntegerField(default=0)
    last_inspected = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    objects = RestrictedQuerySet.as_manager()

    def __str__(self) -> str:
        return f"segment {self.segment_id}: {self.condition_index:.0f}"
