"""``python -m hpe3d_ros.replay`` = ``hpe3d-replay``."""

import sys

from hpe3d_ros.replay.cli import main

sys.exit(main())
