"""The city's unit costs (what a truck-km, a truck-hour, a truck-day, a bus-day, a bus-km, a crew-hour, a tonne
of CO2 and a late road repair cost it), the work rates that turn figures into crew-hours, and the results
statements it has issued: frozen, hashed, versioned per period."""
from __future__ import annotations

from django.conf import settings
from django.core.validators import MinValueValidator
from django.db import models

from city_ops.core.models import RestrictedQuerySet

# The documented defaults (docs/operations.md, "Results statement"): rough figures for a Chinese city in
# CNY, used until the city sets its own. A statement marks each default it used as a default.
UNIT_COST_DEFAULTS: dict[str, float] = {
    "per_truck_km": 4.0,  # diesel ~0.45 L/km at ~7.8 CNY/L, plus tyres and upkeep
    "per_truck_hour": 150.0,  # a driver and a loader, wages with overheads
    "per_truck_day": 250.0,  # a refuse truck kept for a day: depreciation (~500k CNY over 8 years), insurance
    "per_bus_day": 1200.0,  # a bus in service for a day: depreciation, insurance, a driver's shift
    "per_bus_km": 3.5,  # diesel, about 0.4 L/km at 7.8 CNY/L, plus tyres and upkeep
    "per_crew_hour": 80.0,  # one field worker, wage with overheads
    "per_tonne_co2": 60.0,  # about the national carbon market's price
    # The penalty the city's road maintenance contract charges for a repair done after its SLA's due time:
    # none is known to the product, so none is charged until the city enters its contract's figure.
    "per_late_repair": 0.0,
}
DEFAULT_CURRENCY = "CNY"
# The work rates the statement turns figures into crew-hours with: quantities of work, not prices, kept
# beside the unit costs so the city sets both in one place. Documented defaults like the costs'.
WORK_RATE_DEFAULTS: dict[str, float] = {
    # a manual patrol: two people in a slow vehicle at about 5 km/h, stopping to mark defects
    "patrol_km_per_crew_hour": 2.5,
    # a dispatcher's review of a defect the road agent found: the photo and the class checked before the order
    "review_min_per_defect": 2.0,
    # a flood call-out: a crew of two sent to the zone to check and stand down, about 1.5 h with the drive
    "callout_crew_hours": 3.0,
}


def _cost_field(name: str, unit: str) -> models.FloatField:
    return models.FloatField(null=True, blank=True, help_text=(
        f"cost per {unit}; blank: the documented default {UNIT_COST_DEFAULTS[name]:g}"))


def _rate_field(name: str, what: str) -> models.FloatField:
    return models.FloatField(null=True, blank=True, validators=[MinValueValidator(0.01)], help_text=(
        f"{what}; blank: the documented default {WORK_RATE_DEFAULTS[name]:g}"))


class UnitCosts(models.Model):
    """The one row of unit costs (pk 1) the statement prices its differences at, and of the work rates it
    counts crew-hours with. A blank field means the documented default, and the statement says so."""

    currency = models.CharField(max_length=3, default=DEFAULT_CURRENCY, help_text="ISO 4217 code, e.g. CNY")
    per_truck_km = _cost_field("per_truck_km", "truck-km")
    per_truck_hour = _cost_field("per_truck_hour", "truck-hour")
    per_truck_day = _cost_field("per_truck_day", "truck-day (a truck kept for a day, its crew apart)")
    per_bus_day = _cost_field("per_bus_day", "bus-day")
    per_bus_km = _cost_field("per_bus_km", "bus-km (fuel, tyres, upkeep)")
    per_crew_hour = _cost_field("per_crew_hour", "crew-hour")
    per_tonne_co2 = _cost_field("per_tonne_co2", "tonne of CO2")
    per_late_repair = _cost_field("per_late_repair", "road repair done after its SLA's due time (a contract penalty)")
    patrol_km_per_crew_hour = _rate_field("patrol_km_per_crew_hour", "km of road a manual patrol inspects per crew-hour")
    review_min_per_defect = _rate_field("review_min_per_defect", "minutes a dispatcher reviews each defect found")
    callout_crew_hours = _rate_field("callout_crew_hours", "crew-hours one flood call-out takes")
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = verbose_name_plural = "unit costs"

    def __str__(self) -> str:
        return f"unit costs ({self.currency})"


class IssuedStatement(models.Model):
    """One issued version of the statement of a period: the content as issued (never recomputed) and the
    SHA-256 of its canonical JSON. Issuing the same period again adds a version; none is replaced."""

    date_from = models.DateField()
    date_to = models.DateField()
    version = models.PositiveIntegerField()
    content = models.JSONField()
    sha256 = models.CharField(max_length=64)
    issued_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                  related_name="+")
    issued_at = models.DateTimeField(auto_now_add=True)

    objects = RestrictedQuerySet.as_manager()

    class Meta:
        ordering = ["-date_from", "-date_to", "-version"]
        constraints = [models.UniqueConstraint(fields=["date_from", "date_to", "version"],
                                               name="one_statement_version_per_period")]

    def __str__(self) -> str:
        return f"statement {self.date_from}..{self.date_to} v{self.version}"

    @staticmethod
    def restrict_for(qs, user, action):
        from city_ops.core.roles import Role, user_has_role

        return qs if user_has_role(user, Role.DISPATCHER) else qs.none()
