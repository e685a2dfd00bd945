"""Training, data preparation and evaluation tools (not installed with the ROS package)."""
