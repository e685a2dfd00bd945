"""Parameters: the shipped YAML documents every parameter; bad values name the parameter."""

import pytest

from hpe3d_ros.config import ConfigError, build_config, load_config
from hpe3d_ros.param_schema import PARAMS, camera_params
from hpe3d_ros.params_file import load_params_file, read_params_file
from test.conftest import REPO

SHIPPED = REPO / "config" / "pipeline.yaml"


def test_shipped_yaml_lists_every_parameter_with_its_default():
    values = load_params_file(SHIPPED)
    specs = {s.name: s for s in (*PARAMS, *camera_params("front"))}
    assert set(values) == set(specs)
    for name, spec in specs.items():
        assert values[name] == spec.default, name


def test_shipped_config_listens_to_front_camera():
    cfg = load_config(SHIPPED)
    (cam,) = cfg.cameras
    assert cam.name == "front"
    assert cam.image_topic == "/front/camera/image_raw"
    assert cam.camera_info_topic == "/front/camera/camera_info"
    assert cfg.pipeline.num_hypotheses == 50 and cfg.pipeline.camera_height_m is None
    assert cfg.detector.mode == "bottom_up" and cfg.tracking.max_missed == 10
    assert cfg.output.markers and cfg.diagnostics.period_s == 1.0 and not cam.rectified


def test_more_cameras_with_default_topics():
    cfg = build_config({"camera_names": ["front", "rear_left"]})
    assert [c.name for c in cfg.cameras] == ["front", "rear_left"]
    assert cfg.cameras[1].image_topic == "/rear_left/camera/image_raw"


def test_ground_prior_and_tracking_switches():
    cfg = build_config({"placement.camera_height_m": 1.4, "tracking.enabled": False})
    assert cfg.pipeline.camera_height_m == 1.4 and cfg.pipeline.ground is not None
    assert cfg.tracking is None and cfg.smoothing is None


@pytest.mark.parametrize(
    ("values", "names"),
    [
        ({"lifter.num_hypotheses": "fifty"}, "lifter.num_hypotheses"),
        ({"lifter.num_hypotheses": 0}, "lifter.num_hypotheses"),
        ({"lifter.num_hypotheses": 5000}, "lifter.num_hypotheses"),
        ({"lifter.min_keypoint_confidence": 1.5}, "lifter.min_keypoint_confidence"),
        ({"tracking.enabled": 1}, "tracking.enabled"),
        ({"detector.mode": "sideways"}, "detector.mode"),
        ({"detector.input_size": 500}, "detector.input_size"),
        ({"detector.tiles": [2]}, "detector.tiles"),
        ({"qos.image_reliability": "sometimes"}, "qos.image_reliability"),
        ({"camera_names": []}, "camera_names"),
        ({"camera_names": ["front", "front"]}, "camera_names"),
        ({"camera_names": ["front cam"]}, "camera_names"),
        ({"camera_names": "front"}, "camera_names"),
        ({"cameras.rear.image_topic": "/x"}, "cameras.rear.image_topic"),
        ({"lifter.wieghts": "x.pt"}, "lifter.wieghts"),
        ({"smoothing.enabled": True, "tracking.enabled": False}, "smoothing.enabled"),
        # values that cannot work are outside the schema's ranges
        ({"detector.tiles": [1000, 1000]}, "detector.tiles"),
        ({"detector.tiles": [0, 1]}, "detector.tiles"),
        ({"detector.tiles": [9, 1]}, "detector.tiles"),
        ({"detector.tiles": [2, 1, 1]}, "detector.tiles"),
        ({"detector.tiles": [1.5, 1]}, "detector.tiles"),
        ({"detector.tiles": [8, 8], "detector.input_size": 1024}, "detector.tiles"),
        ({"detector.tiles": [3, 3], "detector.input_size": 2048}, "detector.tiles"),
        ({"detector.input_size": 4096}, "detector.input_size"),
        ({"detector.person_threshold": float("nan")}, "detector.person_threshold"),
        ({"diagnostics.period_s": float("inf")}, "diagnostics.period_s"),
        ({"diagnostics.period_s": 0.0}, "diagnostics.period_s"),
        ({"camera_names": [f"c{i}" for i in range(17)]}, "camera_names"),
        ({"camera_names": ["c" * 65]}, "camera_names"),
        ({"camera_names": [7]}, "camera_names"),
        ({"cameras.front.image_topic": ""}, "cameras.front.image_topic"),
        ({"cameras.front.image_topic": "/a b"}, "cameras.front.image_topic"),
        ({"cameras.front.image_topic": "/a//b"}, "cameras.front.image_topic"),
        ({"cameras.front.camera_info_topic": "/1cam/info"}, "cameras.front.camera_info_topic"),
        ({"cameras.front.image_topic": "/" + "a" * 300}, "cameras.front.image_topic"),
        ({"cameras.front.frame_id": "front optical"}, "cameras.front.frame_id"),
        ({"lifter.weights": "x" * 5000}, "lifter.weights"),
        (
            {"diagnostics.stall_warn_s": 10.0, "diagnostics.stall_error_s": 5.0},
            "diagnostics.stall_error_s",
        ),
        ({"diagnostics.stall_warn_s": 0.0}, "diagnostics.stall_warn_s"),
    ],
)
def test_invalid_values_fail_with_the_parameter_named(values, names):
    with pytest.raises(ConfigError, match=names.replace(".", r"\.")):
        build_config(values)


