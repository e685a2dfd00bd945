"""How a fleet run ends early: asked to stop, or no Ray cluster (raised by
:mod:`hpe3d_ros.fleet.cluster`, caught by :mod:`hpe3d_ros.fleet.cli`)."""


class Stopped(Exception):
    """The run was asked to stop (a signal); the bags in flight were cancelled."""


class ClusterError(RuntimeError):
    """No Ray cluster could be started or joined (the message says why, in one line)."""
