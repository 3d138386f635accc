"""`python -m tandemkv.server.cli`: the same as the `tandemkv` command."""

import sys

from tandemkv.server.cli.main import main

sys.exit(main())
