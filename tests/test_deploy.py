"""The files in deploy/ agree with the code they deploy: the Slack manifests with the listeners,
the example config with its documented form, and every command line with `revbot`'s parser.

`serve` is parsed with the real `bot.cli.build_parser()`, so these tests fail if a deployment
file and the CLI drift apart (an option renamed, a subcommand missing).
"""

from __future__ import annotations

import csv
import json
import re
import shlex
import tomllib
from pathlib import Path, PurePosixPath
from urllib.parse import urlparse
from zoneinfo import ZoneInfo

import pytest
from apscheduler.triggers.cron import CronTrigger

from bot.cli import build_parser
from bot.listeners import SLASH_COMMANDS
from dataset import hubspot_reader, salesforce_reader

ROOT = Path(__file__).resolve().parents[1]
DEPLOY = ROOT / "deploy"

# users:read and users:read.email: `revbot roster --build` finds members by e-mail
# (users.lookupByEmail), `revbot roster --check` asks about roster ids (users.info)
REQUIRED_BOT_SCOPES = {"commands", "chat:write", "files:write", "im:write", "users:read",
                       "users:read.email"}  # fmt: skip
ENV_VARS = (
    "SLACK_BOT_TOKEN",
    "SLACK_SIGNING_SECRET",
    "SLACK_APP_TOKEN",
    "SLACK_API_URL",
    "REVBOT_DB",
    "REVBOT_CONFIG",
    "REVBOT_ARTIFACTS",
    *salesforce_reader.ENV_NAMES,
    *hubspot_reader.ENV_NAMES,
)
DATA_PATH_VARS = ("REVBOT_DB", "REVBOT_CONFIG", "REVBOT_ARTIFACTS")
EVENTS_PATH = "/slack/events"
REAL_TOKEN = re.compile(r"xox[baprs]-[0-9]{6,}|xapp-\d-[A-Z0-9]{6,}")


def _parse_serve(argv: list[str]):
    """`revbot` arguments as the real parser reads them (argparse exits on an unknown one)."""
    try:
        args = build_parser().parse_args(argv)
    except SystemExit as exc:
        pytest.fail(f"`revbot {shlex.join(argv)}` is rejected by bot.cli.build_parser(): {exc}")
    assert args.command == "serve"
    return args


# --- Slack app manifests -----------------------------------------------------------------------


def _manifest(name: str) -> dict:
    return json.loads((DEPLOY / name).read_text(encoding="utf-8"))


def _strings(node) -> list[str]:
    if isinstance(node, dict):
        return [s for value in node.values() for s in _strings(value)]
    if isinstance(node, list):
        return [s for value in node for s in _strings(value)]
    return [node] if isinstance(node, str) else []


MANIFESTS = ["slack-app-manifest.json", "slack-app-manifest-http.json"]


@pytest.mark.parametrize("name", MANIFESTS)
def test_manifest_declares_exactly_the_apps_commands_and_scopes(name):
    manifest = _manifest(name)
    commands = manifest["features"]["slash_commands"]
    declared = [c["command"] for c in commands]
    assert sorted(declared) == sorted(SLASH_COMMANDS), "manifest and bot.listeners disagree"
    assert len(set(declared)) == len(declared)
    for command in commands:
        assert command["description"].strip(), command
        assert command["usage_hint"].strip(), command
        assert command["should_escape"] is False, command
    scopes = manifest["oauth_config"]["scopes"]
    assert set(scopes["bot"]) == REQUIRED_BOT_SCOPES, "each scope is asked for and explained"
    assert "connections:write" not in scopes["bot"], "an app-level token scope, not a bot scope"
    assert manifest["features"]["bot_user"]["display_name"] == "revbot"
    assert manifest["settings"]["interactivity"]["is_enabled"] is True
    # the Home tab: published on app_home_opened (bot.listeners.home)
    assert manifest["features"]["app_home"]["home_tab_enabled"] is True
    assert manifest["settings"]["event_subscriptions"]["bot_events"] == ["app_home_opened"]


def test_the_deploy_readme_names_every_scope_it_asks_for():
    readme = (DEPLOY / "README.md").read_text(encoding="utf-8")
    words = {6: "six"}  # "and six bot permissions (scopes)"
    assert f"{words[len(REQUIRED_BOT_SCOPES)]} bot permissions" in readme
    for scope in REQUIRED_BOT_SCOPES:
        assert f"`{scope}`" in readme, f"deploy/README.md does not explain the scope {scope}"


def test_socket_manifest_uses_socket_mode_and_no_urls():
    manifest = _manifest("slack-app-manifest.json")
    assert manifest["settings"]["socket_mode_enabled"] is True
    assert all("url" not in c for c in manifest["features"]["slash_commands"])
    assert "request_url" not in manifest["settings"]["interactivity"]
    assert not [s for s in _strings(manifest) if "://" in s]


