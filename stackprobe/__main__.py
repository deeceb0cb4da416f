"""`python -m stackprobe`: the same as the `stackprobe` command."""

import sys

from stackprobe.cli import main

sys.exit(main())
