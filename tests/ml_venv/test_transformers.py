"""The Learner's use-case transformers: power-forecast windows and horizon pairs on exact series,
reading order and gaps, state across a restart, sensor forecasts; tabular validation; image decoding,
annotation and a real classifier on synthetic leaf images."""

from __future__ import annotations

import importlib.util
import io
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from servers.common.errors import FailedPrecondition, InvalidArgument
from servers.learner.ml import images
from servers.learner.ml.base import CLASSIFICATION, REGRESSION, Obs, Reading
from servers.learner.ml.transformers import TRANSFORMERS, make_transformer

ROOT = Path(__file__).resolve().parents[2]
T0 = datetime(2024, 3, 4, tzinfo=UTC)
STEP = timedelta(seconds=900)


def power(**overrides):
    params = {"window": 3, "horizon": 2, "interval_seconds": 900, "scale_min": 0.0, "scale_max": 100.0}
    params.update(overrides)
    return make_transformer("power-forecast", REGRESSION, params)


def readings(values, sensor="W4", start=0):
    return [Obs(reading=Reading(sensor, T0 + (start + i) * STEP, float(v))) for i, v in enumerate(values)]


# ---------------------------------------------------------------- power-forecast


def test_ramp_windows_pair_each_window_with_the_reading_a_horizon_later():
    t = power()
    X, y = t.learn_pairs(readings(range(4)))  # 3 + 2 readings are needed for the first pair
    assert X.shape == (0, 3) and y.shape == (0,)
    assert t.pending() == 2  # the windows ending at readings 2 and 3 wait for their targets
    X, y = t.learn_pairs(readings(range(4, 8), start=4))
    # windows [0,1,2] -> 4, [1,2,3] -> 5, [2,3,4] -> 6, [3,4,5] -> 7, in model scale (kW / 100)
    np.testing.assert_allclose(X, np.array([[0, 1, 2], [1, 2, 3], [2, 3, 4], [3, 4, 5]]) / 100, rtol=1e-6)
    np.testing.assert_allclose(y, np.array([4, 5, 6, 7]) / 100, rtol=1e-6)
    assert X.dtype == np.float32 and y.dtype == np.float32
    assert t.feature_names == ["lag_3", "lag_2", "lag_1"]
    np.testing.assert_allclose(t.to_units(y), [4, 5, 6, 7], rtol=1e-6)
    np.testing.assert_allclose(t.monitor_rows(X)[0], [0, 1, 2], atol=1e-5)


def test_default_horizon_is_a_day_of_quarter_hours_and_scale_is_min_max():
    t = make_transformer("power-forecast", REGRESSION, {"scale_min": 10.0, "scale_max": 30.0})
    assert t.input_shape == (36,) and t.feature_names[0] == "lag_36" and t.feature_names[-1] == "lag_1"
    X, y = t.learn_pairs(readings(np.arange(36 + 96) + 10.0))
    assert X.shape == (1, 36)
    np.testing.assert_allclose(X[0], (np.arange(36) + 10.0 - 10.0) / 20.0, rtol=1e-6)
    assert y[0] == pytest.approx((36 + 96 - 1) / 20.0)  # the 96th reading after the window's last


def test_sensors_keep_separate_windows():
    t = power()
    mixed = []
    for a, b in zip(readings(range(5), "W4"), readings(range(100, 105), "W6"), strict=True):
        mixed += [a, b]
    X, y = t.learn_pairs(mixed)
    np.testing.assert_allclose(X * 100, [[0, 1, 2], [100, 101, 102]], rtol=1e-5)
    np.testing.assert_allclose(y * 100, [4, 104], rtol=1e-5)


def test_out_of_order_reading_is_refused_and_the_batch_not_kept():
    t = power()
    t.learn_pairs(readings(range(3)))
    before = t.state()
    batch = readings([3, 4], start=3) + readings([9], start=1)  # the last goes back in time
    with pytest.raises(InvalidArgument, match=r"observation 2: sensor 'W4' reading .* not after"):
        t.learn_pairs(batch)
    assert t.state() == before
    with pytest.raises(InvalidArgument, match="observation 0"):  # the same time again
        t.learn_pairs(readings([7], start=2))


