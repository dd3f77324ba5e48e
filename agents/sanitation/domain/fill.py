"""The fill model: how fast each bin fills, per weekday, learned from sensor readings and crews' pickups.

**Model.** A bin's fill rate (fraction of its volume per day) on weekday w is ``mu + delta_w``. The eight
numbers are the state of a Kalman filter (a day-of-week aware exponential smoothing with its own
uncertainty): every pair of consecutive observations of the bin's level is one linear measurement

    level(t1) - level(t0) = D * mu + sum_w d_w * delta_w + noise

where d_w is the part of the interval (in days) that fell on weekday w and D their sum. After an emptying
the start level is 0 (a collected bin); a reading or a crew's estimate is a measured level with its own
noise. Between measurements the rates drift a little (process noise per day), so the filter keeps
adapting when a bin's use changes, and the prior keeps weekday deviations small until the data say
otherwise.

**Censoring.** A sensor saturates at a full bin and an overflowing bin cannot hold more, so an
observation at or above `full_level` only teaches that the bin filled *at least* that fast: it updates
the state only when the forecast was lower.

**Forecast error.** Each observation is also compared with the forecast made `horizon_days` (one day)
earlier from what was known then, with the emptyings that happened in between known (they are planned).
These day-ahead errors are the MAE the agent reports and shows per bin.

**Fallback.** Bins with few observations (no sensor, new) take their prior from similar bins nearby: the
inverse-distance mean of the k nearest trusted bins of the same waste type (`rates_knn`).

Times are local days (see `agents.sanitation.domain`)."""
from __future__ import annotations

import datetime as dt
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from zoneinfo import ZoneInfo

import numpy as np
from scipy.spatial import cKDTree

N_PARAMS = 8  # mu and one deviation per weekday


def local_days(*, at: dt.datetime, tz: ZoneInfo) -> float:
    """An aware datetime as local days: the local date's ordinal plus the fraction of the day gone."""
    local = at.astimezone(tz)
    seconds = local.hour * 3600 + local.minute * 60 + local.second + local.microsecond / 1e6
    return local.toordinal() + seconds / 86400.0


def local_days_to_datetime(*, days: float, tz: ZoneInfo) -> dt.datetime:
    """Inverse of `local_days` (aware, in `tz`)."""
    ordinal = math.floor(days)
    seconds = round((days - ordinal) * 86400.0)
    base = dt.datetime.combine(dt.date.fromordinal(ordinal), dt.time(), tzinfo=tz)
    return base + dt.timedelta(seconds=seconds)


def weekday_of(days: float) -> int:
    """Monday 0 ... Sunday 6 of a local-days time (ordinal 1, 0001-01-01, was a Monday)."""
    return (math.floor(days) - 1) % 7


def weekday_split(t0: float, t1: float) -> np.ndarray:
    """Days of the interval [t0, t1) that fall on each weekday (7 numbers summing to t1 - t0)."""
    out = np.zeros(7)
    t = t0
    while t < t1:
        day_end = math.floor(t) + 1.0
        step = min(day_end, t1) - t
        out[weekday_of(t)] += step
        t += step
    return out


def features(t0: float, t1: float) -> np.ndarray:
    """The measurement vector of an interval: total days, then days per weekday."""
    split = weekday_split(t0, t1)
    return np.concatenate([[split.sum()], split])


@dataclass(frozen=True)
class FillParams:
    """Noise and prior settings of the filter (fractions of a bin's volume, per day where it says so)."""

    prior_rate: float = 0.15
    prior_rate_sd: float = 0.15
    weekday_sd: float = 0.06
    drift_sd_per_day: float = 0.004
    weekday_drift_sd_per_day: float = 0.002
    sensor_sd: float = 0.03
    crew_sd: float = 0.08
    fill_noise_sd_per_day: float = 0.04
    full_level: float = 0.98
    horizon_days: float = 1.0
    max_errors: int = 200


@dataclass(frozen=True)
class FillObservation:
    """What was seen of a bin at `at` (local days): a measured `level` (None when nobody looked), whether it
    was `emptied` right afterwards (a collection), and the measurement's standard deviation."""

    at: float
    level: float | None
    emptied: bool = False
    sd: float = 0.03
    source: str = "sensor"


@dataclass(frozen=True)
class FillError:
    """One day-ahead forecast checked against what was then observed."""

    at: float
    predicted: float
    observed: float

    @property
    def abs_error(self) -> float:
        return abs(self.predicted - self.observed)


