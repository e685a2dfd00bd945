"""End-to-end latency of the live node over real DDS: image published -> markers received.

Starts the node (`python -m hpe3d_ros.ros.node`, the pip-world runner) with the shipped
config, publishes a real 640x480 frame of pedestrians (test/data/vtest_0260.jpg, resized)
with CameraInfo at the given rates, and reports p50/p95 latency of the MarkerArray that
answers each image (matched by stamp), the processed rate and the drop count.

    source tools/ros_env.sh && .venv/bin/python benchmarks/bench_node_latency.py --rates 10 30
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np
import yaml

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import rclpy  # noqa: E402
from rclpy.qos import QoSProfile, ReliabilityPolicy  # noqa: E402
from sensor_msgs.msg import CameraInfo, Image  # noqa: E402
from visualization_msgs.msg import MarkerArray  # noqa: E402

from hpe3d_ros.camera import CameraModel  # noqa: E402
from hpe3d_ros.imaging import encode_raw  # noqa: E402
from hpe3d_ros.ros.conversions import ns_to_stamp, stamp_to_ns  # noqa: E402
from hpe3d_ros.ros.topics import output_topic  # noqa: E402


def nest(flat: dict) -> dict:
    """{"a.b": 1} -> {"a": {"b": 1}} (ROS parameter files nest dotted names)."""
    out: dict = {}
    for name, value in flat.items():
        *parents, leaf = name.split(".")
        node = out
        for p in parents:
            node = node.setdefault(p, {})
        node[leaf] = value
    return out


def run(rate_hz: float, seconds: float, k: int, extra: dict | None = None) -> dict:
    params = {"lifter.num_hypotheses": k, "qos.image_reliability": "best_effort", **(extra or {})}
    with tempfile.NamedTemporaryFile("w", suffix=".yaml", delete=False) as f:
        yaml.safe_dump({"hpe3d_pipeline": {"ros__parameters": nest(params)}}, f)
    proc = subprocess.Popen(
        [sys.executable, "-m", "hpe3d_ros.ros.node", "--params-file", f.name],
        cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT,
    )  # fmt: skip
    node = rclpy.create_node(f"latency_bench_{int(rate_hz)}")
    rgb = cv2.cvtColor(cv2.imread(str(REPO / "test/data/vtest_0260.jpg")), cv2.COLOR_BGR2RGB)
    rgb = cv2.resize(rgb, (640, 480), interpolation=cv2.INTER_AREA)
    cam = CameraModel.from_fov(640, 480, 60.0)
    data, step = encode_raw(rgb, "rgb8")
    sent: dict[int, float] = {}
    latencies: list[float] = []

    def on_markers(m: MarkerArray) -> None:
        t = time.monotonic()
        s = stamp_to_ns(m.markers[0].header.stamp) if m.markers else -1
        if s in sent:
            latencies.append(1e3 * (t - sent.pop(s)))

    qos = QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE)
    node.create_subscription(MarkerArray, output_topic("front", "markers"), on_markers, qos)
    img_pub = node.create_publisher(
        Image,
        "/front/camera/image_raw",
        QoSProfile(depth=1, reliability=ReliabilityPolicy.BEST_EFFORT),
    )
    info_pub = node.create_publisher(CameraInfo, "/front/camera/camera_info", qos)
    info = CameraInfo(width=640, height=480, distortion_model="plumb_bob", d=[0.0] * 5)
    info.k = cam.K.ravel().tolist()
    # warm-up: wait until the node answers at all
    t_end = time.monotonic() + 60
    published = 0
    measuring = False
    t_start = None
    next_t = time.monotonic()
    while time.monotonic() < t_end:
        now = time.monotonic()
        if now >= next_t:
            next_t += 1.0 / rate_hz
            stamp = int(now * 1e9)
            info.header.stamp = ns_to_stamp(stamp)
            info_pub.publish(info)
            msg = Image(height=480, width=640, encoding="rgb8", step=step, data=data)
            msg.header.stamp, msg.header.frame_id = ns_to_stamp(stamp), "front_optical"
            sent[stamp] = time.monotonic()
            img_pub.publish(msg)
            if measuring:
                published += 1
        rclpy.spin_once(node, timeout_sec=max(0.0, min(0.005, next_t - time.monotonic())))
        if not measuring and latencies:
            measuring, t_start = True, time.monotonic()
            latencies.clear()
            t_end = t_start + seconds
    elapsed = time.monotonic() - (t_start or time.monotonic())
    node.destroy_node()
    proc.terminate()
    proc.wait(timeout=15)
    lat = np.asarray(latencies)
    return {
        "rate_hz": rate_hz,
        "published": published,
        "answered": len(lat),
        "processed_hz": len(lat) / elapsed if elapsed else 0.0,
        "p50_ms": float(np.percentile(lat, 50)) if lat.size else float("nan"),
        "p95_ms": float(np.percentile(lat, 95)) if lat.size else float("nan"),
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rates", type=float, nargs="+", default=[10.0, 30.0])
    ap.add_argument("--seconds", type=float, default=20.0)
    ap.add_argument("-k", type=int, default=50)
    ap.add_argument("--set", nargs="*", default=[], metavar="NAME=VALUE",
                    help="parameter overrides, e.g. detector.tiles=[1,1]")  # fmt: skip
    args = ap.parse_args()
    extra = {n: yaml.safe_load(v) for n, v in (a.split("=", 1) for a in args.set)}
    rclpy.init()
    print("| input rate | published | answered | processed rate | latency p50 | latency p95 |")
    print("|---|---|---|---|---|---|")
    try:
        for rate in args.rates:
            r = run(rate, args.seconds, args.k, extra)
            cells = [
                f"{r['rate_hz']:.0f} Hz",
                r["published"],
                r["answered"],
                f"{r['processed_hz']:.1f} Hz",
                f"{r['p50_ms']:.0f} ms",
                f"{r['p95_ms']:.0f} ms",
            ]
            print("| " + " | ".join(str(c) for c in cells) + " |")
    finally:
        rclpy.try_shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
