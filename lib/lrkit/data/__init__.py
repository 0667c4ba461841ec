"""Data: downscaling operators, image folders, the synthfaces procedural dataset, checks and downloads."""
