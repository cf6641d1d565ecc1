"""`python -m saladpipe.cli`: the `saladpipe` command."""

import sys

from saladpipe.cli import main

sys.exit(main())
