"""Wire formats: masks, arrays, cameras (JSON round trips, validation) and Blender viewport cameras."""

from __future__ import annotations

import base64
import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from clickgauss_core.cameras import Camera
from clickgauss_core.errors import WireFormatError
from clickgauss_core.blender_view import blender_region_to_pixel, camera_from_blender_view
from clickgauss_core.wire import camera_from_dict, camera_to_dict, decode_array, decode_mask, encode_array, encode_mask


# -- masks -------------------------------------------------------------------------------------
@pytest.mark.parametrize("length, selected, encoding, dtype", [
    (0, [], "bits", None),
    (1, [0], "bits", None),
    (13, [0, 5, 12], "bits", None),
    (100_000, [], "delta-indices", "uint8"),
    (100_000, [7, 9, 250], "delta-indices", "uint8"),
    (100_000, [3, 60_000], "delta-indices", "uint16"),
    (1_000_000, [999_999], "delta-indices", "uint32"),
    (1_000, list(range(0, 1000, 2)), "bits", None),
])
def test_mask_round_trip_and_choice_of_encoding(length, selected, encoding, dtype):
    mask = np.zeros(length, dtype=bool)
    mask[selected] = True
    payload = encode_mask(mask)
    assert payload["encoding"] == encoding and payload.get("dtype") == dtype
    back = decode_mask(json.loads(json.dumps(payload)))
    np.testing.assert_array_equal(back, mask)
    assert back.flags.writeable


def test_mask_encoding_is_never_larger_than_the_bit_packing():
    rng = np.random.default_rng(0)
    for fraction in (0.0001, 0.01, 0.05, 0.2, 0.9):
        mask = rng.random(50_000) < fraction
        payload = encode_mask(mask)
        assert len(base64.b64decode(payload["data"])) <= len(np.packbits(mask))
        np.testing.assert_array_equal(decode_mask(payload), mask)


def test_bit_order_is_little():
    mask = np.zeros(16, dtype=bool)
    mask[[0, 9]] = True
    mask_payload = encode_mask(mask)
    assert mask_payload["encoding"] == "bits"
    assert base64.b64decode(mask_payload["data"]) == bytes([0b00000001, 0b00000010])


@pytest.mark.parametrize("payload, message", [
    ([], "mask: expected a JSON object"),
    ({"encoding": "bits", "length": -1, "data": ""}, "mask.length"),
    ({"encoding": "bits", "length": True, "data": ""}, "mask.length"),
    ({"encoding": "bits", "length": 9, "data": "AA=="}, "1 bytes for 9 bits, expected 2"),
    ({"encoding": "bits", "length": 4, "data": "/w=="}, "padding bits"),
    ({"encoding": "bits", "length": 4, "data": "not base64!"}, "mask.data: invalid base64"),
    ({"encoding": "bits", "length": 4, "data": 12}, "mask.data: expected a base64 string"),
    ({"encoding": "rle", "length": 4, "data": ""}, "mask.encoding"),
    ({"encoding": "delta-indices", "length": 4, "count": 1, "dtype": "int8", "data": "AQ=="}, "mask.dtype"),
    ({"encoding": "delta-indices", "length": 4, "count": 2, "dtype": "uint8", "data": "AQ=="}, "1 bytes for 2 uint8"),
    ({"encoding": "delta-indices", "length": 4, "count": 1, "dtype": "uint8", "data": "BQ=="}, "index 5 is out of range"),
    ({"encoding": "delta-indices", "length": 4, "count": 2, "dtype": "uint8", "data": "AQA="}, "repeated index"),
])
def test_bad_masks_name_the_field(payload, message):
    with pytest.raises(WireFormatError, match=message):
        decode_mask(payload)


def test_decode_mask_checks_the_expected_length():
    payload = encode_mask(np.ones(10, dtype=bool))
    assert decode_mask(payload, length=10).all()
    with pytest.raises(WireFormatError, match="mask.length: 10, but the scene has 11 Gaussians"):
        decode_mask(payload, length=11)
    hostile = {"encoding": "delta-indices", "length": 10**15, "count": 0, "dtype": "uint8", "data": ""}
    with pytest.raises(WireFormatError, match="mask.length"):
        decode_mask(hostile, length=10)