def test_http_manifest_sends_every_command_and_click_to_slack_events():
    manifest = _manifest("slack-app-manifest-http.json")
    assert manifest["settings"]["socket_mode_enabled"] is False
    urls = [c["url"] for c in manifest["features"]["slash_commands"]]
    urls.append(manifest["settings"]["interactivity"]["request_url"])
    urls.append(manifest["settings"]["event_subscriptions"]["request_url"])
    for url in urls:
        parsed = urlparse(url)
        assert parsed.scheme == "https" and parsed.netloc, url
        assert parsed.path == EVENTS_PATH, url
    assert len(set(urls)) == 1, "one endpoint serves commands and interactivity"


def test_the_two_manifests_differ_only_in_the_connection():
    http = _manifest("slack-app-manifest-http.json")
    for command in http["features"]["slash_commands"]:
        del command["url"]
    del http["settings"]["interactivity"]["request_url"]
    del http["settings"]["event_subscriptions"]["request_url"]
    http["settings"]["socket_mode_enabled"] = True
    assert http == _manifest("slack-app-manifest.json")


# --- revbot.example.toml -----------------------------------------------------------------------

CHANNEL_ID = re.compile(r"C[A-Z0-9]{2,}")
USER_ID = re.compile(r"[UW][A-Z0-9]{2,}")
SCOPE = re.compile(r"all|(region|manager):(\S.*)")
ROLES = {"leader", "manager", "rep"}


@pytest.fixture(scope="module")
def config() -> dict:
    with (DEPLOY / "revbot.example.toml").open("rb") as fh:
        return tomllib.load(fh)


def test_example_config_channels(config):
    channels = config["channels"]
    assert channels
    ids = [c["id"] for c in channels]
    assert len(set(ids)) == len(ids)
    for channel in channels:
        assert CHANNEL_ID.fullmatch(channel["id"]), f"a channel ID, not a name: {channel['id']}"
        assert SCOPE.fullmatch(channel["scope"]), channel["scope"]
    assert CHANNEL_ID.fullmatch(config["slack"]["admin_channel"])
    assert config["exports"]["folder"].startswith("/")


def test_example_config_schedules_are_valid_and_avoid_the_dst_hours(config):
    defaults = config["digest"]
    for channel in config["channels"]:
        overrides = set(channel) - {"id", "scope"}
        assert overrides <= set(defaults), f"unknown per-channel keys: {overrides - set(defaults)}"
        digest = defaults | {k: channel[k] for k in overrides}
        hour, minute = (
            int(part) for part in re.fullmatch(r"(\d\d):(\d\d)", digest["time"]).groups()
        )
        assert 0 <= hour < 24 and 0 <= minute < 60
        assert not 1 <= hour < 3, "01:00-03:00 local is skipped or repeated on DST days"
        tz = ZoneInfo(digest["timezone"])
        CronTrigger(day_of_week=digest["days"], hour=hour, minute=minute, timezone=tz)
        assert isinstance(digest["top"], int) and digest["top"] > 0
        assert 0 <= digest["min_risk"] <= 100
        assert isinstance(digest["grace_minutes"], int) and digest["grace_minutes"] >= 0


def test_example_config_roster(config):
    roster = config["roster"]
    assert {person["role"] for person in roster.values()} == ROLES, "shows every role"
    for user_id, person in roster.items():
        assert USER_ID.fullmatch(user_id), f"a Slack user ID: {user_id}"
        assert person["role"] in ROLES, person
        if person["role"] in ("manager", "rep"):
            assert person.get("name", "").strip(), f"{user_id}: a {person['role']} needs a name"


def test_example_config_holds_no_secrets(config):
    def keys(node):
        if isinstance(node, dict):
            for key, value in node.items():
                yield key
                yield from keys(value)
        elif isinstance(node, list):
            for value in node:
                yield from keys(value)

    assert not [k for k in keys(config) if re.search("token|secret|password", k, re.I)]
    assert not REAL_TOKEN.search((DEPLOY / "revbot.example.toml").read_text(encoding="utf-8"))


def test_example_config_names_are_real_maventech_names(config, maventech):
    with (maventech / "sales_teams.csv").open(newline="", encoding="utf-8") as fh:
        teams = list(csv.DictReader(fh))
    known = {
        "region": {t["regional_office"] for t in teams},
        "manager": {t["manager"] for t in teams},
        "rep": {t["sales_agent"] for t in teams},
    }
    for channel in config["channels"]:
        kind, _, value = channel["scope"].partition(":")
        if kind != "all":
            assert value in known[kind], channel["scope"]
    for person in config["roster"].values():
        if person["role"] != "leader":
            assert person["name"] in known[person["role"]], person


# --- systemd -----------------------------------------------------------------------------------


