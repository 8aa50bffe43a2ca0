"""`reid export -m CHECKPOINT --format onnx|torchscript --out FILE`: a deployable feature extractor."""

from __future__ import annotations

import click

from .common import fail


@click.command()
@click.option("-m", "--model", "checkpoint", required=True, type=click.Path(), help="Checkpoint file or run folder.")
@click.option("--format", "fmt", type=click.Choice(["onnx", "torchscript"]), required=True)
@click.option("--out", required=True, type=click.Path(dir_okay=False), help="Output .onnx / .pt file.")
@click.option("--normalize-inside", is_flag=True, help="Input RGB floats 0..255; the graph normalises.")
@click.option("--flip/--no-flip", default=False, show_default=True, help="Average with the mirror in the graph.")
@click.option("--opset", default=17, show_default=True, help="ONNX opset.")
@click.option("--check/--no-check", default=True, show_default=True, help="Compare the file with PyTorch.")
def export(checkpoint, fmt, out, normalize_inside, flip, opset, check) -> None:
    """Export: dynamic batch, the checkpoint's input size, L2-normalised output, metadata in the file."""
    import torch

    from reid.io.export import (
        InferenceGraph,
        example_input,
        export_metadata,
        export_onnx,
        export_torchscript,
        onnx_max_abs_difference,
        torchscript_max_abs_difference,
    )
    from reid.models.loading import load_model, weights_fingerprint

    model, pre, config, state = load_model(checkpoint, "cpu")
    graph = InferenceGraph(model, pre, normalize_inside=normalize_inside, flip=flip).eval()
    example = example_input(pre, normalize_inside, batch=2)
    with torch.no_grad():
        dim = int(graph(example).shape[1])
    extra = {"backbone": config.model.backbone, "config_hash": config.hash(), "weights": weights_fingerprint(state)}
    metadata = export_metadata(pre, graph, dim, extra)
    if fmt == "onnx":
        if not out.endswith(".onnx"):
            raise fail(f"--out {out}: an ONNX file ends in .onnx")
        export_onnx(graph, example, out, metadata, opset=opset)
    else:
        export_torchscript(graph, example, out, metadata)
    click.echo(
        f"wrote {out}: input (N, 3, {pre.height}, {pre.width}) {metadata['color_order']} "
        f"{metadata['input_range']} -> features (N, {dim}), L2-normalised"
    )
    if check:
        inputs = example_input(pre, normalize_inside, batch=3, seed=1)  # another batch size than traced
        if fmt == "onnx":
            try:
                diff = onnx_max_abs_difference(out, graph, inputs)
            except ImportError:
                click.echo("onnxruntime not installed: parity not checked")
                return
        else:
            diff = torchscript_max_abs_difference(out, graph, inputs)
        click.echo(f"max |{fmt} - pytorch| over a batch of 3: {diff:.2e}")
