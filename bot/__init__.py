"""Slack app, scheduler and command line: the imperative shell around the core."""