def test_encode_mask_refuses_non_boolean():
    with pytest.raises(ValueError, match="1-D bool"):
        encode_mask(np.array([0, 1, 1]))


# -- arrays ------------------------------------------------------------------------------------
@pytest.mark.parametrize("array", [
    np.arange(12, dtype=np.int32).reshape(3, 4) - 5,
    np.linspace(-1, 1, 7, dtype=np.float32),
    np.array([[True, False]]),
    np.zeros((0, 24), dtype=np.float16),
    np.arange(5, dtype=">f8"),  # big-endian input comes back native
    np.asfortranarray(np.arange(6, dtype=np.uint16).reshape(2, 3)),
])
def test_array_round_trip(array):
    back = decode_array(json.loads(json.dumps(encode_array(array))))
    np.testing.assert_array_equal(back, array)
    assert back.dtype == array.dtype.newbyteorder("=") and back.dtype.isnative and back.flags.writeable


@pytest.mark.parametrize("payload, message", [
    ({"dtype": "object", "shape": [1], "data": ""}, "array.dtype"),
    ({"dtype": "float32", "shape": [2, -1], "data": ""}, "array.shape"),
    ({"dtype": "float32", "shape": "3", "data": ""}, "array.shape"),
    ({"dtype": "float32", "shape": [3], "data": "AAAAAA=="}, "4 bytes, expected 12"),
])
def test_bad_arrays_name_the_field(payload, message):
    with pytest.raises(WireFormatError, match=message):
        decode_array(payload)


def test_encode_array_refuses_objects():
    with pytest.raises(ValueError, match="dtype object"):
        encode_array(np.array([{}, 1], dtype=object))


# -- cameras -----------------------------------------------------------------------------------
def _camera(**overrides):
    camera = Camera.look_at([1.0, 2.0, 3.0], [0.0, 0.0, 0.0], width=320, height=240, fx=300.0, fy=301.0,
                            cx=160.5, cy=119.5, name="view 7")
    for key, value in overrides.items():
        setattr(camera, key, value)
    return camera


@pytest.mark.parametrize("projection", ["perspective", "orthographic"])
def test_camera_round_trip_is_exact(projection):
    camera = _camera(projection=projection, near=0.25, far=50.0)
    back = camera_from_dict(json.loads(json.dumps(camera_to_dict(camera))))
    np.testing.assert_array_equal(back.world_to_camera, camera.world_to_camera)
    for key in ("width", "height", "fx", "fy", "cx", "cy", "projection", "near", "far", "name"):
        assert getattr(back, key) == getattr(camera, key)


def _bad(**changes):
    payload = camera_to_dict(_camera())
    payload.update(changes)
    return payload


@pytest.mark.parametrize("payload, message", [
    ("camera", "camera: expected a JSON object"),
    (_bad(fov=1.0), "unknown field.*fov"),
    ({k: v for k, v in camera_to_dict(_camera()).items() if k != "fx"}, "missing field.*fx"),
    (_bad(width=0), "camera.width: expected a positive integer"),
    (_bad(height=240.5), "camera.height"),
    (_bad(fx="300"), "camera.fx: expected a finite number"),
    (_bad(cy=float("nan")), "camera.cy: expected a finite number"),
    (_bad(fy=-1.0), "fx and fy must be positive"),
    (_bad(world_to_camera=[[1, 0, 0], [0, 1, 0], [0, 0, 1]]), "camera.world_to_camera: expected a 4x4"),
    (_bad(world_to_camera=np.diag([1.0, 2.0, 1.0, 1.0]).tolist()), "not a proper rotation"),
    (_bad(projection="fisheye"), "camera.projection"),
    (_bad(near=10.0, far=1.0), "near/far"),
    (_bad(name=5), "camera.name"),
])
def test_bad_cameras_name_the_field(payload, message):
    with pytest.raises(WireFormatError, match=message):
        camera_from_dict(payload)