def test_gap_restarts_the_sensor_window_and_is_counted():
    t = power()
    t.learn_pairs(readings(range(4)))
    X, _ = t.learn_pairs(readings([50, 51, 52, 53], start=6))  # readings 4 and 5 never came
    assert t.gaps == 1 and len(X) == 0  # only 4 readings since the gap: no pair yet
    X, y = t.learn_pairs(readings([54], start=10))
    np.testing.assert_allclose(X[0] * 100, [50, 51, 52], rtol=1e-5)
    assert y[0] * 100 == pytest.approx(54)
    # 1.5 intervals is still the next reading
    t2 = power()
    t2.learn_pairs([Obs(reading=Reading("W4", T0, 1.0)), Obs(reading=Reading("W4", T0 + STEP * 1.5, 2.0))])
    assert t2.gaps == 0


def test_state_round_trip_keeps_forming_pairs_after_a_restart():
    t = power(window=3, horizon=4)
    t.learn_pairs(readings(range(20)))
    state = json.loads(json.dumps(t.state()))
    assert len(state["sensors"]["W4"]["values"]) == 3 + 4  # bounded to window + horizon
    restarted = power(window=3, horizon=4)
    restarted.load_state(state)
    assert restarted.pending() == t.pending() == 4
    X, y = restarted.learn_pairs(readings([20], start=20))
    np.testing.assert_allclose(X[0] * 100, [14, 15, 16], rtol=1e-5)
    assert y[0] * 100 == pytest.approx(20)
    X2, y2 = t.learn_pairs(readings([20], start=20))
    np.testing.assert_array_equal(X, X2)
    with pytest.raises(FailedPrecondition):
        restarted.load_state({"sensors": {"W4": {"times": ["not a time"], "values": [1.0]}}})


def test_forecast_from_a_sensor_buffer_names_its_target_time():
    t = power(scale_min=10.0, scale_max=20.0)
    t.learn_pairs(readings([11, 12, 13, 14]))
    X, ctx = t.model_inputs([], sensor_id="W4")
    np.testing.assert_allclose(X, [[0.2, 0.3, 0.4]], rtol=1e-6)  # the latest window, model scale
    [out] = t.outputs(np.array([0.5], dtype=np.float32), ctx)
    assert out.values == [pytest.approx(15.0)]  # back in kW
    assert out.target_time == T0 + 3 * STEP + 2 * STEP  # last reading + horizon intervals
    assert t.pending() == 2
    # rows are windows in kW; they have no target time
    X, ctx = t.model_inputs([Obs(row=np.array([10.0, 15.0, 20.0]))])
    np.testing.assert_allclose(X, [[0.0, 0.5, 1.0]], rtol=1e-6)
    assert t.outputs(np.array([1.0]), ctx)[0].target_time is None


def test_too_few_readings_for_a_forecast_is_a_failed_precondition():
    t = power()
    t.learn_pairs(readings([1, 2]))
    with pytest.raises(FailedPrecondition, match=r"has 2 consecutive readings .* needs 3"):
        t.model_inputs([], sensor_id="W4")
    with pytest.raises(FailedPrecondition, match="has 0"):
        t.model_inputs([], sensor_id="W6")


