"""Load: N cameras x R Hz of 640x480 frames into the node over real DDS for a while.

Reports, per camera and in total, what was published, lost before the node, received,
processed, dropped and failed (the node must account for every frame: published = received +
lost before the node, received = processed + dropped + failed),
latency p50/p95 from the node's diagnostics, and the node's resident memory after warm-up
and at the end (growth must stay < 5 %).

    source tools/ros_env.sh
    .venv/bin/python benchmarks/bench_load.py --cameras 4 --rate 30 --seconds 600

`test/test_reliability_load.py` runs a 30-second variant in `make test`.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import cv2
import yaml

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import rclpy  # noqa: E402
from diagnostic_msgs.msg import DiagnosticArray  # noqa: E402
from rclpy.qos import QoSProfile, ReliabilityPolicy  # noqa: E402
from sensor_msgs.msg import CameraInfo, Image  # noqa: E402

from hpe3d_ros.camera import CameraModel  # noqa: E402
from hpe3d_ros.imaging import encode_raw  # noqa: E402
from hpe3d_ros.ros.conversions import ns_to_stamp  # noqa: E402

RELIABLE = QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE)


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024.0
    return float("nan")


def spin_for(node, seconds: float, step_s: float) -> None:
    """Serve ``node``'s callbacks for ``seconds``, waiting at most ``step_s`` each time."""
    until = time.monotonic() + seconds
    while time.monotonic() < until:
        rclpy.spin_once(node, timeout_sec=step_s)


COUNTERS = ("received", "processed", "dropped", "failed", "lost_before_node")


def _values(diag: DiagnosticArray) -> dict[str, dict[str, str]]:
    """Per camera (``hardware_id``) its diagnostic key-value pairs."""
    return {s.hardware_id: {kv.key: kv.value for kv in s.values} for s in diag.status}


def _counters(diag: DiagnosticArray) -> dict[str, tuple[int, ...]]:
    return {cam: tuple(int(v[k]) for k in COUNTERS) for cam, v in _values(diag).items()}


def _settled(diags: list[DiagnosticArray], published: dict[str, int]) -> bool:
    """The last two diagnostics agree, count every published frame as received or lost
    before the node, and every received frame as processed, dropped or failed (none still
    in the worker)."""
    if len(diags) < 2:
        return False
    last, before = _counters(diags[-1]), _counters(diags[-2])

    def done(c: tuple[int, ...], n: int) -> bool:
        received, processed, dropped, failed, lost = c
        return received + lost >= n and received == processed + dropped + failed

    return last == before and all(
        name in last and done(last[name], n) for name, n in published.items()
    )


