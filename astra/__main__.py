"""``python -m astra``."""

import sys

from astra.cli import main

sys.exit(main())
