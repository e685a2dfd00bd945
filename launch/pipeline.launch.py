"""Launch the hpe3d_ros pipeline node in a ROS 2 workspace.

    ros2 launch hpe3d_ros pipeline.launch.py
    ros2 launch hpe3d_ros pipeline.launch.py config_file:=/path/my_cameras.yaml \
        namespace:=perception camera_names:="[front, rear]" use_sim_time:=true

Arguments:
    config_file   parameters file (default: the package's config/pipeline.yaml)
    namespace     namespace of the node (outputs: /<ns>/hpe3d_pipeline/<camera>/...)
    camera_names  override the camera list of the config file, e.g. "[front, rear]"
    use_sim_time  true when replaying a bag with `ros2 bag play --clock`
    log_level     rclpy log level (info, debug, ...)

The shipped config is keyed ``/**:``, so it applies under any namespace. To remap topics or
push a namespace from a launch file of yours, include this one inside a ``GroupAction`` with
``SetRemap(src=..., dst=...)`` / ``PushRosNamespace(...)``: the node has no remappings of its
own, so those in scope apply (README, "Cameras, bags and remapping").

The pip-world equivalent (no `launch` package there) is
``hpe3d-pipeline --params-file config/pipeline.yaml [--ros-args ...]``.
"""

import os

from ament_index_python.packages import get_package_share_directory
from launch.actions import DeclareLaunchArgument, OpaqueFunction, SetEnvironmentVariable
from launch.substitutions import LaunchConfiguration
from launch_ros.actions import Node

from launch import LaunchDescription


def _node(context, *args, **kwargs):
    params = [LaunchConfiguration("config_file").perform(context)]
    overrides = {"use_sim_time": LaunchConfiguration("use_sim_time").perform(context) == "true"}
    cameras = LaunchConfiguration("camera_names").perform(context).strip()
    if cameras:
        names = [c.strip() for c in cameras.strip("[]").split(",") if c.strip()]
        overrides["camera_names"] = names
    params.append(overrides)
    return [
        Node(
            package="hpe3d_ros",
            executable="pipeline_node",
            name="hpe3d_pipeline",
            namespace=LaunchConfiguration("namespace"),
            parameters=params,
            arguments=["--ros-args", "--log-level", LaunchConfiguration("log_level")],
            output="screen",
            emulate_tty=True,
        )
    ]


def generate_launch_description():
    share = get_package_share_directory("hpe3d_ros")
    profile = os.path.join(share, "config", "fastdds_shm.xml")
    return LaunchDescription(
        [
            DeclareLaunchArgument(
                "config_file",
                default_value=os.path.join(share, "config", "pipeline.yaml"),
                description="Parameters file of the pipeline node",
            ),
            DeclareLaunchArgument("namespace", default_value="", description="Node namespace"),
            DeclareLaunchArgument(
                "camera_names", default_value="", description='Override cameras, "[a, b]"'
            ),
            DeclareLaunchArgument(
                "use_sim_time", default_value="false", description="Use /clock (bag replay)"
            ),
            DeclareLaunchArgument("log_level", default_value="info", description="Log level"),
            # Large images need a shared-memory segment bigger than Fast DDS's default 512 KB;
            # keep a profile the user already exported.
            SetEnvironmentVariable(
                "FASTRTPS_DEFAULT_PROFILES_FILE",
                os.environ.get("FASTRTPS_DEFAULT_PROFILES_FILE", profile),
            ),
            SetEnvironmentVariable(
                "FASTDDS_DEFAULT_PROFILES_FILE",
                os.environ.get("FASTDDS_DEFAULT_PROFILES_FILE", profile),
            ),
            OpaqueFunction(function=_node),
        ]
    )
