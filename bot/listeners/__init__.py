"""Bolt listeners, one module per kind (commands, actions, the Home tab), each with a `register(app, ...)`.

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
ACTION_DETAILS = "revbot_details"  # a deal's Details button on the Home tab: opens the modal
# the Home tab's filters and pager
ACTION_HOME_REGION = "revbot_home_region"
ACTION_HOME_MANAGER = "revbot_home_manager"
ACTION_HOME_STAGE = "revbot_home_stage"
ACTION_HOME_RISK = "revbot_home_risk"
ACTION_HOME_PAGE = "revbot_home_page"
HOME_FILTERS = {ACTION_HOME_REGION: "region", ACTION_HOME_MANAGER: "manager",
                ACTION_HOME_STAGE: "stage", ACTION_HOME_RISK: "risk"}  # fmt: skip
MODAL_CALLBACK = "revbot_deal"
# a nudge's buttons (value: the nudge's id), and the Home tab's "nudges a day" menu
ACTION_NUDGE_SNOOZE = "revbot_nudge_snooze"
ACTION_NUDGE_DONE = "revbot_nudge_done"
ACTION_NUDGE_NOT_USEFUL = "revbot_nudge_not_useful"
ACTION_NUDGE_BUDGET = "revbot_nudge_budget"
