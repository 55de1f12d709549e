"""The commands, one module per group; :mod:`medarena.cli` registers them on the app."""
