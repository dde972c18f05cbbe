"""``make gpu-check``: exercise every CUDA path of anila in one command (at most about 8 minutes on one GPU).

Without CUDA it says that it needs a GPU and exits 0 (nothing to check). With CUDA it runs, each as a
subprocess with its own time limit:

- ``no_sync``: ``tests/samplers/test_no_sync.py``, which on a GPU runs the chains under
  ``torch.cuda.set_sync_debug_mode("error")``;
- ``train_*``: a few iterations of training on ``cuda`` with each speed switch: ``cuda_graphs`` (AniLA chains),
  ``compile``, ``precision = "bf16"``, ``channels_last`` (a ConvNet on digits), and the plain path, whose Adam
  must be the fused one;
- ``cuda_resume``: a run stopped at iteration 3 and resumed to 6 on CUDA (CUDA RNG states captured and
  restored) is compared tensor by tensor with a run straight to 6;
- ``nccl``: a one-process ``nccl`` process group, an ``all_reduce`` and a DistributedDataParallel backward;
- ``bench``: ``anila bench`` on the ConvNet and the ResNet at batch 64 and 128.

Every result (pass / fail, seconds, the last lines of output on failure) goes to ``benchmarks/results/gpu.json``
and the exit code is 1 if any check failed. It has not been run on a GPU by the session that wrote it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "benchmarks" / "results" / "gpu.json"
TOY = """
[data]
name = "rings"
[model]
width = 32
depth = 2
[sampler]
name = "anila"
step_size = 0.05
threshold = 1.0
[chains]
init = "replay"
buffer_size = 256
[train]
iterations = {iterations}
batch_size = 64
num_steps = 5
log_every = 1
checkpoint_every = 1
device = "cuda"
[eval]
grid_resolution = 32
num_samples = 64
"""
IMAGES = ["data.name=digits", "model.name=convnet", "model.n_f=16", "train.batch_size=32", "train.num_steps=5"]

COMPARE = """
import sys, torch
from anila.train.checkpoint import load_checkpoint
(a, ma), (b, mb) = load_checkpoint(sys.argv[1]), load_checkpoint(sys.argv[2])
assert ma["iteration"] == mb["iteration"] == 6 and a.keys() == b.keys(), (ma["iteration"], mb["iteration"])
assert any(k.startswith("cuda.") for k in a["rng"]), "no CUDA RNG state captured"
bad = [f"{g}.{n}" for g in a for n in a[g] if not torch.equal(a[g][n], b[g][n])]
assert not bad, f"differ: {bad[:5]}"
print("bit-identical:", sum(len(g) for g in a.values()), "tensors")
"""
FUSED = """
import torch
from anila.energies import MLPEnergy
from anila.train.acceleration import make_adam
adam = make_adam(MLPEnergy().cuda(), 1e-3, (0.9, 0.999), torch.device("cuda"))
assert adam.defaults.get("fused"), adam.defaults
print("fused Adam on CUDA")
"""
NCCL = """
import os, torch, torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel
os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT="29533", RANK="0", WORLD_SIZE="1")
dist.init_process_group("nccl")
x = torch.ones(4, device="cuda")
dist.all_reduce(x)
assert torch.equal(x, torch.ones(4, device="cuda"))
model = DistributedDataParallel(torch.nn.Linear(3, 1).cuda(), device_ids=[0])
model(torch.randn(8, 3, device="cuda")).sum().backward()
assert all(p.grad is not None for p in model.parameters())
dist.destroy_process_group()
print("nccl: all_reduce and a DDP backward on one process")
"""


def run(name: str, command: list[str], timeout: int, results: dict, **kwargs) -> bool:
    start = time.perf_counter()
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=timeout, cwd=REPO, **kwargs)
        ok, output = done.returncode == 0, done.stdout + done.stderr
    except subprocess.TimeoutExpired as exc:
        ok, output = False, f"timed out after {timeout} s\n{exc.stdout or ''}{exc.stderr or ''}"
    seconds = time.perf_counter() - start
    results[name] = {"ok": ok, "seconds": round(seconds, 1),
                     "output": "\n".join(str(output).strip().splitlines()[-12 if not ok else -3:])}
    print(f"gpu-check: {name}: {'ok' if ok else 'FAILED'} ({seconds:.0f} s)", flush=True)
    return ok


def main() -> int:
    import torch

    if not torch.cuda.is_available():
        print("gpu-check: needs a CUDA GPU (torch.cuda.is_available() is False here); nothing was run")
        return 0
    anila = [sys.executable, "-m", "anila"]
    env = {**os.environ, "PYTHONPATH": str(REPO / "src")}
    results: dict = {"device": torch.cuda.get_device_name(0), "torch": torch.__version__,
                     "cuda": torch.version.cuda}
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        for iterations in (3, 6):
            (tmp / f"toy{iterations}.toml").write_text(TOY.format(iterations=iterations))
        toy = str(tmp / "toy6.toml")

        def train(name: str, *sets: str, config: str = toy, timeout: int = 90) -> bool:
            args = [arg for s in ("train.iterations=4", *sets) for arg in ("--set", s)]
            return run(name, [*anila, "train", config, "--out", str(tmp / name), "--quiet", *args], timeout,
                       results, env=env)

        run("no_sync", [sys.executable, "-m", "pytest", "-q", "tests/samplers/test_no_sync.py"], 120, results,
            env=env)
        train("train_plain")
        run("fused_adam", [sys.executable, "-c", FUSED], 60, results, env=env)
        train("train_cuda_graphs", "train.cuda_graphs=true")
        train("train_compile", "train.compile=true", timeout=150)
        train("train_bf16", "train.precision=\"bf16\"")
        train("train_channels_last", *IMAGES, "train.channels_last=true")
        train("train_images_bf16_channels_last", *IMAGES, "train.precision=\"bf16\"", "train.channels_last=true")

        first = [*anila, "train", str(tmp / "toy3.toml"), "--out", str(tmp / "split"), "--quiet"]
        resumed = [*anila, "train", "--resume", str(tmp / "split"), "--set", "train.iterations=6", "--quiet"]
        straight = [*anila, "train", toy, "--out", str(tmp / "straight"), "--quiet"]
        compare = [sys.executable, "-c", COMPARE, str(tmp / "split" / "checkpoints" / "iter_0000006.safetensors"),
                   str(tmp / "straight" / "checkpoints" / "iter_0000006.safetensors")]
        parts: dict = {}
        if all(run(f"cuda_resume_{i}", c, 90, parts, env=env) for i, c in enumerate((first, resumed, straight,
                                                                                   compare))):
            results["cuda_resume"] = {"ok": True, "seconds": sum(p["seconds"] for p in parts.values()),
                                      "output": parts["cuda_resume_3"]["output"]}
        else:
            results["cuda_resume"] = {"ok": False, "parts": parts}

        run("nccl", [sys.executable, "-c", NCCL], 60, results, env=env)
        bench_json = REPO / "benchmarks" / "results" / "gpu_bench.json"
        run("bench", [*anila, "bench", "--device", "cuda", "--models", "convnet,resnet", "--batches", "64,128",
                      "--out", str(bench_json)], 240, results, env=env)
        if bench_json.is_file():
            results["bench"]["results"] = json.loads(bench_json.read_text())
    failed = [k for k, v in results.items() if isinstance(v, dict) and not v.get("ok", True)]
    results["failed"] = failed
    sys.path.insert(0, str(REPO / "src"))
    from anila.io import atomic_write_text

    atomic_write_text(RESULTS, json.dumps(results, indent=1) + "\n")
    print(textwrap.fill(f"gpu-check: {len(failed)} failed{': ' + ', '.join(failed) if failed else ''}; "
                        f"results in {RESULTS}", 100))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
