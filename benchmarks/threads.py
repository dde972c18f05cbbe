"""Training speed against torch's thread count: `python benchmarks/threads.py THREADS [ITERATIONS]`.

Trains the demo's Langevin rings recipe (MLP 64 x 4, batch 100, K = 50) for ITERATIONS (default 150) on
THREADS torch threads and prints one JSON line: wall seconds, process CPU seconds (all threads), iterations
per second. The results are in docs/performance.md ("Threads").
"""

import json
import sys
import time
from pathlib import Path

import torch

from anila.config import load_config
from anila.data.toy import toy_dataset
from anila.train.loop import make_train_state, train

threads = int(sys.argv[1])
iterations = int(sys.argv[2]) if len(sys.argv) > 2 else 150
torch.set_num_threads(threads)
config = load_config(Path(__file__).parents[1] / "configs" / "demo_rings_langevin.toml",
                     [f"train.iterations={iterations}"])
torch.manual_seed(0)
energy = config.build_energy()
state = make_train_state(energy, config.train, config.chains, (2,))
ds = toy_dataset("rings")
w, c = time.perf_counter(), time.process_time()
train(state, config.sampler, config.chains, lambda n, g: ds.sample(n, generator=g), config.train, progress=False)
w, c = time.perf_counter() - w, time.process_time() - c
print(json.dumps({"threads": threads, "iterations": iterations, "wall_s": round(w, 2), "cpu_s": round(c, 2),
                  "it_per_s": round(iterations / w, 1)}))
