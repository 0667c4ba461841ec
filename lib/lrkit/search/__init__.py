"""Latent search shared by the methods that invert a pretrained generator (PULSE, SR-NAM): ``engine``."""