def test_camera_optional_fields_default():
    payload = {k: v for k, v in camera_to_dict(_camera()).items() if k not in ("projection", "near", "far", "name")}
    camera = camera_from_dict(payload)
    assert camera.projection == "perspective" and camera.near == 0.01 and camera.far == 1e4


# -- Blender viewport -> Camera ------------------------------------------------------------------
def _blender_view_matrix(eye, target):
    """world -> view for a viewer at `eye` looking at `target`, z up (OpenGL view axes)."""
    eye, target = np.asarray(eye, float), np.asarray(target, float)
    back = eye - target
    back /= np.linalg.norm(back)
    right = np.cross([0.0, 0.0, 1.0], back)
    right /= np.linalg.norm(right)
    up = np.cross(back, right)
    c2w = np.eye(4)
    c2w[:3, 0], c2w[:3, 1], c2w[:3, 2], c2w[:3, 3] = right, up, back, eye
    return np.linalg.inv(c2w)


def _perspective(l, r, b, t, n, f):
    return np.array([[2 * n / (r - l), 0, (r + l) / (r - l), 0], [0, 2 * n / (t - b), (t + b) / (t - b), 0],
                     [0, 0, -(f + n) / (f - n), -2 * f * n / (f - n)], [0, 0, -1, 0]])


def _orthographic(l, r, b, t, n, f):
    return np.array([[2 / (r - l), 0, 0, -(r + l) / (r - l)], [0, 2 / (t - b), 0, -(t + b) / (t - b)],
                     [0, 0, -2 / (f - n), -(f + n) / (f - n)], [0, 0, 0, 1]])


def _object_matrix(scale):
    angle = 0.7
    rotation = np.array([[np.cos(angle), -np.sin(angle), 0], [np.sin(angle), np.cos(angle), 0], [0, 0, 1]])
    model = np.eye(4)
    model[:3, :3] = rotation @ np.diag(scale)
    model[:3, 3] = [0.5, -1.0, 0.25]
    return model


def _blender_pixels(view, proj, model, local_points, width, height):
    """What Blender draws: clip = P V M p, NDC, then pixels with the origin top-left."""
    homogeneous = np.c_[local_points, np.ones(len(local_points))]
    clip = homogeneous @ (proj @ view @ model).T
    ndc = clip[:, :3] / clip[:, 3:4]
    return np.stack([(ndc[:, 0] + 1) / 2 * width, (1 - ndc[:, 1]) / 2 * height], axis=1)


@pytest.mark.parametrize("kind", ["perspective", "orthographic"])
@pytest.mark.parametrize("scale", [1.0, 2.5])
def test_blender_view_camera_projects_like_blender(kind, scale):
    width, height = 800, 600
    view = _blender_view_matrix([4.0, -6.0, 3.0], [0.0, 0.0, 0.5])
    if kind == "perspective":  # off-centre frustum, as a shifted Blender camera view gives
        proj = _perspective(-0.35, 0.45, -0.3, 0.28, 0.1, 100.0)
    else:
        proj = _orthographic(-4.0, 4.4, -3.0, 3.2, -50.0, 50.0)
    model = _object_matrix([scale] * 3)
    local = np.random.default_rng(1).uniform(-1, 1, size=(30, 3))
    camera = camera_from_blender_view(view, proj, width, height, object_matrix_world=model)
    assert camera.projection == kind
    uv, depth = camera.project(local)
    np.testing.assert_allclose(uv, _blender_pixels(view, proj, model, local, width, height), atol=1e-6)
    view_z = (np.c_[local, np.ones(30)] @ (view @ model).T)[:, 2]
    np.testing.assert_allclose(depth, -view_z / scale, rtol=1e-9)  # depth in the object's units
    np.testing.assert_allclose(camera.unproject(uv, depth), local, atol=1e-9)
    expected_near, expected_far = (0.1, 100.0) if kind == "perspective" else (-50.0, 50.0)
    assert camera.near == pytest.approx(expected_near / scale) and camera.far == pytest.approx(expected_far / scale)
    camera.validate()
    back = camera_from_dict(json.loads(json.dumps(camera_to_dict(camera))))
    np.testing.assert_allclose(back.project(local)[0], uv, atol=1e-9)


