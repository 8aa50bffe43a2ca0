"""Export a trained model to ONNX or TorchScript for deployment in trackers.

The exported graph takes a batch (N, 3, H, W) float32 with a dynamic N and the fixed
input size of the checkpoint's Preprocess, and returns L2-normalised features (N, D).
Its input is either
  - normalised (default): RGB (or the model's channel order), (x / 255 - mean) / std, or
  - raw (`normalize_inside=True`): RGB floats in 0..255; the graph normalises.
Everything a caller needs to feed it is recorded with the file: ONNX `metadata_props`
(one key per field, values JSON) or the TorchScript extra file `reid.json`.
"""

from __future__ import annotations

import json
import tempfile
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from reid.data.transforms import Preprocess
from reid.errors import ReidError
from reid.io.atomic import atomic_path

INPUT_NAME, OUTPUT_NAME = "images", "features"
TORCHSCRIPT_METADATA = "reid.json"


class InferenceGraph(nn.Module):
    """model + optional input normalisation + optional flip averaging + L2 normalisation."""

    def __init__(self, model: nn.Module, pre: Preprocess, normalize_inside: bool = False, flip: bool = False) -> None:
        super().__init__()
        self.model, self.normalize_inside, self.flip = model.eval(), normalize_inside, flip
        self.swap_channels = normalize_inside and pre.color == "bgr"  # raw input is always RGB
        std = torch.tensor(pre.std, dtype=torch.float32).view(1, 3, 1, 1)
        self.register_buffer("scale", 1.0 / (255.0 * std))
        self.register_buffer("shift", -torch.tensor(pre.mean, dtype=torch.float32).view(1, 3, 1, 1) / std)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        x = images
        if self.normalize_inside:
            if self.swap_channels:
                x = x.flip(1)
            x = x * self.scale + self.shift
        features = self.model(x)
        if self.flip:
            features = features + self.model(x.flip(3))
        return features / features.norm(dim=1, keepdim=True).clamp_min(1e-12)


def export_metadata(pre: Preprocess, graph: InferenceGraph, feature_dim: int, extra: dict[str, Any]) -> dict[str, Any]:
    """What a consumer of the exported file needs to know to feed it."""
    return {
        "input_name": INPUT_NAME,
        "output_name": OUTPUT_NAME,
        "input_layout": "NCHW",
        "input_height": pre.height,
        "input_width": pre.width,
        "color_order": "rgb" if graph.normalize_inside else pre.color,
        "normalize_inside": graph.normalize_inside,
        "input_range": "0-255" if graph.normalize_inside else "normalized: (x / 255 - mean) / std",
        "mean": list(pre.mean),
        "std": list(pre.std),
        "feature_dim": feature_dim,
        "l2_normalized": True,
        "flip": graph.flip,
        **extra,
    }


def _atomic(path: Path, write: Callable[[str], None]) -> Path:
    with atomic_path(path) as tmp:
        write(tmp)
    return path


def export_onnx(
    graph: InferenceGraph, example: torch.Tensor, path: str | Path, metadata: dict, opset: int = 17
) -> Path:
    """ONNX file with a dynamic batch axis and `metadata` in metadata_props (values JSON)."""
    try:
        import onnx
    except ImportError:
        raise ReidError("ONNX export needs the onnx package (pip install 'reid[export]')") from None

    def write(tmp: str) -> None:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the legacy exporter's deprecation notices
            torch.onnx.export(
                graph,
                (example,),
                tmp,
                input_names=[INPUT_NAME],
                output_names=[OUTPUT_NAME],
                dynamic_axes={INPUT_NAME: {0: "batch"}, OUTPUT_NAME: {0: "batch"}},
                opset_version=opset,
                dynamo=False,  # the torch.export-based exporter needs onnxscript
            )
        proto = onnx.load(tmp)
        for key, value in metadata.items():
            entry = proto.metadata_props.add()
            entry.key, entry.value = key, json.dumps(value)
        onnx.checker.check_model(proto)
        onnx.save(proto, tmp)

    return _atomic(Path(path), write)


def quantize_int8_file(src: str | Path, dst: str | Path) -> None:
    """onnxruntime dynamic int8 quantisation of the ONNX file `src` into `dst` (weights int8 per channel,
    activations quantised per batch), after onnxruntime's pre-processing (shape inference, graph
    clean-up: the exporter's Identity nodes for weights used twice, as with flip, block quantisation)."""
    from onnxruntime.quantization import QuantType, quantize_dynamic
    from onnxruntime.quantization.shape_inference import quant_pre_process

    with tempfile.TemporaryDirectory() as tmp, warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "please run pre-processing first" and similar notices
        ready = Path(tmp) / "pre.onnx"
        quant_pre_process(str(src), str(ready), skip_symbolic_shape=True)
        quantize_dynamic(ready, dst, per_channel=True, weight_type=QuantType.QInt8)


