"""Honest evaluation: walk-forward predictions and their scores."""