def test_unreadable_params_file(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("a: [unclosed")
    with pytest.raises(ConfigError, match="cannot read parameters file"):
        load_params_file(bad)
    with pytest.raises(ConfigError, match="cannot read"):
        load_params_file(tmp_path / "missing.yaml")


def test_wildcard_section_and_node_section_merge(tmp_path):
    f = tmp_path / "p.yaml"
    f.write_text(
        "/**:\n  ros__parameters:\n    lifter: {num_hypotheses: 10, seed: 3}\n"
        "hpe3d_pipeline:\n  ros__parameters:\n    lifter: {num_hypotheses: 20}\n"
    )
    cfg = load_config(f)
    assert cfg.pipeline.num_hypotheses == 20 and cfg.pipeline.seed == 3


@pytest.mark.parametrize(
    "values",
    [
        {"detector.tiles": [8, 8]},  # 64 tiles of 512 px: the most the schema allows
        {"detector.tiles": [2, 2], "detector.input_size": 2048},
        {"camera_names": [f"c{i}" for i in range(16)]},
        {"cameras.front.image_topic": "~/image", "cameras.front.camera_info_topic": "info"},
        {"cameras.front.frame_id": "front_optical"},
        {"lifter.num_hypotheses": 1000},
    ],
)
def test_values_at_the_bounds_are_accepted(values):
    build_config(values)


def test_every_default_is_inside_its_own_constraints():
    cfg = build_config({})
    for spec in (*PARAMS, *camera_params("front")):
        assert cfg.values[spec.name] == spec.default
        assert spec.description


def test_long_values_are_shown_cut_in_errors():
    with pytest.raises(ConfigError) as err:
        build_config({"cameras.front.frame_id": "x y" * 100_000})
    assert len(str(err.value)) < 400


# ---------------------------------------------------------------- parameters files
def _write(tmp_path, text: str):
    f = tmp_path / "p.yaml"
    f.write_text(text)
    return f


@pytest.mark.parametrize("text", ["", "\n# only a comment\n", "{}\n", "~\n"])
def test_an_empty_params_file_is_refused(tmp_path, text):
    with pytest.raises(ConfigError, match="is empty"):
        load_config(_write(tmp_path, text))


def test_a_misspelt_node_key_is_refused_not_silently_defaulted(tmp_path):
    f = _write(tmp_path, "hpe3d_pipline:\n  ros__parameters:\n    lifter: {seed: 3}\n")
    with pytest.raises(ConfigError, match=r"no section for node /hpe3d_pipeline.*hpe3d_pipline"):
        load_config(f)


def test_a_params_file_for_other_nodes_only_is_refused(tmp_path):
    f = _write(tmp_path, "camera_driver:\n  ros__parameters:\n    fps: 30\n")
    with pytest.raises(ConfigError, match="no section for node"):
        load_params_file(f)
    with pytest.raises(ConfigError, match="not a mapping"):
        read_params_file(_write(tmp_path, "- 1\n- 2\n"))


def test_a_section_without_ros_parameters_is_refused(tmp_path):
    f = _write(tmp_path, "hpe3d_pipeline:\n  lifter: {seed: 3}\n")
    with pytest.raises(ConfigError, match="ros__parameters"):
        load_params_file(f)


def test_shipped_config_applies_under_any_namespace():
    plain = load_params_file(SHIPPED)
    assert SHIPPED.read_text().count("\n/**:\n") == 1  # keyed for every node
    for fqn in ("/perception/hpe3d_pipeline", "/a/b/hpe3d_pipeline", "/renamed"):
        assert load_params_file(SHIPPED, fqn) == plain


def test_a_node_keyed_section_does_not_apply_under_a_namespace(tmp_path):
    f = _write(tmp_path, "hpe3d_pipeline:\n  ros__parameters:\n    lifter: {seed: 3}\n")
    assert load_params_file(f) == {"lifter.seed": 3}
    with pytest.raises(ConfigError, match="no section for node /perception/hpe3d_pipeline"):
        load_params_file(f, "/perception/hpe3d_pipeline")
    g = _write(tmp_path, "/perception/hpe3d_pipeline:\n  ros__parameters:\n    lifter: {seed: 4}")
    assert load_params_file(g, "/perception/hpe3d_pipeline") == {"lifter.seed": 4}


def test_later_sections_win_as_in_rcl(tmp_path):
    f = _write(
        tmp_path,
        "hpe3d_pipeline:\n  ros__parameters:\n    lifter: {seed: 1}\n"
        "/**:\n  ros__parameters:\n    lifter: {seed: 2, num_hypotheses: 7}\n",
    )
    assert load_params_file(f) == {"lifter.seed": 2, "lifter.num_hypotheses": 7}
