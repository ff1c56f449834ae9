"""`python -m horsies`: the same as the `horsies` command."""

from horsies.cli import main

main()
