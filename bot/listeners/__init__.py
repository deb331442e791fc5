"""Bolt listeners, one module per kind (commands, actions), each with a `register(app, ...)`.

The names below are the app's contract with Slack: the manifest in `deploy/` must declare the
same commands, and the digest's buttons carry these action ids.
"""

SLASH_COMMANDS = ("/deal", "/forecast")
ACTION_WHY = "revbot_why"
ACTION_SNOOZE = "revbot_snooze"
ACTION_ACK = "revbot_ack"
ACTION_IDS = (ACTION_WHY, ACTION_SNOOZE, ACTION_ACK)
