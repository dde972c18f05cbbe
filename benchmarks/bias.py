"""The bias toy study: `python benchmarks/bias.py [--quick] [--set key=value] [--out DIR]`.

Same as `anila compare bias ...`; the study itself lives in `anila.studies.bias` (see its docstring).
"""

import sys

from anila.cli import main

if __name__ == "__main__":
    sys.exit(main(["compare", "bias", *sys.argv[1:]]))
