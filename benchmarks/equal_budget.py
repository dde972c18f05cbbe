"""The equal budget toy study: `python benchmarks/equal_budget.py [--quick] [--set key=value] [--out DIR]`.

Same as `anila compare equal_budget ...`; the study itself lives in `anila.studies.equal_budget` (see its docstring).
"""

import sys

from anila.cli import main

if __name__ == "__main__":
    sys.exit(main(["compare", "equal_budget", *sys.argv[1:]]))
