"""A small real pipeline and the bot served over HTTP on 127.0.0.1, with signed requests.

The CRM is the demo generator's (1,200 deals) plus one hostile deal whose account and owner try to
ping the channel and forge a link, in a team whose region and manager are named with every other
trick (bare URLs, mentions, mrkdwn formatting, matplotlib math); the model is trained for real on
it.
"""

from __future__ import annotations

import csv
import hashlib
import hmac
import json
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlencode

from bot.refresh import Refresher
from bot.settings import Channel, Member, Scope, Secrets, Settings
from dataset import database, score_runs
from dataset.demo import DemoConfig, write_demo
from dataset.ingest import ingest_files
from forecasting import stage_timing_file

SECRET = "test-signing-secret-0123456789"
TOKEN = "xoxb-test-0000-secret-token"
SMALL = DemoConfig(deals=1200, daily_exports=3, seed=5)
HOSTILE_ACCOUNT = "<!channel> <http://evil.example|Click me>"
HOSTILE_OWNER = "<!here> Eve"
HOSTILE_ID = "DHOSTILE01"
HOSTILE_REGION = "$x^{$ *West* ~s~ <@U123> @here www.evil.example R&D a>b"
HOSTILE_MANAGER = "_Mo_ @channel @everyone http://evil.example/login mailto:x@evil.example ```x```"
LEADER, MANAGER, REP, STRANGER = "U0LEADER", "U0MANAGER", "U0REP", "U0STRANGER"


