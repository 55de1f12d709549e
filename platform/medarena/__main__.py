"""``python -m medarena`` runs the command line."""

from medarena.cli import main

main()
