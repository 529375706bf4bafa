"""`python -m relay` is the `relay` console script."""

from relay.cli import main

main()
