"""Scoring in the trusted process: predictions + hidden labels -> scores; and ranking."""
