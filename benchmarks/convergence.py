"""The convergence toy study: `python benchmarks/convergence.py [--quick] [--set key=value] [--out DIR]`.

Same as `anila compare convergence ...`; the study itself lives in `anila.studies.convergence` (see its docstring).
"""

import sys

from anila.cli import main

if __name__ == "__main__":
    sys.exit(main(["compare", "convergence", *sys.argv[1:]]))
