"""The command line contract: outputs, JSON formats, batches that carry on, exit codes."""

import json
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from superres.cli import EXIT_FAILED, EXIT_MISSING, EXIT_OK, EXIT_USAGE, build_parser, main
from superres.image.sample import sample_image


def _png(path: Path, size=(20, 16), mode="RGB") -> Path:
    rng = np.random.default_rng(len(path.name))
    Image.fromarray(rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)).convert(
        mode
    ).save(path)
    return path


def test_sample_is_upscaled_and_its_path_printed(tmp_path, capsys):
    target = tmp_path / "chart.png"
    assert main(["upscale", "--sample", "-s", "3", "-o", str(target)]) == EXIT_OK
    assert str(target) in capsys.readouterr().out
    sample = sample_image()
    assert Image.open(target).size == (sample.width * 3, sample.height * 3)


def _png_header_only(path: Path, width: int, height: int) -> Path:
    """A PNG that claims width x height pixels but holds none: a decompression bomb's header."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        crc = struct.pack(">I", zlib.crc32(kind + data))
        return struct.pack(">I", len(data)) + kind + data + crc

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IEND", b""))
    return path


def test_batch_carries_on_past_bad_files_and_reports_them(tmp_path, capsys):
    rng = np.random.default_rng(0)
    good = [_png(tmp_path / "a.png"), _png(tmp_path / "b.png", mode="L")]
    _png(tmp_path / "c.png", mode="P")
    Image.fromarray(rng.integers(0, 256, (16, 20, 3), dtype=np.uint8)).convert("CMYK").save(
        tmp_path / "d.jpg")
    Image.fromarray(rng.integers(0, 65536, (16, 20), dtype=np.uint16)).save(tmp_path / "e.png")
    rgba = Image.fromarray(rng.integers(0, 256, (16, 20, 4), dtype=np.uint8), "RGBA")
    rgba.save(tmp_path / "f.png")
    (tmp_path / "broken.png").write_bytes(good[0].read_bytes()[:60])
    jpeg = tmp_path / "cut.jpg"
    Image.fromarray(rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)).save(jpeg)
    jpeg.write_bytes(jpeg.read_bytes()[:400])
    (tmp_path / "empty.png").write_bytes(b"")
    (tmp_path / "notes.jpg").write_text("not an image")
    _png_header_only(tmp_path / "bomb.png", 100_000, 100_000)
    out = tmp_path / "out"
    code = main(["upscale", str(tmp_path), str(tmp_path / "missing.png"), "-o", str(out), "-q"])
    assert code == EXIT_FAILED
    written = sorted(p.name for p in out.iterdir())
    assert written == ["a_x4.png", "b_x4.png", "c_x4.png", "d_x4.jpg", "e_x4.png", "f_x4.png"]
    assert Image.open(out / "b_x4.png").mode == "L"
    assert Image.open(out / "e_x4.png").mode.startswith("I;16")
    assert Image.open(out / "f_x4.png").mode == "RGBA"
    errors = [line for line in capsys.readouterr().err.splitlines() if "error" in line]
    bad = ["broken.png", "cut.jpg", "empty.png", "notes.jpg", "bomb.png", "missing.png"]
    assert len(errors) == len(bad)
    for name in bad:
        assert sum(name in e for e in errors) == 1, name


def test_existing_outputs_are_not_overwritten_without_the_flag(tmp_path, capsys):
    source = _png(tmp_path / "a.png")
    target = tmp_path / "a_x2.png"
    target.write_bytes(b"keep me")
    assert main(["upscale", str(source), "-s", "2"]) == EXIT_FAILED
    assert target.read_bytes() == b"keep me"
    assert "--overwrite" in capsys.readouterr().err
    assert main(["upscale", str(source), "-s", "2", "--overwrite"]) == EXIT_OK
    assert Image.open(target).size == (40, 32)


def test_format_option_converts_the_output(tmp_path):
    source = _png(tmp_path / "a.png")
    assert main(["upscale", str(source), "-s", "2", "--format", "jpg", "-o", str(tmp_path)]) == 0
    assert Image.open(tmp_path / "a_x2.jpg").format == "JPEG"


def test_same_size_images_in_batches_come_out_as_one_by_one(tmp_path):
    for name in ("a", "b", "c"):
        _png(tmp_path / f"{name}.png")
    _png(tmp_path / "d.png", size=(12, 10))
    for batch in ("1", "4"):
        assert main(["upscale", str(tmp_path), "-s", "3", "-m", "espcn", "--batch", batch,
                     "-o", str(tmp_path / batch), "-q"]) == EXIT_OK
    for name in ("a", "b", "c", "d"):
        alone, together = (np.asarray(Image.open(tmp_path / b / f"{name}_x3.png"))
                           for b in ("1", "4"))
        np.testing.assert_array_equal(together, alone)


def test_memory_budget_half_precision_and_threads(tmp_path):
    out = tmp_path / "chart.png"
    assert main(["upscale", "--sample", "-s", "3", "-o", str(out), "--max-memory", "40MB",
                 "--half", "--threads", "1", "--tile", "0"]) == EXIT_OK
    full = tmp_path / "full.png"
    assert main(["upscale", "--sample", "-s", "3", "-o", str(full)]) == EXIT_OK
    difference = np.abs(np.asarray(Image.open(out), int) - np.asarray(Image.open(full)))
    assert difference.max() <= 1  # float16 within one level, tiles exact


def test_models_json_lists_the_interpolation_baselines(capsys):
    assert main(["models", "--json"]) == EXIT_OK
    rows = {row["name"]: row for row in json.loads(capsys.readouterr().out)}
    assert {"nearest", "bilinear", "bicubic", "lanczos"} <= set(rows)
    bicubic = rows["bicubic"]
    assert bicubic["scales"] == [2, 3, 4, 6, 8]
    assert bicubic["params"] == {"2": 0, "3": 0, "4": 0, "6": 0, "8": 0}
    assert bicubic["weights"] == [] and bicubic["reference"]["Set5"]["2"] == [33.66, 0.9299]


def test_eval_on_a_folder_prints_one_json_object(tmp_path, capsys):
    for name in ("x", "y"):
        _png(tmp_path / f"{name}.png", size=(40, 36))
    assert main(["eval", "-m", "bicubic", "-s", "2", "-d", str(tmp_path), "--json", "-q"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["model"] == "bicubic" and report["scale"] == 2
    (result,) = report["results"]
    assert set(result) == {"dataset", "images", "psnr", "ssim", "seconds", "channel"}
    assert result["channel"] == report["channel"] == "y"
    assert result["images"] == 2 and 5 < result["psnr"] < 40


def test_eval_with_several_scales_prints_one_object_per_line(tmp_path, capsys):
    _png(tmp_path / "x.png", size=(48, 48))
    assert main(["eval", "-m", "nearest", "-s", "2", "-s", "3", "-d", str(tmp_path),
                 "--json", "-q"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [json.loads(line)["scale"] for line in lines] == [2, 3]


@pytest.mark.parametrize(
    ("argv", "code", "message"),
    [
        (["upscale", "--sample", "-m", "nope"], EXIT_USAGE, "unknown model"),
        (["upscale", "--sample", "-s", "5"], EXIT_USAGE, "supports scales"),
        (["upscale"], EXIT_USAGE, "--sample"),
        (["upscale", "--sample", "--max-memory", "lots"], EXIT_USAGE, "memory size"),
        (["upscale", "--sample", "--max-memory", "1KB"], EXIT_FAILED, "too small"),
        (["upscale", "--sample", "--batch", "0"], EXIT_USAGE, "batch must be"),
        (["upscale", "--sample", "--threads", "0"], EXIT_USAGE, "threads must be"),
        (["eval", "-m", "bicubic", "-s", "2", "-d", "NoSuchSet"], EXIT_USAGE, "unknown dataset"),
        (["datasets", "verify", "NoSuchSet"], EXIT_USAGE, "unknown dataset"),
    ],
)
def test_mistakes_get_one_line_errors_and_usage_exit_codes(argv, code, message, capsys, tmp_path,
                                                           monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(argv) == code
    err = capsys.readouterr().err
    assert message in err.lower() and "Traceback" not in err


def test_an_unwritable_input_format_comes_out_as_png_and_lost_frames_are_said(
        tmp_path, capsys):
    rng = np.random.default_rng(0)
    frames = [Image.fromarray(rng.integers(0, 256, (12, 10, 3), dtype=np.uint8))
              for _ in range(3)]
    frames[0].save(tmp_path / "anim.gif", save_all=True, append_images=frames[1:])
    assert main(["upscale", str(tmp_path / "anim.gif"), "-s", "2", "-m", "bicubic"]) == EXIT_OK
    assert Image.open(tmp_path / "anim_x2.png").size == (20, 24)
    err = capsys.readouterr().err
    assert "superres: warning: " in err and "3 frames" in err and "Traceback" not in err


def test_an_output_in_a_format_that_cannot_be_written_is_refused(tmp_path, capsys):
    source = _png(tmp_path / "a.png")
    assert main(["upscale", str(source), "-s", "2", "-o", str(tmp_path / "a.gif")]) == EXIT_USAGE
    assert "cannot write .gif" in capsys.readouterr().err
    assert not (tmp_path / "a.gif").exists()


def test_an_image_name_for_the_output_of_several_inputs_is_refused(tmp_path, capsys):
    sources = [str(_png(tmp_path / name)) for name in ("a.png", "b.png")]
    assert main(["upscale", *sources, "-s", "2", "-o", str(tmp_path / "out.png")]) == EXIT_USAGE
    assert "name a folder" in capsys.readouterr().err
    assert not (tmp_path / "out.png").exists()


def test_a_missing_registered_dataset_says_how_to_get_it(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("SUPERRES_DATA", str(tmp_path))
    assert main(["eval", "-m", "bicubic", "-s", "2", "-d", "Set5", "-q"]) == EXIT_MISSING
    assert "superres datasets download Set5" in capsys.readouterr().err


def test_every_subcommand_explains_its_options():
    parser = build_parser()
    for command in ("upscale", "eval", "models", "datasets"):
        with pytest.raises(SystemExit) as exit_info:
            parser.parse_args([command, "--help"])
        assert exit_info.value.code == 0


def test_a_learned_model_without_weights_exits_3_and_names_a_recipe(capsys):
    assert main(["upscale", "--sample", "-m", "vdsr", "-s", "2"]) == EXIT_MISSING
    err = capsys.readouterr().err
    assert "superres train vdsr_x2_paper" in err and "Traceback" not in err


def test_models_that_learn_at_test_time_take_a_budget_and_refuse_tta(tmp_path, capsys):
    out = tmp_path / "z.png"
    args = ["upscale", "--sample", "-m", "zssr", "-s", "2", "-o", str(out), "-q"]
    assert main([*args, "--budget", "2"]) == EXIT_OK and Image.open(out).size == (384, 256)
    assert main([*args, "--tta", "--overwrite"]) == EXIT_USAGE
    assert "learns from each input" in capsys.readouterr().err


def test_a_folder_gives_every_format_pillow_reads_and_says_what_it_skipped(tmp_path, capsys):
    source = tmp_path / "in"
    source.mkdir()
    _png(source / "a.png")
    Image.open(_png(tmp_path / "b.png")).save(source / "b.gif")
    (source / "notes.txt").write_text("not an image")
    out = tmp_path / "out"
    code = main(["upscale", str(source), "-s", "2", "-m", "bicubic", "-o", str(out), "-q"])
    assert code == EXIT_OK
    assert sorted(p.name for p in out.iterdir()) == ["a_x2.png", "b_x2.png"]  # GIF as PNG
    err = capsys.readouterr().err
    assert err == (f"superres: warning: {source}: skipped 1 file(s) whose suffix names no image "
                   "format Pillow reads (1 .txt)\n")


def test_two_inputs_with_one_output_name_are_not_written_over_each_other(tmp_path, capsys):
    _png(tmp_path / "a.png")
    Image.open(_png(tmp_path / "other.png")).save(tmp_path / "a.gif")
    (tmp_path / "other.png").unlink()
    out = tmp_path / "out"
    code = main(["upscale", str(tmp_path), "-s", "2", "-m", "bicubic", "-o", str(out), "-q"])
    assert code == EXIT_FAILED
    assert "a.png: its output" in capsys.readouterr().err
    assert Image.open(out / "a_x2.png").size == (40, 32)  # from a.gif, the first in order
