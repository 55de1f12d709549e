"""MedArena: train, search and score submitted models for medical imaging challenges.

Importing this package is cheap on purpose: torch, Lightning, Ray and MLflow are imported only by
the modules that need them, so ``medarena --help`` answers at once.
"""

__version__ = "0.1.0"