def _unit() -> dict[str, list[str]]:
    settings: dict[str, list[str]] = {}
    for line in (DEPLOY / "revbot.service").read_text(encoding="utf-8").splitlines():
        line = line.strip()
        if not line or line.startswith(("#", ";", "[")):
            continue
        key, _, value = line.partition("=")
        settings.setdefault(key.strip(), []).append(value.strip())
    return settings


def _one(unit: dict[str, list[str]], key: str) -> str:
    assert len(unit.get(key, [])) == 1, f"{key}= should appear exactly once"
    return unit[key][0]


def test_systemd_unit_runs_revbot_serve():
    unit = _unit()
    argv = shlex.split(_one(unit, "ExecStart"))
    assert PurePosixPath(argv[0]).name == "revbot"
    assert PurePosixPath(argv[0]).is_absolute(), "systemd needs an absolute path"
    args = _parse_serve(argv[1:])
    assert int(args.port) == 3000
    assert _one(unit, "User") == "revbot"
    assert _one(unit, "WorkingDirectory") == "/var/lib/revbot"
    assert _one(unit, "EnvironmentFile") == "/etc/revbot/revbot.env"
    assert _one(unit, "Restart") == "on-failure"
    assert _one(unit, "NoNewPrivileges") == "true"
    assert _one(unit, "PrivateTmp") == "true"


def test_systemd_unit_can_write_where_revbot_writes():
    unit = _unit()
    assert _one(unit, "ProtectSystem") == "strict"
    writable = [PurePosixPath(p) for p in _one(unit, "ReadWritePaths").split()]

    def is_writable(path: PurePosixPath) -> bool:
        return any(path == w or w in path.parents for w in writable)

    assert is_writable(PurePosixPath(_one(unit, "WorkingDirectory")))
    env = dict(
        item.split("=", 1) for value in unit.get("Environment", []) for item in shlex.split(value)
    )
    for var in ("REVBOT_DB", "REVBOT_ARTIFACTS"):
        if var in env:
            assert is_writable(PurePosixPath(env[var])), f"{var}={env[var]} is read-only"


def test_systemd_install_steps_match_the_unit():
    readme = (DEPLOY / "README.md").read_text(encoding="utf-8")
    binary = PurePosixPath(shlex.split(_one(_unit(), "ExecStart"))[0])
    venv = binary.parent.parent
    assert f"python3 -m venv {venv}" in readme
    assert re.search(rf"{re.escape(str(venv))}/bin/pip install /opt/revbot/src\b", readme)


# --- Dockerfile --------------------------------------------------------------------------------


