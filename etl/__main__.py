"""`python -m etl` is the `cgdw` command."""

from etl.cli import main

main()
