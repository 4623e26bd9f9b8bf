"""`python -m lrm`: the same as the `lrm` command."""

from lrm.cli import main

main()
