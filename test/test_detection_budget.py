"""The detector's work per frame is bounded: planned passes, crowd halves and top-down crops
fit one budget; what a frame gives up is the smallest people, said once a minute.

Also the in-memory edits of the MultiPose graph (more person slots, scalar normalisation).
"""

from __future__ import annotations

import logging
from pathlib import Path

import cv2
import numpy as np
import onnx
import onnxruntime as ort
import pytest

from hpe3d_ros.detection import Detector, load_detector
from hpe3d_ros.detection.movenet_multipose import MULTIPOSE_ONNX, MoveNetMultiPose
from hpe3d_ros.detection.multipose_decode import HEADS, decode
from hpe3d_ros.detection.multipose_graph import edited_model, scalar_normalisation, widen_slots
from hpe3d_ros.detection.scales import (
    DEFAULT_BUDGET,
    RUN_OVERHEAD,
    plan_cost,
    plan_passes,
    smallest_person_px,
)

DATA = Path(__file__).resolve().parent / "data"


@pytest.fixture(scope="module")
def detector() -> Detector:
    return load_detector()


def read_rgb(path: Path) -> np.ndarray:
    return cv2.cvtColor(cv2.imread(str(path)), cv2.COLOR_BGR2RGB)


# ----------------------------------------------------------------------------- the plan
@pytest.mark.parametrize("size", [(8000, 8000), (8192, 8192), (3840, 2160), (65535, 40), (1, 1)])
@pytest.mark.parametrize("budget", [1.0, DEFAULT_BUDGET, 20.0])
def test_plan_fits_the_budget_giving_up_the_smallest_people(
    size: tuple[int, int], budget: float
) -> None:
    """A huge image plans at most the budget (it planned 319 tiles at 8192^2 before)."""
    w, h = size
    passes = plan_passes(w, h, budget=budget)
    assert plan_cost(passes) <= budget
    assert sum(len(p.regions) for p in passes) <= budget / RUN_OVERHEAD
    unbounded = plan_passes(w, h, budget=1e9)
    if plan_cost(unbounded) > budget:  # what was given up: the smallest people
        assert smallest_person_px(passes) > smallest_person_px(unbounded)
        assert max(p.level for p in passes) < max(p.level for p in unbounded)
        assert passes[0].level == unbounded[0].level or len(passes) == 1  # near people kept


def test_8000px_frame_runs_within_the_budget_and_says_so(
    detector: Detector, caplog: pytest.LogCaptureFixture
) -> None:
    """A valid 8000 x 8000 frame (77 s per frame before): at most the budget, one log line."""
    image = np.full((8000, 8000, 3), 90, np.uint8)
    with caplog.at_level(logging.WARNING, logger="hpe3d_ros.detection"):
        detector.detect(image)
        detector.detect(image)
    work = detector.last_work
    assert work.used <= work.budget == DEFAULT_BUDGET
    assert work.smallest_person_px > 64 * 1.05 and work.gave_up
    lines = [r.getMessage() for r in caplog.records if "8000x8000" in r.getMessage()]
    assert len(lines) == 1 and "finding people from" in lines[0]


def test_default_sizes_are_planned_in_full() -> None:
    """Up to 1280x720 every scale the defaults ask for fits the default budget."""
    for w, h in [(640, 480), (768, 576), (1280, 720)]:
        passes = plan_passes(w, h)
        assert plan_cost(passes) <= DEFAULT_BUDGET and not passes.limited
        assert smallest_person_px(passes) <= 64 * 1.05
    # a small image whose input side rounds to 32 px is not "limited by the budget"
    assert not plan_passes(320, 240, min_person_px=80).limited
    assert plan_passes(1920, 1080).limited


def test_crowd_halves_are_paid_from_the_budget(caplog: pytest.LogCaptureFixture) -> None:
    """With no budget left after the planned pass, a full crowd is not run again: said once."""
    image = read_rgb(DATA / "vtest_0700.png")
    six = MoveNetMultiPose(tiles=(1, 1), coarse_size=0, input_size=768, slots=6, budget=2.0)
    with caplog.at_level(logging.WARNING, logger="hpe3d_ros.detection"):
        for _ in range(3):
            assert len(six.detect(image)) == 6
    work = six.last_work
    assert work.skipped_splits == 1 and work.used == work.planned <= work.budget
    lines = [r for r in caplog.records if "crowded" in r.getMessage()]
    assert len(lines) == 1  # throttled: one line a minute, not one a frame


def test_top_down_crops_are_paid_from_the_budget() -> None:
    """Proposals beyond what the passes left are not refined (best-scored ones are)."""
    image = read_rgb(DATA / "vtest_0700.png")
    passes = plan_cost(plan_passes(768, 576))
    crop = 256 * 256 / 512**2 + RUN_OVERHEAD  # one Thunder crop
    tight = load_detector(mode="top_down", budget=passes + 3.5 * crop)
    people = tight.detect(image)
    work = tight.proposer.last_work
    assert work.skipped_crops > 0 and work.used <= work.budget
    assert 1 <= len(people) <= 3
    roomy = load_detector(mode="top_down")
    assert len(roomy.detect(image)) > len(people)
    assert roomy.proposer.last_work.skipped_crops == 0


# ----------------------------------------------------------------------------- the graph
def run(session: ort.InferenceSession, image: np.ndarray) -> np.ndarray:
    return session.run(None, {"input": image[None].astype(np.int32)})[0][0]