def test_bad_values_and_params_are_invalid_arguments():
    t = power(sensors=["W4", "W6"])
    with pytest.raises(InvalidArgument, match=r"observation 1: sensor 'W4' value is nan"):
        t.learn_pairs(readings([1.0, float("nan")]))
    with pytest.raises(InvalidArgument, match=r"observation 0: feature 'lag_2' is inf"):
        t.learn_pairs([Obs(row=np.array([1.0, np.inf, 2.0]), target=3.0)])
    with pytest.raises(InvalidArgument, match="target is missing"):
        t.learn_pairs([Obs(row=np.array([1.0, 2.0, 3.0]))])
    with pytest.raises(InvalidArgument, match="'BBB60XX' is not one of this learner's sensors"):
        t.learn_pairs(readings([1.0], sensor="BBB60XX"))
    with pytest.raises(InvalidArgument, match="got an image"):
        t.model_inputs([Obs(image=b"x")])
    assert t.pending() == 0 and t.gaps == 0  # nothing of the refused batches was kept
    with pytest.raises(InvalidArgument, match="scale_min"):
        make_transformer("power-forecast", REGRESSION, {"scale_max": 5})
    with pytest.raises(InvalidArgument, match="scale_max"):
        make_transformer("power-forecast", REGRESSION, {"scale_min": 5, "scale_max": 5})
    with pytest.raises(InvalidArgument, match="window"):
        make_transformer("power-forecast", REGRESSION, {"window": 2.5, "scale_min": 0, "scale_max": 1})
    with pytest.raises(InvalidArgument, match="unknown key.*windw"):
        make_transformer("power-forecast", REGRESSION, {"windw": 3, "scale_min": 0, "scale_max": 1})
    with pytest.raises(InvalidArgument, match="regression"):
        make_transformer("power-forecast", CLASSIFICATION, {"scale_min": 0, "scale_max": 1})
    with pytest.raises(InvalidArgument, match="tabular, power-forecast, image"):
        make_transformer("audio", REGRESSION, {})
    assert set(TRANSFORMERS) == {"tabular", "power-forecast", "image"}
    # window sizes from JSON arrive as floats
    assert make_transformer("power-forecast", REGRESSION, {"window": 36.0, "scale_min": 0,
                                                           "scale_max": 1}).input_shape == (36,)


def test_reference_rows_from_the_power_csv_example(tmp_path):
    spec = importlib.util.spec_from_file_location("make_power_csv", ROOT / "examples" / "make_power_csv.py")
    make_power_csv = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(make_power_csv)
    path = tmp_path / "consumption.csv"
    n = make_power_csv.write_power_csv(str(path), days=2, seed=1)
    series = np.array([float(line.split(",")[1]) for line in path.read_text().splitlines()[1:]])
    t = make_transformer("power-forecast", REGRESSION, {"scale_min": 0, "scale_max": 80})
    rows = t.reference_rows(path, 1000)
    assert rows.shape == (n - 36 + 1, 36)  # every window of 36 consecutive readings
    np.testing.assert_allclose(rows[0], series[:36])  # in kW, like monitor_rows
    np.testing.assert_allclose(rows[-1], series[-36:])
    assert t.reference_rows(path, 10).shape == (10, 36)
    np.testing.assert_allclose(t.reference_rows(path, 10)[-1], series[-36:])
    # a hole in the timestamps: no window spans it
    lines = path.read_text().splitlines()
    holed = tmp_path / "holed.csv"
    holed.write_text("\n".join(lines[:51] + lines[61:]) + "\n")  # readings 50..59 missing
    assert len(t.reference_rows(holed, 10_000)) == (50 - 35) + (n - 60 - 35)
    bad = tmp_path / "bad.csv"
    bad.write_text("timestamp,kw\n2024-03-04T00:00:00,1\n")
    with pytest.raises(FailedPrecondition, match="no column 'power_kw'"):
        t.reference_rows(bad, 10)


# ---------------------------------------------------------------- tabular


