"""``chronoscope interpolate`` end to end through ``engine.cli.main``: real Middlebury frames, images
the tests write (8/16-bit, grey, alpha, PNG/TIFF/JPEG), and every kind of bad input."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import cv2
import numpy as np
import pytest
from test_interp_scenes import find_square, psnr_db, square_alpha, square_scene

from engine.cli import EXIT_USER_ERROR, main
from engine.interp import DEFAULT_MODEL, FALLBACK_MODEL
from engine.interp.images import expand_pattern, parse_time, read_image, time_label


def write_rgb(path: Path, rgb: np.ndarray) -> Path:
    """Write an RGB(A) array with OpenCV (which stores BGR(A))."""
    code = cv2.COLOR_RGBA2BGRA if rgb.shape[2] == 4 else cv2.COLOR_RGB2BGR
    assert cv2.imwrite(str(path), cv2.cvtColor(rgb, code))
    return path


def read_rgb(path: Path) -> np.ndarray:
    raw = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    assert raw is not None, path
    code = cv2.COLOR_BGRA2RGBA if raw.ndim == 3 and raw.shape[2] == 4 else cv2.COLOR_BGR2RGB
    return cv2.cvtColor(raw, code) if raw.ndim == 3 else raw


@pytest.fixture
def square_pair(tmp_path) -> tuple[Path, Path]:
    """The textured square at offset (0, 0) and (16, 8): true frame at t has it at (16t, 8t)."""
    return (
        write_rgb(tmp_path / "a.png", square_scene((0, 0))),
        write_rgb(tmp_path / "b.png", square_scene((16, 8))),
    )


def run_cli(args: list[str], capsys) -> tuple[int, str, str]:
    status = main(["interpolate", *[str(arg) for arg in args]])
    captured = capsys.readouterr()
    return status, captured.out, captured.err


def test_middlebury_middle_frame_matches_the_truth(shared_data, tmp_path, capsys):
    folder = shared_data / "triplets" / "middlebury-other"
    frames = folder / "input" / "Urban3"
    out = tmp_path / "middle.png"
    risk = tmp_path / "risk.png"
    status, stdout, _ = run_cli(
        [
            frames / "frame10.png",
            frames / "frame11.png",
            "--t",
            "0.5",
            "--model",
            "flow",
            "-o",
            out,
            "--risk",
            risk,
        ],
        capsys,
    )
    assert status == 0
    truth = read_rgb(folder / "gt" / "Urban3" / "frame10i11.png")
    made = read_rgb(out)
    blend = (read_rgb(frames / "frame10.png").astype(np.float32) + read_rgb(frames / "frame11.png")) / 2
    assert made.shape == truth.shape and made.dtype == np.uint8
    assert psnr_db(made, truth) > 36.0
    assert psnr_db(made, truth) > psnr_db(np.rint(blend).astype(np.uint8), truth) + 6.0
    risk_map = cv2.imread(str(risk), cv2.IMREAD_UNCHANGED)
    assert risk_map.dtype == np.uint16 and risk_map.shape == truth.shape[:2]
    error = np.abs(made.astype(np.float32) - truth).max(axis=2)
    riskiest = risk_map >= np.percentile(risk_map, 95)
    assert error[riskiest].mean() > 1.5 * error[~riskiest].mean()
    assert "model flow" in stdout and str(out) in stdout


def test_several_times_fill_the_pattern_and_put_the_square_where_it_belongs(square_pair, tmp_path, capsys):
    pattern = str(tmp_path / "out_{t}.png")
    status, _, _ = run_cli(
        [*square_pair, "--t", "0.25", "1/2", "0.75", "--model", "flow", "-o", pattern], capsys
    )
    assert status == 0
    for t, name in ((0.25, "out_0.25.png"), (0.5, "out_0.5.png"), (0.75, "out_0.75.png")):
        frame = read_rgb(tmp_path / name)
        assert find_square(frame) == (round(16 * t), round(8 * t))
        assert psnr_db(frame, square_scene((round(16 * t), round(8 * t)))) > 30.0
    assert sorted(path.name for path in tmp_path.iterdir()) == [
        "a.png",
        "b.png",
        "out_0.25.png",
        "out_0.5.png",
        "out_0.75.png",
    ]


def test_printf_pattern_numbers_outputs_and_json_reports_each_frame(square_pair, tmp_path, capsys):
    status, stdout, _ = run_cli(
        [
            *square_pair,
            "--t",
            "1/3",
            "2/3",
            "--model",
            "blend",
            "-o",
            tmp_path / "f_%03d.tif",
            "--risk",
            tmp_path / "r_{index}.png",
            "--json",
        ],
        capsys,
    )
    assert status == 0
    assert (tmp_path / "f_001.tif").is_file() and (tmp_path / "f_002.tif").is_file()
    assert (tmp_path / "r_1.png").is_file() and (tmp_path / "r_2.png").is_file()
    lines = [line for line in stdout.splitlines() if line.strip()]
    assert len(lines) == 2
    first = json.loads(lines[0])
    assert first["t_exact"] == "1/3" and first["model"] == "blend" and 0.0 <= first["risk_score"] <= 1.0


def test_sixteen_bit_alpha_and_rgb_order_pass_through(tmp_path, capsys):
    base0 = square_scene((0, 0)).astype(np.uint16) * 257 + 3
    base1 = square_scene((16, 8)).astype(np.uint16) * 257 + 3
    alpha0 = square_alpha((0, 0)).astype(np.uint16) * 257
    alpha1 = square_alpha((16, 8)).astype(np.uint16) * 257
    frame0 = np.dstack([base0, alpha0])
    frame1 = np.dstack([base1, alpha1])
    first = write_rgb(tmp_path / "a16.png", frame0)
    second = write_rgb(tmp_path / "b16.png", frame1)
    out = tmp_path / "mid16.png"
    status, _, _ = run_cli([first, second, "--t", "0.25", "--model", "blend", "-o", out], capsys)
    assert status == 0
    made = read_rgb(out)
    assert made.dtype == np.uint16 and made.shape == frame0.shape
    expected = np.floor(frame0.astype(np.float64) * 0.75 + frame1.astype(np.float64) * 0.25 + 0.5)
    assert np.array_equal(made, expected.astype(np.uint16))

    red = np.zeros((48, 64, 3), np.uint8)
    red[..., 0] = 200
    moved = red.copy()
    moved[10:20, 10:20] = (0, 0, 90)
    status, _, _ = run_cli(
        [
            write_rgb(tmp_path / "red0.png", red),
            write_rgb(tmp_path / "red1.png", moved),
            "--t",
            "0.5",
            "--model",
            "nearest",
            "-o",
            tmp_path / "red_mid.jpg",
        ],
        capsys,
    )
    assert status == 0
    raw = cv2.imread(str(tmp_path / "red_mid.jpg"), cv2.IMREAD_UNCHANGED)
    assert raw[30, 40, 2] > 180 and raw[30, 40, 0] < 30
    assert read_image(tmp_path / "red0.png").pixels[0, 0].tolist() == [200, 0, 0]


def test_grey_images_stay_grey(tmp_path, capsys):
    luma0 = cv2.cvtColor(square_scene((0, 0)), cv2.COLOR_RGB2GRAY)
    luma1 = cv2.cvtColor(square_scene((8, 4)), cv2.COLOR_RGB2GRAY)
    cv2.imwrite(str(tmp_path / "g0.png"), luma0)
    cv2.imwrite(str(tmp_path / "g1.png"), luma1)
    status, _, _ = run_cli(
        [tmp_path / "g0.png", tmp_path / "g1.png", "--model", "flow", "-o", tmp_path / "g.png"], capsys
    )
    assert status == 0
    made = cv2.imread(str(tmp_path / "g.png"), cv2.IMREAD_UNCHANGED)
    assert made.ndim == 2 and made.shape == luma0.shape
    truth = cv2.cvtColor(square_scene((4, 2)), cv2.COLOR_RGB2GRAY)
    assert psnr_db(made[..., None], truth[..., None]) > 30.0


def test_default_model_falls_back_to_flow_with_a_warning_naming_the_fix(
    square_pair, tmp_path, capsys, caplog, monkeypatch
):
    monkeypatch.setenv("CHRONOSCOPE_MODELS_DIR", str(tmp_path / "no-models"))
    caplog.set_level(logging.WARNING)
    status, stdout, _ = run_cli([*square_pair, "-o", tmp_path / "d.png"], capsys)
    assert status == 0
    assert f"model {FALLBACK_MODEL}" in stdout
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert any(DEFAULT_MODEL in text and "models prepare" in text for text in warnings), warnings
    assert find_square(read_rgb(tmp_path / "d.png")) == (8, 4)


def test_scene_cut_gives_the_nearer_frame_and_full_risk(tmp_path, capsys, caplog):
    rng = np.random.default_rng(5)
    first = write_rgb(tmp_path / "shot_a.png", square_scene((0, 0)))
    other = cv2.resize(
        rng.integers(0, 255, (20, 30, 3), dtype=np.uint8), (240, 160), interpolation=cv2.INTER_CUBIC
    )
    second = write_rgb(tmp_path / "shot_b.png", other)
    status, stdout, _ = run_cli(
        [
            first,
            second,
            "--t",
            "0.25",
            "--model",
            "flow",
            "-o",
            tmp_path / "c.png",
            "--risk",
            tmp_path / "cr.png",
        ],
        capsys,
    )
    assert status == 0
    assert np.array_equal(read_rgb(tmp_path / "c.png"), square_scene((0, 0)))
    assert cv2.imread(str(tmp_path / "cr.png"), cv2.IMREAD_UNCHANGED).min() == 65535
    assert "scene cut" in stdout


@pytest.mark.parametrize(
    ("case", "expected"),
    [
        ("missing", "image not found"),
        ("unreadable", "cannot decode"),
        ("sizes", "the frames differ"),
        ("t_zero", "outside (0, 1)"),
        ("t_above", "outside (0, 1)"),
        ("t_text", "not a number"),
        ("model", "available: blend, ensemble, flow, nearest"),
        ("model_file", "models prepare"),
        ("no_pattern", "put {t}, {index} or %d"),
        ("sixteen_to_jpeg", "8-bit samples only"),
        ("extension", "unknown extension"),
    ],
)
def test_bad_input_is_one_clear_line_and_writes_nothing(
    case, expected, square_pair, tmp_path, capsys, monkeypatch
):
    monkeypatch.setenv("CHRONOSCOPE_MODELS_DIR", str(tmp_path / "no-models"))
    first, second = square_pair
    out = tmp_path / "out" / "x.png"
    args = [first, second, "--t", "0.5", "--model", "flow", "-o", out]
    if case == "missing":
        args[1] = tmp_path / "nope.png"
    elif case == "unreadable":
        (tmp_path / "text.png").write_text("not an image")
        args[1] = tmp_path / "text.png"
    elif case == "sizes":
        args[1] = write_rgb(tmp_path / "small.png", square_scene((0, 0))[:120, :200].copy())
    elif case == "t_zero":
        args[3] = "0"
    elif case == "t_above":
        args[3] = "1.5"
    elif case == "t_text":
        args[3] = "half"
    elif case == "model":
        args[5] = "magic"
    elif case == "model_file":
        args[5] = "rife-hdv3"
    elif case == "no_pattern":
        args[2:4] = ["--t", "0.25", "0.5"]
    elif case == "sixteen_to_jpeg":
        args[0] = write_rgb(tmp_path / "a16.png", square_scene((0, 0)).astype(np.uint16) * 257)
        args[1] = write_rgb(tmp_path / "b16.png", square_scene((4, 2)).astype(np.uint16) * 257)
        args[-1] = tmp_path / "out" / "x.jpg"
    elif case == "extension":
        args[-1] = tmp_path / "out" / "x.xyz"
    status, stdout, stderr = run_cli(args, capsys)
    assert status == EXIT_USER_ERROR
    lines = [line for line in stderr.splitlines() if line.startswith("chronoscope interpolate: error:")]
    assert len(lines) == 1, stderr
    assert expected in lines[0]
    assert "Traceback" not in stderr and stdout == ""
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())


def test_time_parsing_and_names_are_exact():
    assert parse_time("1/3") == parse_time("2/6")
    assert time_label(parse_time("1/3")) == "0.333333"
    assert time_label(parse_time("0.5")) == "0.5"
    assert expand_pattern("f_%04d_{t}.png", parse_time("0.25"), 7) == Path("f_0007_0.25.png")


def test_float_images_are_refused_with_the_depths_that_work(tmp_path, capsys):
    float_image = np.random.default_rng(1).random((32, 48, 3), dtype=np.float32)
    assert cv2.imwrite(str(tmp_path / "f.tif"), float_image)
    status, _, stderr = run_cli([tmp_path / "f.tif", tmp_path / "f.tif", "-o", tmp_path / "x.png"], capsys)
    assert status == EXIT_USER_ERROR
    assert "float32 samples" in stderr and "8-bit or 16-bit" in stderr
    assert not (tmp_path / "x.png").exists()


def test_sixteen_bit_grey_tiff_stays_sixteen_bit_grey(tmp_path, capsys):
    luma0 = cv2.cvtColor(square_scene((0, 0)), cv2.COLOR_RGB2GRAY).astype(np.uint16) * 257
    luma1 = cv2.cvtColor(square_scene((8, 4)), cv2.COLOR_RGB2GRAY).astype(np.uint16) * 257
    cv2.imwrite(str(tmp_path / "g0.tif"), luma0)
    cv2.imwrite(str(tmp_path / "g1.tif"), luma1)
    status, _, _ = run_cli(
        [tmp_path / "g0.tif", tmp_path / "g1.tif", "--model", "blend", "-o", tmp_path / "g.tif"], capsys
    )
    assert status == 0
    made = cv2.imread(str(tmp_path / "g.tif"), cv2.IMREAD_UNCHANGED)
    assert made.dtype == np.uint16 and made.ndim == 2
    expected = np.floor((luma0.astype(np.float64) + luma1) / 2 + 0.5).astype(np.uint16)
    assert np.array_equal(made, expected)


def test_an_existing_image_is_replaced_only_with_overwrite(square_pair, tmp_path, capsys):
    first, second = square_pair
    out = tmp_path / "mid.png"
    out.write_bytes(b"keep me")
    status, _, err = run_cli([first, second, "--model", "blend", "-o", out], capsys)
    assert status == EXIT_USER_ERROR and "exists; choose another name or allow overwriting" in err
    assert out.read_bytes() == b"keep me"
    status, _, err = run_cli([first, second, "--model", "blend", "-o", first, "--overwrite"], capsys)
    assert status == EXIT_USER_ERROR and "is one of the input frames" in err
    status, _, _ = run_cli([first, second, "--model", "blend", "-o", out, "--overwrite"], capsys)
    assert status == 0 and read_rgb(out).shape == square_scene((0, 0)).shape
