"""A loopback fake of the Slack Web API, so end-to-end tests drive the real slack_sdk clients.

Only stdlib: a ThreadingHTTPServer on an ephemeral 127.0.0.1 port in a daemon thread. It records
every request, checks what real Slack would refuse (auth, Block Kit limits, channel membership, the
three-step upload), and lets a test inject errors, 429s and delays. Nothing leaves the machine.

    with FakeSlack() as slack:
        client = WebClient(token="xoxb-test", base_url=slack.base_url)
        client.chat_postMessage(channel="C1", text="hi")
        [call] = slack.wait_for("chat.postMessage")
"""

from __future__ import annotations

import contextlib
import itertools
import json
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit

JSON_FORM_FIELDS = ("blocks", "attachments", "files", "metadata")  # form fields that carry JSON
CHANNEL_ID = re.compile(r"^[CGD][A-Z0-9]+$")  # names like "#general" fail uploads on real Slack
MESSAGE_FIELDS = ("text", "blocks", "attachments", "thread_ts", "metadata")
AUTH_TEST = dict(team_id="T0001", user_id="UBOT", bot_id="B0001", user="revbot", team="Fake")
# the bot scopes of deploy/'s manifests; a test removes one to play an app made from an older one
SCOPES = ("commands", "chat:write", "files:write", "im:write", "users:read", "users:read.email")
# the scope each users.* method needs (docs.slack.dev/reference/methods/users.lookupByEmail, .info)
USER_SCOPES = {"users.lookupByEmail": "users:read.email", "users.info": "users:read"}


@dataclass
class Call:
    """One request the fake received, and what it answered."""

    method: str  # "chat.postMessage", "upload" or "response_url"
    params: dict[str, Any]
    headers: dict[str, str]  # lower-cased names
    body: bytes
    path: str
    at: float  # time.monotonic() on arrival
    status: int = 0
    response: Any = None  # the JSON dict, or the text for the upload and response_url sinks
    warnings: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        if self.status != 200:
            return False
        return not isinstance(self.response, dict) or bool(self.response.get("ok"))

    @property
    def error(self) -> str | None:
        return self.response.get("error") if isinstance(self.response, dict) else None


@dataclass
class _Rule:
    method: str
    error: str
    times: int
    channel: str | None
    retry_after: int | None = None  # set for injected 429s
    status: int | None = None  # set for injected 5xx answers


class SlackError(Exception):
    """Raised by a method handler to answer {"ok": false, "error": ...}."""

    def __init__(self, error: str, **extra: Any) -> None:
        super().__init__(error)
        self.error, self.extra = error, extra


def validate_blocks(blocks: Any, most: int = 50) -> list[str]:
    """Block Kit limits Slack enforces but slack_sdk does not always check for dict blocks
    (`most`: 50 blocks in a message, 100 in a Home tab or modal)."""
    if not isinstance(blocks, list):
        return ["blocks must be a list"]
    errors = [f"too many blocks: {len(blocks)} > {most}"] if len(blocks) > most else []
    for i, block in enumerate(blocks):
        kind = block.get("type") if isinstance(block, dict) else None
        if not kind:
            errors.append(f"block {i}: missing type")
            continue
        text = (block.get("text") or {}).get("text", "")
        if kind == "section":
            if len(text) > 3000:
                errors.append(f"block {i}: section text {len(text)} > 3000 chars")
            fields = block.get("fields") or []
            if len(fields) > 10:
                errors.append(f"block {i}: {len(fields)} fields > 10")
            for j, f in enumerate(fields):
                if len(f.get("text", "")) > 2000:
                    errors.append(f"block {i}: field {j} {len(f['text'])} > 2000 chars")
        elif kind == "header" and len(text) > 150:
            errors.append(f"block {i}: header text {len(text)} > 150 chars")
        elif kind == "context" and len(block.get("elements") or []) > 10:
            errors.append(f"block {i}: {len(block['elements'])} context elements > 10")
        elif kind == "actions":
            for element in block.get("elements") or []:
                options = element.get("options") or []
                if len(options) > 100:
                    errors.append(f"block {i}: {len(options)} options > 100")
                for o in options:
                    if len(o["text"]["text"]) > 75 or len(o["value"]) > 150:
                        errors.append(f"block {i}: an option's text > 75 or value > 150 chars")
    return errors


