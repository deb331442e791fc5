"""Bolt listeners, one module per kind (commands, actions), each with a `register(app, ...)`.

The names below are the app's contract with Slack: the manifest in `deploy/` must declare the
same commands, and the digest's buttons carry these action ids.
"""

SLASH_COMMANDS = ("/deal", "/forecast")
ACTION_WHY = "revbot_why"
ACTION_SNOOZE = "revbot_snooze"
ACTION_ACK = "revbot_ack"
ACTION_IDS = (ACTION_WHY, ACTION_SNOOZE, ACTION_ACK)  # the buttons whose value is `run:deal`
# "Open in CRM": a link button (`bot.crm_links.open_button`); Slack opens its URL itself and
# still sends the press to the app, which only acknowledges it
ACTION_OPEN_CRM = "open_crm"
