"""The `superres` command line: a thin layer that parses arguments and calls the API.

Exit codes (scripts rely on them):
  0  everything asked for was done
  1  some inputs failed (each reported on one line; the others were still processed), or
     what was asked cannot be done (a model torch.export cannot capture, a full disk)
  2  bad usage: unknown option, model, scale or dataset name
  3  something needed is missing: a dataset, a weights file or an optional package
"""

from __future__ import annotations

import argparse
import json
import sys
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from superres import __version__

if TYPE_CHECKING:
    from superres.image.degrade import Degradation
    from superres.inference.upscaler import Upscaler

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_MISSING = 0, 1, 2, 3

_EPILOG = """exit codes: 0 done; 1 some inputs failed (the rest were processed) or it cannot be
done; 2 bad usage (unknown option, model, scale or dataset); 3 a dataset, weights file or
optional package is missing"""


class UsageError(Exception):
    """A mistake in the command line that argparse cannot see (unknown model, bad scale)."""


def _error(message: str) -> None:
    """An error as one line, whatever the message it reports (library messages may hold
    newlines)."""
    print(f"superres: error: {' '.join(str(message).split())}", file=sys.stderr)


def _warning(message: Warning | str, *_: object, **__: object) -> None:
    """A warning as one line, like an error: the user needs what happened, not our source."""
    print(f"superres: warning: {message}", file=sys.stderr)


def _file_output(out: str, what: str) -> Path:
    """The one file -o names for commands that write one file: a folder there is a usage
    error, found before any work rather than when the result is written."""
    path = Path(out)
    if path.is_dir():
        raise UsageError(f"-o {out} is a folder; name the {what} file to write")
    return path


# ---------------------------------------------------------------- upscale


def _output_file(out: Path | None, inputs: int) -> Path | None:
    """The one image file -o names, or None where -o names a folder (or is absent); checked
    once, before any work: an image name for several inputs, or a format that can be read
    but not written (GIF, ICO, ...), is a usage error."""
    from PIL import Image

    from superres.image.io import IMAGE_SUFFIXES

    if out is None or out.is_dir():
        return None
    suffix = out.suffix.lower()
    if suffix in IMAGE_SUFFIXES:
        if inputs > 1:
            raise UsageError(f"-o {out} names one image, but there are {inputs} inputs; "
                             "name a folder")
        return out
    if suffix in Image.registered_extensions():
        raise UsageError(f"cannot write {out.suffix} images; name an output ending in one of "
                         f"{', '.join(sorted(IMAGE_SUFFIXES))}")
    return None


def _output_path(source: Path, out: Path | None, file: Path | None, scale: int,
                 fmt: str | None) -> Path:
    """Where the upscaled `source` goes: the file -o names, into the folder -o names, or
    beside it. An input we can read but not write (GIF, ICO, ...) is written as PNG."""
    from superres.image.io import IMAGE_SUFFIXES

    if file is not None:
        return file
    suffix = f".{fmt}" if fmt else source.suffix
    if suffix.lower() not in IMAGE_SUFFIXES:
        suffix = ".png"
    name = f"{source.stem}_x{scale}{suffix}"
    return source.with_name(name) if out is None else out / name


