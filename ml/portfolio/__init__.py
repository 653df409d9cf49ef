"""Portfolio layer (DESIGN's target layout): policy pieces, one module each (`ml.policy` re-exports the
shared `signals` and the target-tracking `target_policy`)."""
