"""The vehicle's view: fused people from 2-4 overlapping cameras vs the best single camera.

Real mocap bodies (../shared/data; the unseen test subjects 8, 13, 16, 131, or with
``--calibrate`` the training subjects) walk around a vehicle: 60 % cross in front of it, the
rest in random directions, 0-1.8 m/s, some stand. Their H36M-17 joints are seen by the first
N cameras of :func:`hpe3d_ros.fusion.rig.vehicle_rig` (bumper corners, windscreen, roof;
1280x720, lens distortion), 30 Hz each with phase offsets up to 37 ms, 2D noise and dropped
joints. Each camera's frame is lifted by the shipped lifter (``Pipeline.lift_people``, K=50,
ground prior from the extrinsics unless ``--no-ground``); each camera's 2D tracker is
simulated (ids per camera, new id after 0.5 s out of view). :class:`PeopleFuser` fuses them.

Figures (GT matched to fused tracks by Hungarian assignment on root distance, within 1.5 m):

* root error where >= 2 cameras see a person: fused list vs every camera alone (its own
  lifted roots; and the same filter fed by that camera only), the best camera reported;
* calibration: share of the truth inside the 90 % ellipsoid of the fused root covariance;
* velocity error (ground plane), MPJPE of the mean pose (root-relative);
* id switches per 100 frames, and per camera entry/exit of a tracked person (handover).

    OMP_NUM_THREADS=1 nice -n 10 .venv/bin/python benchmarks/bench_fusion.py \
        [--cameras 2 3 4] [--scenes 3] [--seconds 10] [--no-ground] [--calibrate]
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from scipy.optimize import linear_sum_assignment

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from hpe3d_ros.fusion import (  # noqa: E402
    FuserConfig,
    PeopleFuser,
    RootNoise,
    observations_from_result,
)
from hpe3d_ros.fusion.extrinsics import height_and_pitch  # noqa: E402
from hpe3d_ros.fusion.rig import VirtualCamera, vehicle_rig, view_people  # noqa: E402
from hpe3d_ros.lifting import load_lifter  # noqa: E402
from hpe3d_ros.pipeline import Pipeline, PipelineConfig  # noqa: E402
from hpe3d_ros.results import FrameResult  # noqa: E402

DATA = REPO.parent / "shared" / "data" / "cmu_h36m17_30fps.npz"
TEST_SUBJECTS = (8, 13, 16, 131)
FPS = 30.0
PHASES_S = (0.0, 0.011, 0.023, 0.037)
CHI2_90 = 6.251
MATCH_M = 1.5


# ------------------------------------------------------------------------- the scene
@dataclass
class Walker:
    """One mocap body on a straight path: root-relative poses (F, 17, 3) in base_link axes."""

    rel: np.ndarray
    pelvis_h: np.ndarray  # (F,) pelvis height above the ground
    start: np.ndarray  # (2,) ground point at t = 0
    vel: np.ndarray  # (2,) m/s

    def at(self, t: float) -> np.ndarray:
        """(17, 3) joints in base_link at time t (s)."""
        i = round(t * FPS) % len(self.rel)
        xy = self.start + self.vel * t
        return self.rel[i] + np.array([xy[0], xy[1], self.pelvis_h[i]])


def load_bodies(subjects_test: bool) -> list[np.ndarray]:
    """Per sequence its poses (F, 17, 3), world Z up, ping-pong looped. The capture's floor
    (z = 0) is the road, so feet stand on it and a standing ankle is ~0.1 m up."""
    d = np.load(DATA, allow_pickle=False)
    keep = np.isin(d["subject"], TEST_SUBJECTS)
    keep = keep if subjects_test else ~keep
    poses, seq = d["poses"][keep].astype(np.float64), d["sequence"][keep].astype(str)
    out = []
    starts = np.flatnonzero(np.r_[True, seq[1:] != seq[:-1]])
    for s, e in zip(starts, np.r_[starts[1:], len(seq)], strict=True):
        if e - s >= 30:
            p = poses[s:e]
            out.append(np.concatenate([p, p[::-1]]))
    return out


def make_walker(bodies, rng: np.random.Generator) -> Walker:
    poses = bodies[rng.integers(len(bodies))]
    rel = poses - poses[:, :1]
    hips = rel[:, 4, :2] - rel[:, 1, :2]  # right hip -> left hip: the body's "left"
    facing = np.arctan2(hips[:, 1], hips[:, 0]) - np.pi / 2
    mean_facing = np.arctan2(np.sin(facing).mean(), np.cos(facing).mean())
    if rng.random() < 0.6:  # crossing in front of the vehicle
        heading = rng.choice([-1, 1]) * np.pi / 2 + rng.uniform(-0.5, 0.5)
    else:
        heading = rng.uniform(-np.pi, np.pi)
    speed = 0.0 if rng.random() < 0.15 else rng.uniform(0.5, 1.8)
    yaw = heading - mean_facing
    c, s = np.cos(yaw), np.sin(yaw)
    R = np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])
    start = np.array([rng.uniform(4.5, 16.0), rng.uniform(-7.0, 7.0)])
    vel = speed * np.array([np.cos(heading), np.sin(heading)])
    start = start - vel * rng.uniform(0.0, 4.0)  # part of the walk happens in view
    return Walker(rel @ R.T, poses[:, 0, 2], start, vel)


@dataclass
class CameraSim:
    """One camera: its pipeline (ground prior from the extrinsics) and simulated 2D ids."""

    cam: VirtualCamera
    pipe: Pipeline
    ids: dict[int, tuple[int, float]] = field(default_factory=dict)  # person -> (id, last t)
    next_id: int = 0

    def local_id(self, person: int, t: float) -> int:
        tid, last = self.ids.get(person, (-1, -1e9))
        if t - last > 0.5:
            tid, self.next_id = self.next_id, self.next_id + 1
        self.ids[person] = (tid, t)
        return tid


def camera_sims(
    n: int, lifter, ground: bool, k: int, size_log_std: float = PipelineConfig.size_log_std
) -> list[CameraSim]:
    sims = []
    for cam in vehicle_rig(n):
        h, pitch = height_and_pitch(cam.T_base_camera)  # the rig has no roll: exact
        cfg = PipelineConfig(num_hypotheses=k, camera_height_m=h if ground else None,
                             camera_pitch_deg=pitch, size_log_std=size_log_std)  # fmt: skip
        sims.append(CameraSim(cam, Pipeline(None, lifter, cfg)))
    return sims


# ------------------------------------------------------------------------- one run
@dataclass
class Tally:
    fused_err: list = field(default_factory=list)  # overlap
    fused_err_all: list = field(default_factory=list)
    single_err: dict = field(default_factory=dict)  # camera -> overlap errors (raw lifted)
    single_trk: dict = field(default_factory=dict)  # camera -> overlap errors (own filter)
    oracle_err: list = field(default_factory=list)  # per instance, best camera
    inside90: list = field(default_factory=list)
    single_inside90: list = field(default_factory=list)
    vel_err: list = field(default_factory=list)
    mpjpe_fused: list = field(default_factory=list)
    mpjpe_single: list = field(default_factory=list)
    frames: int = 0
    switches: int = 0
    person_frames: int = 0
    events: int = 0
    event_switches: int = 0
    missed: int = 0
    false_tracks: int = 0
    rays: list = field(default_factory=list)  # (along error, spread, across error, dist/f)


def match(gt_roots: np.ndarray, people) -> dict[int, int]:
    """GT index -> index into people (Hungarian on distance, within MATCH_M)."""
    if not len(gt_roots) or not people:
        return {}
    pos = np.array([p.position_m for p in people])
    d = np.linalg.norm(gt_roots[:, None] - pos[None], axis=-1)
    r, c = linear_sum_assignment(d)
    return {int(i): int(j) for i, j in zip(r, c, strict=True) if d[i, j] <= MATCH_M}


def run_scene(sims, walkers, seconds, cfg, rng, noise_px, drop, tally: Tally) -> None:
    fuser = PeopleFuser(cfg)
    alone = {s.cam.name: PeopleFuser(cfg) for s in sims}
    last_id: dict[int, int] = {}
    last_cams: dict[int, set] = {}
    pending: list[tuple[int, float, int]] = []  # (person, event time, id before)
    for f in range(int(seconds * FPS)):
        seen_by: dict[int, set] = {}
        single_now: dict[int, dict] = {}
        t_end = 0.0
        for c, sim in enumerate(sims):
            t = f / FPS + PHASES_S[c]
            t_end, stamp = t, int(1e9 + round(t * 1e9))
            gt = np.array([w.at(t) for w in walkers])
            kp, conf, seen = view_people(sim.cam, gt, rng, noise_px, drop)
            who = np.flatnonzero(seen)
            res = sim.pipe.lift_people(
                kp[who], conf[who], sim.cam.model, sim.cam.name, stamp,
                [(sim.local_id(int(i), t), 0.9, np.zeros(4)) for i in who],
            ) if len(who) else []  # fmt: skip
            frame = FrameResult(sim.cam.name, sim.cam.frame_id, stamp, people=list(res))
            fuser.update(sim.cam.name, frame, sim.cam.model, sim.cam.T_base_camera)
            own = alone[sim.cam.name].update(sim.cam.name, frame, sim.cam.model,
                                             sim.cam.T_base_camera)  # fmt: skip
            obs = observations_from_result(frame, sim.cam.model, sim.cam.T_base_camera)
            by_id = {o.camera_track_id: o for o in obs}
            own_m = match(gt[:, 0], own)
            for i, person in zip(who, res, strict=True):
                o = by_id.get(person.track_id)
                if o is None:
                    continue
                seen_by.setdefault(int(i), set()).add(sim.cam.name)
                e = o.root_m - gt[i, 0]
                tally.rays.append(_ray_errors(e, o, person, sim.cam))
                entry = {
                    "err": float(np.linalg.norm(e)),
                    "in90": e @ np.linalg.solve(o.root_cov, e) <= CHI2_90,
                    "mpjpe": _mpjpe(o.hypotheses_m.mean(0), gt[i]),
                }
                j = own_m.get(int(i))
                entry["trk"] = np.linalg.norm(own[j].position_m - gt[i, 0]) if j is not None \
                    else np.nan  # fmt: skip
                single_now.setdefault(int(i), {})[sim.cam.name] = entry
        gt = np.array([w.at(t_end) for w in walkers])
        people = fuser.people(int(1e9 + round(t_end * 1e9)))
        m = match(gt[:, 0], people)
        tally.frames += 1
        tally.false_tracks += len(people) - len(m)
        for i in range(len(walkers)):
            cams = seen_by.get(i, set())
            if not cams:
                continue
            tally.person_frames += 1
            j = m.get(i)
            if j is None:
                tally.missed += 1
                continue
            p = people[j]
            e = p.position_m - gt[i, 0]
            tally.fused_err_all.append(float(np.linalg.norm(e)))
            if p.track_id != last_id.get(i, p.track_id):
                tally.switches += 1
            if len(cams) >= 2:
                tally.fused_err.append(float(np.linalg.norm(e)))
                tally.inside90.append(bool(e @ np.linalg.solve(p.position_cov, e) <= CHI2_90))
                tally.vel_err.append(float(np.linalg.norm(p.velocity_mps[:2] - walkers[i].vel)))
                tally.mpjpe_fused.append(_mpjpe(p.mean_pose_m, gt[i]))
                singles = single_now.get(i, {})
                for cam, entry in singles.items():
                    tally.single_err.setdefault(cam, []).append(entry["err"])
                    tally.single_trk.setdefault(cam, []).append(entry["trk"])
                    tally.single_inside90.append(bool(entry["in90"]))
                    tally.mpjpe_single.append(entry["mpjpe"])
                if singles:
                    tally.oracle_err.append(min(e["err"] for e in singles.values()))
            # handover: a camera starts or stops seeing a person who stays tracked
            if i in last_cams and cams != last_cams[i] and i in last_id:
                pending.append((i, t_end, last_id[i]))
            last_cams[i], last_id[i] = cams, p.track_id
        for ev in [ev for ev in pending if t_end - ev[1] >= 1.0]:
            pending.remove(ev)
            tally.events += 1
            tally.event_switches += int(last_id.get(ev[0], ev[2]) != ev[2])


def _ray_errors(e: np.ndarray, o, person, cam: VirtualCamera) -> tuple:
    """(error along the camera's ray, the pipeline's spread, error across it, dist / f)."""
    r = o.root_m - cam.T_base_camera.origin
    dist = float(np.linalg.norm(r))
    r /= dist
    along = float(e @ r)
    across = float(np.linalg.norm(e - along * r))
    f = 0.5 * (cam.model.fx + cam.model.fy)
    return along, float(np.linalg.norm(np.nan_to_num(person.root_std_m))), across, dist / f


def fit_root_noise(rays: list, floor: RootNoise) -> RootNoise:
    """Depth scale and angular error so that 90 % of each lies within 1.645 sigma."""
    a = np.array(rays)
    along, spread, across, dist_f = a.T
    z90 = 1.645
    scales = np.linspace(0.3, 4.0, 75)
    cover = [np.mean(np.abs(along) <= z90 * np.maximum(k * spread, floor.depth_floor * dist_f
                                                       * 1.0)) for k in scales]  # fmt: skip
    depth_scale = float(scales[np.argmin(np.abs(np.array(cover) - 0.9))])
    # across: two axes, chi-square with 2 dof: 90 % at 2.146 sigma
    pxs = np.linspace(0.5, 10.0, 96)
    cover = [np.mean(across <= 2.146 * np.hypot(floor.across_floor_m, dist_f * p)) for p in pxs]
    across_px = float(pxs[np.argmin(np.abs(np.array(cover) - 0.9))])
    return RootNoise(depth_scale, floor.depth_floor, across_px, floor.across_floor_m)


def _mpjpe(pose: np.ndarray, gt: np.ndarray) -> float:
    return float(np.linalg.norm((pose - pose[:1]) - (gt - gt[:1]), axis=-1).mean())


# ------------------------------------------------------------------------- report
def report(n_cams: int, ground: bool, t: Tally) -> dict:
    best_cam = min(t.single_err, key=lambda c: np.median(t.single_err[c]))
    best = float(np.median(t.single_err[best_cam]))
    best_trk = min(float(np.nanmedian(v)) for v in t.single_trk.values())
    fused = float(np.median(t.fused_err))
    return {
        "cameras": n_cams, "ground": ground, "overlap_n": len(t.fused_err),
        "fused_m": fused, "best_single_m": best, "best_single_cam": best_cam,
        "ratio": fused / best, "best_single_tracked_m": best_trk,
        "oracle_m": float(np.median(t.oracle_err)),
        "fused_all_m": float(np.median(t.fused_err_all)),
        "cover90": float(np.mean(t.inside90)), "single_cover90": float(np.mean(t.single_inside90)),
        "vel_mps": float(np.median(t.vel_err)),
        "mpjpe_fused_mm": 1e3 * float(np.mean(t.mpjpe_fused)),
        "mpjpe_single_mm": 1e3 * float(np.mean(t.mpjpe_single)),
        "switches_per_100": 100.0 * t.switches / max(t.frames, 1),
        "switches_per_100_person_frames": 100.0 * t.switches / max(t.person_frames, 1),
        "handovers": t.events, "switches_per_handover": t.event_switches / max(t.events, 1),
        "missed": t.missed / max(t.person_frames, 1),
        "false_per_frame": t.false_tracks / max(t.frames, 1),
    }  # fmt: skip


def run(args, n_cams: int, ground: bool, lifter, bodies, cfg: FuserConfig) -> dict:
    rng = np.random.default_rng(args.seed)
    tally = Tally()
    for _ in range(args.scenes):
        sims = camera_sims(n_cams, lifter, ground, args.k, args.size_log_std)
        walkers = [make_walker(bodies, rng) for _ in range(args.people)]
        run_scene(sims, walkers, args.seconds, cfg, rng, args.noise_px, args.drop, tally)
    row = report(n_cams, ground, tally)
    if args.calibrate:
        row["fitted"] = fit_root_noise(tally.rays, cfg.noise)
    return row


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--cameras", type=int, nargs="+", default=[2, 3, 4])
    ap.add_argument("--scenes", type=int, default=3)
    ap.add_argument("--seconds", type=float, default=10.0)
    ap.add_argument("--people", type=int, default=6)
    ap.add_argument("--k", type=int, default=50)
    ap.add_argument("--noise-px", type=float, default=2.0)
    ap.add_argument("--drop", type=float, default=0.1, help="share of joints dropped")
    ap.add_argument("--no-ground", action="store_true", help="lift without the ground prior")
    ap.add_argument("--calibrate", action="store_true", help="training subjects, not test")
    ap.add_argument(
        "--size-log-std",
        type=float,
        default=PipelineConfig.size_log_std,
        help="placement.size_log_std (0: the lifter's body size)",
    )
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument(
        "--noise",
        nargs="+",
        default=[],
        metavar="FIELD=VALUE",
        help="RootNoise fields to try, e.g. height_sigma_m=0.05 depth_floor=0.02",
    )
    args = ap.parse_args()
    if not DATA.exists():
        print(f"needs {DATA} (shared mocap, developers and CI only)")
        return 1
    lifter = load_lifter()
    bodies = load_bodies(subjects_test=not args.calibrate)
    split = "training" if args.calibrate else "test"
    print(f"{split} subjects, {args.scenes} scenes x {args.seconds:.0f} s x {args.people} people, "
          f"30 Hz per camera, {args.noise_px} px noise, {100 * args.drop:.0f} % joints dropped, "
          f"K={args.k}\n")  # fmt: skip
    cols = ("cameras", "ground", "overlap_n", "fused_m", "best_single_m", "best_single_cam",
            "ratio", "best_single_tracked_m", "oracle_m", "cover90", "single_cover90",
            "vel_mps", "mpjpe_fused_mm", "mpjpe_single_mm", "switches_per_100",
            "handovers", "switches_per_handover", "missed", "false_per_frame")  # fmt: skip
    print("| " + " | ".join(cols) + " |")
    print("|" + "---|" * len(cols))
    for n in args.cameras:
        noise = RootNoise(**{k: float(v) for k, v in (f.split("=", 1) for f in args.noise)})
        row = run(args, n, not args.no_ground, lifter, bodies, FuserConfig(noise=noise))
        print("| " + " | ".join(_fmt(row[c]) for c in cols) + " |", flush=True)
        if "fitted" in row:
            print(f"fitted on these single-camera roots: {row['fitted']}", flush=True)
    return 0


def _fmt(v) -> str:
    if isinstance(v, float):
        return f"{v:.3f}" if abs(v) < 10 else f"{v:.1f}"
    return str(v)


if __name__ == "__main__":
    sys.exit(main())
