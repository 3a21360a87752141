"""Probe shapes real apps have: a wrapped single user, page-number paging, a list-only app
(users found by scanning the list), each against a real loopback server."""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from scim_readiness.clients.http import TlsSettings
from scim_readiness.clients.probe import AppUser, build_probe, metered, probe_answers
from scim_readiness.config import ProbeSection
from scim_readiness.errors import ProbeError

PEOPLE: list[dict[str, Any]] = [
    {"pk": n, "mail": f"Person{n}@Example.com", "full_name": f"Person {n}", "enabled": n != 3}
    for n in range(1, 8)
]
FIELDS = {"id": "pk", "email": "mail", "name": "full_name", "active": "enabled"}


class ShapesHandler(BaseHTTPRequestHandler):
    requests: list[str] = []

    def log_message(self, *args: Any) -> None:
        pass

    def answer(self, status: int, body: Any) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:  # noqa: N802 - http.server's naming
        self.requests.append(self.path)
        url = urlsplit(self.path)
        query = {k: v[0] for k, v in parse_qs(url.query).items()}
        if url.path == "/wrapped":
            found = [p for p in PEOPLE if p["mail"].lower() == query["email"].lower()]
            self.answer(200, {"user": found[0] if found else None})
        elif url.path == "/paged":
            page, per_page = int(query["page"]), int(query.get("per_page", 3))
            items = PEOPLE[(page - 1) * per_page : page * per_page]
            more = page * per_page < len(PEOPLE)
            self.answer(200, {"items": items, "next_page": page + 1 if more else None})
        elif url.path == "/paged-silent":  # no next_page at all: an empty page ends it
            page = int(query["page"])
            self.answer(200, PEOPLE[page * 3 : page * 3 + 3])
        elif url.path == "/circles":
            self.answer(200, {"items": PEOPLE[:1], "next_page": 1})
        elif url.path == "/all":
            self.answer(200, PEOPLE)
        else:
            self.answer(404, {})


@pytest.fixture
def base() -> Iterator[str]:
    ShapesHandler.requests = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), ShapesHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def section(**http: Any) -> ProbeSection:
    return ProbeSection.model_validate(
        {"kind": "http", "http": {"fields": FIELDS, "timeout_s": 2, **http}}
    )


def run(section: ProbeSection, call: Any) -> Any:
    async def scenario() -> Any:
        probe = build_probe(section, TlsSettings())
        try:
            return await call(probe)
        finally:
            await probe.aclose()

    return asyncio.run(scenario())


async def listed(probe: Any) -> list[str]:
    return [user.id async for user in probe.list_users()]


def test_wrapped_single_user_and_page_number_paging(base: str) -> None:
    config = section(
        user_by_email=f"{base}/wrapped?email={{email}}",
        user_path="user",
        list_users=f"{base}/paged?page={{page}}&per_page=3",
        items_path="items",
    )

    async def calls(probe: Any) -> tuple[AppUser | None, AppUser | None, list[str]]:
        return (
            await probe.user_by_email("person2@example.com"),
            await probe.user_by_email("nobody@example.com"),
            await listed(probe),
        )

    found, missing, ids = run(config, calls)
    assert found == AppUser(
        id="2", directory_user_id=None, email="Person2@Example.com", name="Person 2", active=True
    )
    assert missing is None  # {"user": null} is "no such user"
    assert ids == [str(n) for n in range(1, 8)]
    pages = [p for p in ShapesHandler.requests if p.startswith("/paged")]
    assert pages == [f"/paged?page={n}&per_page=3" for n in (1, 2, 3)]


def test_page_paging_without_next_page_ends_on_an_empty_page_and_first_page_is_set(
    base: str,
) -> None:
    config = section(list_users=f"{base}/paged-silent?page={{page}}", items_path="", first_page=0)
    assert run(config, listed) == [str(n) for n in range(1, 8)]
    assert ShapesHandler.requests[-1] == "/paged-silent?page=3"


def test_page_paging_in_circles_is_an_error(base: str) -> None:
    config = section(list_users=f"{base}/circles?page={{page}}", items_path="items")
    with pytest.raises(ProbeError, match="paging in circles"):
        run(config, listed)


