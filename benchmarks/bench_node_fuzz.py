"""Node fuzz: tens of thousands of hostile camera messages into the live node over real DDS.

The node runs as its own process (pip-world runner, shipped models) with three cameras:
``good`` (a real 768x576 frame of pedestrians at 2 Hz), ``raw`` and ``jpeg`` (every kind of
:mod:`benchmarks.fuzz_messages`, round-robin, in bursts of 500 back to back every 2,000 and
paced in between); CameraInfo fuzz goes to ``raw``'s info topic. Fuzz topics are reliable
with depth 100 so the node really sees (and must account for) every message.

Reports: messages sent per stream, the node's accounting per camera (received = processed +
dropped + failed), the node's memory high-water mark (VmHWM) after warm-up and at the end,
its log volume during the fuzz (bytes, lines, warning lines, longest line), the healthy
camera's processed rate before and during the fuzz, and the exit status on SIGTERM.

    source tools/ros_env.sh
    nice -n 10 .venv/bin/python benchmarks/bench_node_fuzz.py --messages 30000

`test/test_reliability_node_fuzz.py` runs a 3,000-message variant in `make test`.
"""

from __future__ import annotations

import argparse
import signal
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
from sensor_msgs.msg import CameraInfo, CompressedImage, Image  # noqa: E402

from benchmarks.fuzz_messages import STREAMS, Fuzzer, burst_plan  # noqa: E402
from hpe3d_ros.camera import CameraModel  # noqa: E402
from hpe3d_ros.imaging import encode_raw  # noqa: E402
from hpe3d_ros.ros.conversions import ns_to_stamp  # noqa: E402

RELIABLE = QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE)
DEEP = QoSProfile(depth=100, reliability=ReliabilityPolicy.RELIABLE)
CAMERAS = {
    "good": {"image_topic": "/fz/good/image", "camera_info_topic": "/fz/good/info"},
    "raw": {"image_topic": "/fz/raw/image", "camera_info_topic": "/fz/raw/info"},
    "jpeg": {"image_topic": "/fz/jpeg/image/compressed", "camera_info_topic": "/fz/jpeg/info",
             "compressed": True},
}  # fmt: skip