def test_blender_view_without_object_matrix_uses_world_frame():
    view = _blender_view_matrix([0.0, -5.0, 0.0], [0.0, 0.0, 0.0])
    camera = camera_from_blender_view(view, _perspective(-0.1, 0.1, -0.075, 0.075, 0.1, 10.0), 400, 300)
    uv, depth = camera.project(np.array([[0.0, 0.0, 0.0], [0.0, 0.0, 1.0]]))
    np.testing.assert_allclose(uv[0], [200.0, 150.0])
    assert depth[0] == pytest.approx(5.0)
    assert uv[1, 1] < 150.0  # world up is image up
    np.testing.assert_allclose(camera.center, [0.0, -5.0, 0.0], atol=1e-12)


@pytest.mark.parametrize("scale, message", [([1.0, 2.0, 1.0], "non-uniform"), ([-1.0, 1.0, 1.0], "mirroring")])
def test_blender_view_refuses_non_uniform_or_mirrored_objects(scale, message):
    view = _blender_view_matrix([4.0, -6.0, 3.0], [0.0, 0.0, 0.5])
    with pytest.raises(ValueError, match=message):
        camera_from_blender_view(view, _perspective(-1, 1, -1, 1, 0.1, 10), 100, 100, _object_matrix(scale))


def test_blender_view_refuses_an_unknown_projection():
    proj = _perspective(-1, 1, -1, 1, 0.1, 10)
    proj[3] = [0.0, 0.5, -1.0, 0.0]
    with pytest.raises(ValueError, match="neither perspective nor orthographic"):
        camera_from_blender_view(np.eye(4), proj, 100, 100)


def test_blender_region_pixel_is_flipped_to_top_left_centre():
    assert blender_region_to_pixel(0, 0, 600) == (0.5, 599.5)
    assert blender_region_to_pixel(799, 599, 600) == (799.5, 0.5)


# -- fuzzing: any JSON gives a decoded value or a WireFormatError ----------------------------------

JSON_VALUES = st.recursive(st.none() | st.booleans() | st.integers(-10, 10**6) | st.floats(allow_nan=True)
                           | st.text(max_size=12), lambda inner: st.lists(inner, max_size=5)
                           | st.dictionaries(st.text(max_size=8), inner, max_size=5), max_leaves=20)
MASK_LIKE = st.fixed_dictionaries({"encoding": st.sampled_from(["bits", "delta-indices", "x"]),
                                   "length": st.integers(-2, 64) | JSON_VALUES,
                                   "data": st.binary(max_size=12).map(lambda b: base64.b64encode(b).decode()) | JSON_VALUES},
                                  optional={"count": st.integers(-1, 10), "dtype": st.sampled_from(["uint8", "uint16", "int4"])})
ARRAY_LIKE = st.fixed_dictionaries({"dtype": st.sampled_from(["float32", "int16", "bool", "object"]) | JSON_VALUES,
                                    "shape": st.lists(st.integers(-1, 4), max_size=3) | JSON_VALUES,
                                    "data": st.binary(max_size=40).map(lambda b: base64.b64encode(b).decode())})
CAMERA_LIKE = st.builds(lambda changes: {**camera_to_dict(_camera()), **changes},
                        st.dictionaries(st.sampled_from(["world_to_camera", "width", "height", "fx", "fy", "cx", "cy",
                                                         "projection", "near", "far", "name"]), JSON_VALUES, max_size=3))


@settings(max_examples=300, deadline=None, database=None)
@given(payload=JSON_VALUES | MASK_LIKE | ARRAY_LIKE | CAMERA_LIKE)
def test_decoders_fail_only_with_wire_format_errors(payload):
    for decode in (decode_mask, decode_array, camera_from_dict):
        try:
            decode(payload)
        except WireFormatError:
            pass
