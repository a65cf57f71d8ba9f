"""One rank of :func:`distributed_harness.run_ranks`: ``python _rank_runner.py module:function job.pt out.pt``."""
import importlib
import sys

import torch
import torch.distributed as dist


def main(target, job, out):
    dist.init_process_group("gloo")  # RANK, WORLD_SIZE, MASTER_ADDR, MASTER_PORT from the environment
    try:
        module, name = target.split(":")
        result = getattr(importlib.import_module(module), name)(**torch.load(job, weights_only=False))
        torch.save(result, out)
    finally:
        dist.destroy_process_group()


if __name__ == "__main__":
    main(*sys.argv[1:4])