@dataclass
class FillState:
    """One bin's filter: the rate parameters and their covariance, the last known level, the day-ahead
    errors so far, and the recent anchors those errors are forecast from."""

    theta: np.ndarray
    cov: np.ndarray
    last_at: float | None = None
    last_level: float | None = None
    last_sd: float = 0.0
    n_obs: int = 0
    n_updates: int = 0
    n_errors: int = 0
    """Day-ahead errors checked so far; `errors` keeps only the last `FillParams.max_errors` of them."""
    errors: list[FillError] = field(default_factory=list)
    anchors: list[tuple[float, float, float, np.ndarray]] = field(default_factory=list)
    """(time, level, level sd, theta then): the last known level after each observation or emptying."""

    @property
    def rates(self) -> np.ndarray:
        """Fill rate per weekday (Monday first), fraction of the bin per day, never negative."""
        return np.maximum(self.theta[0] + self.theta[1:], 0.0)

    @property
    def mean_rate(self) -> float:
        """The weekly mean rate."""
        return float(self.rates.mean())

    def mae(self, *, since: float | None = None) -> float | None:
        """Mean absolute day-ahead error (of errors at or after `since`), None without any."""
        errs = [e.abs_error for e in self.errors if since is None or e.at >= since]
        return float(np.mean(errs)) if errs else None


def fill_state_new(*, prior_rates: Sequence[float] | None = None, params: FillParams = FillParams()) -> FillState:
    """A bin nobody has observed yet: the prior (a flat `prior_rate`, or per-weekday `prior_rates`)."""
    theta = np.zeros(N_PARAMS)
    if prior_rates is None:
        theta[0] = params.prior_rate
    else:
        pr = np.asarray(prior_rates, dtype=float)
        theta[0] = pr.mean()
        theta[1:] = pr - pr.mean()
    cov = np.diag([params.prior_rate_sd**2] + [params.weekday_sd**2] * 7)
    return FillState(theta=theta, cov=cov)


def _growth(state_theta: np.ndarray, t0: float, t1: float) -> float:
    if t1 <= t0:
        return 0.0
    rates = np.maximum(state_theta[0] + state_theta[1:], 0.0)
    return float(weekday_split(t0, t1) @ rates)


def fill_state_update(
    *, state: FillState, observations: Iterable[FillObservation], params: FillParams = FillParams()
) -> FillState:
    """Feed observations (any order; they are sorted) into the filter, in place; returns the state.

    Observations older than the state's last one are ignored: the filter only moves forward in time."""
    q = np.diag([params.drift_sd_per_day**2] + [params.weekday_drift_sd_per_day**2] * 7)
    for obs in sorted(observations, key=lambda o: o.at):
        if state.last_at is not None and obs.at < state.last_at:
            continue
        if obs.level is not None and not math.isnan(obs.level):
            level = max(0.0, float(obs.level))
            state.n_obs += 1
            err = _day_ahead_error(state, obs.at, level, params)
            if err is not None:
                state.n_errors += 1
                state.errors.append(err)
                if len(state.errors) > params.max_errors:
                    del state.errors[: len(state.errors) - params.max_errors]
            if state.last_at is not None and obs.at > state.last_at:
                _kalman_step(state, obs.at, level, obs.sd, q, params)
            state.last_at, state.last_level, state.last_sd = obs.at, level, obs.sd
        if obs.emptied:
            state.last_at, state.last_level, state.last_sd = obs.at, 0.0, 0.0
        if state.last_at is not None:
            state.anchors.append((state.last_at, state.last_level, state.last_sd, state.theta.copy()))
            _anchors_prune(state, params)
    return state


KNOWN_RATES = FillParams(prior_rate_sd=0.0, weekday_sd=0.0, drift_sd_per_day=0.0, weekday_drift_sd_per_day=0.0)
"""Parameters of a filter that knows a bin's true rates and never changes them (`fill_state_known`)."""


