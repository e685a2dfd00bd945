"""Parameters: the shipped YAML documents every parameter; bad values name the parameter."""

import pytest

from hpe3d_ros.config import (
    PARAMS,
    ConfigError,
    build_config,
    camera_params,
    load_config,
    load_params_file,
)
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
    assert cfg.detector["mode"] == "bottom_up" and cfg.tracking["max_missed"] == 10


def test_more_cameras_with_default_topics():
    cfg = build_config({"camera_names": ["front", "rear_left"]})
    assert [c.name for c in cfg.cameras] == ["front", "rear_left"]
    assert cfg.cameras[1].image_topic == "/rear_left/camera/image_raw"


def test_ground_prior_and_tracking_switches():
    cfg = build_config({"placement.camera_height_m": 1.4, "tracking.enabled": False})
    assert cfg.pipeline.camera_height_m == 1.4 and cfg.pipeline.ground is not None
    assert cfg.tracking == {}


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
