"""``python -m transferability.cli``."""

import sys

from . import main

sys.exit(main())
