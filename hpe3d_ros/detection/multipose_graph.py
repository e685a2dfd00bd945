"""Exact edits of the shipped MultiPose graph, made in memory when the detector loads it.

* **Decoded outside the graph.** The export decodes its people from six head tensors in
  ONNX: for each of its 6 people and 17 joints it weights the whole joint heatmap and takes
  an arg-max, a fifth of a 512x384 run's time for 6 people and ~3.7 ms more per extra slot
  (one core). :func:`heads_model` cuts the graph at the heads and
  :func:`~.multipose_decode.decode` does the same over each person's box, the graph's output
  to float32 rounding (``test_detection_budget.py``), for any number of people: a crowd of 7-16
  in one network input is found in one run, not in the run and two halves of it.
* **More person slots** in the whole graph (:func:`widen_slots`: the ``TopK`` k and every
  shape that carries it), for a runtime that runs the whole graph. The centre peaks are
  sorted, so the first 6 rows are the same people as before.
* **Cheaper input normalisation.** The graph subtracts a (1, 1, 1, 3) tensor of zeros and
  multiplies by a (1, 1, 1, 3) tensor of three equal scales; ONNX Runtime's broadcast over the
  channel axis cost 7 of 100 ms per 512x384 run. The subtraction goes and the scale becomes a
  scalar: the same numbers, bit for bit.

Every edit checks the constants it touches against the shipped export and does nothing to a
graph that differs (a user's own MultiPose file keeps its 6 slots; the detector then falls
back to running crowded regions in halves).

With more people decoded, a joint's score is still, as exported, the highest heat any decoded
person puts at that joint, so a 7th or later peak near someone can raise a few of their joint
scores slightly (by at most 0.03 on vtest frame 700); boxes, joints and ranks do not change.
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


def edited_model(path: str, slots: int, heads: bool = True) -> tuple[bytes | None, int]:
    """(serialised model, person slots) of the MultiPose file at ``path``, edited.

    ``heads``: cut at its heads for :func:`~.multipose_decode.decode` (any number of slots at
    almost no cost); else the whole graph with ``slots`` slots. Both with the scalar input
    scale. (None, 6) when the file is not the export these edits expect (it is then run as is).
    """
    import onnx

    model = onnx.load(path)
    if not widen_slots(model, slots):  # also the check that this is the shipped export
        LOG.info("%s is not the shipped MultiPose export: 6 person slots per input", path)
        return None, EXPORT_SLOTS
    scalar_normalisation(model)
    if heads and heads_model(model) is None:
        return None, EXPORT_SLOTS
    return model.SerializeToString(), slots


def heads_model(model: onnx.ModelProto) -> onnx.ModelProto | None:
    """The export cut at its six head tensors (:data:`~.multipose_decode.HEADS`), in place,
    or None when ``model`` does not have them (its people are then decoded by the graph)."""
    from onnx import TensorProto, helper

    from hpe3d_ros.detection.multipose_decode import HEADS

    graph = model.graph
    producer = {o: n for n in graph.node for o in n.output}
    if not set(HEADS) <= producer.keys() or len(graph.input) != 1:
        return None
    needed, stack = set(), list(HEADS)
    while stack:  # the nodes the heads depend on
        node = producer.get(stack.pop())
        if node is not None and id(node) not in needed:
            needed.add(id(node))
            stack.extend(node.input)
    keep = [n for n in graph.node if id(n) in needed]
    used = {i for n in keep for i in n.input}
    inits = [i for i in graph.initializer if i.name in used]
    del graph.node[:], graph.output[:], graph.initializer[:]
    graph.node.extend(keep)
    graph.initializer.extend(inits)
    graph.output.extend(helper.make_tensor_value_info(h, TensorProto.FLOAT, None) for h in HEADS)
    return model
