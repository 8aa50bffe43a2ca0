"""`reid export -m CHECKPOINT --format onnx|openvino|torchscript --out FILE [--int8]`: a deployable extractor."""

from __future__ import annotations

import click

from .common import fail


@click.command()
@click.option("-m", "--model", "checkpoint", required=True, type=click.Path(), help="Checkpoint file or run folder.")
@click.option("--format", "fmt", type=click.Choice(["onnx", "openvino", "torchscript"]), required=True)
@click.option("--out", required=True, type=click.Path(dir_okay=False), help="Output .onnx / .xml (+ .bin) / .pt file.")
@click.option("--int8", is_flag=True, help="ONNX only: onnxruntime dynamic int8 quantisation (not faithful to 1e-3).")
@click.option("--normalize-inside", is_flag=True, help="Input RGB floats 0..255; the graph normalises.")
@click.option("--flip/--no-flip", default=False, show_default=True, help="Average with the mirror in the graph.")
@click.option("--opset", default=17, show_default=True, help="ONNX opset.")
@click.option("--check/--no-check", default=True, show_default=True, help="Compare the file with PyTorch.")
def export(checkpoint, fmt, out, int8, normalize_inside, flip, opset, check) -> None:
    """Export: dynamic batch, the checkpoint's input size, L2-normalised output, metadata in the file."""
    import tempfile
    from pathlib import Path

    import torch

    from reid.io.export import (
        InferenceGraph,
        example_input,
        export_metadata,
        export_onnx,
        export_openvino,
        export_torchscript,
        onnx_max_abs_difference,
        openvino_max_abs_difference,
        quantize_onnx_int8,
        torchscript_max_abs_difference,
    )
    from reid.models.loading import load_model, weights_fingerprint

    suffix = {"onnx": ".onnx", "openvino": ".xml", "torchscript": None}[fmt]
    if suffix and not out.endswith(suffix):
        raise fail(f"--out {out}: an {fmt} file ends in {suffix}")
    if int8 and fmt != "onnx":
        raise fail(f"--int8 goes with --format onnx (onnxruntime quantisation), not {fmt}")
    model, pre, config, state = load_model(checkpoint, "cpu")
    graph = InferenceGraph(model, pre, normalize_inside=normalize_inside, flip=flip).eval()
    example = example_input(pre, normalize_inside, batch=2)
    with torch.no_grad():
        dim = int(graph(example).shape[1])
    extra = {"backbone": config.model.backbone, "config_hash": config.hash(), "weights": weights_fingerprint(state)}
    metadata = export_metadata(pre, graph, dim, extra)
    if fmt == "onnx":
        export_onnx(graph, example, out, metadata, opset=opset)
        if int8:
            quantize_onnx_int8(out)
    elif fmt == "openvino":
        with tempfile.TemporaryDirectory() as tmp:
            onnx_file = Path(tmp) / "model.onnx"
            export_onnx(graph, example, onnx_file, metadata, opset=opset)
            export_openvino(onnx_file, out, metadata)
    else:
        export_torchscript(graph, example, out, metadata)
    click.echo(
        f"wrote {out}: input (N, 3, {pre.height}, {pre.width}) {metadata['color_order']} "
        f"{metadata['input_range']} -> features (N, {dim}), L2-normalised" + (", int8" if int8 else "")
    )
    if check:
        inputs = example_input(pre, normalize_inside, batch=3, seed=1)  # another batch size than traced
        if fmt in ("onnx", "openvino"):
            try:
                compare = onnx_max_abs_difference if fmt == "onnx" else openvino_max_abs_difference
                diff = compare(out, graph, inputs)
            except ImportError:
                click.echo(f"{'onnxruntime' if fmt == 'onnx' else 'openvino'} not installed: parity not checked")
                return
        else:
            diff = torchscript_max_abs_difference(out, graph, inputs)
        click.echo(f"max |{fmt} - pytorch| over a batch of 3: {diff:.2e}")
