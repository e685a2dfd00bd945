# Source me: the ROS 2 environment this project's tests and pip-world tools use.
# - discovery stays on this host (without it Fast DDS multicasts out of the network interface),
# - a domain id unique to this run unless one is set,
# - the shared-memory transport profile that large images need (config/fastdds_shm.xml),
# - logs inside the build tree.
_hpe3d_root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
export ROS_AUTOMATIC_DISCOVERY_RANGE=${ROS_AUTOMATIC_DISCOVERY_RANGE:-LOCALHOST}
export ROS_DOMAIN_ID=${ROS_DOMAIN_ID:-$((100 + RANDOM % 100))}
export RMW_IMPLEMENTATION=${RMW_IMPLEMENTATION:-rmw_fastrtps_cpp}
export FASTRTPS_DEFAULT_PROFILES_FILE=${FASTRTPS_DEFAULT_PROFILES_FILE:-$_hpe3d_root/config/fastdds_shm.xml}
export FASTDDS_DEFAULT_PROFILES_FILE=${FASTDDS_DEFAULT_PROFILES_FILE:-$FASTRTPS_DEFAULT_PROFILES_FILE}
export ROS_LOG_DIR=${ROS_LOG_DIR:-$_hpe3d_root/build/ros_log}
# exported ONNX files and TensorRT engines stay inside the checkout in tests and CI
export HPE3D_ONNX_CACHE=${HPE3D_ONNX_CACHE:-$_hpe3d_root/build/cache/onnx}
export HPE3D_ENGINE_CACHE=${HPE3D_ENGINE_CACHE:-$_hpe3d_root/build/cache/engines}
unset _hpe3d_root
