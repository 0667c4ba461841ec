"""Metrics: each name fixes a whole protocol (features, preprocessing, weights, aggregation)."""