def fill_state_known(*, rates: Sequence[float], like: FillState) -> FillState:
    """A filter that knows the bin's true weekday `rates` (a simulation's) and never learns, at the same
    point as `like` (its last level and anchors). Fed the same observations with `KNOWN_RATES`, its day-ahead
    error is the floor any model faces there (the day's own randomness in use, the readings' and crews'
    noise): a model's error above it is what the model has left to learn."""
    known = fill_state_new(prior_rates=rates, params=KNOWN_RATES)
    known.last_at, known.last_level, known.last_sd = like.last_at, like.last_level, like.last_sd
    known.anchors = [(at, level, sd, known.theta.copy()) for at, level, sd, _theta in like.anchors]
    return known


def fill_states_observe(
    *,
    states: Sequence[FillState],
    observations: Sequence[Iterable[FillObservation]],
    params: FillParams = FillParams(),
) -> list[list[FillError]]:
    """Feed each bin its new observations (`fill_state_update`, in place) and return each bin's day-ahead
    errors that they produced.

    Counted here, not from the states' lists: a state keeps only its last `max_errors`, so once a bin with
    a sensor (four readings a day) reaches the cap its list no longer grows, and comparing its length before
    and after an update counts nothing. That is how a learning curve came to lose the bins with sensors
    after a few weeks and show only the crews' multi-day forecasts, as if the model got worse."""
    out = []
    for state, obs in zip(states, observations, strict=True):
        before = state.n_errors
        fill_state_update(state=state, observations=obs, params=params)
        new = min(state.n_errors - before, len(state.errors))
        out.append(state.errors[len(state.errors) - new :])
    return out


def forecast_mae_by_week(*, errors: Iterable[FillError], start: float, weeks: int) -> list[float | None]:
    """Mean absolute day-ahead error of each of `weeks` weeks from `start` (local days), None for a week
    without any: errors pooled within the week, so a week is weighed by what was observed in it."""
    sums, counts = [0.0] * weeks, [0] * weeks
    for e in errors:
        week = math.floor((e.at - start) / 7)
        if 0 <= week < weeks:
            sums[week] += e.abs_error
            counts[week] += 1
    return [s / n if n else None for s, n in zip(sums, counts, strict=True)]


def _kalman_step(state: FillState, t1: float, level: float, sd: float, q: np.ndarray, params: FillParams) -> None:
    t0 = state.last_at
    x = features(t0, t1)
    days = x[0]
    state.cov = state.cov + q * days
    predicted_growth = float(x @ state.theta)
    start = state.last_level
    if level >= params.full_level and start + predicted_growth >= level:
        return  # censored: a full bin says only "at least this fast", and the forecast agrees
    r = state.last_sd**2 + sd**2 + (params.fill_noise_sd_per_day**2) * days
    px = state.cov @ x
    s = float(x @ px) + r
    gain = px / s
    state.theta = state.theta + gain * (level - start - predicted_growth)
    state.cov = state.cov - np.outer(gain, px)
    state.cov = (state.cov + state.cov.T) / 2  # keep it symmetric against rounding drift
    state.n_updates += 1


def _day_ahead_error(state: FillState, at: float, level: float, params: FillParams) -> FillError | None:
    """The forecast for `at` made `horizon_days` earlier, from the latest anchor known then (with any
    emptying since, which was planned, taken into account), against the observed level."""
    cutoff = at - params.horizon_days
    known = [a for a in state.anchors if a[0] <= cutoff]
    if not known:
        return None
    t_a, level_a, _sd, theta = known[-1]
    for t_e, level_e, sd_e, _theta in state.anchors:
        if t_a < t_e <= at and level_e == 0.0 and sd_e == 0.0:
            t_a, level_a = t_e, 0.0  # emptied in between: the plan knew
    predicted = level_a + _growth(theta, t_a, at)
    if level >= params.full_level and predicted >= level:
        predicted = level  # "at least full" agrees with any forecast above it: no error to count
    return FillError(at=at, predicted=float(predicted), observed=level)


def _anchors_prune(state: FillState, params: FillParams) -> None:
    """Keep anchors within horizon + 2 days, plus the newest older one (it may still be 'known then')."""
    keep_from = state.anchors[-1][0] - params.horizon_days - 2.0
    older = [i for i, a in enumerate(state.anchors) if a[0] < keep_from]
    if len(older) > 1:
        del state.anchors[: older[-1]]


def fill_forecast(*, state: FillState, at: float) -> float:
    """The expected level at `at` (local days) if nobody empties the bin before then."""
    if state.last_at is None:
        return float("nan")
    return float(state.last_level + _growth(state.theta, state.last_at, max(at, state.last_at)))


