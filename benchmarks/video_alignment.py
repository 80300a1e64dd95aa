"""Does a trained VESPCN use its neighbours? Three measurements of its weights.

    python benchmarks/video_alignment.py WEIGHTS [--model vespcn-5|vespcn-deep|vespcn-5-deep]
        [--vid4] [--flow-only STEPS] [--gt-warp]

1. On held-out synthetic clips (seed 123, 32 clips of 32-pixel LR patches): Y-PSNR with the
   neighbours and with frame t repeated, and how far the flow network's warp brings each
   neighbour towards frame t (MSE before and after, mean flow length).
2. `--vid4`: Vid4 PSNR/SSIM of the weights with frame t repeated (compare with `superres eval`).
3. `--flow-only N`: a fresh flow network trained N steps on the warped-frame loss alone
   (beta = 1), measured on the same held-out clips: what the flow network can learn.
4. `--gt-warp`: the warping error of Vid4's ground truth itself, the floor of that measure.
"""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path

import torch
import torch.nn.functional as F

import superres
from superres.data import dataset_sequences
from superres.evaluation import evaluate_dataset
from superres.image.degrade import modcrop
from superres.image.io import read_image
from superres.inference.upscaler import Upscaler
from superres.metrics.temporal import WarpingError
from superres.models import get_model
from superres.models.vespcn import VESPCN
from superres.nn.alignment import CoarseToFineFlow, flow_smoothness, flow_warp
from superres.train.clips import ClipSampler, load_stills
from superres.weights import load_weights


def alignment(flow: CoarseToFineFlow, clips: torch.Tensor) -> list[str]:
    """For each neighbour: MSE to frame t unwarped and warped, and the mean flow length."""
    t = clips.shape[1] // 2
    centre, lines = clips[:, t : t + 1], []
    with torch.no_grad():
        for i in (i for i in range(clips.shape[1]) if i != t):
            neighbour = clips[:, i : i + 1]
            field = flow(centre, neighbour)
            before = float((neighbour - centre).square().mean())
            after = float((flow_warp(neighbour, field) - centre).square().mean())
            lines.append(f"frame {i - t:+d}: MSE to t {before:.2e} unwarped, {after:.2e} "
                         f"warped ({1 - after / before:.0%} lower), mean |flow| "
                         f"{float(field.abs().mean()):.2f} px")
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("weights", type=Path)
    parser.add_argument("--model", default="vespcn",
                        help="vespcn, vespcn-5, vespcn-deep or vespcn-5-deep")
    parser.add_argument("--vid4", action="store_true")
    parser.add_argument("--flow-only", type=int, default=0, metavar="STEPS")
    parser.add_argument("--gt-warp", action="store_true")
    args = parser.parse_args()
    torch.manual_seed(0)
    spec = get_model(args.model)
    model = superres.build(spec.name, 4)
    load_weights(model, args.weights)
    model.eval()
    stills = load_stills(["T91", "BSD200"], progress=False)
    lr, hr = ClipSampler(stills, 4, 32, 32, spec.frames, 123, augment=False).next_batch()
    t = spec.radius
    with torch.no_grad():
        for name, x in (("neighbours", lr), ("frame t repeated", lr[:, t : t + 1])):
            mse = (model(x).clamp(0, 1) - hr).square().mean(dim=(1, 2, 3))
            print(f"synthetic clips, {name}: {float((10 * torch.log10(1 / mse)).mean()):.3f} dB")
    print(*alignment(model.motion, lr), sep="\n")
    if args.vid4:
        one_frame = dataclasses.replace(spec, frames=1)
        result = evaluate_dataset(Upscaler(one_frame, 4, model, torch.device("cpu")), "Vid4",
                                  progress=False, temporal=False)
        print(f"Vid4, frame t repeated: {result.psnr:.4f} / {result.ssim:.4f}")
    if args.flow_only:
        flow = CoarseToFineFlow()
        optimizer = torch.optim.Adam(flow.parameters(), 1e-3)
        train = ClipSampler(stills, 4, 24, 16, 3, 0)
        for _ in range(args.flow_only):
            clips = train.next_batch()[0]
            loss = sum(F.mse_loss(flow_warp(n, f), clips[:, 1:2])
                       + VESPCN.loss_weights["smoothness"] * flow_smoothness(f)
                       for n in (clips[:, :1], clips[:, 2:])
                       for f in (flow(clips[:, 1:2], n),))
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        print(f"a flow network trained {args.flow_only} steps alone (beta = 1):")
        print(*alignment(flow, lr), sep="\n")
    if args.gt_warp:
        print(f"Vid4 ground truth's warping error: {ground_truth_warp_error():.3f}")


def ground_truth_warp_error() -> float:
    """The warping error of Vid4's HR frames against themselves (mean over sequences)."""
    errors = []
    for paths in dataset_sequences("Vid4")[1].values():
        measure = WarpingError()
        for path in paths:
            hr = modcrop(read_image(path).pixels, 4)
            measure.add(hr, hr)
        errors.append(measure.value)
    return sum(errors) / len(errors)


if __name__ == "__main__":
    main()
