"""Write one model card per registered model into docs/models/, from the code itself.

    python docs/model_cards.py

Everything in a card comes from the project: the paper and architecture from the model's
module, parameter counts from building it, recipes from src/superres/configs, measured
scores from the zoo index (written by `superres.train.release.add_to_zoo`, which runs
`superres eval`'s protocol), training progress from the run logs in checkpoints/, and the
short CPU runs of docs/deep_cpu.json (written by benchmarks/deep_cpu_table.py). Re-run it
after shipping weights or training further.
"""

from __future__ import annotations

import csv
import inspect
import json
import re
import sys
from pathlib import Path

from superres.models import MODELS, ModelSpec
from superres.train.recipe import load_recipe, shipped_recipes
from superres.weights import ZOO, shipped_weights

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "docs" / "models"
DATASETS = ("Set5", "Set14", "BSD100", "Urban100", "Manga109", "FaceHelen50",
            "FaceCelebA1000", "Vid4")
# The authors' released weights measured by superres (docs/official_weights.md)
OFFICIAL = json.loads((ROOT / "docs" / "official_weights.json").read_text())


def _weights_only(spec: ModelSpec, scale: int) -> int:
    import torch

    with torch.device("meta"):
        model = spec.build(scale)
    return sum(p.numel() for p in model.parameters() if p.ndim > 1)


def _module_text(spec: ModelSpec) -> str:
    """The docstring of the model's file in superres.models (the one that defines the spec)."""
    module = next(m for m in list(sys.modules.values())
                  if getattr(m, "__name__", "").startswith("superres.models.")
                  and any(value is spec for value in vars(m).values()))
    return inspect.getdoc(module) or ""


def _recipe_lines(spec: ModelSpec) -> list[str]:
    lines = []
    for name, path in shipped_recipes().items():
        recipe = load_recipe(path)
        if recipe.model != spec.name:
            continue
        header = " ".join(
            line.lstrip("# ").strip() for line in path.read_text().splitlines()
            if line.startswith("#")
        )
        scales = ", ".join(f"x{scale}" for scale in recipe.scales or (recipe.scale,))
        lines.append(f"- `{name}` ({scales}): {header}")
    return lines


def _progress_lines(spec: ModelSpec) -> list[str]:
    lines = []
    for log in sorted((ROOT / "checkpoints").glob("*/log.csv")):
        recipe = load_recipe(log.parent / "recipe.yaml")
        if recipe.model != spec.name:
            continue
        with open(log, newline="") as f:
            rows = list(csv.DictReader(f))
        validated = [r for r in rows if r["val_psnr"]]
        if not validated:
            continue
        best = max(validated, key=lambda r: float(r["val_psnr"]))
        last = rows[-1]  # the checkpoint a resume continues from, validated or not
        done = int(last["step"]) >= recipe.schedule.steps
        status = ("finished" if done else
                  f"continue with `superres train {log.parent.name} --out "
                  f"checkpoints/{log.parent.name} --resume`")
        lines.append(
            f"- `checkpoints/{log.parent.name}` (x{recipe.scale}): step {last['step']} of "
            f"{recipe.schedule.steps}, {float(last['seconds']) / 3600:.1f} h of training on "
            f"a 2-core CPU; best {recipe.validate_on} PSNR {float(best['val_psnr']):.2f}"
            f" dB at step {best['step']}; {status}."
        )
    return lines


def _short_run_lines(spec: ModelSpec) -> list[str]:
    """How far a minutes-long CPU run of the model gets from the paper, and why."""
    path = ROOT / "docs" / "deep_cpu.json"
    records = [r for r in json.loads(path.read_text()) if r["model"] == spec.name] \
        if path.exists() else []
    lines = []
    for record in records:
        lines.append(
            f"`superres train {record['recipe']}`: {record['steps']} steps "
            f"({record['patches']:,} patches), {record['train_minutes']} min on one CPU thread "
            "(commands and table: [deep_cpu.md](../deep_cpu.md)); Set5, best weights:"
        )
        lines.append("")
        for scale, (psnr, ssim) in record["set5"].items():
            paper = spec.reference.get("Set5", {}).get(int(scale))
            versus = f", {psnr - paper[0]:+.2f} dB from the paper's {paper[0]:.2f}" if paper else ""
            lines.append(f"- x{scale}: {psnr:.2f} dB / {ssim:.4f}{versus} "
                         f"(bicubic {record['bicubic'][scale][0]:.2f})")
        ratio = record["paper_patches"] / record["patches"]
        lines += ["", f"Why so far: the full recipe `{record['paper_recipe']}` trains on "
                  f"{record['paper_patches']:,} patches, {ratio:,.0f} times as many, with its own "
                  "optimiser and patch size. These weights are not shipped: a deep model "
                  "ships only when it beats every shipped lighter model on Set5."]
    return lines