def _instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with comments dropped and continuation lines joined."""
    text = (DEPLOY / "Dockerfile").read_text(encoding="utf-8")
    lines = [line for line in text.splitlines() if not line.lstrip().startswith("#")]
    joined = re.sub(r"\\\n", " ", "\n".join(lines))
    result = []
    for line in joined.splitlines():
        if line.strip():
            word, _, rest = line.strip().partition(" ")
            result.append((word.upper(), rest.strip()))
    return result


def _all(instruction: str) -> list[str]:
    return [args for word, args in _instructions() if word == instruction]


def _env() -> dict[str, str]:
    return dict(item.split("=", 1) for args in _all("ENV") for item in shlex.split(args))


def test_dockerfile_cmd_is_revbot_serve_on_all_interfaces():
    (cmd,) = _all("CMD")
    argv = json.loads(cmd)  # exec form: no shell, signals reach revbot
    assert argv[0] == "revbot"
    args = _parse_serve(argv[1:])
    assert args.host == "0.0.0.0"
    port = int(args.port)
    assert str(port) in _all("EXPOSE")[0].split()
    (health,) = _all("HEALTHCHECK")
    assert f"http://127.0.0.1:{port}/healthz" in health
    assert "urllib" in health and "curl" not in health, "no curl in the slim image"


def test_dockerfile_base_image_meets_requires_python():
    (base,) = _all("FROM")
    match = re.fullmatch(r"python:(\d+)\.(\d+)-slim", base)
    assert match, base
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    required = re.fullmatch(r">=(\d+)\.(\d+)", pyproject["project"]["requires-python"])
    image_version = tuple(int(x) for x in match.groups())
    assert image_version >= tuple(int(x) for x in required.groups())
    assert any("libgomp1" in run for run in _all("RUN")), "LightGBM needs libgomp1"


def test_dockerfile_copies_the_project_and_pip_installs_it():
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    needed = {"pyproject.toml", pyproject["project"]["readme"]}
    # the top-level packages (`include = ["bot*", ...]` also takes their subpackages)
    find = pyproject["tool"]["setuptools"]["packages"]["find"]["include"]
    packages = {pattern.rstrip("*") for pattern in find}
    needed |= packages
    workdir = PurePosixPath("/")
    copied: dict[str, PurePosixPath] = {}  # source -> where it lands in the image
    installed_from = []
    for word, args in _instructions():
        if word == "WORKDIR":
            workdir = workdir / args
        elif word == "COPY":
            parts = [p for p in shlex.split(args) if not p.startswith("--")]
            *sources, dest = parts
            for source in sources:
                assert (ROOT / source).exists(), f"COPY {source}: not in the repository"
                target = workdir / dest
                copied[source] = (
                    target
                    if len(sources) == 1 and not dest.endswith("/")
                    else (target / PurePosixPath(source).name)
                )
        elif word == "RUN":
            for match in re.finditer(r"pip install (?:--?[\w-]+ )*(\S+)", args):
                target = re.sub(r"\[[\w,]+\]$", "", match.group(1).strip("'\""))  # extras
                installed_from.append(workdir / target)
    assert needed <= set(copied), f"not copied: {needed - set(copied)}"
    project_dir = copied["pyproject.toml"].parent
    assert project_dir in installed_from, f"no `pip install` of {project_dir}"
    for package in packages:
        assert copied[package] == project_dir / package


def test_dockerfile_runs_as_non_root_with_its_data_in_the_volume():
    users = _all("USER")
    assert users and users[-1] not in ("root", "0")
    volumes = [PurePosixPath(v) for args in _all("VOLUME") for v in args.split()]
    assert PurePosixPath("/data") in volumes
    env = _env()
    for var in DATA_PATH_VARS:
        assert PurePosixPath("/data") in PurePosixPath(env[var]).parents, f"{var}={env[var]}"


# --- Docker Compose ----------------------------------------------------------------------------


def _compose() -> str:
    """compose.yaml without comments (a loose reading: no YAML library)."""
    text = (DEPLOY / "compose.yaml").read_text(encoding="utf-8")
    return "\n".join(re.sub(r"(^|\s)#.*$", "", line) for line in text.splitlines())


def test_compose_builds_the_dockerfile_from_the_repo_root():
    text = _compose()
    context = re.search(r"^\s+context:\s*(\S+)\s*$", text, re.M).group(1)
    dockerfile = re.search(r"^\s+dockerfile:\s*(\S+)\s*$", text, re.M).group(1)
    assert (DEPLOY / context).resolve() == ROOT
    assert (DEPLOY / context / dockerfile).resolve() == DEPLOY / "Dockerfile"


def test_compose_service_settings():
    text = _compose()
    services = re.findall(r"^  (\w[\w-]*):\s*$", text.split("\nvolumes:")[0], re.M)
    assert services == ["revbot"], "one service: the bot and its scheduler"
    assert re.search(r"^\s+env_file:\s*\.env\s*$", text, re.M)
    assert re.search(r"""^\s+-\s*["']?(?:[\d.]+:)?3000:3000["']?\s*$""", text, re.M)
    assert re.search(r"^\s+restart:\s*unless-stopped\s*$", text, re.M)
    volume = re.search(r"^\s+-\s*([\w-]+):/data\s*$", text, re.M).group(1)
    assert re.search(rf"^volumes:\s*\n\s+{re.escape(volume)}:", text, re.M), "a named volume"
    replicas = re.search(r"^\s+replicas:\s*(\d+)", text, re.M)
    assert replicas is None or int(replicas.group(1)) == 1, "the scheduler must run once"
    assert "one replica" in (DEPLOY / "compose.yaml").read_text(encoding="utf-8").lower()


# --- env.example -------------------------------------------------------------------------------


def _env_example() -> str:
    return (DEPLOY / "env.example").read_text(encoding="utf-8")


def test_env_example_names_every_variable_and_no_other():
    text = _env_example()
    for var in ENV_VARS:
        assert re.search(rf"^#?\s*{var}=", text, re.M), f"{var} is not mentioned"
    active = re.findall(r"^([A-Z_][A-Z0-9_]*)=", text, re.M)
    assert set(active) <= set(ENV_VARS), f"unknown variables: {set(active) - set(ENV_VARS)}"
    assert "SLACK_BOT_TOKEN" in active


def test_env_example_does_not_override_the_images_data_paths():
    # compose's env_file wins over the image's ENV: an active REVBOT_DB=/var/lib/... line copied
    # into .env would move the database out of the /data volume.
    active = re.findall(r"^([A-Z_][A-Z0-9_]*)=", _env_example(), re.M)
    assert not set(active) & set(DATA_PATH_VARS)


def test_env_example_holds_no_real_looking_token():
    text = _env_example()
    assert not REAL_TOKEN.search(text)
    for name, value in re.findall(r"^(\w+)=(.*)$", text, re.M):
        assert not re.search(r"[0-9]{6,}", value), f"{name}: use an obvious placeholder"
