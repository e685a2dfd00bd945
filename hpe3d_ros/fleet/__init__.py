"""Fleet replay: a campaign of bags on a Ray cluster, with the results of one machine.

Read from the top: :mod:`.cli` (``hpe3d-fleet run`` / ``compare``) turns bags, folders and
manifests into entries (:mod:`.inputs`) and calls :func:`.run.run_fleet`, which skips the bags
already done with the same key (:mod:`.identity`, :mod:`.store`), starts or joins Ray and runs
one task per bag (:mod:`.cluster`). Each task (:mod:`.worker`) calls
:func:`hpe3d_ros.replay.replay` on its bag with the models its worker process loaded once,
into an attempt folder that is renamed into ``OUT/bags/<name>/`` when finished, beside a
record with the bag's per-camera figures (:mod:`.bagstats`). The fleet tables
(:mod:`.tables`), pictures (:mod:`.plots`) and the comparison of two runs (:mod:`.compare`)
are built from those records.

Only this package imports Ray (and only :mod:`.cluster` does): the node and
``hpe3d-replay`` never load it.
"""

from hpe3d_ros.fleet.cli import main

__all__ = ["main"]
