"""``python -m routellm_core.server``: the same as ``routellm serve``."""

import sys

from routellm_core.server.cli import main

sys.exit(main())
