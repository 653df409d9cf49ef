"""Data layer: synthetic markets and their scenarios (more of the data layer moves here over time)."""