def card(spec: ModelSpec) -> str:
    shipped = {w.scale: w for w in shipped_weights() if w.model == spec.name}
    lines = [f"# {spec.name}", "", f"{spec.summary}.", "", f"**Paper**: {spec.paper}.", ""]
    colour = {"y": "BT.601 Y channel (chroma upscaled with bicubic)", "rgb": "RGB",
              "any": "any channels"}[spec.color]
    if spec.guided:
        colour = "a one-channel depth map, guided by an RGB image at the output size"
    lines += [f"**Framework**: {spec.framework}; **colour**: {colour}.", ""]
    lines += ["| scale | trainable parameters | convolution weights |", "|---|---|---|"]
    for scale in spec.scales:
        lines.append(f"| x{scale} | {spec.params(scale):,} | {_weights_only(spec, scale):,} |")
    lines += ["", "## Architecture and deviations", "", _module_text(spec), ""]
    recipes = _recipe_lines(spec)
    if recipes:
        lines += ["## Recipes", "", *recipes, ""]
    if spec.guided:
        return "\n".join([*lines, *_guided_lines(spec)]).rstrip() + "\n"
    lines += ["## Results (PSNR dB / SSIM, Y channel, shave = scale; the face sets on RGB; "
              "Vid4 unshaved, docs/video.md)", ""]
    official = OFFICIAL.get(spec.name, {})
    if spec.reference or shipped or official:
        lines += ["Three rows side by side: the paper's table, the authors' released weights "
                  "measured by superres ([official_weights.md](../official_weights.md)), and "
                  "the weights superres trained and ships.", "",
                  "| set | scale | paper | authors' weights, measured | ours (trained here) "
                  "| ours - paper |", "|---|---|---|---|---|---|"]
        for dataset in DATASETS:
            for scale in spec.scales:
                paper = spec.reference.get(dataset, {}).get(scale)
                authors = official.get(str(scale), {}).get(dataset)
                ours = shipped[scale].scores.get(dataset) if scale in shipped else None
                if not paper and not ours and not authors:
                    continue
                paper_text = (f"{paper[0]:.2f}" + (f" / {paper[1]:.4f}" if paper[1] else "")
                              if paper else "-")
                authors_text = f"{authors[0]:.2f} / {authors[1]:.4f}" if authors else "-"
                ours_text = f"{ours[0]:.2f} / {ours[1]:.4f}" if ours else "no weights"
                clean = scale not in shipped or shipped[scale].clean
                if not clean:  # a photo model's benchmark: realistic LR, not the papers'
                    ours_text += f" on `{shipped[scale].degradation}` LR"
                diff = f"{ours[0] - paper[0]:+.2f}" if paper and ours and clean else ""
                lines.append(f"| {dataset} | x{scale} | {paper_text} | {authors_text} | "
                             f"{ours_text} | {diff} |")
        lines.append("")
    for scale, weights in sorted(shipped.items()):
        lines.append(f"Shipped x{scale}: `{weights.file}` (sha256 {weights.sha256[:16]}...), "
                     f"recipe `{weights.recipe}`, {weights.steps} steps, "
                     f"{weights.train_hours} h of training on a 2-core CPU"
                     + (f", starting from {_short_sha(weights.init)}." if weights.init else "."))
    if not shipped and spec.learned:
        lines.append("No weights are shipped yet: `superres upscale`/`eval` refuse this model "
                     "unless given `--weights FILE`.")
    progress = _progress_lines(spec)
    if progress:
        lines += ["", "## Training runs", "", *progress]
    short = _short_run_lines(spec)
    if short:
        lines += ["", "## How far a short CPU run gets from the paper", "", *short]
    return "\n".join(lines).rstrip() + "\n"


def _guided_lines(spec: ModelSpec) -> list[str]:
    """A guided depth model's results: held-out RMSE of its shipped leave-one-out folds."""
    lines = ["## Results (RMSE on 0-255 disparity, whole map, leave-one-scene-out)", "",
             "Each scene is scored by the fold that never saw it. The baselines (bicubic, "
             "JBU, guided filter) on the same scenes, the protocol and the search for the "
             "papers' numbers on these scenes (none could be retrieved) are in "
             "[depth.md](../depth.md).", ""]
    index = ZOO / spec.name / "index.json"
    if not index.is_file():
        return [*lines, "No weights are shipped yet: train them with the recipe above."]
    record = json.loads(index.read_text())
    lines += ["| set | " + " | ".join(f"x{s}" for s in spec.scales) + " |",
              "|---|" + "---|" * len(spec.scales)]
    for dataset, by_scale in record["rmse"].items():
        lines.append(f"| {dataset} | " + " | ".join(
            f"{by_scale[str(s)]:.3f}" if str(s) in by_scale else "-" for s in spec.scales) + " |")
    folds = ", ".join(f"`{f['file']}`" for f in record["folds"].values())
    return [*lines, "", f"Shipped in `zoo/{spec.name}/`: {folds} (sha256 in its index.json), "
            f"recipe `{record['recipe']}`, {record['steps_per_fold']} steps per fold, "
            f"{record['train_hours']} h of training in all on one CPU thread."]


def _short_sha(text: str) -> str:
    """Full sha256 digests in `text` cut to 16 hex digits, as the cards show them."""
    return re.sub(r"\b([0-9a-f]{16})[0-9a-f]{48}\b", r"\1...", text)


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    index = ["# Model cards", "", "| model | framework | scales | parameters |",
             "|---|---|---|---|"]
    for spec in MODELS.values():
        (OUT / f"{spec.name}.md").write_text(card(spec))
        params = "/".join(dict.fromkeys(f"{spec.params(s):,}" for s in spec.scales))
        index.append(f"| [{spec.name}]({spec.name}.md) | {spec.framework} | "
                     f"{', '.join(f'x{s}' for s in spec.scales)} | {params} |")
    (OUT / "README.md").write_text("\n".join(index) + "\n")
    print(f"wrote {len(MODELS)} cards to {OUT}")


if __name__ == "__main__":
    main()
