"""``python -m zoopipe_core.cli``: the ``zoopipe`` command."""

import sys

from zoopipe_core.cli.main import main

sys.exit(main())