class _Server(ThreadingHTTPServer):
    request_queue_size = 256  # the stdlib's 5 would drop a burst of answers from a loaded bot


class FakeSlack:
    """The fake server plus everything it recorded; all state is guarded by one lock."""

    def __init__(self) -> None:
        self.calls: list[Call] = []
        self.messages: dict[tuple[str, str], dict[str, Any]] = {}  # (channel, ts) -> message
        self.uploads: dict[str, bytes] = {}  # file_id -> bytes received at the upload URL
        self._pending: dict[str, dict[str, Any]] = {}  # file_id -> getUploadURLExternal params
        self._rules: list[_Rule] = []
        self._delays: dict[str, float] = {}
        self._not_member: set[str] = set()
        self.home_tabs: dict[str, dict[str, Any]] = {}  # user_id -> the view last published
        self.modals: list[dict[str, Any]] = []  # every view opened, in order
        # the workspace's people: user id -> {"email", "real_name", "deleted"} (add_user)
        self.users: dict[str, dict[str, Any]] = {}
        self.scopes: set[str] = set(SCOPES)  # granted to the bot token
        self._lock = threading.Lock()
        self._seq = itertools.count(1)  # never reset, so ts and ids stay unique across reset()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self.url = self.base_url = ""
        self.closed_port = 9  # discard: connecting is refused at once on loopback
        # what apps.connections.open answers: by default a WebSocket URL where nothing listens;
        # tests.fakesocket.FakeSocketMode.attach puts a real loopback Socket Mode server here
        self.socket_url: Callable[[], str] = lambda: f"ws://127.0.0.1:{self.closed_port}/link"

    # -- lifecycle ---------------------------------------------------------------------------
    def start(self) -> FakeSlack:
        handler = type("Handler", (_Handler,), {"fake": self})
        self._server = _Server(("127.0.0.1", 0), handler)
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}/"
        self.base_url = self.url + "api/"
        self._thread = threading.Thread(
            target=self._server.serve_forever, args=(0.05,), daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server and self._thread:
            self._server.shutdown()
            self._server.server_close()
            self._thread.join(timeout=5)
            self._server = self._thread = None

    def __enter__(self) -> FakeSlack:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- test controls -----------------------------------------------------------------------
    def fail(self, method: str, error: str, times: int = 1, channel: str | None = None) -> None:
        """Answer the next `times` matching calls with {"ok": false, "error": error}."""
        with self._lock:
            self._rules.append(_Rule(method, error, times, channel))

    def rate_limit(self, method: str, times: int = 1, retry_after: int = 1) -> None:
        """Answer the next `times` calls with HTTP 429 and a Retry-After header (whole seconds)."""
        with self._lock:
            self._rules.append(_Rule(method, "ratelimited", times, None, retry_after))

    def server_error(self, method: str, status: int = 502, times: int = 1) -> None:
        """Carry out the next `times` calls (a message is really posted) but answer with an
        HTTP `status` and an HTML page, as a gateway timing out after Slack acted would."""
        with self._lock:
            self._rules.append(_Rule(method, "server_error", times, None, None, status))

    def delay(self, method: str, seconds: float) -> None:
        """Sleep before answering `method`, e.g. to test the 3 s ack deadline."""
        with self._lock:
            self._delays[method] = seconds

    def not_member(self, channel_id: str) -> None:
        """The bot is not in this channel: posts and upload completion get not_in_channel."""
        if channel_id.startswith("D"):
            raise ValueError("DM channels always accept the bot; pick a C or G channel")
        with self._lock:
            self._not_member.add(channel_id)

    def add_user(self, user_id: str, email: str | None = None, name: str = "",
                 deleted: bool = False) -> None:  # fmt: skip
        """A member of the workspace: users.info knows them, users.lookupByEmail finds them by
        `email` (in any case, as Slack does); `deleted`: deactivated, still known by id."""
        with self._lock:
            self.users[user_id] = {"email": email, "real_name": name, "deleted": deleted}

    def response_url(self, name: str = "x") -> str:
        """A fresh response_url to put in a slash-command payload."""
        return f"{self.url}response/{name}/{next(self._seq)}"

    def reset(self) -> None:
        with self._lock:
            for store in (self.calls, self.messages, self.uploads, self._pending, self._rules,
                          self.users):  # fmt: skip
                store.clear()
            self.scopes = set(SCOPES)
            self._delays.clear()
            self._not_member.clear()

    # -- inspection --------------------------------------------------------------------------
    def calls_to(self, method: str) -> list[Call]:
        with self._lock:
            return [c for c in self.calls if c.method == method]

    def answer_at(self, url: str, timeout: float = 15) -> dict[str, Any]:
        """The first post to a response_url (listeners answer after the ack)."""
        path = "/" + url.split("/", 3)[3]
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = [c for c in self.calls_to("response_url") if c.path == path and c.ok]
            if found:
                return found[0].params
            time.sleep(0.01)
        raise AssertionError(f"no answer at {path}")

    def wait_for(self, method: str, count: int = 1, timeout: float = 5.0) -> list[Call]:
        """Poll until `count` successful calls to `method`: listeners keep working after ack()."""
        deadline = time.monotonic() + timeout
        while True:
            done = [c for c in self.calls_to(method) if c.ok]
            if len(done) >= count:
                return done
            if time.monotonic() >= deadline:
                with self._lock:
                    seen = [f"{c.method} {c.status} {c.error or ''}".strip() for c in self.calls]
                raise AssertionError(
                    f"expected {count} successful {method} call(s) within {timeout}s, "
                    f"got {len(done)}; calls seen: {seen or 'none'}"
                )
            time.sleep(0.01)

    # -- request handling (runs on server threads) -------------------------------------------
    def _take_rule(self, method: str, params: dict[str, Any]) -> _Rule | None:
        channel = params.get("channel") or params.get("channel_id")
        with self._lock:
            for rule in self._rules:
                if rule.method == method and rule.channel in (None, channel):
                    rule.times -= 1
                    if rule.times <= 0:
                        self._rules.remove(rule)
                    return rule
        return None

    def _ts(self) -> str:
        micros = 1_700_000_000_000_000 + 100 * next(self._seq)
        return f"{micros // 1_000_000}.{micros % 1_000_000:06d}"

    def _check_channel(self, channel: Any) -> str:
        if not channel:
            raise SlackError("channel_not_found")
        with self._lock:
            if channel in self._not_member:
                raise SlackError("not_in_channel")
        return str(channel)

    def _message(self, call: Call) -> dict[str, Any]:
        p = call.params
        if not p.get("text") and not p.get("blocks") and not p.get("attachments"):
            raise SlackError("no_text")
        if not str(p.get("text") or "").strip():
            call.warnings.append("no fallback text")
        if "blocks" in p and (errors := validate_blocks(p["blocks"])):
            raise SlackError("invalid_blocks", errors=errors)
        kept = {k: p[k] for k in MESSAGE_FIELDS if k in p}
        return {"type": "message", "user": "UBOT", "bot_id": "B0001"} | kept

    def _api(self, call: Call) -> dict[str, Any]:
        p, method = call.params, call.method
        if method == "apps.connections.open":
            return {"url": self.socket_url()}
        if method == "auth.test":
            return AUTH_TEST | {"url": "https://fake.slack.com/"}
        if method in ("chat.postMessage", "chat.postEphemeral"):
            channel = self._check_channel(p.get("channel"))
            if method == "chat.postEphemeral" and not p.get("user"):
                raise SlackError("user_not_found")
            message = self._message(call) | {"ts": (ts := self._ts())}
            if method == "chat.postEphemeral":
                return {"message_ts": ts}
            with self._lock:
                self.messages[(channel, ts)] = message
            return {"channel": channel, "ts": ts, "message": message}
        if method == "chat.update":
            channel, ts = self._check_channel(p.get("channel")), str(p.get("ts"))
            with self._lock:
                if (channel, ts) not in self.messages:
                    raise SlackError("message_not_found")
            message = self._message(call) | {"ts": ts}
            with self._lock:
                self.messages[(channel, ts)] = message
            return dict(channel=channel, ts=ts, text=message.get("text", ""), message=message)
        if method == "conversations.open":
            users = [u for u in str(p.get("users", "")).split(",") if u]
            if not users:
                raise SlackError("users_list_not_supplied")
            return {"channel": {"id": ("D" if len(users) == 1 else "G") + "".join(users)}}
        if method == "files.getUploadURLExternal":
            if not p.get("filename") or not str(p.get("length", "")).isdigit():
                raise SlackError("invalid_arguments")
            file_id = f"F{next(self._seq):08d}"
            with self._lock:
                self._pending[file_id] = dict(p)
            return {"upload_url": f"{self.url}upload/{file_id}", "file_id": file_id}
        if method == "files.completeUploadExternal":
            return self._complete_upload(p)
        if method in USER_SCOPES:
            return self._users(method, p)
        if method == "views.publish":
            if not str(p.get("user_id", "")).startswith(("U", "W")):
                raise SlackError("user_not_found")
            view = self._view(p.get("view"), "home")
            with self._lock:
                self.home_tabs[str(p["user_id"])] = view
            return {"view": view}
        if method == "views.open":
            if not p.get("trigger_id"):
                raise SlackError("invalid_trigger_id")
            view = self._view(p.get("view"), "modal")
            with self._lock:
                self.modals.append(view)
            return {"view": view}
        raise SlackError("unknown_method")

    def _users(self, method: str, p: dict[str, Any]) -> dict[str, Any]:
        """users.lookupByEmail (users_not_found) and users.info (user_not_found), each refused
        with missing_scope, naming the scope needed and those granted, as Slack does."""
        with self._lock:
            needed, granted = USER_SCOPES[method], ",".join(sorted(self.scopes))
            if needed not in self.scopes:
                raise SlackError("missing_scope", needed=needed, provided=granted)
            people = {uid: dict(u) for uid, u in self.users.items()}
        if method == "users.lookupByEmail":
            email = str(p.get("email") or "").strip().lower()
            if not email:
                raise SlackError("invalid_arguments")
            found = [uid for uid, u in people.items() if (u.get("email") or "").lower() == email]
            if not found:
                raise SlackError("users_not_found")
            user_id = found[0]
        else:
            user_id = str(p.get("user") or "")
            if user_id not in people:
                raise SlackError("user_not_found")
        u = people[user_id]
        name = u.get("real_name") or user_id
        profile = {"real_name": name, "display_name": name}
        if u.get("email"):
            profile["email"] = u["email"]
        user = {"id": user_id, "team_id": AUTH_TEST["team_id"], "name": user_id.lower(),
                "deleted": bool(u.get("deleted")), "real_name": name, "is_bot": False,
                "profile": profile}  # fmt: skip
        if u.get("tz"):  # as Slack gives it: the IANA name, e.g. "America/Los_Angeles"
            user["tz"] = u["tz"]
        return {"user": user}

    def _view(self, view: Any, kind: str) -> dict[str, Any]:
        """A Home tab or modal checked as Slack would (views.publish and views.open)."""
        if isinstance(view, str):
            view = json.loads(view)
        if not isinstance(view, dict) or view.get("type") != kind:
            raise SlackError("invalid_arguments")
        errors = validate_blocks(view.get("blocks"), most=100)
        if len(view.get("private_metadata") or "") > 3000:
            errors.append("private_metadata > 3000 chars")
        if kind == "modal":
            title = (view.get("title") or {}).get("text", "")
            if not title or len(title) > 24:
                errors.append(f"modal title {title!r}: 1-24 chars")
        if errors:
            raise SlackError("invalid_arguments", response_metadata={"messages": errors})
        return view | {"id": f"V{next(self._seq):08d}"}

    def _complete_upload(self, p: dict[str, Any]) -> dict[str, Any]:
        files = p.get("files")
        if not isinstance(files, list) or not files:
            raise SlackError("invalid_arguments")
        channels = [c for c in [p.get("channel_id"), *str(p.get("channels", "")).split(",")] if c]
        for channel in channels:
            if not CHANNEL_ID.match(str(channel)):
                raise SlackError("channel_not_found")
            self._check_channel(channel)
        with self._lock:
            missing = [f.get("id") for f in files if f.get("id") not in self.uploads]
            if missing:
                raise SlackError("file_not_found", missing=missing)
            names = {f["id"]: self._pending.get(f["id"], {}).get("filename") for f in files}
        return {
            "files": [{"id": f["id"], "title": f.get("title") or names[f["id"]]} for f in files]
        }


def _parse(body: bytes, content_type: str, query: str) -> dict[str, Any]:
    params: dict[str, Any] = dict(parse_qsl(query, keep_blank_values=True))
    if "json" in content_type:
        params.update(json.loads(body or b"{}"))
    elif "form-urlencoded" in content_type:
        params.update(parse_qsl(body.decode(), keep_blank_values=True))
        for key in JSON_FORM_FIELDS:
            if isinstance(params.get(key), str) and params[key][:1] in "[{":
                params[key] = json.loads(params[key])
    return params


class _Handler(BaseHTTPRequestHandler):
    fake: FakeSlack

    def log_message(self, format: str, *args: Any) -> None:
        """Silenced: the default writes every request to stderr."""

    def do_GET(self) -> None:
        self.do_POST()

    def do_POST(self) -> None:
        fake, url = self.fake, urlsplit(self.path)
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        headers = {k.lower(): v for k, v in self.headers.items()}
        section, _, rest = url.path.lstrip("/").partition("/")
        method = {"api": rest, "upload": "upload", "response": "response_url"}.get(section, "?")
        call = Call(method, {}, headers, body, self.path, time.monotonic())
        with fake._lock:
            fake.calls.append(call)
            pause = fake._delays.get(method, 0.0)
        time.sleep(pause)
        if method == "?":
            return self._answer(call, 404, "not_found")
        try:  # the upload sink takes raw bytes: urllib labels them form-urlencoded anyway
            if method != "upload":
                call.params = _parse(body, headers.get("content-type", ""), url.query)
        except (ValueError, TypeError):
            return self._answer(call, 400, "invalid_payload")
        if section == "response" and "json" not in headers.get("content-type", ""):
            return self._answer(call, 400, "invalid_payload")
        if section == "api":
            bearer = headers.get("authorization", "").removeprefix("Bearer ")
            token = bearer or call.params.get("token")
            if not token:
                return self._answer(call, 200, {"ok": False, "error": "not_authed"})
            app_level = rest == "apps.connections.open"  # Socket Mode: the app-level token
            if not str(token).startswith("xapp-" if app_level else "xoxb-"):
                return self._answer(call, 200, {"ok": False, "error": "invalid_auth"})
        if rule := fake._take_rule(method, call.params):
            if rule.status is not None:
                with contextlib.suppress(SlackError):  # an invalid call posts nothing anyway
                    fake._api(call)
                return self._answer(call, rule.status, "<html>Bad Gateway</html>")
            if rule.retry_after is not None:
                retry = {"Retry-After": str(rule.retry_after)}
                return self._answer(call, 429, {"ok": False, "error": "ratelimited"}, retry)
            status = 200 if section == "api" else 500  # the sinks are plain HTTP endpoints
            return self._answer(call, status, {"ok": False, "error": rule.error})
        if section == "upload":
            with fake._lock:
                declared = fake._pending.get(rest, {}).get("length")
                if declared is None:
                    return self._answer(call, 404, "file_not_found")
                fake.uploads[rest] = body
            if int(declared) != len(body):
                call.warnings.append(f"declared length {declared} != {len(body)} bytes")
            return self._answer(call, 200, f"OK - {len(body)}")
        if section == "response":
            if errors := validate_blocks(call.params.get("blocks", [])):
                call.warnings.extend(errors)
                return self._answer(call, 400, "invalid_blocks")
            if not str(call.params.get("text") or "").strip():
                call.warnings.append("no fallback text")
            return self._answer(call, 200, "ok")
        try:
            return self._answer(call, 200, {"ok": True} | fake._api(call))
        except SlackError as e:
            return self._answer(call, 200, {"ok": False, "error": e.error} | e.extra)

    def _answer(self, call: Call, status: int, payload: Any, extra: dict | None = None) -> None:
        call.status, call.response = status, payload
        text = payload if isinstance(payload, str) else json.dumps(payload)
        data = text.encode()
        self.send_response(status)
        kind = "text/plain" if isinstance(payload, str) else "application/json"
        self.send_header("Content-Type", f"{kind}; charset=utf-8")
        self.send_header("Content-Length", str(len(data)))
        if call.method == "auth.test":  # Bolt reads the granted scopes from this header
            self.send_header("X-OAuth-Scopes", ",".join(sorted(self.fake.scopes)))
        for key, value in (extra or {}).items():
            self.send_header(key, value)
        self.end_headers()
        self.wfile.write(data)
