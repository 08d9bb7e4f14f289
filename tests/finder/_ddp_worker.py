"""One rank of the 2-process DDP range test (run by test_ddp.py with torchrun-style env vars).

First a clean test (no NaN, all steps), then one where rank 1 sees a NaN loss at step NAN_STEP
and rank 0 never does. Writes both results as JSON.
"""

from __future__ import annotations

import json
import os
import sys

import torch
import torch.distributed as dist

from lrkit.finder import find_lr


def main() -> None:
    out_path, nan_step = sys.argv[1], int(sys.argv[2])
    torch.set_num_threads(1)
    dist.init_process_group("gloo")
    rank = dist.get_rank()
    torch.manual_seed(0)  # same initial weights on both ranks
    model = torch.nn.parallel.DistributedDataParallel(
        torch.nn.Sequential(torch.nn.Linear(6, 8), torch.nn.Tanh(), torch.nn.Linear(8, 1))
    )
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    w = torch.randn(6, 1, generator=torch.Generator().manual_seed(7))  # one learnable target
    g = torch.Generator().manual_seed(100 + rank)  # different data on each rank
    data = []
    for _ in range(4):
        x = torch.randn(16, 6, generator=g)
        data.append((x, x @ w + 0.1 * torch.randn(16, 1, generator=g)))
    calls = {"n": 0}
    local: list[float] = []
    inject = {"nan": False}

    def step_fn(m: torch.nn.Module, batch: object) -> torch.Tensor:
        x, y = batch  # type: ignore[misc]
        loss = torch.nn.functional.mse_loss(m(x), y)
        i = calls["n"]
        calls["n"] += 1
        if inject["nan"] and rank == 1 and i == nan_step:
            loss = loss * float("nan")
        local.append(loss.item())
        return loss

    before = [p.detach().clone() for p in model.parameters()]
    clean = find_lr(
        model,
        opt,
        None,
        data,
        step_fn=step_fn,
        num_steps=60,
        start_lr=1e-4,
        end_lr=10.0,
    )
    clean_restored = all(torch.equal(a, b) for a, b in zip(before, model.parameters(), strict=True))
    calls["n"] = 0
    local.clear()
    inject["nan"] = True
    result = find_lr(
        model,
        opt,
        None,
        data,
        step_fn=step_fn,
        num_steps=int(sys.argv[3]),
        start_lr=1e-4,
        end_lr=1.0,
        diverge_factor=None,
    )
    restored = all(torch.equal(a, b) for a, b in zip(before, model.parameters(), strict=True))
    suggestion = result.suggest()
    payload = {
        "rank": rank,
        "clean_result": clean.to_dict(),
        "clean_suggestion": clean.suggest().lr,
        "clean_suggestion_cosine": clean.suggest(schedule="cosine").lr,
        "clean_restored": clean_restored,
        "result": result.to_dict(),
        "suggestion": suggestion.lr,
        "restored": restored,
        "local_calls": calls["n"],
        "local_losses": local,
    }
    with open(out_path, "w") as fh:
        json.dump(payload, fh)
    dist.barrier()
    dist.destroy_process_group()


if __name__ == "__main__":
    if len(sys.argv) > 4 and sys.argv[4] == "stub-rules":
        sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
        import conftest  # noqa: F401  (installs the stand-in rules when the real ones are missing)
    main()