def _cmd_upscale(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from superres.image.io import ImageReadError, collect_inputs, from_pil, read_image
    from superres.image.sample import sample_image
    from superres.video import is_video

    if args.guide:  # a depth map and its colour image (docs/depth.md)
        return _upscale_depth(args)
    if not args.inputs and not args.sample:
        raise UsageError("give at least one INPUT (file, folder or glob), or --sample")
    if args.threads is not None:
        if args.threads < 1:
            raise UsageError(f"--threads must be at least 1, not {args.threads}")
        import torch

        torch.set_num_threads(args.threads)
    upscaler = _load(args.model, args.scale, args.device, args.weights,
                     tile=args.tile or None, tta=args.tta, backend=args.backend,
                     budget=args.budget, max_memory=args.max_memory,
                     precision="float16" if args.half else "float32", batch=args.batch)
    name = upscaler.name
    videos = [Path(item) for item in args.inputs if is_video(item)]
    paths, failures = collect_inputs([item for item in args.inputs if not is_video(item)])
    jobs = [(path, lambda path=path: read_image(path)) for path in paths]
    if args.sample:
        jobs.insert(0, (Path("superres_sample.png"),
                        lambda: from_pil(sample_image(), source="built-in sample")))
    out = Path(args.output) if args.output else None
    if out is not None and is_video(out) and (len(videos) != 1 or jobs):
        raise UsageError(f"-o {out} names one video, but the inputs are {len(videos)} "
                         f"video(s) and {len(jobs)} image(s); name a folder")
    for video in videos:
        _upscale_one_video(upscaler, video, out, args, failures)
    many = len(jobs) > 1
    file = _output_file(out, len(jobs)) if jobs else None

    written = 0
    batch: list[tuple[Path, Path, Any]] = []  # (source, target, picture) of one size
    claimed: dict[Path, Path] = {}  # output -> its input: a.png and a.gif both give a_x2.png
    bar = tqdm(jobs, unit="img", desc=f"{name} x{args.scale}", disable=args.quiet or not many)
    for source, read in bar:
        target = _output_path(source, out, file, args.scale, args.format)
        try:
            if target in claimed:
                raise ImageReadError(str(source), f"its output {target} is already that of "
                                     f"{claimed[target]}; upscale it with another -o")
            if target.exists() and not args.overwrite:
                raise ImageReadError(str(target), "exists; use --overwrite to replace it")
            picture = read()
        except ImageReadError as err:
            failures.append(err)
            continue
        claimed[target] = source
        if batch and not _same_kind(batch[0][2], picture):
            written += _upscale_batch(upscaler, batch, failures, many)
        batch.append((source, target, picture))
        if len(batch) >= upscaler.batch_size(picture.height, picture.width):
            written += _upscale_batch(upscaler, batch, failures, many)
    written += _upscale_batch(upscaler, batch, failures, many)
    if many and written:
        where = out if out else "beside the inputs"
        print(f"wrote {written} image(s) with {name} x{args.scale} to {where}")
    for failure in failures:
        _error(str(failure))
    if failures:
        print(f"{len(failures)} input(s) failed", file=sys.stderr)
    return EXIT_FAILED if failures else EXIT_OK


def _upscale_depth(args: argparse.Namespace) -> int:
    """`upscale DEPTH --guide RGB`: one LR depth map, upsampled with its HR colour image."""
    from superres.api import upscale_depth
    from superres.depth import depth_methods, is_depth_method
    from superres.image.io import write_image

    if len(args.inputs) != 1:
        raise UsageError(f"--guide goes with one depth map, not {len(args.inputs)} inputs")
    model = args.model or "learned-jbu"
    if not is_depth_method(model):
        raise UsageError(f"{model} cannot use a guide; with --guide use one of "
                         f"{', '.join(depth_methods())}")
    source = Path(args.inputs[0])
    target = _file_output(args.output, "depth map") if args.output else source.with_name(
        f"{source.stem}_x{args.scale}.png")
    if target.exists() and not args.overwrite:
        raise UsageError(f"{target} exists; use --overwrite to replace it")
    if args.threads is not None:
        import torch

        torch.set_num_threads(max(args.threads, 1))
    for path in (source, Path(args.guide)):
        if not path.is_file():
            _error(f"{path}: no such file")
            return EXIT_FAILED
    try:
        picture = upscale_depth(source, args.guide, args.scale, model, args.weights)
        write_image(target, picture)
    except (KeyError, ValueError) as err:  # a bad file, a guide of the wrong size, a scale
        _error(str(err).strip("'\""))
        return EXIT_FAILED
    print(f"wrote {target} ({picture.width}x{picture.height}, x{args.scale} with {model}, "
          f"guided by {args.guide})")
    return EXIT_OK


def _upscale_one_video(upscaler: Upscaler, source: Path, out: Path | None,
                       args: argparse.Namespace, failures: list) -> None:
    """Upscale one video file frame by frame into the file -o names, into the folder it
    names, or beside the input (NAME_xS.EXT); a bad input is recorded, not raised, so the
    other inputs still run."""
    from superres.image.io import ImageReadError
    from superres.video import upscale_video

    name = f"{source.stem}_x{args.scale}{source.suffix}"
    target = out if out is not None and not out.is_dir() else (out or source.parent) / name
    if target.exists() and not args.overwrite:
        failures.append(ImageReadError(str(target), "exists; use --overwrite to replace it"))
        return
    try:
        result = upscale_video(upscaler, source, target, codec=args.codec, crf=args.crf,
                               progress=not args.quiet,
                               description=f"{upscaler.name} x{args.scale}")
    except ImageReadError as err:
        failures.append(err)
        return
    except ValueError as err:  # an encoder this FFmpeg lacks, a model that changes size
        failures.append(ImageReadError(str(source), str(err)))
        return
    print(f"wrote {target} ({result.frames} frames, {result.width}x{result.height}, "
          f"{result.codec}, {result.audio_streams} audio stream(s) copied)")


def _same_kind(a: Any, b: Any) -> bool:
    """Whether two pictures can run in one batch: same size, channels, depth and alpha."""
    return (a.pixels.shape == b.pixels.shape and a.pixels.dtype == b.pixels.dtype
            and a.has_alpha == b.has_alpha)


def _upscale_batch(upscaler: Upscaler, batch: list[tuple[Path, Path, Any]],
                   failures: list, many: bool) -> int:
    """Upscale and write the pictures of `batch` (emptying it); failures are recorded per
    file, one at a time if the batch as a whole failed. Returns the number written."""
    from superres.image.io import ImageReadError, to_pil, write_image

    jobs, batch[:] = list(batch), []
    if not jobs:
        return 0
    if len(jobs) == 1:  # alone, as every large image is: a large output streams to its file
        source, target, picture = jobs[0]
        try:
            upscaler.upscale_to_file(picture, target)
        except (ValueError, OSError, RuntimeError, MemoryError) as err:
            failures.append(ImageReadError(str(source), str(err)))
            return 0
        _wrote(upscaler, target, picture, many)
        return 1
    # 8-bit gray and RGB go in as Pillow images: the result is then painted straight into
    # the Pillow image that is written, without a second full-size copy of it
    images = [to_pil(p) if p.bit_depth == 8 and not p.has_alpha else p for _, _, p in jobs]
    try:
        results = upscaler.upscale(images)
    except (ValueError, OSError, RuntimeError, MemoryError):
        return sum(_upscale_batch(upscaler, [job], failures, many) for job in jobs)
    written = 0
    for (source, target, picture), result in zip(jobs, results, strict=True):
        try:
            write_image(target, result)
        except (ValueError, OSError) as err:
            failures.append(ImageReadError(str(source), str(err)))
            continue
        written += 1
        _wrote(upscaler, target, picture, many)
    return written


def _wrote(upscaler: Upscaler, target: Path, picture: Any, many: bool) -> None:
    """Name the file written, when there is one input (a batch has its progress bar)."""
    if not many:
        print(f"wrote {target} ({picture.width}x{picture.height} -> "
              f"x{upscaler.scale} with {upscaler.name})")


def _load(
    name: str | None, scale: int, device: str, weights: str | None = None, **options: Any
) -> Upscaler:
    """The named model, or the default one for `scale`; mistakes become usage errors."""
    from superres.api import load
    from superres.models import default_model

    try:
        return load(name or default_model(scale).name, scale, device, weights, **options)
    except (KeyError, ValueError) as err:
        raise UsageError(str(err).strip("'\"")) from err


# ---------------------------------------------------------------- eval


def _degradation_arg(text: str) -> Degradation:
    """The --degradation of `eval` and `degrade`: an inline YAML mapping or list, else a
    name, NAME:key=value,... or a + chain; a mistake is a usage error."""
    import yaml

    from superres.image.degrade import parse_degradation

    text = text.strip()
    try:
        spec = yaml.safe_load(text) if text[:1] in "{[" else text
        return parse_degradation(spec, where="--degradation")
    except (yaml.YAMLError, ValueError) as err:
        raise UsageError(" ".join(str(err).split())) from err


def _cmd_eval(args: argparse.Namespace) -> int:
    from superres.data import get_dataset
    from superres.evaluation import evaluate

    if args.threads is not None:
        import torch

        torch.set_num_threads(max(args.threads, 1))
    if _depth_eval(args):
        return _cmd_eval_depth(args)
    degradation = _degradation_arg(args.degradation)
    for dataset in args.datasets:
        if not Path(dataset).is_dir():
            try:
                get_dataset(dataset)
            except KeyError as err:
                message = str(err).strip("'\"")
                raise UsageError(f"{message}; or give a folder of HR images") from err
    metrics = _perceptual_metrics(args)
    for scale in args.scales:
        upscaler = _load(args.model, scale, args.device, args.weights, tta=args.tta,
                         backend=args.backend, budget=args.budget)
        try:
            results = evaluate(
                upscaler, args.datasets, channel="rgb" if args.rgb else "y" if args.y else None,
                progress=not args.quiet, metrics=metrics, degradation=degradation,
            )
        except ValueError as err:  # an unreadable image, one too small to score, ...
            _error(str(err))
            return EXIT_FAILED
        if args.json:
            report = {
                "model": upscaler.name,
                "scale": scale,
                # Each result names its channel; this one is theirs when they agree.
                "channel": _common_channel(results),
                "degradation": degradation.spec(),
                "tta": args.tta,
                "results": [r.to_json(per_image=args.per_image) for r in results],
            }
            print(json.dumps(report))
        else:
            lr = "" if degradation.is_bicubic else f"  LR {degradation}"
            for r in results:
                extra = "".join(f"  {name} {value:.4f}" for name, value in r.extra.items())
                print(f"{upscaler.name:>10} x{scale}  {r.dataset:<10} {r.images:4d} images  "
                      f"PSNR {r.psnr:7.3f} dB  SSIM {r.ssim:.4f} ({r.channel.upper()}){extra}"
                      f"  ({r.seconds:.1f} s)"
                      f"{lr}")
    return EXIT_OK


def _depth_eval(args: argparse.Namespace) -> bool:
    """Whether `eval` scores depth maps: a depth-only method (JBU, a guided model) or depth
    sets were named (both must then be); mixing them with image models or sets is a usage
    error. Bicubic serves both, as the sets decide."""
    from superres.depth import depth_methods, is_depth_method, is_depth_set, needs_guide

    depth_sets = [is_depth_set(dataset) for dataset in args.datasets]
    if not needs_guide(args.model) and not any(depth_sets):
        return False
    if not all(depth_sets):
        raise UsageError("depth sets (Middlebury2005, or folders with depth/ and guide/) cannot "
                         "be scored together with image sets; run eval once for each")
    if not is_depth_method(args.model):
        raise UsageError(f"depth sets are scored with a guided method, not {args.model}; use "
                         f"one of {', '.join(depth_methods())}")
    return True


def _cmd_eval_depth(args: argparse.Namespace) -> int:
    """RMSE (0-255) of a depth method on depth sets, one line (or JSON object) per scale."""
    from superres.api import evaluate_depth

    for scale in args.scales:
        try:
            results = evaluate_depth(args.model, scale, args.datasets, args.weights)
        except (KeyError, ValueError) as err:  # a scale the model lacks, a bad file
            _error(str(err).strip("'\""))
            return EXIT_FAILED
        if args.json:
            print(json.dumps({"model": args.model, "scale": scale, "metric": "rmse-0-255",
                              "results": [r.to_json(per_image=args.per_image)
                                          for r in results]}))
            continue
        for r in results:
            print(f"{args.model:>13} x{scale}  {r.dataset:<14} {r.images:4d} maps  "
                  f"RMSE {r.rmse:7.3f} (0-255)  ({r.seconds:.1f} s)")
    return EXIT_OK


def _common_channel(results: list) -> str:
    """The channel all results were scored on, or "mixed" (face sets use RGB, others Y)."""
    channels = {r.channel for r in results}
    return channels.pop() if len(channels) == 1 else "mixed"


# ---------------------------------------------------------------- degrade


def _cmd_degrade(args: argparse.Namespace) -> int:
    from superres.image.lr_domain import degrade_folder

    degradation = _degradation_arg(args.degradation)
    try:
        result = degrade_folder(args.input, args.output, args.scale, degradation,
                                seed=args.seed, progress=not args.quiet)
    except ValueError as err:
        raise UsageError(str(err)) from err
    for message in result.failed:
        _error(message)
    print(f"{len(result.written)} LR images (x{args.scale}, {degradation}) in {args.output}")
    return EXIT_FAILED if result.failed else EXIT_OK


def _perceptual_metrics(args: argparse.Namespace) -> list:
    """The perceptual measures asked for with --vgg-distance and --niqe."""
    from superres.metrics.niqe import NIQEScore
    from superres.metrics.perceptual import VGGFeatureDistance

    metrics: list = [VGGFeatureDistance()] if args.vgg_distance else []
    if args.niqe is not None:
        try:
            metrics.append(NIQEScore(args.niqe or None))
        except ValueError as err:  # a file that is not a NIQE model
            raise UsageError(str(err)) from err
    return metrics


# ---------------------------------------------------------------- report


def _cmd_report(args: argparse.Namespace) -> int:
    from superres.report import write_report

    try:
        written = write_report(args.results, args.output, crops=args.crops,
                               models=args.models or (), scale=args.scale, title=args.title,
                               plot=args.plot, crop_sheet_path=args.crop_sheet,
                               device=args.device)
    except KeyError as err:  # an unknown model for the crops
        raise UsageError(str(err).strip("'\"")) from err
    except ValueError as err:  # results that are not `superres eval --json`, a bad image
        _error(str(err))
        return EXIT_FAILED
    print("wrote " + ", ".join(str(path) for path in written))
    return EXIT_OK


# ---------------------------------------------------------------- models


def _cmd_models(args: argparse.Namespace) -> int:
    from superres.api import model_row, model_table
    from superres.models import get_model

    if args.describe:  # one model, typically composed: built at each scale to count params
        try:
            row = model_row(get_model(args.describe))
        except (KeyError, ValueError) as err:
            raise UsageError(str(err).strip("'\"")) from err
        print(json.dumps(row) if args.json else f"{_model_line(row)}\n  {row['summary']}")
        return EXIT_OK
    rows = model_table()
    if args.json:
        print(json.dumps(rows))
        return EXIT_OK
    for row in rows:
        print(_model_line(row))
    return EXIT_OK


def _model_line(row: dict[str, Any]) -> str:
    """A model's row of `superres models`: axes, scales, parameters, weights, paper's Set5."""
    counts = list(dict.fromkeys(row["params"].values()))  # distinct, in scale order
    count = "/".join(f"{p:,}" for p in counts)
    set5 = row["reference"].get("Set5", {})
    ref = " ".join(f"x{s} {v[0]:.2f}" for s, v in set5.items())
    weights = ",".join(row["weights"]) or "-"
    return (f"{row['name']:<14} {row['framework']:<16} {row['color']:<4} "
            f"x{','.join(map(str, row['scales'])):<10} {count:<27} weights {weights:<9} "
            f"{('paper Set5 ' + ref) if ref else ''}")


# ---------------------------------------------------------------- datasets


def _cmd_datasets(args: argparse.Namespace) -> int:
    from superres.data import (
        DatasetNotFoundError,
        data_root,
        download_dataset,
        get_dataset,
        list_datasets,
        verify_dataset,
    )

    if args.action == "list":
        print(f"datasets folder: {data_root()}  (set SUPERRES_DATA to change it)")
        for spec in list_datasets():
            present = (data_root() / spec.subfolder).is_dir()
            print(f"{spec.name:<11} {spec.role:<5} {spec.images:5d} images  "
                  f"{'present ' if present else 'missing '} {spec.description}")
        return EXIT_OK
    try:
        names = [get_dataset(n).name for n in args.names]
    except KeyError as err:
        raise UsageError(str(err).strip("'\"")) from err
    if args.action == "verify":
        names = names or [s.name for s in list_datasets() if (data_root() / s.subfolder).is_dir()]
        failed = 0
        for name in names:
            try:
                report = verify_dataset(name)
            except DatasetNotFoundError as err:
                _error(str(err))
                failed += 1
                continue
            print(report.summary())
            failed += not report.ok
        return EXIT_FAILED if failed else EXIT_OK
    if not names:
        raise UsageError("name at least one dataset to download")
    failed = 0
    for name in names:
        try:
            print(f"{name}: ready in {download_dataset(name, progress=not args.quiet)}")
        except (OSError, ValueError) as err:
            _error(f"{name}: {err}")
            failed += 1
    return EXIT_FAILED if failed else EXIT_OK


# ---------------------------------------------------------------- train


def _cmd_train(args: argparse.Namespace) -> int:
    from superres.api import train
    from superres.train.depth import DepthRunResult
    from superres.train.distributed import launch
    from superres.train.recipe import load_recipe

    if args.nproc_per_node:
        argv = [token for i, token in enumerate(args.argv) if not (
            token.startswith("--nproc-per-node")
            or (i and args.argv[i - 1] == "--nproc-per-node"))]
        try:
            launch(args.nproc_per_node, argv)
        except RuntimeError as err:
            _error(str(err))
            return EXIT_FAILED
        return EXIT_OK
    overrides = list(args.overrides)
    if args.data:
        overrides.append(f"data.train={json.dumps(args.data)}")
    if args.precision:
        overrides.append(f"precision={args.precision}")
    if args.compile:
        overrides.append("compile=true")
    try:
        recipe = load_recipe(args.config, overrides)
    except ValueError as err:
        raise UsageError(str(err)) from err
    try:
        result = train(recipe, args.out or Path("runs") / Path(args.config).stem,
                       resume=args.resume, max_steps=args.max_steps, progress=not args.quiet,
                       threads=args.threads, device=args.device)
    except (FileExistsError, ValueError) as err:
        raise UsageError(str(err)) from err
    if isinstance(result, DepthRunResult):  # leave-one-scene-out folds (docs/depth.md)
        print(result.summary())
    elif result is not None and result.best_step < 0:  # an unpaired h2l run: no SR network
        print(f"{result.steps} steps in {result.out} (degrader.safetensors)")
    elif result is not None:  # None on the ranks other than 0 of a distributed run
        print(f"{result.steps} steps in {result.out}; best {recipe.validate_on} PSNR "
              f"{result.best_psnr:.3f} dB at step {result.best_step} (best.safetensors)")
    return EXIT_OK


# ---------------------------------------------------------------- convert


def _cmd_convert(args: argparse.Namespace) -> int:
    from superres.models import get_model
    from superres.models.convert import MissingScale, convert_file
    from superres.weights import save_weights

    try:
        if args.model is not None:
            spec = get_model(args.model)
            if args.scale is not None:
                spec.check_scale(args.scale)
    except (KeyError, ValueError) as err:
        raise UsageError(str(err).strip("'\"")) from err
    if not Path(args.checkpoint).is_file():
        raise FileNotFoundError(f"no checkpoint file {args.checkpoint}")
    output = _file_output(args.output, ".safetensors")
    try:
        converted = convert_file(args.checkpoint, args.model, args.scale)
    except MissingScale as err:
        raise UsageError(str(err)) from err
    except ValueError as err:
        _error(str(err))
        return EXIT_FAILED
    name, scale = converted.name, converted.scale
    metadata = {"model": name, "scale": str(scale), "converted_from": Path(args.checkpoint).name}
    out = save_weights(converted.model, output, metadata, build=converted.options)
    print(f"wrote {out}; use it with -m {name} -s {scale} --weights {out}")
    return EXIT_OK


# ---------------------------------------------------------------- weights


def _cmd_weights(args: argparse.Namespace) -> int:
    from superres.data.download import DownloadError
    from superres.models.convert.catalogue import CATALOGUE, download, find_entry
    from superres.weights import shipped_weights, weights_root

    if args.action == "list":
        print("released by their authors (superres converts them; it does not redistribute "
              "them): `superres weights download NAME` where a digest is published")
        for entry in CATALOGUE:
            scales = ",".join(f"x{s}" for s in entry.scales)
            how = "download" if entry.downloadable else "by hand"
            print(f"  {entry.name:<44} {entry.model:<13} {scales:<9} {how:<8} {entry.url}")
        print("shipped with superres (trained by superres, in the package):")
        for shipped in shipped_weights():
            print(f"  {shipped.model:<13} x{shipped.scale}  {shipped.file}  "
                  f"({shipped.recipe}, {shipped.steps} steps)")
        return EXIT_OK
    if not args.names:
        raise UsageError("name at least one catalogue entry to download (`superres weights "
                         "list` shows them)")
    failed = 0
    for name in args.names:
        try:
            entry = find_entry(name)
        except KeyError as err:
            raise UsageError(str(err).strip("'\"")) from err
        try:
            path = download(name, progress=not args.quiet)
        except DownloadError as err:
            _error(str(err))
            failed += 1
            continue
        print(f"{path}: {entry.model} x{'/x'.join(map(str, entry.scales))}, sha256 checked; "
              f"{entry.licence}; use it with -m {entry.model} --weights {path}")
    print(f"weights folder: {weights_root()}  (set SUPERRES_WEIGHTS to change it)")
    return EXIT_FAILED if failed else EXIT_OK


# ---------------------------------------------------------------- burst


def _cmd_burst(args: argparse.Namespace) -> int:
    import numpy as np

    from superres.classic.burst import upscale_burst
    from superres.image.degrade import to_uint
    from superres.image.io import (
        IMAGE_SUFFIXES,
        ImageReadError,
        Picture,
        collect_inputs,
        read_image,
        write_image,
    )

    output = _file_output(args.output, "image")
    if output.suffix.lower() not in IMAGE_SUFFIXES:
        raise UsageError(f"cannot write {output.suffix or 'suffix-less'} images; name an output "
                         f"ending in one of {', '.join(sorted(IMAGE_SUFFIXES))}")
    paths, missing = collect_inputs(args.frames)
    if missing:
        raise FileNotFoundError("; ".join(str(m) for m in missing))
    if len(paths) < 2:
        raise UsageError("a burst needs at least two frames")
    try:
        frames = [read_image(p).pixels for p in paths]
    except ImageReadError as err:
        _error(str(err))
        return EXIT_FAILED
    if len({(f.shape, f.dtype) for f in frames}) != 1:
        raise UsageError("all frames must have the same size, channels and bit depth")
    try:
        result = upscale_burst(np.stack(frames), args.scale, args.method,
                               rotation=args.rotation, psf_sigma=args.psf_sigma)
    except ValueError as err:
        raise UsageError(str(err)) from err
    out = write_image(output, Picture(to_uint(result, frames[0].dtype), None))
    print(f"wrote {out}: {len(frames)} frames x{args.scale} with {args.method}")
    return EXIT_OK


# ---------------------------------------------------------------- interpolate


def _cmd_interpolate(args: argparse.Namespace) -> int:
    from safetensors.torch import save

    from superres.files import atomic_write
    from superres.train.adversarial import interpolate_weights
    from superres.weights import read_state_dict

    for path in (args.psnr, args.gan):
        if not Path(path).is_file():
            raise FileNotFoundError(f"no weights file {path}")
    output = _file_output(args.output, ".safetensors")
    try:
        psnr, gan = read_state_dict(args.psnr), read_state_dict(args.gan)
    except ValueError as err:  # not a weights file, or a damaged one
        _error(str(err))
        return EXIT_FAILED
    try:
        blended = interpolate_weights(psnr, gan, args.alpha)
    except ValueError as err:
        raise UsageError(str(err)) from err
    data = save(blended, metadata={"alpha": str(args.alpha)})
    atomic_write(output, lambda file: file.write(data))
    print(f"wrote {args.output} = {1 - args.alpha:g} x {args.psnr} + {args.alpha:g} x {args.gan}")
    return EXIT_OK


# ---------------------------------------------------------------- export


def _cmd_export(args: argparse.Namespace) -> int:
    from superres.inference.onnx import export_onnx

    output = _file_output(args.output, ".onnx")
    upscaler = _load(args.model, args.scale, "cpu", args.weights)
    if upscaler.spec.trains_at_test_time:
        raise UsageError(f"{upscaler.name} learns from each input at test time: it has no "
                         "fixed network to export")
    channels = {"y": 1, "rgb": 3, "any": None}[upscaler.color]
    try:
        path = export_onnx(upscaler.model, channels, output)
    except ValueError as err:  # a model that torch.export cannot capture
        _error(str(err))
        return EXIT_FAILED
    layout = f"{channels} channel(s)" if channels else "any number of channels"
    print(f"wrote {path}: input 'lr' N x C x H x W float in [0, 1] with {layout} "
          f"({'BT.601 Y' if upscaler.color == 'y' else 'RGB or gray'}), any H and W; "
          f"output 'sr' x{args.scale}")
    return EXIT_OK


# ---------------------------------------------------------------- serve


def _cmd_serve(args: argparse.Namespace) -> int:
    try:
        from superres.serve import serve
    except ModuleNotFoundError as err:
        _error(f"{err.name} is missing: the web page needs `pip install \"superres[serve]\"`")
        return EXIT_MISSING
    if not 0 <= args.port <= 65535:
        raise UsageError(f"--port must be 0..65535, not {args.port}")
    try:
        serve(args.host, args.port, open_browser=args.open)
    except OSError as err:  # the port is taken, or the address is not this machine's
        raise UsageError(f"cannot listen on {args.host}:{args.port}: {err.strerror or err}; "
                         "choose another --port or --host") from err
    return EXIT_OK


# ---------------------------------------------------------------- parser


def build_parser() -> argparse.ArgumentParser:
    """The argument parser (exposed for the docs and the tests)."""
    parser = argparse.ArgumentParser(
        prog="superres",
        description="Image super-resolution: upscale images, evaluate and list models.",
        epilog=_EPILOG,
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    up = sub.add_parser("upscale", help="upscale images and videos", epilog=_EPILOG,
                        description="Upscale image files, folders or globs, and videos "
                                    "(.mp4 .mkv .mov .avi .webm: frame by frame, audio "
                                    "copied; needs superres[video]).")
    up.add_argument("inputs", nargs="*", metavar="INPUT",
                    help="image or video files, folders (their images) or glob patterns")
    up.add_argument("-o", "--output", metavar="OUT",
                    help="output file (one input) or folder (default: beside each input, "
                         "named NAME_xS.EXT)")
    up.add_argument("-m", "--model", help="model name (default: the best shipped model "
                                          "for the scale; see `superres models`)")
    up.add_argument("-s", "--scale", type=int, default=4, help="upscaling factor (default 4)")
    up.add_argument("-w", "--weights", help="safetensors weights instead of the shipped ones")
    up.add_argument("--tile", type=int, default=512, metavar="PIXELS",
                    help="upscale images larger than this many LR pixels in tiles, "
                         "bounding memory (default 512; 0: whole image at once)")
    up.add_argument("--max-memory", metavar="SIZE",
                    help="fit the working memory in SIZE (e.g. 2GB, 500MB): the tile is "
                         "chosen from the model's measured memory per pixel; the images "
                         "themselves are not counted")
    up.add_argument("--half", action="store_true",
                    help="run the network in float16 where a check on a test image finds it "
                         "safe (halves its memory; fast on GPUs, slow on most CPUs)")
    up.add_argument("--batch", type=int, default=8, metavar="N",
                    help="run up to N small images of one size together (default 8)")
    up.add_argument("--threads", type=int, metavar="N",
                    help="CPU threads (default: all cores)")
    up.add_argument("--tta", action="store_true",
                    help="self-ensemble: average the 8 flips/rotations (8x slower, a little "
                         "sharper)")
    up.add_argument("--budget", type=float, metavar="SECONDS",
                    help="seconds per image for models that learn at test time (zssr, dip)")
    up.add_argument("--backend", choices=["torch", "onnx"], default="torch",
                    help="run the model with PyTorch (default) or ONNX Runtime")
    up.add_argument("--format", choices=["png", "jpg", "bmp", "tif", "webp"],
                    help="write this format instead of the input's")
    up.add_argument("--codec", metavar="NAME",
                    help="video encoder (default libx264, or libvpx-vp9 for .webm; mpeg4 "
                         "where the FFmpeg build lacks them)")
    up.add_argument("--crf", type=int, default=18,
                    help="video quality for CRF encoders: lower is better and larger "
                         "(default 18, about visually lossless for libx264)")
    up.add_argument("--guide", metavar="RGB",
                    help="INPUT is a depth map and RGB its colour image at the output size "
                         "(scale times the depth's): colour-guided depth SR with -m learned-jbu "
                         "(default), jbu, guided-filter or bicubic; see docs/depth.md")
    up.add_argument("--sample", action="store_true",
                    help="also upscale the built-in sample image (a test chart)")
    up.add_argument("--overwrite", action="store_true", help="replace existing output files")
    up.add_argument("--device", default="cpu", help="torch device, e.g. cpu or cuda (default cpu)")
    up.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    up.set_defaults(func=_cmd_upscale)

    ev = sub.add_parser(
        "eval", help="measure PSNR/SSIM on test sets", epilog=_EPILOG,
        description="PSNR/SSIM with the standard protocol: bicubic (MATLAB) LR (or another "
                    "--degradation), SR rounded to uint8, Y channel (BT.601), `scale` border "
                    "pixels shaved, mean over images.")
    ev.add_argument("-m", "--model", required=True, help="model name (see `superres models`)")
    ev.add_argument("-s", "--scale", dest="scales", type=int, action="append", required=True,
                    help="scale; repeat for several (with --json: one JSON object per line)")
    ev.add_argument("-d", "--dataset", dest="datasets", action="append", required=True,
                    help="registered set (Set5, Set14, BSD100, ...) or a folder of HR images; "
                         "repeat for several")
    ev.add_argument("--json", action="store_true",
                    help='print {"model", "scale", "channel", "degradation", "tta", '
                         '"results": [{"dataset", "images", "psnr", "ssim", "seconds", '
                         '"channel"}]}')
    ev.add_argument("-w", "--weights", help="safetensors weights instead of the shipped ones")
    ev.add_argument("--tta", action="store_true",
                    help="self-ensemble (the papers' '+' models; not the standard protocol)")
    ev.add_argument("--budget", type=float, metavar="SECONDS",
                    help="seconds per image for models that learn at test time (zssr, dip)")
    ev.add_argument("--backend", choices=["torch", "onnx"], default="torch",
                    help="run the model with PyTorch (default) or ONNX Runtime")
    ev.add_argument("--per-image", action="store_true", help="with --json: add per-image scores")
    on = ev.add_mutually_exclusive_group()
    on.add_argument("--rgb", action="store_true",
                    help="measure on RGB instead of Y (the face sets use RGB already)")
    on.add_argument("--y", action="store_true",
                    help="measure every set on Y, the face sets too (the face SR papers' "
                         "tables)")
    ev.add_argument("--degradation", default="bicubic", metavar="SPEC",
                    help="how LR is made from HR (default bicubic): bicubic, blur-downsample, "
                         "downsample-noise, jpeg, noise or realesrgan; with parameters as "
                         "NAME:key=value,key=value (blur-downsample:sigma=1.6); chained with + "
                         "(blur-downsample+jpeg:quality=40); or an inline YAML mapping or list "
                         "('{name: jpeg, quality: 40}'). Random ones are seeded by each image's "
                         "file name, so scores repeat. See docs/degradations.md")
    ev.add_argument("--vgg-distance", action="store_true",
                    help="also the VGG19 feature distance to HR on relu2_2 + relu3_1 (lower is "
                         "closer; needs VGG19 weights in $SUPERRES_WEIGHTS)")
    ev.add_argument("--niqe", nargs="?", const="", metavar="MODEL.npz",
                    help="also NIQE of the SR images (no reference; lower looks more natural), "
                         "with this pristine model or the standard one in $SUPERRES_WEIGHTS")
    ev.add_argument("--device", default="cpu", help="torch device (default cpu)")
    ev.add_argument("--threads", type=int, metavar="N", help="CPU threads (default: all cores)")
    ev.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    ev.set_defaults(func=_cmd_eval)

    dg = sub.add_parser(
        "degrade", help="degrade a folder of images once: LR for unpaired training",
        epilog=_EPILOG,
        description="Apply a degradation to every image of a folder and save the LR images "
                    "as PNG (an 'unknown' LR domain for unpaired SR). Each image's random "
                    "choices are seeded by its file name, as in eval.")
    dg.add_argument("input", metavar="INPUT_FOLDER", help="folder of HR images")
    dg.add_argument("-o", "--output", required=True, metavar="OUT_FOLDER",
                    help="folder for the LR images (NAME.png)")
    dg.add_argument("-s", "--scale", type=int, default=4, help="downscaling factor (default 4)")
    dg.add_argument("--degradation", default="bicubic", metavar="SPEC",
                    help="how LR is made, as eval's --degradation (default bicubic); see "
                         "docs/degradations.md")
    dg.add_argument("--seed", type=int, metavar="N",
                    help="mixed into each image's seed for another draw (default: the very LR "
                         "that eval makes)")
    dg.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    dg.set_defaults(func=_cmd_degrade)

    rp = sub.add_parser(
        "report", help="one HTML page of eval results: tables, plot, crops", epilog=_EPILOG,
        description="Build one self-contained HTML file (tables, the PSNR-against-time plot "
                    "as SVG, crops as embedded images; nothing loaded from elsewhere) from "
                    "`superres eval --json` outputs: an object per run, one per line, or a "
                    "list of them.")
    rp.add_argument("results", nargs="+", metavar="RESULTS.json",
                    help="`superres eval --json` outputs ('-': standard input)")
    rp.add_argument("-o", "--output", required=True, metavar="REPORT.html",
                    help="the HTML file to write")
    rp.add_argument("--title", default="superres report", help="the page's title")
    rp.add_argument("--crops", action="append", default=[], metavar="IMAGE[@TOP,LEFT]",
                    help="also show a window of this HR image as each method upscales its "
                         "bicubic-downscaled copy, beside HR (96 x 96 HR pixels at TOP,LEFT; "
                         "default: where the image has the most detail); repeatable")
    rp.add_argument("-m", "--model", dest="models", action="append",
                    help="a method for the crops; repeatable (default: the runs' models)")
    rp.add_argument("-s", "--scale", type=int,
                    help="the crops' scale (default: the runs' scale, when they have one)")
    rp.add_argument("--plot", metavar="FILE.svg", help="also write the plot as an SVG file")
    rp.add_argument("--crop-sheet", metavar="FILE.png",
                    help="also write the crops as a PNG file")
    rp.add_argument("--device", default="cpu", help="torch device for the crops (default cpu)")
    rp.set_defaults(func=_cmd_report)

    mo = sub.add_parser("models", help="list models", epilog=_EPILOG,
                        description="Every model with its scales, parameter counts, shipped "
                                    "weights and the paper's reference numbers.")
    mo.add_argument("--json", action="store_true",
                    help="print a JSON list (with --describe, the one model's object)")
    mo.add_argument("--describe", metavar="FILE.yaml",
                    help="only this model: a composed model's description (see "
                         "docs/composed.md), or a registered name")
    mo.set_defaults(func=_cmd_models)

    tr = sub.add_parser("train", help="train a model from a recipe", epilog=_EPILOG,
                        description="Train from a YAML recipe (a file, or a shipped recipe name "
                                    "such as fsrcnn_x3). Checkpoints are written atomically; "
                                    "--resume continues a killed run exactly.")
    tr.add_argument("config", metavar="CONFIG", help="recipe file or shipped recipe name")
    tr.add_argument("--resume", action="store_true", help="continue the run in --out")
    tr.add_argument("--max-steps", type=int, help="stop after this many steps in total")
    tr.add_argument("--out", help="run folder (default runs/CONFIG)")
    tr.add_argument("--threads", type=int, help="torch CPU threads (default: all cores)")
    tr.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", dest="overrides",
                    help="change a recipe value, checked like the YAML (e.g. data.patch=48, "
                         "optimizer.lr=2.0e-4); repeatable")
    tr.add_argument("--data", metavar="DIR", action="append",
                    help="train on this folder of HR images (or dataset name) instead of the "
                         "recipe's data.train; repeatable")
    tr.add_argument("--device", help="cpu, cuda, cuda:N or mps (default: CUDA when present)")
    tr.add_argument("--precision", choices=("float32", "bfloat16", "float16"),
                    help="automatic mixed precision (same as --set precision=...)")
    tr.add_argument("--compile", action="store_true", help="torch.compile the training forward")
    tr.add_argument("--nproc-per-node", type=int, metavar="N",
                    help="train in N processes with DistributedDataParallel (starts torchrun; "
                         "the same as `torchrun --nproc-per-node N -m superres train ...`)")
    tr.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    tr.set_defaults(func=_cmd_train)

    ex = sub.add_parser("export", help="export a model to ONNX (dynamic image size)",
                        epilog=_EPILOG,
                        description="Write the model as ONNX with dynamic batch, height and "
                                    "width (needs `pip install superres[onnx]`).")
    ex.add_argument("-m", "--model", required=True, help="model name")
    ex.add_argument("-s", "--scale", type=int, required=True, help="scale")
    ex.add_argument("-o", "--output", required=True, help="output .onnx file")
    ex.add_argument("-w", "--weights", help="safetensors weights instead of the shipped ones")
    ex.set_defaults(func=_cmd_export)

    from superres.classic.burst import METHODS

    bu = sub.add_parser("burst", help="multi-frame SR from several shifted shots",
                        epilog=_EPILOG,
                        description="Reconstruction-based SR from a burst of frames of one "
                                    "scene: sub-pixel registration (phase correlation refined), "
                                    "then reconstruction by the chosen method.")
    bu.add_argument("frames", nargs="+", metavar="FRAME", help="frames (files, folder or glob); "
                                                                "the first is the reference")
    bu.add_argument("-s", "--scale", type=int, default=2, help="upscaling factor (default 2)")
    bu.add_argument("-m", "--method", choices=list(METHODS), default="map-btv",
                    help="reconstruction method (default map-btv)")
    bu.add_argument("-o", "--output", required=True, help="output image file")
    bu.add_argument("--rotation", action="store_true", help="also estimate small rotations")
    bu.add_argument("--psf-sigma", type=float, default=0.0,
                    help="std of a known Gaussian camera blur, in HR pixels (default 0)")
    bu.set_defaults(func=_cmd_burst)

    it = sub.add_parser("interpolate", help="blend PSNR and GAN weights (ESRGAN)",
                        epilog=_EPILOG,
                        description="ESRGAN's network interpolation: (1 - alpha) * PSNR weights "
                                    "+ alpha * GAN weights of the same architecture, trading "
                                    "fidelity for texture without retraining.")
    it.add_argument("psnr", metavar="PSNR_WEIGHTS", help="safetensors of the PSNR-oriented run")
    it.add_argument("gan", metavar="GAN_WEIGHTS", help="safetensors of the GAN run")
    it.add_argument("--alpha", type=float, default=0.8, help="weight of the GAN weights "
                                                             "(default 0.8, as in ESRGAN)")
    it.add_argument("-o", "--output", required=True, help="output .safetensors file")
    it.set_defaults(func=_cmd_interpolate)

    co = sub.add_parser("convert", help="convert an authors' checkpoint to superres weights",
                        epilog=_EPILOG,
                        description="Map a released checkpoint onto a superres model and save "
                                    "it as safetensors: EDSR-PyTorch (EDSR, RCAN, RDN), "
                                    "RDN-pytorch, BasicSR, ESRGAN (both layouts), Real-ESRGAN "
                                    "SRVGG, SRGAN-PyTorch, and the authors' MATLAB .mat "
                                    "releases of SRCNN, FSRCNN, VDSR, LapSRN and MS-LapSRN. "
                                    "The model and scale are read from the file where it "
                                    "holds them. Checkpoints are read without unpickling.")
    co.add_argument("checkpoint", metavar="CHECKPOINT",
                    help=".pt/.pth, .safetensors or .mat file")
    co.add_argument("-m", "--model", help="superres model name, e.g. edsr (default: the one "
                                          "the file holds)")
    co.add_argument("-s", "--scale", type=int, help="the checkpoint's scale (default: read "
                                                    "from the file; VDSR's is not in it)")
    co.add_argument("-o", "--output", required=True, help="output .safetensors file")
    co.set_defaults(func=_cmd_convert)

    we = sub.add_parser("weights", help="list or download the authors' released weights",
                        epilog=_EPILOG,
                        description="The catalogue of released checkpoints superres converts "
                                    "(at their authors' URLs, with their sha256 and terms), and "
                                    "the weights shipped with superres. `download` fetches one "
                                    "into $SUPERRES_WEIGHTS/released/NAME/ and checks its "
                                    "digest.")
    we.add_argument("action", choices=["list", "download"])
    we.add_argument("names", nargs="*", metavar="NAME", help="catalogue names to download")
    we.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    we.set_defaults(func=_cmd_weights)

    da = sub.add_parser("datasets", help="list, verify or download datasets", epilog=_EPILOG,
                        description="Datasets live in $SUPERRES_DATA (one folder per set).")
    da.add_argument("action", choices=["list", "verify", "download"])
    da.add_argument("names", nargs="*", metavar="NAME", help="dataset names (verify: default all "
                                                            "present)")
    da.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    da.set_defaults(func=_cmd_datasets)

    se = sub.add_parser("serve", help="a local web page to upscale and compare images",
                        epilog=_EPILOG,
                        description="Serve a page to drop an image, pick a model and scale, "
                                    "compare before and after and download the result (needs "
                                    "`pip install \"superres[serve]\"`). Ctrl+C stops it.")
    se.add_argument("--host", default="127.0.0.1",
                    help="address to listen on (default 127.0.0.1, this machine only; the "
                         "page has no login)")
    se.add_argument("--port", type=int, default=8000, help="port (default 8000)")
    se.add_argument("--open", action="store_true", help="open the page in a web browser")
    se.set_defaults(func=_cmd_serve)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `superres` console script."""
    args = build_parser().parse_args(argv)
    args.argv = list(sys.argv[1:] if argv is None else argv)
    try:
        with warnings.catch_warnings():
            warnings.showwarning = _warning
            return args.func(args)
    except UsageError as err:
        _error(str(err))
        return EXIT_USAGE
    except FileNotFoundError as err:  # includes DatasetNotFoundError
        _error(str(err))
        return EXIT_MISSING
    except ImportError as err:  # an optional extra that is not installed (e.g. [onnx])
        _error(str(err))
        return EXIT_MISSING
    except OSError as err:  # the machine's trouble, not the input's: a full disk, a folder
        _error(str(err))  # where a file was named, no permission to write
        return EXIT_FAILED
    except KeyboardInterrupt:
        _error("interrupted")
        return 130


if __name__ == "__main__":
    sys.exit(main())
