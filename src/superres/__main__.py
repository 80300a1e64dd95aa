"""`python -m superres ...` and `torchrun ... -m superres train ...`: the command line."""

from superres.cli import main

raise SystemExit(main())