def run_load(
    cameras: int,
    rate_hz: float,
    seconds: float,
    log_path: Path | None = None,
    image_depth: int = 10,
) -> dict:
    """Run the node under load (module docstring); ``image_depth``: its image queue depth."""
    names = [f"cam{i}" for i in range(cameras)]
    params = {
        "camera_names": names,
        "cameras": {
            n: {"image_topic": f"/load/{n}/image", "camera_info_topic": f"/load/{n}/info"}
            for n in names
        },
        "qos": {"image_reliability": "reliable", "image_depth": image_depth},
        "diagnostics": {"period_s": 0.5},
        "lifter": {"num_hypotheses": 50},
    }
    with tempfile.NamedTemporaryFile("w", suffix=".yaml", delete=False) as f:
        yaml.safe_dump({"hpe3d_pipeline": {"ros__parameters": params}}, f)
    log = open(log_path, "w") if log_path else subprocess.DEVNULL
    proc = subprocess.Popen(
        [sys.executable, "-m", "hpe3d_ros.ros.node", "--params-file", f.name],
        cwd=REPO,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    own_context = not rclpy.ok()
    if own_context:
        rclpy.init()
    node = rclpy.create_node("load_driver")
    diags: list[DiagnosticArray] = []
    node.create_subscription(DiagnosticArray, "/diagnostics", diags.append, RELIABLE)
    rgb = cv2.cvtColor(cv2.imread(str(REPO / "test/data/vtest_0260.jpg")), cv2.COLOR_BGR2RGB)
    rgb = cv2.resize(rgb, (640, 480), interpolation=cv2.INTER_AREA)
    data, step = encode_raw(rgb, "rgb8")
    cam = CameraModel.from_fov(640, 480, 60.0)
    pubs = [
        (
            node.create_publisher(Image, f"/load/{n}/image", RELIABLE),
            node.create_publisher(CameraInfo, f"/load/{n}/info", RELIABLE),
        )
        for n in names
    ]
    info = CameraInfo(width=640, height=480, distortion_model="plumb_bob", d=[0.0] * 5)
    info.k = cam.K.ravel().tolist()
    img = Image(height=480, width=640, encoding="rgb8", step=step, data=data)
    published = dict.fromkeys(names, 0)
    try:
        # wait for the node to come up and match every publisher, images and CameraInfo
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline and not (
            diags and all(pi.get_subscription_count() and pc.get_subscription_count()
                          for pi, pc in pubs)
        ):  # fmt: skip
            rclpy.spin_once(node, timeout_sec=0.2)
        if proc.poll() is not None or not diags:
            raise RuntimeError(f"node did not start (exit {proc.poll()})")
        # a camera driver's CameraInfo comes before its first image: without this, the first
        # image can overtake the first CameraInfo on a loaded machine and count as failed
        # ("missing CameraInfo"), which is the node's right answer but not what is measured
        for name, (_, pc) in zip(names, pubs, strict=True):
            info.header.stamp = ns_to_stamp(time.monotonic_ns())
            info.header.frame_id = f"{name}_optical"
            pc.publish(info)
        spin_for(node, 0.5, 0.05)
        t0 = time.monotonic()
        next_t = t0
        rss: list[tuple[float, float]] = []
        last_rss = 0.0
        while (now := time.monotonic()) < t0 + seconds:
            if now >= next_t:
                next_t += 1.0 / rate_hz
                stamp = ns_to_stamp(int(now * 1e9))
                for name, (pi, pc) in zip(names, pubs, strict=True):
                    info.header.stamp = img.header.stamp = stamp
                    info.header.frame_id = img.header.frame_id = f"{name}_optical"
                    pc.publish(info)
                    pi.publish(img)
                    published[name] += 1
            if now - last_rss >= 1.0:
                last_rss = now
                rss.append((now - t0, rss_mb(proc.pid)))
            rclpy.spin_once(node, timeout_sec=max(0.0, min(0.002, next_t - time.monotonic())))
        # drain: the last frame in each slot gets processed, then counters settle. Under
        # reliable QoS the frames not yet taken wait in the node's reader queue (depth 10):
        # on a loaded machine that takes longer than a few seconds, so wait until every
        # published frame is counted as received (or lost before the node: a starved reader
        # queue keeps the last 10) and two reports agree (at most 60 s)
        spin_for(node, 3.0, 0.1)
        settle_until = time.monotonic() + 60.0
        while time.monotonic() < settle_until and not _settled(diags, published):
            spin_for(node, 1.0, 0.1)
        alive = proc.poll() is None
    finally:
        node.destroy_node()
        if own_context:
            rclpy.try_shutdown()
        proc.terminate()
        proc.wait(timeout=20)
    per_cam = {
        cam: {
            "published": published[cam],
            **{k: int(v[k]) for k in COUNTERS},
            "latency_p50_ms": float(v["latency_p50_ms"]),
            "latency_p95_ms": float(v["latency_p95_ms"]),
            "lost_counted_from": v.get("lost_counted_from", ""),
        }
        for cam, v in _values(diags[-1]).items()
    }
    warm = [m for t, m in rss if t >= seconds / 3]
    return {
        "alive": alive,
        "cameras": per_cam,
        "rss_after_warmup_mb": warm[0] if warm else float("nan"),
        "rss_end_mb": rss[-1][1] if rss else float("nan"),
        "rss_max_mb": max(m for _, m in rss) if rss else float("nan"),
        "seconds": seconds,
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--cameras", type=int, default=4)
    ap.add_argument("--rate", type=float, default=30.0)
    ap.add_argument("--seconds", type=float, default=600.0)
    ap.add_argument("--depth", type=int, default=10, help="the node's image queue depth")
    args = ap.parse_args()
    r = run_load(args.cameras, args.rate, args.seconds, image_depth=args.depth)
    print(
        f"{args.cameras} cameras x {args.rate:.0f} Hz x {args.seconds:.0f} s, 640x480 rgb8, "
        f"reliable depth {args.depth}; node alive at the end: {r['alive']}\n"
    )
    print("| camera | published | lost before the node | received | processed | dropped | failed "
          "| p50 | p95 |")  # fmt: skip
    print("|---|---|---|---|---|---|---|---|---|")
    for name, c in sorted(r["cameras"].items()):
        print(
            f"| {name} | {c['published']} | {c['lost_before_node']} | {c['received']} | "
            f"{c['processed']} | "
            f"{c['dropped']} | {c['failed']} | {c['latency_p50_ms']:.0f} ms | "
            f"{c['latency_p95_ms']:.0f} ms |"
        )
    growth = 100 * (r["rss_end_mb"] / r["rss_after_warmup_mb"] - 1)
    print(
        f"\nresident memory: {r['rss_after_warmup_mb']:.0f} MB after warm-up, "
        f"{r['rss_end_mb']:.0f} MB at the end ({growth:+.1f} %), max {r['rss_max_mb']:.0f} MB"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
