"""Allow `python3 -m uus_agent` where the console script is not installed (e.g. from a checkout)."""

import sys

from uus_agent.cli import main

sys.exit(main())
