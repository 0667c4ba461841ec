"""Inference: loading trained generators from checkpoints and translating images with them."""
