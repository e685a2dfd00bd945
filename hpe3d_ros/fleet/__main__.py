"""``python -m hpe3d_ros.fleet`` = ``hpe3d-fleet``."""

import sys

from hpe3d_ros.fleet.cli import main

sys.exit(main())
