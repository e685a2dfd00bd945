"""hpe3d_ros: 3D human skeletons with calibrated uncertainty from vehicle cameras.

The package is a ROS-free core (skeleton, camera, lifting, detection, metrics,
pipeline) with thin rclpy adapters in :mod:`hpe3d_ros.ros`. Nothing outside
``hpe3d_ros.ros`` imports rclpy or message classes.
"""

__version__ = "0.1.0"
