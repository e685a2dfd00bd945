"""pip / setuptools entry point of hpe3d_ros (the pip-installed ROS 2 world).

In a ROS 2 workspace, colcon builds the package with CMakeLists.txt (messages + this Python
package via ament_cmake_python); there this file is not used.
"""

from pathlib import Path

from setuptools import find_packages, setup

ROOT = Path(__file__).resolve().parent
VERSION = "0.2.0"  # keep in step with package.xml

setup(
    name="hpe3d_ros",
    version=VERSION,
    description="3D human skeletons with calibrated uncertainty from vehicle cameras (ROS 2)",
    long_description=(ROOT / "README.md").read_text(encoding="utf-8"),
    long_description_content_type="text/markdown",
    license="Apache-2.0",
    python_requires=">=3.10",
    packages=find_packages(include=["hpe3d_ros", "hpe3d_ros.*", "training", "training.*"]),
    package_data={"hpe3d_ros": ["weights/*"]},
    data_files=[
        ("share/hpe3d_ros", ["package.xml"]),
        ("share/hpe3d_ros/launch", [str(p.relative_to(ROOT)) for p in ROOT.glob("launch/*")]),
        ("share/hpe3d_ros/config", [str(p.relative_to(ROOT)) for p in ROOT.glob("config/*")]),
    ],
    # The PyPI names of package.xml's Python dependencies; test/test_packaging.py keeps them in
    # step with package.xml, the imports of hpe3d_ros/ and the pins of requirements.lock.
    # rosbags, mcap (zstandard, lz4): bag reading and writing (hpe3d_ros.replay.bagio)
    install_requires=[
        "numpy",
        "opencv-python-headless",
        "PyYAML",
        "scipy",
        "torch",
        "onnxruntime",
        "onnx",
        "tqdm",
        "matplotlib",
        "rosbags",
        "mcap",
        "zstandard",
        "lz4",
    ],
    # hpe3d-fleet only (hpe3d_ros/fleet/; the node and hpe3d-replay never import it)
    extras_require={"fleet": ["ray"]},
    # Every command is also a ROS executable (hpe3d-replay -> `ros2 run hpe3d_ros hpe3d_replay`):
    # scripts/ has one launcher each, installed by CMakeLists.txt (test/test_packaging.py).
    entry_points={
        "console_scripts": [
            "hpe3d-pipeline = hpe3d_ros.ros.node:main",
            "hpe3d-replay = hpe3d_ros.replay:main",
            "hpe3d-make-bag = hpe3d_ros.replay.make_bag:main",
            "hpe3d-export = hpe3d_ros.backends.export:main",
            "hpe3d-build-engine = hpe3d_ros.backends.tensorrt_engine:main",
            "hpe3d-fleet = hpe3d_ros.fleet:main",
        ]
    },
)
