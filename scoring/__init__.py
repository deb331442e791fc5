"""Win probability, risk and explanations (issue: scoring)."""
