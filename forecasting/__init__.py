"""Revenue forecast: time to close, Monte Carlo, backtest, chart (issue: forecast)."""
