"""Time to quality: `python benchmarks/time_to_quality.py [--quick] [--set key=value] [--out DIR]`.

Same as `anila compare time_to_quality ...`: every preset trains for a fixed budget of process CPU seconds
on one torch thread, 3 seeds, on the toys with a known density, and the grid KL(true || learned) is
reported. The study lives in `anila.studies.time_to_quality` (see its docstring); results in
docs/results/time_to_quality.md.
"""

import sys

from anila.cli import main

if __name__ == "__main__":
    sys.exit(main(["compare", "time_to_quality", *sys.argv[1:]]))
