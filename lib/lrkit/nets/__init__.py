"""Shared network pieces that know no method: the latent-generator interface the latent search runs on."""
