"""`python -m ansim_sdk` runs the `ansim` command line."""

from ansim_sdk.cli import main

main()