def test_tabular_rows_targets_and_validation(tmp_path):
    t = make_transformer("tabular", CLASSIFICATION, {"feature_count": 3, "feature_names": ["a", "b", "c"],
                                                     "classes": ["low", "high"]})
    X, y = t.learn_pairs([Obs(row=np.array([1.0, 2.0, 3.0]), target=1.0), Obs(row=np.array([0, 0, 0.5]), target=0)])
    np.testing.assert_array_equal(X, [[1, 2, 3], [0, 0, 0.5]])
    np.testing.assert_array_equal(y, [1, 0])
    assert t.n_classes == 2 and t.class_labels == ["low", "high"]
    with pytest.raises(InvalidArgument, match="observation 1: the row has 2 values, expected 3"):
        t.learn_pairs([Obs(row=np.zeros(3), target=0), Obs(row=np.zeros(2), target=0)])
    with pytest.raises(InvalidArgument, match="observation 0: feature 'b' is nan"):
        t.learn_pairs([Obs(row=np.array([0, np.nan, 0]), target=0)])
    with pytest.raises(InvalidArgument, match="observation 0: the target is missing"):
        t.learn_pairs([Obs(row=np.zeros(3))])
    with pytest.raises(InvalidArgument, match=r"class index in 0\.\.1, got 2"):
        t.learn_pairs([Obs(row=np.zeros(3), target=2)])
    with pytest.raises(InvalidArgument, match=r"class index in 0\.\.1, got 0\.5"):
        t.learn_pairs([Obs(row=np.zeros(3), target=0.5)])
    with pytest.raises(InvalidArgument, match="sensor_id applies to power-forecast"):
        t.model_inputs([Obs(row=np.zeros(3))], sensor_id="W4")
    X, ctx = t.model_inputs([Obs(row=np.array([1.0, 2.0, 3.0]))])
    [out] = t.outputs(np.array([[0.2, 0.8]], dtype=np.float32), ctx)
    assert out.class_index == 1 and out.label == "high" and out.values == pytest.approx([0.2, 0.8])
    with pytest.raises(InvalidArgument, match="feature_names has 2 names but feature_count is 3"):
        make_transformer("tabular", REGRESSION, {"feature_count": 3, "feature_names": ["a", "b"]})
    with pytest.raises(InvalidArgument, match="feature_count is required"):
        make_transformer("tabular", REGRESSION, {})
    with pytest.raises(InvalidArgument, match="classes"):
        make_transformer("tabular", CLASSIFICATION, {"feature_count": 3})
    # reference CSV: by name, or the first numeric columns
    csv_path = tmp_path / "ref.csv"
    csv_path.write_text("id,c,b,a,label\nr1,3,2,1,x\nr2,6,5,4,y\nr3,9,8,,z\n")
    np.testing.assert_array_equal(t.reference_rows(csv_path, 10), [[1, 2, 3], [4, 5, 6]])  # the NaN row is dropped
    unnamed = make_transformer("tabular", REGRESSION, {"feature_count": 2})
    np.testing.assert_array_equal(unnamed.reference_rows(csv_path, 1), [[9, 8]])  # c, b; the most recent row
    with pytest.raises(FailedPrecondition, match="no column 'd'"):
        make_transformer("tabular", REGRESSION, {"feature_count": 1, "feature_names": ["d"]}).reference_rows(csv_path, 5)


# ---------------------------------------------------------------- image


def png(size=(40, 30), colour=(30, 160, 40)) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", size, colour).save(buf, format="PNG")
    return buf.getvalue()


