"""The onnxruntime backend of FeatureExtractor: the same network, exported in memory, run by onnxruntime.

The exported graph is the model under the test-time options (flip, scales, beta) and
the final L2 normalisation, as `embed_batch` computes it; the input is the normalised
float32 NCHW batch the torch backend feeds its model, so both backends share the
decoding and resizing code and differ only in who runs the network.
"""

from __future__ import annotations

import io
import warnings
from collections.abc import Callable

import numpy as np
import torch
from torch import nn

from reid.data.transforms import Preprocess

from .features import TestTimeOptions, embed_batch


class _Embedder(nn.Module):
    def __init__(self, model: nn.Module, options: TestTimeOptions) -> None:
        super().__init__()
        self.model, self.options = model, options

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return embed_batch(self.model, x, self.options)


def ort_session(
    model: nn.Module, pre: Preprocess, options: TestTimeOptions, device: torch.device, half: bool
) -> Callable[[torch.Tensor], torch.Tensor]:
    """A function normalised batch (B, 3, H, W) -> float32 (B, D) CPU features, run by onnxruntime."""
    try:
        import onnxruntime as ort
    except ImportError:
        raise ValueError("backend='onnxruntime' needs onnxruntime (pip install 'reid[export]')") from None
    if device.type != "cpu" or half:
        raise ValueError("backend='onnxruntime' runs float32 on the CPU: use device='cpu' and half=False")
    if options.pool_lambda is not None or options.leaky_slope is not None:
        raise ValueError("backend='onnxruntime' does not support pool_lambda / leaky_slope: use backend='torch'")
    graph = _Embedder(model.float().eval(), options).eval()
    example = torch.zeros(2, 3, pre.height, pre.width)
    buffer = io.BytesIO()
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")  # the exporter's tracer notices
        torch.onnx.export(
            graph, (example,), buffer, input_names=["images"], output_names=["features"],
            dynamic_axes={"images": {0: "batch"}, "features": {0: "batch"}}, opset_version=17, dynamo=False,
        )  # fmt: skip
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = torch.get_num_threads()
    session = ort.InferenceSession(buffer.getvalue(), opts, providers=["CPUExecutionProvider"])

    def run(x: torch.Tensor) -> torch.Tensor:
        batch = np.ascontiguousarray(x.float().contiguous().numpy())
        return torch.from_numpy(session.run(["features"], {"images": batch})[0])

    return run
