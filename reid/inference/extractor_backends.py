"""Who runs the network inside FeatureExtractor: torch (BN folded), onnxruntime or OpenVINO, float32 or int8.

Every backend computes the same function: the model under the test-time options (flip,
scales, beta) and the final L2 normalisation, as `embed_batch` does, on the normalised
float32 NCHW batch the extractor builds. The decoding and resizing code is shared; only
the runner of the network differs. onnxruntime and OpenVINO run one ONNX graph exported in
memory. OpenVINO is pinned to float32 (its CPU plugin would pick bf16 on AMX CPUs by itself);
int8 is onnxruntime's dynamic quantisation of the same graph (weights int8 per channel,
activations quantised per batch), which is faster but not faithful to 1e-3: an opt-in.
"""

from __future__ import annotations

import copy
import io
import tempfile
import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from torch import nn

from reid.data.transforms import Preprocess
from reid.test_time import TestConfig

from .features import embed_batch

BACKENDS = ("auto", "torch", "onnxruntime", "openvino")
# backend="auto" on the CPU in float32: the first installed, fastest first as measured by tools/bench_extract.py
# (2-core AMD EPYC, AVX2: onnxruntime 4.97x the naive loop for ResNet-50, OpenVINO 4.29x, torch 3.37x)
AUTO_ORDER = ("onnxruntime", "openvino")
QUANTIZE = (None, "int8")
INSTALL_HINT = {"onnxruntime": "pip install 'reid[export]'", "openvino": "pip install 'reid[openvino]'"}
Runner = Callable[[torch.Tensor], torch.Tensor]


def installed(backend: str) -> bool:
    """Whether the package of `backend` imports here (torch always does)."""
    if backend == "torch":
        return True
    try:
        __import__(backend)
    except ImportError:
        return False
    return True


def resolve_backend(backend: str, device: torch.device, half: bool, options: TestConfig, quantize: str | None) -> str:
    """The backend to use: `backend` checked, or for "auto" the fastest faithful one available.

    auto: float32 on the CPU without pooling / activation overrides -> the first of AUTO_ORDER
    installed, else torch; anything else (CUDA, half, overrides) -> torch. int8 -> onnxruntime.
    """
    if backend not in BACKENDS:
        raise ValueError(f"backend must be one of {', '.join(BACKENDS)}, got {backend!r}")
    if quantize not in QUANTIZE:
        raise ValueError(f"quantize must be None or 'int8', got {quantize!r}")
    if backend == "auto":
        if quantize == "int8":
            return "onnxruntime"
        if device.type != "cpu" or half or options.pool_lambda is not None or options.leaky_slope is not None:
            return "torch"
        return next((b for b in AUTO_ORDER if installed(b)), "torch")
    if backend == "torch":
        if quantize:
            raise ValueError("quantize='int8' runs on onnxruntime: use backend='onnxruntime' (or 'auto')")
        return backend
    if not installed(backend):
        raise ValueError(f"backend={backend!r} needs the {backend} package ({INSTALL_HINT[backend]})")
    if device.type != "cpu" or half:
        raise ValueError(f"backend={backend!r} runs float32 on the CPU: use device='cpu' and half=False")
    if options.pool_lambda is not None or options.leaky_slope is not None:
        raise ValueError(f"backend={backend!r} does not support pool_lambda / leaky_slope: use backend='torch'")
    if quantize and backend != "onnxruntime":
        raise ValueError(f"quantize='int8' runs on onnxruntime, not {backend}")
    return backend


def _fold_children(module: nn.Module) -> int:
    """Fold each BatchNorm2d into the Conv2d registered just before it (maybe the last layer of a
    Sequential), recursively; the BN becomes an Identity. Returns the number of pairs folded."""
    from torch.nn.utils.fusion import fuse_conv_bn_eval

    folded, previous = 0, None  # (parent, name) of a Conv2d that a BN may follow
    for name, child in list(module.named_children()):
        if type(child) is nn.BatchNorm2d and previous is not None:  # exact type: BN+activation subclasses stay
            parent, conv_name = previous
            parent._modules[conv_name] = fuse_conv_bn_eval(parent._modules[conv_name], child)
            module._modules[name] = nn.Identity()
            folded, previous = folded + 1, None
            continue
        folded += _fold_children(child)
        if isinstance(child, nn.Conv2d):
            previous = (module, name)
        elif isinstance(child, nn.Sequential) and len(child) and isinstance(child[-1], nn.Conv2d):
            previous = (child, str(len(child) - 1))
        else:
            previous = None
    return folded


