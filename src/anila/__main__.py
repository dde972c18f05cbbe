import sys

from anila.cli import main

sys.exit(main())