def build_crm(folder: Path) -> dict:
    """Demo exports with the hostile deal added to the newest one; ingested, trained, scored."""
    crm = folder / "crm"
    write_demo(crm, SMALL)
    newest = sorted((crm / "exports").iterdir())[-1]
    with newest.open(newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    open_row = next(r for r in rows if r["deal_stage"] == "Engaging")
    hostile = dict(open_row, opportunity_id=HOSTILE_ID, account=HOSTILE_ACCOUNT,
                   sales_agent=HOSTILE_OWNER)  # fmt: skip
    with newest.open("a", newline="", encoding="utf-8") as fh:
        csv.DictWriter(fh, fieldnames=list(rows[0])).writerow(hostile)
    with (crm / "sales_teams.csv").open("a", newline="", encoding="utf-8") as fh:
        csv.writer(fh).writerow([HOSTILE_OWNER, HOSTILE_MANAGER, HOSTILE_REGION])
    db_path = folder / "revbot.db"
    db = database.connect(db_path)
    ingest_files(db, [crm, crm / "exports"])
    db.close()
    artifacts = folder / "artifacts"
    refresher = Refresher(db_path, artifacts, Settings())
    refresher.train(n_cutoffs=2, say=lambda _: None)
    fixed_shock(artifacts)
    run_id = refresher.refresh(lambda _: None).run_id
    scores = score_runs.run_scores(refresher.db(), run_id)
    who = people(scores)
    # the roster's rep asks for their own forecast: a scope the refresh would have forecast had
    # the roster been configured when it ran
    refresher.add_scope(run_id, Scope("rep", who["rep"]))
    refresher.close()
    return {"db_path": db_path, "artifacts": artifacts, "scores": scores, "crm": crm, "who": who}


def fixed_shock(artifacts: Path, sigma: float = 0.4) -> None:
    """The forecast's shared shock, normally fitted by a backtest, whose value is not under test:
    saved as the backtest saves it, for the stage models there are (none saved, or other ones,
    and the next refresh runs the backtest after all)."""
    config = {"sigma": sigma, "stage_models": stage_timing_file.saved(artifacts)}
    (artifacts / "forecast.json").write_text(json.dumps(config), encoding="utf-8")


def people(scores) -> dict:
    """A real manager, a rep of another team, and their deals, from the scored data."""
    manager = scores["manager"].dropna().value_counts().index[0]
    others = (scores["manager"] != manager) & scores["manager"].notna()
    rep = scores.loc[others & (scores["owner"] != HOSTILE_OWNER), "owner"].iloc[0]
    return {"manager": manager, "rep": rep,
            "region": scores.loc[scores["manager"] == manager, "region"].iloc[0]}  # fmt: skip


def settings_for(fake_url: str, who: dict, channels=(), roster: bool = True, admin="C0ADMIN") -> Settings:  # fmt: skip
    members = {
        LEADER: Member(LEADER, "leader"),
        MANAGER: Member(MANAGER, "manager", who["manager"]),
        REP: Member(REP, "rep", who["rep"]),
    }
    return Settings(
        channels=tuple(channels),
        roster=members if roster else None,
        admin_channel=admin,
        secrets=Secrets(bot_token=TOKEN, signing_secret=SECRET, api_url=fake_url),
    )


def channel(cid: str, scope: str = "all", **kw) -> Channel:
    base = dict(time="08:00", days="*", timezone="UTC", top=10, min_risk=0, grace_minutes=120)
    return Channel(id=cid, scope=Scope.parse(scope), **(base | kw))


def sign(body: bytes, ts: str, secret: str = SECRET) -> str:
    """Slack's v0 signature over `v0:{timestamp}:{body}` (api.slack.com/authentication)."""
    base = b"v0:" + ts.encode() + b":" + body
    return "v0=" + hmac.new(secret.encode(), base, hashlib.sha256).hexdigest()


@dataclass
class Reply:
    status: int
    body: str

    def json(self) -> dict:
        return json.loads(self.body) if self.body else {}


def post(url: str, body: bytes, *, ts: str | None = None, secret: str = SECRET,
         content_type: str = "application/x-www-form-urlencoded") -> Reply:  # fmt: skip
    ts = ts or str(int(time.time()))
    request = urllib.request.Request(url, data=body, method="POST", headers={
        "Content-Type": content_type,
        "X-Slack-Request-Timestamp": ts,
        "X-Slack-Signature": sign(body, ts, secret),
    })  # fmt: skip
    try:
        with urllib.request.urlopen(request, timeout=10) as r:
            return Reply(r.status, r.read().decode())
    except urllib.error.HTTPError as e:
        return Reply(e.code, e.read().decode())


def command_body(command: str, text: str, user: str, response_url: str, channel="C0SALES") -> bytes:  # fmt: skip
    return urlencode({
        "token": "unused", "team_id": "T0001", "team_domain": "acme", "channel_id": channel,
        "channel_name": "sales", "user_id": user, "user_name": user.lower(), "command": command,
        "text": text, "api_app_id": "A0001", "response_url": response_url,
        "trigger_id": "1.2.3", "is_enterprise_install": "false",
    }).encode()  # fmt: skip


def action_body(action_id: str, value: str, user: str, response_url: str, message: dict,
                channel="C0DIGEST") -> bytes:  # fmt: skip
    payload = {
        "type": "block_actions",
        "user": {"id": user, "username": user.lower(), "team_id": "T0001"},
        "api_app_id": "A0001", "token": "unused", "trigger_id": "1.2.3",
        "team": {"id": "T0001", "domain": "acme"},
        "container": {"type": "message", "message_ts": message["ts"], "channel_id": channel,
                      "is_ephemeral": False},
        "channel": {"id": channel, "name": "digest"},
        "message": message,
        "response_url": response_url,
        "actions": [{"action_id": action_id, "block_id": f"deal:{value.split(':', 1)[1]}",
                     "value": value, "type": "button", "action_ts": str(time.time())}],
    }  # fmt: skip
    return urlencode({"payload": json.dumps(payload)}).encode()


def event_body(event: dict) -> bytes:
    """An Events API callback wrapping `event`, as Slack POSTs it (JSON)."""
    return json.dumps({
        "token": "unused", "team_id": "T0001", "api_app_id": "A0001", "event": event,
        "type": "event_callback", "event_id": f"Ev{time.monotonic_ns()}",
        "event_time": int(time.time()),
        "authorizations": [{"team_id": "T0001", "user_id": "UBOT", "is_bot": True}],
    }).encode()  # fmt: skip


def view_action_body(action: dict, user: str, view: dict) -> bytes:
    """A press in a Home tab: the view it came from (with its private_metadata), no
    response_url."""
    payload = {
        "type": "block_actions",
        "user": {"id": user, "username": user.lower(), "team_id": "T0001"},
        "api_app_id": "A0001", "token": "unused", "trigger_id": "4.5.6",
        "team": {"id": "T0001", "domain": "acme"},
        "container": {"type": "view", "view_id": view.get("id", "V0")},
        "view": view,
        "actions": [action | {"action_ts": str(time.time())}],
    }  # fmt: skip
    return urlencode({"payload": json.dumps(payload)}).encode()