def quantize_onnx_int8(path: str | Path) -> Path:
    """Rewrite an exported ONNX file int8 (`quantize_int8_file`), keeping its metadata plus `"quantize": "int8"`."""
    import onnx

    path = Path(path)
    metadata = {p.key: p.value for p in onnx.load(str(path)).metadata_props}
    metadata["quantize"] = json.dumps("int8")

    def write(tmp: str) -> None:
        quantize_int8_file(path, tmp)
        proto = onnx.load(tmp)
        del proto.metadata_props[:]
        for key, value in metadata.items():
            entry = proto.metadata_props.add()
            entry.key, entry.value = key, value
        onnx.save(proto, tmp)

    return _atomic(path, write)


def export_openvino(onnx_path: str | Path, path: str | Path, metadata: dict) -> Path:
    """OpenVINO IR (`path` .xml + its .bin) converted from an exported ONNX file; `metadata` in the
    model's rt_info under "reid" (values JSON). Both files are written to temporary names first."""
    try:
        import openvino as ov
    except ImportError:
        raise ReidError("OpenVINO export needs the openvino package (pip install 'reid[openvino]')") from None
    path = Path(path)
    model = ov.Core().read_model(str(onnx_path))
    for key, value in metadata.items():
        model.set_rt_info(json.dumps(value), ["reid", key])
    bin_path = path.with_suffix(".bin")
    with atomic_path(path) as tmp_xml, atomic_path(bin_path) as tmp_bin:  # the .bin lands first
        staging = Path(tmp_xml).with_name(Path(tmp_xml).name + ".stage.xml")
        try:
            ov.save_model(model, str(staging), compress_to_fp16=False)
            Path(staging).replace(tmp_xml)
            staging.with_suffix(".bin").replace(tmp_bin)
        finally:
            staging.unlink(missing_ok=True)
            staging.with_suffix(".bin").unlink(missing_ok=True)
    return path


def openvino_max_abs_difference(path: str | Path, graph: InferenceGraph, inputs: torch.Tensor) -> float:
    """max |OpenVINO(inputs) - PyTorch(inputs)| (float32 inference precision)."""
    import openvino as ov

    compiled = ov.Core().compile_model(str(path), "CPU", {"INFERENCE_PRECISION_HINT": "f32"})
    ours = np.asarray(compiled({0: inputs.numpy()})[compiled.output(0)])
    with torch.no_grad():
        reference = graph(inputs).numpy()
    return float(np.abs(ours - reference).max())


def export_torchscript(graph: InferenceGraph, example: torch.Tensor, path: str | Path, metadata: dict) -> Path:
    """A traced TorchScript file; `metadata` as the extra file reid.json."""

    def write(tmp: str) -> None:
        with warnings.catch_warnings(), torch.no_grad():
            warnings.simplefilter("ignore")  # torch.jit's deprecation notices
            traced = torch.jit.trace(graph, example)
            torch.jit.save(traced, tmp, _extra_files={TORCHSCRIPT_METADATA: json.dumps(metadata)})

    return _atomic(Path(path), write)


def read_onnx_metadata(path: str | Path) -> dict[str, Any]:
    import onnx

    return {p.key: json.loads(p.value) for p in onnx.load(str(path)).metadata_props}


def load_torchscript(path: str | Path) -> tuple[torch.jit.ScriptModule, dict[str, Any]]:
    """The TorchScript module and its metadata."""
    extra = {TORCHSCRIPT_METADATA: ""}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # torch.jit's deprecation notice
        module = torch.jit.load(str(path), map_location="cpu", _extra_files=extra)
    return module, json.loads(extra[TORCHSCRIPT_METADATA])


def example_input(pre: Preprocess, normalize_inside: bool, batch: int = 2, seed: int = 0) -> torch.Tensor:
    """A random input batch in the exported graph's input convention."""
    generator = torch.Generator().manual_seed(seed)
    raw = torch.randint(0, 256, (batch, 3, pre.height, pre.width), generator=generator).float()
    if normalize_inside:
        return raw
    mean, std = torch.tensor(pre.mean).view(1, 3, 1, 1), torch.tensor(pre.std).view(1, 3, 1, 1)
    return (raw / 255 - mean) / std


def onnx_max_abs_difference(path: str | Path, graph: InferenceGraph, inputs: torch.Tensor) -> float:
    """max |onnxruntime(inputs) - PyTorch(inputs)| over all features (the parity check)."""
    import onnxruntime

    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    (ours,) = session.run(None, {INPUT_NAME: inputs.numpy()})
    with torch.no_grad():
        reference = graph(inputs).numpy()
    return float(np.abs(ours - reference).max())


def torchscript_max_abs_difference(path: str | Path, graph: InferenceGraph, inputs: torch.Tensor) -> float:
    """max |TorchScript file(inputs) - PyTorch(inputs)| over all features (the parity check)."""
    module, _ = load_torchscript(path)
    with torch.no_grad():
        return float((module(inputs) - graph(inputs)).abs().max())