def proc_status_mb(pid: int, field: str) -> float:
    """``VmRSS`` / ``VmHWM`` (peak resident memory) of a process, MB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024.0
    return float("nan")


def log_stats(text: str) -> dict:
    lines = text.splitlines()
    return {
        "bytes": len(text.encode()),
        "lines": len(lines),
        "warn_lines": sum("WARN" in ln for ln in lines),
        "longest_line": max((len(ln) for ln in lines), default=0),
        "foreign_lines": sum(not ln.startswith("[") for ln in lines if ln.strip()),
    }


class Driver:
    """The test side: publishers, the healthy camera and the diagnostics it records."""

    def __init__(self) -> None:
        self.node = rclpy.create_node("fuzz_driver")
        self.diags: list[DiagnosticArray] = []
        self.node.create_subscription(DiagnosticArray, "/diagnostics", self.diags.append,
                                      RELIABLE)  # fmt: skip
        pub = self.node.create_publisher
        self.good = (pub(Image, "/fz/good/image", RELIABLE),
                     pub(CameraInfo, "/fz/good/info", RELIABLE))  # fmt: skip
        self.fuzz = {
            "raw": self.node.create_publisher(Image, "/fz/raw/image", DEEP),
            "compressed": self.node.create_publisher(CompressedImage, "/fz/jpeg/image/compressed",
                                                     DEEP),
            "info": self.node.create_publisher(CameraInfo, "/fz/raw/info", DEEP),
        }  # fmt: skip
        rgb = cv2.cvtColor(cv2.imread(str(REPO / "test/data/vtest_0260.jpg")), cv2.COLOR_BGR2RGB)
        data, step = encode_raw(rgb, "rgb8")
        self.img = Image(height=rgb.shape[0], width=rgb.shape[1], encoding="rgb8", step=step,
                         data=data)  # fmt: skip
        cam = CameraModel.from_fov(rgb.shape[1], rgb.shape[0], 60.0)
        self.info = CameraInfo(width=cam.width, height=cam.height, distortion_model="plumb_bob",
                               d=[0.0] * 5, k=cam.K.ravel().tolist())  # fmt: skip
        self.last_good = 0.0

    def good_tick(self, period_s: float = 0.5) -> None:
        now = time.monotonic()
        if now - self.last_good >= period_s:
            self.last_good = now
            stamp = ns_to_stamp(time.time_ns())
            self.img.header.stamp = self.info.header.stamp = stamp
            self.img.header.frame_id = self.info.header.frame_id = "good_optical"
            self.good[1].publish(self.info)
            self.good[0].publish(self.img)

    def values(self, camera: str) -> dict:
        for d in reversed(self.diags):
            for s in d.status:
                if s.hardware_id == camera:
                    level = s.level if isinstance(s.level, int) else ord(s.level)
                    return {kv.key: kv.value for kv in s.values} | {"level": level}
        return {}

    def processed(self, camera: str = "good") -> int:
        return int(self.values(camera).get("processed", 0))

    def spin_for(self, seconds: float, tick: bool = True) -> None:
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            if tick:
                self.good_tick()
            rclpy.spin_once(self.node, timeout_sec=0.05)


def run_fuzz(messages: int, seed: int = 0, rate_hz: float = 400.0,
             log_path: Path | None = None, image_qos: tuple[str, int] = ("reliable", 100),
             ) -> dict:  # fmt: skip
    """``image_qos``: the node's (qos.image_reliability, qos.image_depth); the default makes
    DDS deliver (nearly) every message; the shipped ("best_effort", 1) keeps the newest."""
    params = {"camera_names": list(CAMERAS), "cameras": CAMERAS,
              "qos": {"image_reliability": image_qos[0], "image_depth": image_qos[1]},
              "lifter": {"num_hypotheses": 10}, "diagnostics": {"period_s": 0.5}}  # fmt: skip
    with tempfile.NamedTemporaryFile("w", suffix=".yaml", delete=False) as f:
        yaml.safe_dump({"/**": {"ros__parameters": params}}, f)
    log_path = Path(log_path or tempfile.mktemp(suffix=".log"))
    fuzzer = Fuzzer(seed)
    proc = subprocess.Popen(
        [sys.executable, "-m", "hpe3d_ros.ros.node", "--params-file", f.name],
        cwd=REPO, stdout=log_path.open("w"), stderr=subprocess.STDOUT,
    )  # fmt: skip
    own_context = not rclpy.ok()
    if own_context:
        rclpy.init()
    drv = Driver()
    sent = dict.fromkeys(STREAMS, 0)
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and drv.processed() < 2:
            if proc.poll() is not None:
                raise RuntimeError(f"node exited {proc.returncode}:\n{log_path.read_text()}")
            drv.spin_for(0.2)
        if drv.processed() < 2:
            raise RuntimeError(f"node did not process the healthy camera:\n{log_path.read_text()}")
        p0, t0 = drv.processed(), time.monotonic()
        drv.spin_for(8.0)
        base_rate = (drv.processed() - p0) / (time.monotonic() - t0)
        # the healthy camera's failures before the fuzz: at start-up its first image may beat
        # its first CameraInfo to the node (two topics), one "missing CameraInfo" each
        good_failed_warm = int(drv.values("good").get("failed", 0))
        jpeg_info = fuzzer.info("valid", time.time_ns(), "jpeg_optical")
        drv.node.create_publisher(CameraInfo, "/fz/jpeg/info", DEEP).publish(jpeg_info)
        hwm_warm = proc_status_mb(proc.pid, "VmHWM")
        log_offset = log_path.stat().st_size
        p1, t1 = drv.processed(), time.monotonic()
        next_t, rss_max = t1, 0.0
        for i in range(messages):
            stream = STREAMS[i % len(STREAMS)]
            frame = {"raw": "raw_optical", "compressed": "jpeg_optical", "info": "raw_optical"}
            _, msg = fuzzer.message(stream, i // len(STREAMS), time.time_ns(), frame[stream])
            drv.fuzz[stream].publish(msg)
            sent[stream] += 1
            drv.good_tick()
            rclpy.spin_once(drv.node, timeout_sec=0.0)
            if i % 500 == 0:
                rss_max = max(rss_max, proc_status_mb(proc.pid, "VmRSS"))
                if proc.poll() is not None:
                    break
            if not burst_plan(i):
                next_t += 1.0 / rate_hz
                time.sleep(max(0.0, next_t - time.monotonic()))
            else:
                next_t = time.monotonic()
        fuzz_s = time.monotonic() - t1
        drv.spin_for(4.0)
        fuzz_rate = (drv.processed() - p1) / (time.monotonic() - t1)
        drv.spin_for(6.0, tick=False)  # nothing in flight: the last frames finish, counters settle
        alive = proc.poll() is None
        hwm_end = proc_status_mb(proc.pid, "VmHWM") if alive else float("nan")
        rss_end = {k: proc_status_mb(proc.pid, k) for k in ("RssAnon", "RssShmem")}
        cams = {c: {k: int(v[k]) for k in ("received", "processed", "dropped", "failed")}
                for c in CAMERAS if (v := drv.values(c))}  # fmt: skip
        levels = {c: int(drv.values(c).get("level", -1)) for c in CAMERAS}
    finally:
        drv.node.destroy_node()
        if own_context:
            rclpy.try_shutdown()
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
        try:
            rc = proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            rc = proc.wait()
    text = log_path.read_text(errors="replace")
    return {
        "alive": alive, "exit_status": rc, "messages": sum(sent.values()), "sent": sent,
        "kinds": dict(sorted(fuzzer.counts.items())), "fuzz_s": fuzz_s, "cameras": cams,
        "levels": levels, "good_rate_before_hz": base_rate, "good_rate_during_hz": fuzz_rate,
        "good_failed_during": cams.get("good", {}).get("failed", 0) - good_failed_warm,
        "hwm_after_warmup_mb": hwm_warm, "hwm_end_mb": hwm_end, "rss_max_sampled_mb": rss_max,
        "rss_end_mb": rss_end, "image_qos": image_qos,
        "log": log_stats(text[log_offset:]), "log_path": str(log_path),
    }  # fmt: skip


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--messages", type=int, default=30_000)
    ap.add_argument("--rate", type=float, default=400.0, help="pace outside bursts, msg/s")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--log", type=Path, default=None, help="keep the node's log here")
    ap.add_argument(
        "--image-qos",
        nargs=2,
        default=["reliable", "100"],
        metavar=("RELIABILITY", "DEPTH"),
        help="the node's image subscription QoS",
    )
    args = ap.parse_args()
    qos = (args.image_qos[0], int(args.image_qos[1]))
    r = run_fuzz(args.messages, args.seed, args.rate, args.log, qos)
    print(f"image QoS {qos[0]} depth {qos[1]}: "
          f"{r['messages']} messages in {r['fuzz_s']:.0f} s ({r['sent']}), "
          f"{len(r['kinds'])} kinds; node alive at the end: {r['alive']}, "
          f"exit status on SIGTERM: {r['exit_status']}\n")  # fmt: skip
    print("| camera | received | processed | dropped | failed | accounted |")
    print("|---|---|---|---|---|---|")
    for name, c in r["cameras"].items():
        ok = c["received"] == c["processed"] + c["dropped"] + c["failed"]
        print(f"| {name} | {c['received']} | {c['processed']} | {c['dropped']} | "
              f"{c['failed']} | {'yes' if ok else 'NO'} |")  # fmt: skip
    lg = r["log"]
    print(
        f"\nmemory high-water mark (VmHWM): {r['hwm_after_warmup_mb']:.0f} MB after warm-up, "
        f"{r['hwm_end_mb']:.0f} MB at the end (+{r['hwm_end_mb'] - r['hwm_after_warmup_mb']:.0f}"
        f" MB; resident at the end: {r['rss_end_mb']['RssAnon']:.0f} MB anonymous, "
        f"{r['rss_end_mb']['RssShmem']:.0f} MB shared memory)\n"
        f"log during the fuzz: {lg['bytes']} bytes, {lg['lines']} lines "
        f"({lg['warn_lines']} WARN, {lg['foreign_lines']} not from the ROS logger), longest "
        f"{lg['longest_line']} characters\nhealthy camera: {r['good_rate_before_hz']:.2f} Hz "
        f"processed before, {r['good_rate_during_hz']:.2f} Hz during the fuzz"
    )
    return 0 if r["alive"] and r["exit_status"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
