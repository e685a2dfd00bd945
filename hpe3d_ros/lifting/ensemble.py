"""Several one-body lifters as one: a shared skeleton, hypotheses from every member.

Networks trained alike from different seeds agree where the training data was dense and
disagree where it was not (an unusual body, a rare pose, heavy 2D noise). One network's K
hypotheses show only the ambiguity it learned; the spread *between* networks adds the
uncertainty of the network itself. :class:`EnsembleLifter` keeps the one-body guarantee of
:class:`~hpe3d_ros.lifting.body_model.BodyCVAE` (all K hypotheses of a person have the same
bone lengths): the members' bone-length estimates are averaged (geometric mean) into one
skeleton per person, and each member decodes its share of the K hypotheses (bone directions)
on that skeleton. Hypotheses are interleaved member by member, so any first few of them mix
the members.

``spread`` scales every member's latent noise (its own calibrated temperature times this):
the members' spreads add to their disagreement, so an ensemble needs its own calibration on
validation data (``training.evaluate_cells --ensemble-spread``).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from hpe3d_ros.lifting.normalize import N_JOINTS
from hpe3d_ros.lifting.runtime import Lifter

#: Offset between the members' noise seeds (a prime, so member seeds never coincide with
#: the next call's seed in a seed + i sweep).
_SEED_STEP = 7919


def split_k(k: int, members: int) -> list[int]:
    """K hypotheses over ``members`` as evenly as possible, the first members one more."""
    if k < 0 or members < 1:
        raise ValueError(f"split_k: need k >= 0 and members >= 1, got {k}, {members}")
    return [k // members + (1 if i < k % members else 0) for i in range(members)]


def interleave_order(counts: Sequence[int]) -> np.ndarray:
    """Order of hypotheses concatenated member by member (``counts`` each) that takes them
    round robin: member 0's first, member 1's first, ..., member 0's second, ..."""
    keys = np.concatenate([np.arange(c) * len(counts) + i for i, c in enumerate(counts)])
    return np.argsort(keys, kind="stable")


class EnsembleLifter:
    """One-body lifters of the same design as one lifter (module doc); ``sample`` as
    :meth:`Lifter.sample`.

    Deterministic lifters (the baseline, ``latent_dim`` 0) make an ensemble too: the mean
    of their poses, repeated K times (the equal baseline of a VAE ensemble).

    Attributes mirror :class:`Lifter` where they are the members' (``cfg``, ``arch``,
    ``latent_dim``, ``noise_aware``, ``conf_threshold``, ``joint_names``); ``size_std`` is
    the largest member's; ``members`` and ``spread`` are the ensemble's own.
    """

    def __init__(self, members: Sequence[Lifter], spread: float = 1.0) -> None:
        members = list(members)
        if len(members) < 2:
            raise ValueError(f"an ensemble needs at least 2 lifters, got {len(members)}")
        first = members[0]
        deterministic = first.latent_dim == 0
        for m in members:
            ok = m.latent_dim == 0 if deterministic else m.arch == "bodyvae" and m.latent_dim
            if not ok:
                raise ValueError(
                    "ensemble members must all be one-body VAE lifters ('bodyvae') or all "
                    f"deterministic, got {first.arch!r} and {m.arch!r}"
                )
            if (m.cfg.n_in, m.noise_aware, m.conf_threshold) != (
                first.cfg.n_in,
                first.noise_aware,
                first.conf_threshold,
            ):
                raise ValueError(
                    "ensemble members must take the same inputs (features, "
                    "noise input, confidence threshold)"
                )
        if not spread > 0:
            raise ValueError(f"spread must be > 0, got {spread}")
        self.members = members
        self.spread = float(spread)
        self.cfg = first.cfg
        self.arch = first.arch
        self.latent_dim = first.latent_dim
        self.noise_aware = first.noise_aware
        self.conf_threshold = first.conf_threshold
        self.joint_names = first.joint_names
        self.size_std = max(m.size_std for m in members)

    def features(self, keypoints_norm, confidence, noise_std=None):
        """As :meth:`Lifter.features` (every member takes the same)."""
        return self.members[0].features(keypoints_norm, confidence, noise_std)

    def sample(
        self,
        keypoints_norm: np.ndarray,
        confidence: np.ndarray,
        k: int,
        seed: int | None = None,
        noise_std: np.ndarray | float | None = None,
    ) -> np.ndarray:
        """K hypotheses per person on one shared skeleton: (N, 17, 2), (N, 17) -> (N, k, 17, 3).

        The members' run-time evidence (a checkpoint's ``"evidence"`` entry) is not applied:
        each member draws plainly around the shared skeleton."""
        feats, rot = self.features(keypoints_norm, confidence, noise_std)
        n = feats.shape[0]
        if n == 0 or k == 0:
            return np.zeros((n, k, N_JOINTS, 3), dtype=np.float32)
        if not self.latent_dim:  # deterministic members: their mean, repeated
            mean = np.mean(
                [m.sample(keypoints_norm, confidence, 1, seed, noise_std) for m in self.members],
                axis=0,
            )
            return np.repeat(mean, k, axis=1)
        counts = split_k(k, len(self.members))
        ft = torch.from_numpy(feats)
        rt = torch.from_numpy(rot.astype(np.float32))
        parts = []
        with torch.inference_mode():
            conds = [m._graph.model.encode(ft) for m in self.members]
            # one skeleton: the geometric mean of the members' bone lengths
            lengths = torch.stack([c[3] for c in conds]).log().mean(0).exp()
            for i, (m, c, ki) in enumerate(zip(self.members, conds, counts, strict=True)):
                if ki == 0:
                    continue
                s = None if seed is None else seed + i * _SEED_STEP
                noise = torch.from_numpy(m.noise(n, ki, s)) * self.spread
                cond = (*c[:3], lengths, *c[4:])
                y = m._graph.model.decode(cond, noise, m._graph.temperature)
                parts.append(m._graph.to_camera(y, rt).numpy())
        poses = np.concatenate(parts, axis=1)[:, interleave_order([c for c in counts if c])]
        return np.nan_to_num(poses, nan=0.0, posinf=0.0, neginf=0.0)


def load_ensemble(
    paths: Sequence[str], spread: float = 1.0, device: str = "cpu"
) -> EnsembleLifter:
    """An :class:`EnsembleLifter` of the lifter checkpoints at ``paths``."""
    from hpe3d_ros.lifting.loading import load_lifter

    return EnsembleLifter([load_lifter(p, device) for p in paths], spread)