def session(model: bytes | str) -> ort.InferenceSession:
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1  # one thread: the argmax ties break the same way
    return ort.InferenceSession(model, opts, providers=["CPUExecutionProvider"])


def test_more_slots_keep_the_first_six_people_and_add_the_next_peaks() -> None:
    image = cv2.resize(read_rgb(DATA / "vtest_0700.png"), (768, 576))
    edited, slots = edited_model(str(MULTIPOSE_ONNX), 12, heads=False)
    assert slots == 12
    six, twelve = run(session(str(MULTIPOSE_ONNX)), image), run(session(edited), image)
    assert six.shape == (6, 56) and twelve.shape == (12, 56)
    # same people in the same order (boxes, joints, person scores); a joint's score is the
    # best decoded person's heat at that joint, so the extra peaks may raise it slightly
    np.testing.assert_array_equal(twelve[:6, 51:], six[:, 51:])
    yx = np.arange(51).reshape(17, 3)[:, :2].ravel()
    np.testing.assert_array_equal(twelve[:6, yx], six[:, yx])
    assert (twelve[:6, 2:51:3] >= six[:, 2:51:3] - 1e-6).all()
    assert (twelve[6:, 55] <= six[5, 55] + 1e-6).all()  # sorted: the 7th peak onwards
    assert (twelve[:, 55] > 0.2).sum() == 8  # the 8 pedestrians counted by eye


@pytest.mark.parametrize("slots", [6, 16])
def test_decoding_outside_the_graph_is_bit_for_bit_the_graphs(slots: int) -> None:
    """Heads + NumPy decoding == the whole graph with as many slots, on real frames of all
    kinds (a crowd, near, waist-up) at the network sizes the planner uses: the same cells,
    boxes and scores (to the last bit or two of float32: NumPy's exp is not ONNX Runtime's)."""
    whole_bytes, _ = edited_model(str(MULTIPOSE_ONNX), slots, heads=False)
    heads_bytes, _ = edited_model(str(MULTIPOSE_ONNX), slots)
    whole, heads = session(whole_bytes), session(heads_bytes)
    assert len(heads.get_outputs()) == len(HEADS)
    for name in ("vtest_0700.png", "eval/basketball1_waist_up.jpg", "eval/astronaut.jpg"):
        for size in [(512, 384), (192, 128), (768, 576), (256, 256)]:
            image = cv2.resize(read_rgb(DATA / name), size)
            feed = {"input": image[None].astype(np.int32)}
            expected = whole.run(None, feed)[0][0]
            np.testing.assert_allclose(decode(heads.run(None, feed), slots), expected, atol=1e-6)


def test_scalar_normalisation_is_exact() -> None:
    model = onnx.load(str(MULTIPOSE_ONNX))
    subs = [n.op_type for n in model.graph.node].count("Sub")
    assert scalar_normalisation(model)
    assert [n.op_type for n in model.graph.node].count("Sub") == subs - 1
    image = cv2.resize(read_rgb(DATA / "vtest_0040.jpg"), (512, 384))
    np.testing.assert_array_equal(
        run(session(model.SerializeToString()), image), run(session(str(MULTIPOSE_ONNX)), image)
    )


def test_another_graph_is_left_as_it_is(tmp_path: Path) -> None:
    """A MultiPose file that is not the shipped export keeps its 6 slots; the detector works."""
    model = onnx.load(str(MULTIPOSE_ONNX))
    top_k = next(i for i in model.graph.initializer if i.name == "c0170")
    top_k.CopyFrom(onnx.numpy_helper.from_array(np.array([5], np.int64), "c0170"))
    assert not widen_slots(model, 12)
    assert not scalar_normalisation(
        onnx.helper.make_model(onnx.helper.make_graph([], "g", [], []))
    )
    other = onnx.load(str(MULTIPOSE_ONNX))  # one more output: not the export, still MultiPose
    other.graph.output.append(onnx.helper.make_tensor_value_info("Sub_3:0", 1, None))
    onnx.save(other, str(tmp_path / "other.onnx"))
    det = MoveNetMultiPose(model_path=tmp_path / "other.onnx", tiles=(1, 1), coarse_size=0,
                           input_size=768)  # fmt: skip
    assert det.slots == 6 and det.session.get_outputs()[0].name == "output_0"  # the graph
    assert len(det.detect(read_rgb(DATA / "vtest_0700.png"))) == 8  # crowd halves
    broken = tmp_path / "broken.onnx"
    broken.write_bytes(b"not a model")
    with pytest.raises(RuntimeError, match=r"broken\.onnx"):
        MoveNetMultiPose(model_path=broken)


def test_budget_comes_from_the_parameters() -> None:
    """``detector.budget`` reaches the detector; values that cannot work are refused."""
    from hpe3d_ros.build import build_detector
    from hpe3d_ros.config import ConfigError, load_config

    assert load_config(None).detector.budget == DEFAULT_BUDGET
    det = build_detector(load_config(None, **{"detector.budget": 2.0}).detector)
    assert det.budget == 2.0
    assert plan_cost(det.plan(1920, 1080)) <= 2.0 and det.plan(1920, 1080).limited
    for bad in (0.0, 0.1, 1000.0, float("nan")):
        with pytest.raises(ConfigError, match=r"detector\.budget"):
            load_config(None, **{"detector.budget": bad})
