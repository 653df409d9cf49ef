"""Portfolio layer (DESIGN's target layout): policy pieces, one module each. Today: `guardrails`."""
