"""`python -m lpcheck` is the `lpcheck` command."""

import sys

from lpcheck.cli import main

sys.exit(main())
