"""Training chunks for the temporal lifter: mocap *sequences* through static vehicle cameras.

Per chunk (one track; vectorised numpy, seeded by the caller's ``Generator``):

1. a run of consecutive 30 Hz mocap frames of one sequence: the ``chunk`` frames that count
   plus the ``window - 1`` before them (context; frames before the sequence starts, or before
   a track start drawn inside the chunk, are unseen);
2. **one** body for the whole chunk (:func:`training.bodies.sample_lengths` and
   :func:`~training.bodies.retarget`, or the captured body), one mirror, one yaw; the person
   keeps the captured trajectory, so it walks through the scene;
3. one static camera (:func:`training.data.random_intrinsics`; height, distance, bearing,
   pitch and roll as in :func:`training.data.place_in_cameras`, drawn for the chunk's last
   frame);
4. a detector per chunk: noise std a fraction of the person's pixel size (log-uniform) with
   a pixel floor, larger at low confidence, part of it temporally correlated (AR(1)), gross
   errors, per-chunk joint-drop rate, lower-body occlusion episodes;
5. the camera's own rate: every 1st, 2nd or 3rd frame observed (30, 15, 10 Hz), a few camera
   frames lost, sometimes a gap of 0.2-1 s; the observed frames' lifter features, and their
   places on the model's 30 Hz grid from :func:`hpe3d_ros.lifting.track_window.grid_weights`
   (:func:`assemble`), exactly as the runtime reads a track's history;
6. targets root-relative in each counted frame's virtual camera; the loss counts observed
   frames with at least ``min_visible`` joints (those the pipeline lifts).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
import torch

from hpe3d_ros.lifting.normalize import prepare_inputs, visibility
from hpe3d_ros.lifting.sequence_loss import Chunks
from hpe3d_ros.lifting.track_window import grid_weights
from hpe3d_ros.skeleton import mirror_h36m
from training.bodies import retarget
from training.body_augment import convention_mask, sampled_lengths
from training.conventions import convention_draws, to_cmu_convention
from training.data import AugmentConfig, place_in_cameras, random_intrinsics

MOCAP_HZ = 30.0


@dataclass
class SequenceConfig:
    """Temporal augmentation (stored in the checkpoint's training config)."""

    chunk: int = 32  # frames per chunk that count in the loss
    strides: tuple[int, ...] = (1, 2, 3)  # camera at 30 / 15 / 10 Hz
    stride_probs: tuple[float, ...] = (0.5, 0.25, 0.25)
    frame_drop_prob: float = 0.03  # a camera frame lost
    gap_prob: float = 0.1  # chunks where the track is unseen for gap_s
    gap_s: tuple[float, float] = (0.2, 1.0)
    track_start_prob: float = 0.2  # the track starts inside the chunk's context
    correlated_frac: tuple[float, float] = (0.0, 0.7)  # share of AR(1) noise, per chunk
    noise_rho: float = 0.85  # AR(1) coefficient per 30 Hz frame
    occlusion_prob: float = 0.1  # chunks with a lower-body occlusion episode
    min_visible: int = 6

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class ChunkBatch:
    """B chunks (window W, S = L + W - 1 grid frames, the last L counted), numpy.

    ``frames`` (M, F) the lifter features of every frame the cameras delivered; per grid frame
    the frames it reads (``i0``, ``i1`` (B, S) rows of ``frames``, ``w`` the weight of
    ``i1``, ``seen``; :func:`hpe3d_ros.lifting.track_window.grid_weights`); ``cur`` (B, L)
    the frame of each counted position (0 where not counted); ``mask`` (B, L).
    """

    frames: np.ndarray  # (M, F) float32
    i0: np.ndarray  # (B, S) int64
    i1: np.ndarray  # (B, S) int64
    w: np.ndarray  # (B, S) float32
    seen: np.ndarray  # (B, S) bool
    cur: np.ndarray  # (B, L) int64
    mask: np.ndarray  # (B, L) bool
    nxt: np.ndarray  # (B, L) int64 next counted position (within MAX_STEP), -1: none
    rot: np.ndarray  # (M, 3, 3) camera -> each frame's virtual camera
    target: np.ndarray | None = None  # (B, L, 48) float32 metres, the frame's virtual camera
    pose_cam: np.ndarray | None = None  # (B, L, 17, 3) root-relative metres, camera frame
    tracks: list | None = None  # per chunk what the camera delivered: stamps, kp, conf, noise
    noise_rel: np.ndarray | None = None  # (B,) float32 the chunk's 2D noise / person size
    subject: np.ndarray | None = None  # (B,) the chunk's mocap subject (validation chunks)

    def tensors(self) -> Chunks:
        """The torch view the model trains on."""
        t = torch.from_numpy
        target = None if self.target is None else t(self.target)
        noise_rel = None if self.noise_rel is None else t(self.noise_rel)
        return Chunks(
            t(self.frames),
            t(self.i0),
            t(self.i1),
            t(self.w),
            t(self.seen),
            t(self.cur),
            target,
            t(self.mask),
            t(self.nxt),
            noise_rel,
        )


def assemble(
    observations: list,
    window: int,
    chunk: int,
    threshold: float,
    max_gap_s: float,
    min_visible: int,
) -> ChunkBatch:
    """Chunks from what cameras delivered, read as the runtime reads a track.

    ``observations``: per chunk (stamps (n,), kp (n, 17, 2), conf (n, 17), noise (n, 17) or
    None, grid times (S,)) with S = ``chunk + window - 1``. A grid frame reads the frames
    with at least one joint seen (:func:`grid_weights`); a counted position is the last
    ``chunk`` grid frames that fall on a frame with ``min_visible`` joints.
    """
    kps, confs, noises, offsets = [], [], [], [0]
    for stamps, kp, conf, noise, _ in observations:
        kps.append(kp)
        confs.append(conf)
        noises.append(np.full(conf.shape, np.nan) if noise is None else noise)
        offsets.append(offsets[-1] + len(stamps))
    kp, conf = np.concatenate(kps), np.concatenate(confs)
    feats, rot = prepare_inputs(kp, conf, threshold, np.concatenate(noises), True)
    n_vis = visibility(kp, conf, threshold).sum(-1)
    b, span = len(observations), chunk + window - 1
    i0, i1 = np.zeros((b, span), np.int64), np.zeros((b, span), np.int64)
    w, seen = np.zeros((b, span), np.float32), np.zeros((b, span), bool)
    cur, mask = np.zeros((b, chunk), np.int64), np.zeros((b, chunk), bool)
    for n, (stamps, *_, times) in enumerate(observations):
        lo = offsets[n]
        rows = lo + np.flatnonzero(n_vis[lo : offsets[n + 1]] > 0)
        if len(rows) == 0:
            continue
        a0, a1, w[n], seen[n] = grid_weights(stamps[rows - lo], times, max_gap_s)
        i0[n], i1[n] = rows[a0], rows[a1]
        exact = seen[n] & (a0 == a1)
        on = exact[window - 1 :] & (n_vis[i0[n, window - 1 :]] >= min_visible)
        cur[n], mask[n] = np.where(on, i0[n, window - 1 :], 0), on
    return ChunkBatch(
        feats, i0, i1, w, seen, cur, mask, next_counted(mask), rot.astype(np.float32)
    )


#: Consecutive counted positions at most this many grid frames apart make a velocity.
MAX_STEP = 4


def next_counted(mask: np.ndarray) -> np.ndarray:
    """(B, L) bool -> (B, L) int64: the next True position of each True one within
    :data:`MAX_STEP` (-1: none)."""
    out = np.full(mask.shape, -1, dtype=np.int64)
    for b, row in enumerate(mask):
        pos = np.flatnonzero(row)
        ok = np.diff(pos) <= MAX_STEP
        out[b, pos[:-1][ok]] = pos[1:][ok]
    return out


def sequence_runs(sequence: np.ndarray, subject: np.ndarray, rows: np.ndarray) -> list:
    """Contiguous runs of one (subject, sequence) among ``rows`` (sorted row indices)."""
    key = np.char.add(subject[rows].astype(str), np.char.add("/", sequence[rows].astype(str)))
    cut = np.flatnonzero((key[1:] != key[:-1]) | (np.diff(rows) != 1)) + 1
    return [r for r in np.split(rows, cut) if len(r) > 1]


def draw_chunks(runs: list, n: int, span: int, rng: np.random.Generator) -> np.ndarray:
    """(n, span) row indices, -1 = before the sequence start; each chunk ends inside a run
    (runs chosen by length, so every frame is about equally likely to count)."""
    lengths = np.array([len(r) for r in runs], dtype=np.float64)
    which = rng.choice(len(runs), size=n, p=lengths / lengths.sum())
    out = np.full((n, span), -1, dtype=np.int64)
    for b, ri in enumerate(which):
        run = runs[ri]
        end = rng.integers(0, len(run))
        pos = end - span + 1 + np.arange(span)
        ok = pos >= 0
        out[b, ok] = run[pos[ok]]
    return out


def make_chunks(
    poses: np.ndarray,
    rows: np.ndarray,
    cfg: AugmentConfig,
    scfg: SequenceConfig,
    window: int,
    rng: np.random.Generator,
    templates: dict | None = None,
    augment_body: bool = True,
    conf_threshold: float = 0.2,
    max_gap_s: float = 0.5,
) -> ChunkBatch:
    """B chunks of mocap rows (B, L + W - 1) (-1 = no frame) -> :class:`ChunkBatch`.

    ``max_gap_s``, ``conf_threshold``: the temporal model's (as its runtime reads tracks).
    """
    b, span = rows.shape
    n_ctx = window - 1
    exists = rows >= 0
    world = poses[np.where(exists, rows, 0)].astype(np.float64)  # (B, S, 17, 3)
    world = _bodies(world, exists, cfg, rng, templates, augment_body)
    hfov, cams = [], []
    for _ in range(b):
        cam = random_intrinsics(cfg, rng)
        cams.append(cam)
        hfov.append(np.degrees(2 * np.arctan(cam.width / 2 / cam.fx)))
    flat = world.reshape(b, span * 17, 3)
    pts = place_in_cameras(flat, np.array(hfov), cfg, rng).reshape(b, span, 17, 3)
    observations, pose_cams, noise_rel = [], [], []
    times = np.arange(span) / MOCAP_HZ
    for i in range(b):
        kp, conf, noise, rel = _observe(pts[i], cams[i], cfg, scfg, rng)
        noise_rel.append(rel)
        kp[~exists[i]] = np.nan
        observed = _camera_frames(exists[i], scfg, rng)
        stamps = np.flatnonzero(observed) / MOCAP_HZ
        known = rng.random() < cfg.noise_known_prob
        ns = noise[observed] if known else None
        observations.append((stamps, kp[observed], conf[observed], ns, times))
        pose_cams.append(pts[i] - pts[i][:, :1])
    batch = assemble(observations, window, scfg.chunk, conf_threshold, max_gap_s, scfg.min_visible)
    pose_cam = np.stack(pose_cams)[:, n_ctx:]  # (B, L, 17, 3)
    rot = batch.rot[batch.cur]  # (B, L, 3, 3)
    batch.target = np.einsum("blij,blkj->blki", rot, pose_cam[:, :, 1:]).reshape(b, -1, 48)
    batch.target = batch.target.astype(np.float32)
    batch.pose_cam = pose_cam.astype(np.float32)
    batch.tracks = [o[:4] for o in observations]
    batch.noise_rel = np.asarray(noise_rel, np.float32)
    return batch


def _bodies(world, exists, cfg, rng, templates, augment_body):
    """One body, mirror and yaw per chunk; the last frame's root over the origin."""
    b, span = world.shape[:2]
    last_root = world[:, -1:, :1, :].copy()
    last_root[..., 2] = 0.0
    world = world - last_root
    if augment_body and cfg.body_model == "sampled" and templates:
        lengths, real = sampled_lengths(templates, b, rng, cfg, with_kind=True)
        move = convention_mask(cfg, world[:, -1], real)  # one convention per chunk
        if move.any():  # the same draws for every frame of a chunk: a steady thorax
            draws = convention_draws(int(move.sum()), rng)
            world[move] = to_cmu_convention(
                world[move].reshape(-1, 17, 3), rng, np.repeat(draws, span, axis=0)
            ).reshape(-1, span, 17, 3)
        flat = retarget(world.reshape(b * span, 17, 3), np.repeat(lengths, span, axis=0))
        world = flat.reshape(b, span, 17, 3)
    if augment_body:
        flip = rng.random(b) < cfg.mirror_prob
        world[flip] = mirror_h36m(world[flip])
    yaw = rng.uniform(-np.pi, np.pi, size=b)
    c, s = np.cos(yaw)[:, None, None], np.sin(yaw)[:, None, None]
    x, y = world[..., 0].copy(), world[..., 1].copy()
    world[..., 0], world[..., 1] = c * x - s * y, s * x + c * y
    world[~exists] = world[:, -1:].repeat(span, 1)[~exists]  # placeholders, never seen
    return world


def _camera_frames(exists: np.ndarray, scfg: SequenceConfig, rng) -> np.ndarray:
    """(S,) bool: frames the camera delivered (rate, lost frames, gaps, track start)."""
    span = len(exists)
    stride = rng.choice(scfg.strides, p=np.asarray(scfg.stride_probs) / sum(scfg.stride_probs))
    back = span - 1 - np.arange(span)
    obs = exists & (back % stride == 0)
    obs &= rng.random(span) >= scfg.frame_drop_prob
    if rng.random() < scfg.gap_prob:
        length = int(rng.uniform(*scfg.gap_s) * MOCAP_HZ)
        start = rng.integers(0, max(1, span - length))
        obs[start : start + length] = False
    if rng.random() < scfg.track_start_prob:
        obs[: rng.integers(0, span)] = False
    obs[-1] = exists[-1]  # the chunk ends at a frame the camera delivered
    return obs


def _observe(pts, cam, cfg: AugmentConfig, scfg: SequenceConfig, rng):
    """(S, 17, 3) optical-frame joints, one camera -> kp_norm (S, 17, 2) NaN where missing,
    conf (S, 17), noise std (S, 17) in normalised units, and the chunk's relative noise (the
    median over frames and joints of the noise std over the person's pixel size; 0 exact)."""
    s = len(pts)
    px = cam.project(pts)
    finite = np.isfinite(px).all(-1) & (pts[..., 2] > 0.1)
    hi = np.where(finite[..., None], px, -np.inf).max(1)
    lo = np.where(finite[..., None], px, np.inf).min(1)
    size = np.where(finite.any(-1), (hi - lo).max(-1), 10.0)  # person's pixel size
    frac = (
        np.exp(rng.uniform(*np.log(cfg.noise_frac)))
        if cfg.noise_frac_log
        else rng.uniform(*cfg.noise_frac)
    )
    floor = rng.uniform(cfg.noise_px_min, max(cfg.noise_px_min, cfg.noise_px_max))
    conf = rng.uniform(*cfg.conf_range, size=(s, 17))
    sigma = np.hypot(frac * size[:, None], floor) * (1.6 - conf)
    if rng.random() < cfg.exact_prob:
        sigma = np.zeros_like(sigma)
    a = rng.uniform(*scfg.correlated_frac)
    white = rng.normal(size=(s, 17, 2))
    corr = np.empty_like(white)
    corr[0] = white[0]
    rho = scfg.noise_rho
    innov = rng.normal(size=(s, 17, 2)) * np.sqrt(1 - rho**2)
    for t in range(1, s):
        corr[t] = rho * corr[t - 1] + innov[t]
    px = px + sigma[..., None] * (np.sqrt(1 - a * a) * white + a * corr)
    gross = (rng.random((s, 17)) < cfg.outlier_prob) & (sigma > 0)
    px += gross[..., None] * rng.normal(size=px.shape) * 0.15 * size[:, None, None]
    conf = np.where(gross, rng.uniform(0.2, 0.6, size=gross.shape), conf)
    inside = cam.in_image(px) & finite
    r_max = np.linalg.norm(cam.pixel_to_normalized(np.array([[0.0, 0.0]])), axis=-1)[0]
    norm = cam.pixel_to_normalized(np.where(inside[..., None], px, cam.K[:2, 2]))
    ok = inside & (np.linalg.norm(norm, axis=-1) <= 1.02 * r_max)
    step = cam.pixel_to_normalized(
        np.where(inside[..., None], px, cam.K[:2, 2]) + np.array([1.0, 0.0])
    )
    noise = sigma * np.linalg.norm(step - norm, axis=-1)
    p_drop = rng.uniform(0.0, cfg.drop_prob_max) * (rng.random() < 0.5)
    drop = rng.random((s, 17)) < p_drop
    if rng.random() < scfg.occlusion_prob:  # lower body behind a car for a while
        t0 = rng.integers(0, s)
        drop[t0 : t0 + rng.integers(5, 60), [1, 2, 3, 4, 5, 6]] = True
    missing = drop | ~ok
    kp = np.where(missing[..., None], np.nan, norm)
    sized = finite.any(-1) & (size > 1.0)
    rel = float(np.median(sigma[sized] / size[sized, None])) if sized.any() else 0.0
    return kp, np.where(missing, 0.0, conf), np.where(missing, 0.0, noise), rel