def fold_batchnorm(model: nn.Module, pre: Preprocess) -> nn.Module:
    """A copy of `model` with each Conv2d -> BatchNorm2d pair folded into one convolution.

    Eval-mode BN is an affine map per channel, so folding it into the preceding convolution's
    weights and bias computes the same function (to float rounding) with one pass less over each
    activation. Pairs are found by registration order; the copy is checked on a random batch
    against the original (cosine within 1e-5), and the original is returned if it differs.
    """
    folded = copy.deepcopy(model).eval()
    if not _fold_children(folded):
        return model
    x = torch.randn(2, 3, pre.height, pre.width, generator=torch.Generator().manual_seed(0))
    x = x.to(next(model.parameters()).device)
    with torch.no_grad():
        a, b = model.eval()(x).float(), folded(x).float()
    cosine = torch.nn.functional.cosine_similarity(a, b, dim=1)
    return folded if bool((cosine > 1 - 1e-5).all()) else model


class _Embedder(nn.Module):
    def __init__(self, model: nn.Module, options: TestConfig) -> None:
        super().__init__()
        self.model, self.options = model, options

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return embed_batch(self.model, x, self.options)


def onnx_bytes(model: nn.Module, pre: Preprocess, options: TestConfig) -> bytes:
    """The embedding graph (normalised NCHW float32 -> L2-normalised features) as ONNX, dynamic batch."""
    graph = _Embedder(model.float().eval(), options).eval()
    example = torch.zeros(2, 3, pre.height, pre.width)
    buffer = io.BytesIO()
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")  # the exporter's tracer notices
        torch.onnx.export(
            graph, (example,), buffer, input_names=["images"], output_names=["features"],
            dynamic_axes={"images": {0: "batch"}, "features": {0: "batch"}}, opset_version=17, dynamo=False,
        )  # fmt: skip
    return buffer.getvalue()


def quantize_int8(model_bytes: bytes) -> bytes:
    """onnxruntime dynamic int8 quantisation (per-channel weights) of an ONNX graph."""
    from reid.io.export import quantize_int8_file

    with tempfile.TemporaryDirectory() as tmp:
        tmp_src, tmp_dst = Path(tmp) / "fp32.onnx", Path(tmp) / "int8.onnx"
        tmp_src.write_bytes(model_bytes)
        quantize_int8_file(tmp_src, tmp_dst)
        return tmp_dst.read_bytes()


def ort_runner(model_bytes: bytes, threads: int) -> Runner:
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    session = ort.InferenceSession(model_bytes, opts, providers=["CPUExecutionProvider"])

    def run(x: torch.Tensor) -> torch.Tensor:
        batch = np.ascontiguousarray(x.float().contiguous().numpy())
        return torch.from_numpy(session.run(["features"], {"images": batch})[0])

    return run


def openvino_runner(model_bytes: bytes, threads: int) -> Runner:
    import openvino as ov

    core = ov.Core()
    with tempfile.TemporaryDirectory() as tmp:
        tmp_onnx = Path(tmp) / "model.onnx"
        tmp_onnx.write_bytes(model_bytes)
        network = core.read_model(str(tmp_onnx))
    config = {"INFERENCE_PRECISION_HINT": "f32", "INFERENCE_NUM_THREADS": threads, "PERFORMANCE_HINT": "LATENCY"}
    compiled = core.compile_model(network, "CPU", config)
    request = compiled.create_infer_request()

    def run(x: torch.Tensor) -> torch.Tensor:
        batch = np.ascontiguousarray(x.float().contiguous().numpy())
        out = request.infer({0: batch}, share_inputs=True)
        return torch.from_numpy(np.array(out[compiled.output(0)], np.float32, copy=True))

    return run


def build_runner(backend: str, model: nn.Module, pre: Preprocess, options: TestConfig, quantize: str | None) -> Runner:
    """A function normalised batch (B, 3, H, W) -> float32 (B, D) CPU features for an exported backend."""
    model_bytes = onnx_bytes(model, pre, options)
    if quantize == "int8":
        model_bytes = quantize_int8(model_bytes)
    threads = torch.get_num_threads()
    return (openvino_runner if backend == "openvino" else ort_runner)(model_bytes, threads)
