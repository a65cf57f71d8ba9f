"""Run a function on several gloo processes on the loopback address, as ``torchrun`` would.

``run_ranks("module:function", world_size, tmp_path, **kwargs)`` starts ``world_size`` Python
processes (the project root and ``tests/`` on their path), each with its ``RANK``/``WORLD_SIZE`` and a
gloo process group on 127.0.0.1, calls ``function(**kwargs)`` in each and returns the list of their
return values in rank order (anything ``torch.save`` can write). A failing rank fails the call with
its stderr.
"""
from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent.parent
RUNNER = Path(__file__).resolve().parent / "_rank_runner.py"


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run_ranks(target: str, world_size: int, tmp_path, *, timeout: float = 300, threads: int = 1, **kwargs) -> list:
    tmp = Path(tmp_path)
    job = tmp / f"job-{free_port()}.pt"
    torch.save(kwargs, job)
    port = free_port()
    procs = []
    for r in range(world_size):
        env = dict(os.environ, RANK=str(r), LOCAL_RANK=str(r), WORLD_SIZE=str(world_size), MASTER_ADDR="127.0.0.1",
                   MASTER_PORT=str(port), OMP_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads),
                   PYTHONPATH=os.pathsep.join([str(ROOT), str(ROOT / "tests"), os.environ.get("PYTHONPATH", "")]))
        out = tmp / f"{job.stem}-rank{r}.pt"
        procs.append((subprocess.Popen([sys.executable, str(RUNNER), target, str(job), str(out)], env=env,
                                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True), out))
    results, errors = [], []
    for r, (p, out) in enumerate(procs):
        try:
            _, err = p.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            for q, _ in procs:
                q.kill()
            raise AssertionError(f"rank {r} of {target} ran past {timeout} s")
        if p.returncode != 0:
            errors.append(f"rank {r} exited with {p.returncode}:\n{err[-4000:]}")
        else:
            results.append(torch.load(out, weights_only=False))
    if errors:
        raise AssertionError("\n".join(errors))
    return results