def test_image_decode_resize_and_annotate():
    t = make_transformer("image", CLASSIFICATION, {"size": 8, "classes": ["healthy", "diseased"]})
    assert t.input_shape == (3, 8, 8) and len(t.feature_names) == 3 * 8 * 8
    assert t.feature_names[0] == "pixel_0_0_r" and t.feature_names[-1] == "pixel_7_7_b"
    jpeg = io.BytesIO()
    Image.new("RGB", (64, 48), (200, 100, 0)).save(jpeg, format="JPEG", quality=95)
    X, ctx = t.model_inputs([Obs(image=png()), Obs(image=jpeg.getvalue())])
    assert X.shape == (2, 3, 8, 8) and X.dtype == np.float32
    np.testing.assert_allclose(X[0, :, 3, 3], np.array([30, 160, 40]) / 255, atol=1e-6)
    np.testing.assert_allclose(X[1, :, 3, 3], np.array([200, 100, 0]) / 255, atol=4 / 255)  # JPEG is lossy
    outs = t.outputs(np.array([[0.9, 0.1], [0.25, 0.75]], dtype=np.float32), ctx)
    assert [(o.class_index, o.label) for o in outs] == [(0, "healthy"), (1, "diseased")]
    for out, size in zip(outs, [(40, 30), (64, 48)], strict=True):
        annotated = Image.open(io.BytesIO(out.annotated_image))
        assert annotated.format == "PNG" and annotated.size == size
        annotated.load()
    # the frame has the class colour: green for class 0, red for class 1
    assert Image.open(io.BytesIO(outs[0].annotated_image)).convert("RGB").getpixel((39, 29)) == images.PALETTE[0]
    assert Image.open(io.BytesIO(outs[1].annotated_image)).convert("RGB").getpixel((63, 47)) == images.PALETTE[1]
    stats = t.monitor_rows(X)
    assert t.monitor_columns == images.STAT_COLUMNS and stats.shape == (2, 5)
    np.testing.assert_allclose(stats[0, :3], np.array([30, 160, 40]) / 255, atol=1e-6)
    assert stats[0, 3] == pytest.approx(0.0, abs=1e-6)  # a flat image has no contrast


def test_garbage_bytes_are_invalid_arguments_naming_the_index():
    t = make_transformer("image", CLASSIFICATION, {"classes": ["healthy", "diseased"]})
    with pytest.raises(InvalidArgument, match="observation 1: the bytes are not a PNG or JPEG image"):
        t.learn_pairs([Obs(image=png(), target=0), Obs(image=b"definitely not an image", target=1)])
    with pytest.raises(InvalidArgument, match="observation 0: the image cannot be decoded"):
        t.model_inputs([Obs(image=png()[:60])])  # a truncated PNG
    with pytest.raises(InvalidArgument, match="observation 0: the image is empty"):
        t.model_inputs([Obs(image=b"")])
    gif = io.BytesIO()
    Image.new("RGB", (4, 4)).save(gif, format="GIF")
    with pytest.raises(InvalidArgument, match="not a PNG or JPEG"):
        t.model_inputs([Obs(image=gif.getvalue())])
    with pytest.raises(InvalidArgument, match="class index in 0..1"):
        t.learn_pairs([Obs(image=png(), target=3)])
    with pytest.raises(InvalidArgument, match="classes"):
        make_transformer("image", CLASSIFICATION, {})


def test_leaf_images_are_deterministic_and_a_linear_model_learns_them(tmp_path):
    from sklearn.linear_model import SGDClassifier

    leaves = images.generate_leaf_images(300, size=32, seed=7)
    assert images.generate_leaf_images(6, size=32, seed=7) == images.generate_leaf_images(6, size=32, seed=7)
    assert images.generate_leaf_images(6, size=32, seed=8) != images.generate_leaf_images(6, size=32, seed=7)
    assert sum(label for _, label in leaves) == 150
    t = make_transformer("image", CLASSIFICATION, {"size": 16, "classes": images.LEAF_CLASSES})
    X, y = t.learn_pairs([Obs(image=data, target=label) for data, label in leaves])
    flat = X.reshape(len(X), -1)
    model = SGDClassifier(loss="log_loss", alpha=1e-3, random_state=0)
    for _ in range(20):  # online, like the Learner: partial_fit over micro-batches
        for start in range(0, 200, 32):
            model.partial_fit(flat[start:start + 32], y[start:start + 32], classes=[0, 1])
    accuracy = (model.predict(flat[200:]) == y[200:]).mean()
    assert accuracy >= 0.8, accuracy  # chance is 0.5
    # the reference dataset of statistics reads back as the monitor's rows
    path = tmp_path / "reference.csv"
    assert images.write_reference_csv(path, (data for data, _ in leaves[:50]), 16) == 50
    assert path.read_text().splitlines()[0] == ",".join(images.STAT_COLUMNS)
    np.testing.assert_allclose(t.reference_rows(path, 1000), t.monitor_rows(X[:50]), atol=1e-6)
