"""Forecasting an equally spaced series of counts (pure): statsmodels ETS (additive errors;
no trend, Holt linear, Holt damped; the lowest AICc wins) with its prediction interval, or a
flat forecast with a residual interval when the series is too short or constant. Trend
detection (rules.py) forecasts each top trend's hourly and daily series with it."""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from statistics import NormalDist

import numpy as np

# statsmodels (and pandas) load on first use.

_HOUR = timedelta(hours=1)


@dataclass(frozen=True)
class ForecastPoint:
    t: datetime
    value: float
    low: float
    high: float


@dataclass(frozen=True)
class Forecast:
    horizon: str  # "24h" | "7d"
    step_hours: int  # 1 (hourly points) or 24 (daily points)
    model: str  # "ets-none" | "ets-add" | "ets-add-damped" | "flat"
    level: float
    points: list[ForecastPoint]


def _flat_forecast(
    values: np.ndarray, start: datetime, step: timedelta, horizon: int, level: float, label: str
) -> Forecast:
    """Mean of the latest (up to) 24 values; interval mean +- q x residual std, widening with
    sqrt(1 + h / n) (a random-walk-free naive model)."""
    recent = values[-24:] if len(values) else np.zeros(1)
    mean = float(recent.mean())
    sd = float(values.std(ddof=1)) if len(values) > 1 else 0.0
    q = NormalDist().inv_cdf(0.5 + level / 2)
    n = max(len(values), 1)
    points = []
    for h in range(1, horizon + 1):
        half = q * sd * math.sqrt(1.0 + h / n)
        points.append(
            ForecastPoint(
                t=start + step * (h - 1),
                value=max(0.0, mean),
                low=max(0.0, mean - half),
                high=max(0.0, mean + half),
            )
        )
    step_hours = int(step / _HOUR)
    return Forecast(label, step_hours, "flat", level, points)


def forecast_series(
    values: Sequence[float] | np.ndarray,
    start: datetime,
    step: timedelta,
    horizon: int,
    level: float = 0.90,
    label: str = "",
) -> Forecast:
    """Forecast `horizon` steps of `values` (equally spaced, `step` apart); the first forecast
    point is at `start`. ETS models with additive errors (none / additive / damped additive
    trend) are fitted and the lowest AICc wins; its prediction interval at `level`. Values and
    bounds are clipped at 0 (counts). Too short (< 8) or constant series: `_flat_forecast`."""
    arr = np.asarray(values, dtype=float)
    if len(arr) < 8 or float(np.ptp(arr)) == 0.0:
        return _flat_forecast(arr, start, step, horizon, level, label)
    import pandas as pd
    from statsmodels.tsa.exponential_smoothing.ets import ETSModel

    series = pd.Series(arr)  # (statsmodels' get_prediction needs an index)
    best = None
    best_name = ""
    candidates: list[tuple[str, str | None, bool]] = [
        ("ets-none", None, False),
        ("ets-add", "add", False),
        ("ets-add-damped", "add", True),
    ]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for name, trend, damped in candidates:
            try:
                fitted = ETSModel(series, error="add", trend=trend, damped_trend=damped).fit(
                    disp=False
                )
            except (ValueError, np.linalg.LinAlgError):
                continue
            if not math.isfinite(float(fitted.aicc)):
                continue
            if best is None or float(fitted.aicc) < float(best.aicc):
                best, best_name = fitted, name
        if best is None:
            return _flat_forecast(arr, start, step, horizon, level, label)
        frame = best.get_prediction(start=len(arr), end=len(arr) + horizon - 1).summary_frame(
            alpha=1.0 - level
        )
    means = frame["mean"].to_numpy(dtype=float)
    lows = frame["pi_lower"].to_numpy(dtype=float)
    highs = frame["pi_upper"].to_numpy(dtype=float)
    if not (np.isfinite(means).all() and np.isfinite(lows).all() and np.isfinite(highs).all()):
        return _flat_forecast(arr, start, step, horizon, level, label)
    points = [
        ForecastPoint(
            t=start + step * i,
            value=max(0.0, float(means[i])),
            low=max(0.0, float(lows[i])),
            high=max(0.0, float(highs[i])),
        )
        for i in range(horizon)
    ]
    return Forecast(label, int(step / _HOUR), best_name, level, points)
