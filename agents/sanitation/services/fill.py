"""The fill model's writes: refit every bin from its recent readings and pickups (every run does this) and
store each bin's rates, last level, forecast, filter state and day-ahead forecast error (MAE)."""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import numpy as np
from django.db import transaction

from city_ops.core.timeutil import city_tz

from ..domain.fill import (
    FillParams,
    FillState,
    fill_forecast,
    fill_forecast_sd,
    local_days,
    local_days_to_datetime,
)
from ..models import FillModel
from ..selectors import fill_states_fit

WINDOW_DAYS = 56
MAE_WINDOW_DAYS = 28
KPI_MAE_DAYS = 7
DEFAULT_PARAMS = FillParams()


@dataclass
class FillUpdate:
    """What a refit produced: the state per bin id, the pooled day-ahead MAE of the last week, how many
    bins fell back on their neighbours, and how many errors the MAE pooled."""

    states: dict[int, FillState]
    mae: float | None
    mae_n: int
    fallback: int
    bins: int


def state_to_json(state: FillState) -> dict:
    """The parts of a filter state that forecasting needs, JSON-ready."""
    return {"theta": [round(float(v), 6) for v in state.theta],
            "cov": [[float(v) for v in row] for row in state.cov],
            "last_at": state.last_at, "last_level": state.last_level, "last_sd": state.last_sd,
            "n_obs": state.n_obs}


def state_from_json(data: dict) -> FillState | None:
    """The inverse of `state_to_json` (None for a bin never fitted)."""
    if not data or "theta" not in data:
        return None
    return FillState(theta=np.array(data["theta"], dtype=float), cov=np.array(data["cov"], dtype=float),
                     last_at=data.get("last_at"), last_level=data.get("last_level"),
                     last_sd=data.get("last_sd") or 0.0, n_obs=data.get("n_obs") or 0)


def fill_models_update(*, now: dt.datetime, forecast_for: dt.date | None = None,
                       window_days: int = WINDOW_DAYS, params: FillParams = DEFAULT_PARAMS) -> FillUpdate:
    """Refit every active bin from the last `window_days` of readings and pickups and store the result.

    The forecast stored is the level expected at the end of `forecast_for` (default: tomorrow) if the
    bin is not emptied before then."""
    tz = city_tz()
    ids, states, fallback = fill_states_fit(since=now - dt.timedelta(days=window_days), params=params)
    if not ids:
        return FillUpdate(states={}, mae=None, mae_n=0, fallback=0, bins=0)
    now_days = local_days(at=now, tz=tz)
    forecast_for = forecast_for or (now.astimezone(tz).date() + dt.timedelta(days=1))
    end_of_day = forecast_for.toordinal() + 1.0
    kpi_since = now_days - KPI_MAE_DAYS
    mae_since = now_days - MAE_WINDOW_DAYS
    pooled = [e.abs_error for s in states for e in s.errors if e.at >= kpi_since]
    existing = {m.bin_id: m for m in FillModel.objects.filter(bin_id__in=ids)}
    rows_new, rows_old = [], []
    today = now.astimezone(tz).date().isoformat()
    for i, bin_id in enumerate(ids):
        s = states[i]
        model = existing.get(bin_id) or FillModel(bin_id=bin_id)
        mae = s.mae(since=mae_since)
        errors_n = sum(1 for e in s.errors if e.at >= mae_since)
        model.rates = [round(float(r), 4) for r in s.rates]
        model.mean_rate = round(s.mean_rate, 4)
        model.source = "neighbours" if fallback[i] else ("own" if s.n_obs else "prior")
        model.n_obs = s.n_obs
        model.last_level = None if s.last_level is None else round(float(s.last_level), 3)
        model.last_at = None if s.last_at is None else local_days_to_datetime(days=s.last_at, tz=tz)
        model.forecast_for = forecast_for
        model.forecast_fill = None if s.last_at is None else round(fill_forecast(state=s, at=end_of_day), 3)
        model.forecast_sd = None if s.last_at is None else round(fill_forecast_sd(state=s, at=end_of_day,
                                                                                  params=params), 3)
        model.mae = None if mae is None else round(mae, 4)
        model.mae_n = errors_n
        history = [h for h in (model.mae_history or []) if h[0] != today][-59:]
        if mae is not None:
            history.append([today, round(mae, 4), errors_n])
        model.mae_history = history
        model.state = state_to_json(s)
        (rows_old if model.pk else rows_new).append(model)
    with transaction.atomic():
        FillModel.objects.bulk_create(rows_new, batch_size=2000)
        FillModel.objects.bulk_update(
            rows_old, ["rates", "mean_rate", "source", "n_obs", "last_level", "last_at", "forecast_for",
                       "forecast_fill", "forecast_sd", "mae", "mae_n", "mae_history", "state"], batch_size=1000)
    return FillUpdate(states={bin_id: states[i] for i, bin_id in enumerate(ids)},
                      mae=float(np.mean(pooled)) if pooled else None, mae_n=len(pooled),
                      fallback=int(fallback.sum()), bins=len(ids))
