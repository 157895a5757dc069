"""`python -m liquidroute` = the `liquidroute` command."""

from liquidroute.cli import main

main()
