"""Two exact edits of the shipped MultiPose graph, made in memory when the detector loads it.

* **More person slots.** The exported graph keeps the 6 highest peaks of its person-centre
  heatmap (a ``TopK`` with k = 6) and decodes each into a person; a 7th pedestrian in a network
  input is lost, and the detector used to run a crowded region again as two halves (twice the
  work on the 7-pedestrian vtest clip at 640x480). The peaks are sorted, so with k = ``slots``
  the first 6 rows are the same people as before and the next ones are the 7th, 8th... peak.
  k and every shape that carries it (8 ``Reshape`` shapes, 2 zero tensors, the flattened
  person x joint index) are set to ``slots``.
* **Cheaper input normalisation.** The graph subtracts a (1, 1, 1, 3) tensor of zeros and
  multiplies by a (1, 1, 1, 3) tensor of three equal scales; ONNX Runtime's broadcast over the
  channel axis cost 7 of 100 ms per 512x384 run. The subtraction goes and the scale becomes a
  scalar: the same numbers, bit for bit.

Both edits check every constant they touch against the shipped export and do nothing to a
graph that differs (a user's own MultiPose file keeps its 6 slots; the detector then falls back
to running crowded regions in halves). The cost of a slot is its decoding, over the whole
keypoint heatmap (the exponential weighting and arg-max per joint): about 3.7 ms per slot of a
640x480 frame's ~100 ms on one core, measured; running a crowded region again in halves costs
about 70.

The first 6 people are the same (boxes, joints, person scores). A joint's score is, as
exported, the highest heat any decoded person puts at that joint, so a 7th or 8th peak near
someone can raise a few of their joint scores slightly (by at most 0.03 on vtest frame 700).
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    import onnx

LOG = logging.getLogger(__name__)

#: Person slots of the exported graph.
EXPORT_SLOTS = 6
#: Reshape shapes and the TopK k that carry the slot count, as exported.
_SLOT_SHAPES = {
    "c0170": [6],
    "c0175": [6, 1],
    "c0177": [6, 17, 2],
    "c0191": [1, 6, 2],
    "c0198": [1, 1, 6],
    "c0201": [1, 6, 17],
    "c0204": [1, 6, 17, 2],
    "c0205": [1, 6, -1],
}
#: Zero tensors with one axis of slot length.
_SLOT_ZEROS = {"c0180": (6, 1), "c0203_fp16": (1, 6, 17)}
_JOINTS = 17


def widen_slots(model: onnx.ModelProto, slots: int) -> bool:
    """Give ``model`` (the shipped MultiPose export) ``slots`` person slots, in place.

    Returns False, leaving the model untouched, when it is not the export this expects.
    """
    from onnx import numpy_helper

    if slots < 1:
        raise ValueError(f"slots must be >= 1, got {slots}")
    inits = {i.name: i for i in model.graph.initializer}
    topk = [n for n in model.graph.node if n.op_type == "TopK"]
    expected = {**_SLOT_SHAPES, "c0199": [-1, EXPORT_SLOTS * _JOINTS]}
    if len(topk) != 1 or topk[0].input[1] != "c0170" or len(model.graph.output) != 1:
        return False
    arrays = {name: numpy_helper.to_array(inits[name]) for name in inits if name in expected}
    arrays |= {n: numpy_helper.to_array(inits[n]) for n in (*_SLOT_ZEROS, "c0200") if n in inits}
    if any(arrays.get(n) is None or arrays[n].tolist() != v for n, v in expected.items()):
        return False
    if any(arrays.get(n) is None or arrays[n].shape != s or arrays[n].any()
           for n, s in _SLOT_ZEROS.items()):  # fmt: skip
        return False
    index = np.tile(np.arange(_JOINTS), EXPORT_SLOTS)[:, None]
    if arrays.get("c0200") is None or not np.array_equal(arrays["c0200"], index):
        return False
    new = {
        name: np.where(a == EXPORT_SLOTS, slots, a).astype(a.dtype)
        for name, a in arrays.items()
        if name in _SLOT_SHAPES
    }
    new["c0199"] = np.array([-1, slots * _JOINTS], arrays["c0199"].dtype)
    new["c0200"] = np.tile(np.arange(_JOINTS), slots)[:, None].astype(arrays["c0200"].dtype)
    for name, shape in _SLOT_ZEROS.items():
        new[name] = np.zeros(tuple(slots if d == EXPORT_SLOTS else d for d in shape),
                             arrays[name].dtype)  # fmt: skip
    for name, value in new.items():
        inits[name].CopyFrom(numpy_helper.from_array(value, name))
    model.graph.output[0].type.tensor_type.shape.dim[1].dim_value = slots
    return True


def scalar_normalisation(model: onnx.ModelProto) -> bool:
    """Drop the export's subtraction of zeros and make its channel scale a scalar, in place.

    Returns False, leaving the model untouched, when the first nodes after the input cast are
    not that subtraction and multiplication.
    """
    from onnx import numpy_helper

    graph = model.graph
    inits = {i.name: i for i in graph.initializer}
    nodes = [n for n in graph.node if n.op_type != "Cast" or n.input[0] not in inits]
    if len(nodes) < 3 or [n.op_type for n in nodes[:3]] != ["Cast", "Sub", "Mul"]:
        return False
    cast, sub, mul = nodes[:3]
    if sub.input[0] != cast.output[0] or mul.input[0] != sub.output[0]:
        return False
    if sub.input[1] not in inits or mul.input[1] not in inits:
        return False
    zeros = numpy_helper.to_array(inits[sub.input[1]])
    scale = numpy_helper.to_array(inits[mul.input[1]])
    if zeros.shape != (1, 1, 1, 3) or zeros.any() or scale.shape != (1, 1, 1, 3):
        return False
    if not (scale == scale.flat[0]).all():
        return False
    if sum(sub.output[0] in n.input for n in graph.node) != 1:
        return False
    old = (sub.input[1], mul.input[1])
    name = mul.input[1] + "_scalar"
    graph.initializer.append(numpy_helper.from_array(np.array(scale.flat[0], scale.dtype), name))
    mul.input[0], mul.input[1] = cast.output[0], name
    graph.node.remove(sub)
    for unused in {n for n in old if not any(n in node.input for node in graph.node)}:
        graph.initializer.remove(inits[unused])
    return True


def edited_model(path: str, slots: int) -> tuple[bytes | None, int]:
    """(serialised model, person slots) of the MultiPose file at ``path`` with both edits.

    (None, 6) when the file is not the export these edits expect (it is then used as is).
    """
    import onnx

    model = onnx.load(path)
    if not widen_slots(model, slots):
        LOG.info("%s is not the shipped MultiPose export: 6 person slots per input", path)
        return None, EXPORT_SLOTS
    scalar_normalisation(model)
    return model.SerializeToString(), slots
