"""The speed benchmark: `python benchmarks/speed.py [--quick] [--device cpu|cuda] [--threads N]
[--options compile,channels_last,bf16,cuda_graphs] [--models mlp,convnet,resnet] [--out benchmarks/results/NAME.json]`.

Same as `anila bench ...`; the harness lives in `anila.bench` (see `anila.bench.speed`). It replaces the older
`benchmarks/step_time.py`: its bare-pass-versus-sampler-step table is the first columns of this one.
"""

import sys

from anila.cli import main

if __name__ == "__main__":
    sys.exit(main(["bench", *sys.argv[1:]]))