def test_list_only_probe_finds_users_by_scanning_and_counts_the_cost(base: str) -> None:
    config = section(list_users=f"{base}/all", items_path="")
    answers = probe_answers(config)
    assert (answers.by_email, answers.by_id, answers.listing) == ("scan", "scan", True)
    metrics: dict[str, Any] = {}

    async def calls(probe: Any) -> tuple[AppUser | None, AppUser | None]:
        view = metered(probe, metrics)
        return await view.user_by_email("PERSON5@example.COM"), await view.user_by_email(
            "nobody@example.com"
        )

    found, missing = run(config, calls)
    assert found is not None and found.id == "5"
    assert missing is None
    assert metrics["probe_scan"] == {"lookups": 2, "users_read": 5 + 7, "pages": 2}
    assert ShapesHandler.requests == ["/all", "/all"]  # no {cursor}: one answer, all users


def test_a_scan_past_its_limit_is_an_error_never_a_silent_absence(base: str) -> None:
    config = section(list_users=f"{base}/all", items_path="", scan_limit=4)

    async def call(probe: Any) -> AppUser | None:
        found: AppUser | None = await probe.user_by_email("person7@example.com")
        return found

    with pytest.raises(ProbeError, match="more than 4 users") as caught:
        run(config, call)
    assert "scan_limit" in caught.value.hint
    # Within the limit the same scan answers.
    assert run(section(list_users=f"{base}/all", items_path="", scan_limit=7), call) is not None


def test_a_probe_with_lookups_is_not_metered() -> None:
    config = section(
        user_by_email="http://127.0.0.1:9/u?e={email}",
        user_by_id="http://127.0.0.1:9/{directory_user_id}",
    )
    probe = build_probe(config, TlsSettings())
    metrics: dict[str, Any] = {}
    assert metered(probe, metrics) is probe and metrics == {}
    asyncio.run(probe.aclose())


def write_config(tmp_path: Any, probe_yaml: str) -> str:
    path = tmp_path / "readiness.yaml"
    path.write_text("webhook:\n  url: https://127.0.0.1:1/hook\n" + probe_yaml, encoding="utf-8")
    return str(path)


def test_config_validate_and_probe_test_show_what_a_list_only_probe_answers(
    base: str, tmp_path: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    from scim_readiness.cli.main import main

    config = write_config(
        tmp_path,
        "probe:\n  kind: http\n  http:\n"
        f"    list_users: {base}/paged?page={{page}}\n    items_path: items\n"
        "    fields: {id: pk, email: mail, name: full_name, active: enabled}\n",
    )
    assert main(["config", "validate", "-c", config]) == 0
    out = capsys.readouterr().out
    assert "finds a user by email: by scanning list_users (at most 10,000" in out
    assert "lists every user: yes (page-number paging from page 1)" in out

    assert main(["probe", "test", "-c", config]) == 0
    out = capsys.readouterr().out
    assert "list_users (page 1): 3 users on it" in out
    assert "id=1  email=Person1@Example.com  active=true" in out
    assert "user_by_email (Person1@Example.com): not configured: answered by scanning" in out
    assert ShapesHandler.requests == ["/paged?page=1"]  # each template once, one page


def test_probe_test_reports_a_mapping_mistake_and_exits_1(
    base: str, tmp_path: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    from scim_readiness.cli.main import main

    config = write_config(
        tmp_path,
        "probe:\n  kind: http\n  http:\n"
        f"    user_by_email: {base}/wrapped?email={{email}}\n"
        "    fields: {id: pk, email: mail, active: enabled}\n",
    )
    assert main(["probe", "test", "-c", config, "--email", "person4@example.com"]) == 1
    out = capsys.readouterr().out
    # user_path is not set, so the wrapper {"user": ...} is read as the user: no email there.
    assert "user_by_email (person4@example.com): FAILED: probe answer lacks an email" in out


def test_status_words_apps_use_map_to_active() -> None:
    from scim_readiness.clients.probe import to_app_user
    from scim_readiness.config import HttpProbeFields

    fields = HttpProbeFields(active="status")
    for word in ("suspended", "deprovisioned", "Deleted", "archived", "blocked", "locked"):
        user = to_app_user({"id": 1, "email": "a@x.example", "status": word}, fields)
        assert user.active is False, word
    assert to_app_user({"id": 1, "email": "a@x.example", "status": "Active"}, fields).active
    with pytest.raises(ProbeError, match="expected true or false"):
        to_app_user({"id": 1, "email": "a@x.example", "status": "pending-review"}, fields)
