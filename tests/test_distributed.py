"""Two CPU processes (gloo on 127.0.0.1): disjoint P x K shares, gathered embeddings with the
right gradient, training to the end with only rank 0 writing the run folder."""

from __future__ import annotations

import json
import os
import socket
from pathlib import Path

import pytest
import torch
import torch.multiprocessing as mp

from reid.config import load_config

from .conftest import tiny_config_overrides

REPO = Path(__file__).resolve().parents[1]
WORLD = 2


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _worker(rank: int, port: int, root: str, out: str) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank), LOCAL_RANK=str(rank),
                      WORLD_SIZE=str(WORLD))  # fmt: skip
    torch.set_num_threads(1)
    from reid.engine.distributed import all_gather_with_grad
    from reid.engine.trainer import Trainer

    overrides = tiny_config_overrides(Path(root), Path(out)) + [
        "train.gather_embeddings=true", "train.eval_before=false", "train.plots=false", "train.epochs=2",
    ]  # fmt: skip
    config = load_config(REPO / "configs" / "demo.yaml", overrides)
    trainer = Trainer.from_config(config, Path(out) / "ddp", progress=False)

    # a shared parameter theta; each process embeds its own rows, the loss runs on the gathered
    # rows times the world size; theta's gradient averaged like DDP does must equal the gradient
    # of the same loss computed on the whole batch in one process
    full = torch.arange(12, dtype=torch.float64).reshape(4, 3) / 7
    theta = torch.tensor([0.5, 1.5, 2.0], dtype=torch.float64, requires_grad=True)
    gathered = all_gather_with_grad(full[2 * rank : 2 * rank + 2] * theta, trainer.dist)
    (WORLD * (gathered.sin() * gathered.sum(0)).sum()).backward()
    grad = theta.grad.clone()
    torch.distributed.all_reduce(grad)
    grad /= WORLD
    reference = torch.tensor([0.5, 1.5, 2.0], dtype=torch.float64, requires_grad=True)
    whole = full * reference
    (whole.sin() * whole.sum(0)).sum().backward()
    sampler = trainer.sampler
    sampler.set_epoch(0)
    pids = [r.pid for r in trainer.loader.dataset.records]
    record = {
        "gathered_ok": torch.allclose(gathered.detach(), whole.detach()),
        "grad_ok": torch.allclose(grad, reference.grad),
        "batches": sampler.batches(),
        "pids": [[pids[i] for i in batch] for batch in sampler.batches()],
    }
    history = trainer.fit()
    record["final"] = history["final"]
    (Path(out) / f"rank{rank}.json").write_text(json.dumps(record))


@pytest.mark.slow
def test_two_gloo_processes_train_on_disjoint_batches(tiny_root, tmp_path):
    mp.spawn(_worker, args=(_free_port(), str(tiny_root), str(tmp_path)), nprocs=WORLD, join=True)
    ranks = [json.loads((tmp_path / f"rank{r}.json").read_text()) for r in range(WORLD)]
    assert all(r["gathered_ok"] and r["grad_ok"] for r in ranks)
    assert len(ranks[0]["batches"]) == len(ranks[1]["batches"]) > 0
    for step, (a, b) in enumerate(zip(ranks[0]["batches"], ranks[1]["batches"])):
        assert len(a) == len(b) == 3 * 2
        assert not set(a) & set(b), f"step {step}: the processes share images"
        assert not set(ranks[0]["pids"][step]) & set(ranks[1]["pids"][step]), f"step {step}: shared identities"
    assert ranks[0]["final"] == ranks[1]["final"] and 0 <= ranks[0]["final"]["mAP"] <= 1
    run = tmp_path / "ddp"
    lines = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert [line["epoch"] for line in lines] == [1, 2]  # one writer: no duplicated records
    state = torch.load(run / "checkpoints" / "last.pt", weights_only=True)
    assert state["world_size"] == WORLD and len(state["rng_per_rank"]) == WORLD
    written = sorted(p.name for p in run.iterdir() if p.name != "tb")
    assert written == ["checkpoints", "config.yaml", "metrics.json", "metrics.jsonl", "train.log"]
