"""hpe3d_ros: 3D human skeletons with calibrated uncertainty from vehicle cameras.

The package is a ROS-free core (skeleton, camera, lifting, detection, metrics, pipeline)
with thin rclpy adapters in :mod:`hpe3d_ros.ros`. Nothing outside ``hpe3d_ros.ros`` imports
rclpy or message classes.
"""

from pkgutil import extend_path

# The generated message classes (``hpe3d_ros.msg``) live wherever rosidl installed them: in a
# colcon install that is this very directory; in the pip world (editable install of this
# source tree) it is the venv's site-packages. Extending the package path finds them in both.
__path__ = extend_path(__path__, __name__)

__version__ = "0.2.0"
