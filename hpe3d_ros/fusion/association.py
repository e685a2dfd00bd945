"""Gated one-to-one assignment (Hungarian, ``scipy.optimize.linear_sum_assignment``).

Costs are squared Mahalanobis distances (minus a bonus where the per-camera tracker already
links the two); pairs beyond the gate are never assigned, however the rest falls.
"""

from __future__ import annotations

import numpy as np
from scipy.optimize import linear_sum_assignment

#: chi-square quantiles for 3 degrees of freedom.
CHI2_3DOF = {0.90: 6.251, 0.95: 7.815, 0.99: 11.345, 0.999: 16.266}


def assign(
    cost: np.ndarray, allowed: np.ndarray
) -> tuple[list[tuple[int, int]], list[int], list[int]]:
    """Minimum-cost matching of rows to columns among the allowed pairs.

    Args:
        cost: (N, M) finite where ``allowed``.
        allowed: (N, M) bool, the gate.

    Returns:
        (matches [(row, col)], unmatched rows, unmatched columns), each sorted.
    """
    cost = np.asarray(cost, dtype=np.float64)
    allowed = np.asarray(allowed, dtype=bool) & np.isfinite(cost)
    n, m = cost.shape
    if n == 0 or m == 0 or not allowed.any():
        return [], list(range(n)), list(range(m))
    # infeasible pairs get a cost no feasible solution beats, and are dropped afterwards
    span = np.abs(cost[allowed]).max() if allowed.any() else 1.0
    big = 1e3 * (1.0 + span) * (n + m)
    c = np.where(allowed, cost, big)
    rows, cols = linear_sum_assignment(c)
    matches = [(int(r), int(k)) for r, k in zip(rows, cols, strict=True) if allowed[r, k]]
    used_r = {r for r, _ in matches}
    used_c = {k for _, k in matches}
    return (
        sorted(matches),
        [r for r in range(n) if r not in used_r],
        [k for k in range(m) if k not in used_c],
    )