def fill_forecast_sd(*, state: FillState, at: float, params: FillParams = FillParams()) -> float:
    """The forecast's standard deviation: rate uncertainty, fill noise over the time ahead, last reading's."""
    if state.last_at is None:
        return float("nan")
    x = features(state.last_at, max(at, state.last_at))
    var = float(x @ state.cov @ x) + params.fill_noise_sd_per_day**2 * x[0] + state.last_sd**2
    return math.sqrt(max(var, 0.0))


def fill_reach_time(*, state: FillState, level: float, start: float, end: float, step: float = 1 / 96) -> float | None:
    """The first time in [start, end] the forecast reaches `level` (to 15 minutes), None if it does not."""
    if state.last_at is None:
        return None
    t = max(start, state.last_at)
    while t <= end:
        if fill_forecast(state=state, at=t) >= level:
            return t
        t += step
    return None


def rates_knn(
    *,
    xy: np.ndarray,
    rates: np.ndarray,
    trusted: np.ndarray,
    groups: Sequence[str] | None = None,
    k: int = 5,
    strict: bool = False,
) -> np.ndarray:
    """Per-weekday rates for every bin from its k nearest trusted bins of the same group (e.g. waste type
    and size), inverse-distance weighted. A group without a trusted bin gets the mean of all trusted bins,
    or NaN when `strict` (the caller then asks a coarser grouping).

    `xy` are metric coordinates (n, 2); `rates` (n, 7); `trusted` a boolean mask."""
    n = len(xy)
    out = np.full((n, 7), np.nan)
    groups = np.asarray(groups if groups is not None else [""] * n)
    global_mean = rates[trusted].mean(axis=0) if trusted.any() else np.full(7, np.nan)
    for g in np.unique(groups):
        members = np.flatnonzero(groups == g)
        donors = members[trusted[members]]
        if len(donors) == 0:
            out[members] = np.nan if strict else global_mean
            continue
        tree = cKDTree(xy[donors])
        kk = min(k + 1, len(donors))  # +1: a trusted bin finds itself, which is dropped below
        dist, idx = tree.query(xy[members], k=kk)
        dist = dist.reshape(len(members), kk)
        idx = idx.reshape(len(members), kk)
        for row, m in enumerate(members):
            pick = [(d, donors[i]) for d, i in zip(dist[row], idx[row]) if donors[i] != m][:k]
            if not pick:  # the only trusted bin of its group is itself
                out[m] = rates[m]
                continue
            w = np.array([1.0 / max(d, 10.0) for d, _ in pick])
            out[m] = (w[:, None] * rates[[j for _, j in pick]]).sum(axis=0) / w.sum()
    return out


def fill_fit(
    *,
    observations: Sequence[Sequence[FillObservation]],
    xy: np.ndarray,
    groups: Sequence[str] | None = None,
    params: FillParams = FillParams(),
    min_trusted: int = 6,
    k: int = 5,
) -> tuple[list[FillState], np.ndarray]:
    """Fit every bin from its history: a first pass with the flat prior, then bins with fewer than
    `min_trusted` observations are fitted again with their neighbours' rates as prior (spatial kNN among
    similar bins: `groups` like 'mixed:660' are waste type and size; the waste type alone is the fallback).
    Returns the states and a mask of the bins that used the neighbours' prior."""
    states = [fill_state_update(state=fill_state_new(params=params), observations=obs, params=params)
              for obs in observations]
    n = len(states)
    trusted = np.array([s.n_obs >= min_trusted for s in states], dtype=bool)
    fallback = ~trusted
    if n and fallback.any() and trusted.any():
        rates = np.array([s.rates for s in states])
        xy = np.asarray(xy, dtype=float)
        groups = list(groups) if groups is not None else [""] * n
        # Similar bins: the same group (waste type and size) first; the same waste type when none is trusted.
        prior = rates_knn(xy=xy, rates=rates, trusted=trusted, groups=groups, k=k, strict=True)
        coarse = rates_knn(xy=xy, rates=rates, trusted=trusted, groups=[str(g).split(":")[0] for g in groups], k=k)
        prior = np.where(np.isfinite(prior), prior, coarse)
        for i in np.flatnonzero(fallback):
            if np.isfinite(prior[i]).all():
                states[i] = fill_state_update(
                    state=fill_state_new(prior_rates=prior[i], params=params), observations=observations[i],
                    params=params)
    return states, fallback
