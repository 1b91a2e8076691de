"""The One Euro filter (Casiez, Roussel and Vogel, CHI 2012) over numpy arrays of any shape.

A low-pass filter whose cutoff rises with the signal's speed: still faces get heavy smoothing
(no jitter), moving faces little (no lag). Each element of the array is filtered on its own,
with the time step taken from the timestamps so variable frame rates are handled.
"""

from __future__ import annotations

import math

import numpy as np


def _alpha(cutoff: np.ndarray | float, dt: float) -> np.ndarray | float:
    tau = 1.0 / (2.0 * math.pi * np.asarray(cutoff, dtype=np.float64))
    return 1.0 / (1.0 + tau / dt)


class OneEuroFilter:
    """``f(x, t)`` returns the filtered ``x`` (same shape, float64) at time ``t`` seconds.

    ``min_cutoff`` (Hz): cutoff when still; lower = smoother. ``beta``: how fast the cutoff
    rises with speed (in units of x per second); higher = less lag. ``d_cutoff`` (Hz): the
    cutoff of the speed estimate. ``reset()`` forgets the history (a shot cut, a new track).
    """

    def __init__(self, min_cutoff: float = 1.0, beta: float = 0.0, d_cutoff: float = 1.0) -> None:
        if min_cutoff <= 0 or d_cutoff <= 0 or beta < 0:
            raise ValueError("OneEuroFilter needs min_cutoff > 0, d_cutoff > 0 and beta >= 0")
        self.min_cutoff = float(min_cutoff)
        self.beta = float(beta)
        self.d_cutoff = float(d_cutoff)
        self.reset()

    def reset(self) -> None:
        self._x: np.ndarray | None = None
        self._dx: np.ndarray | None = None
        self._t: float | None = None

    def __call__(self, x: np.ndarray, t: float) -> np.ndarray:
        x = np.asarray(x, dtype=np.float64)
        if self._x is None or self._t is None or self._x.shape != x.shape:
            self._x, self._dx, self._t = x.copy(), np.zeros_like(x), float(t)
            return x.copy()
        dt = float(t) - self._t
        if dt <= 0:
            # Same or earlier timestamp (duplicated frame): nothing new to learn.
            return self._x.copy()
        dx = (x - self._x) / dt
        a_d = _alpha(self.d_cutoff, dt)
        dx_hat = a_d * dx + (1 - a_d) * self._dx
        cutoff = self.min_cutoff + self.beta * np.abs(dx_hat)
        a = _alpha(cutoff, dt)
        x_hat = a * x + (1 - a) * self._x
        self._x, self._dx, self._t = x_hat, dx_hat, float(t)
        return x_hat.copy()
