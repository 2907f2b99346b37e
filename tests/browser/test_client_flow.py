"""The real-browser contract test (issue 11.2): what the mobile client does, done by Chromium from
another origin with fetch/EventSource and credentials, asserted on what the page read.

Client screens exercised: login (the Kakao button → the development login form standing in for
Kakao → back to ``/#/home``), home (session refresh), profile (read + edit, a refused edit), camera
upload (presign + PUT of a browser-made PNG, the image shown back), scan progress (the event stream
across a server-ended connection, resumed with Last-Event-ID, to ``done``) and result (fetched once),
collection (the rewarded character), chat (a new chat, a message, its token stream with named
events, the reloaded history), logout (then 401s the client reads).
"""

from __future__ import annotations

import importlib.util
import json
import re
from collections.abc import Callable
from typing import Any

from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support.ui import WebDriverWait

from tests.browser.conftest import SSE_MAX_SECONDS, Site

SCAN_STAGES = ["queued", "vision", "rule", "answer", "reward", "done"]
# Non-2xx answers the flow provokes on purpose; Chromium logs each as a console error.
EXPECTED_STATUSES = {"400", "401", "404"}


def check_session(result: dict[str, Any], site: Site) -> None:
    assert result["start"] == {"status": 200, "provider": "kakao"}
    assert result["landed"] == "#/home"
    assert result["refresh"]["status"] == 200, result["refresh"]  # the Secure cookies came back


def check_profile(result: dict[str, Any], site: Site) -> None:
    before, update, after = result["before"], result["update"], result["after"]
    assert before["status"] == 200
    # Logged in: a non-empty username (the client's test). The nickname typed in the login form
    # reaches the profile by event, so the first read may still show the generated default.
    assert before["body"]["username"]
    assert before["body"]["username"] == before["body"]["display_name"]
    assert before["body"]["provider"] == "dev"
    assert update["status"] == 200
    assert after["body"]["nickname"] == "브라우저친구"
    assert after["body"]["phone_number"] == "010-1234-5678"
    # An error answer is readable across origins (CORS on errors), with the contract's body.
    assert result["invalid"] == {"status": 400, "body": result["invalid"]["body"], "retryAfter": None}
    assert result["invalid"]["body"]["code"] == "INVALID_PHONE_NUMBER"


def check_upload(result: dict[str, Any], site: Site) -> None:
    presign = result["presign"]
    assert presign["status"] == 200
    assert presign["body"]["upload_url"].startswith(f"{site.api}/api/v1/images/upload/scan/")
    assert result["put"] == 200  # the cross-origin PUT passed its preflight
    assert result["image"] == {"status": 200, "type": "image/png", "png": True}


def check_scan(result: dict[str, Any], site: Site) -> None:
    submit = result["submit"]
    assert submit["status"] == 202
    job_id = submit["body"]["job_id"]
    assert submit["body"]["stream_url"] == f"/api/v1/scan/{job_id}/events"
    connections = result["events"]["connections"]
    # The first connection reached its maximum duration mid-job and ended with `error: timeout`; the
    # browser reconnected by itself, sending Last-Event-ID, and got only what came after it.
    assert len(connections) >= 2, connections
    first, rest = connections[0], [frame for c in connections[1:] for frame in c]
    assert first[-1]["event"] == "error"
    assert first[-1]["data"]["error"] == "timeout"
    assert first[-1]["id"] == first[-2]["id"]  # the error frame repeats the last seq
    stage_frames = [f for c in connections for f in c if f["event"] != "error"]
    seqs = [int(f["id"]) for f in stage_frames]
    assert seqs == sorted(set(seqs)), seqs  # nothing replayed twice, in order
    assert seqs == list(range(1, len(seqs) + 1))  # and nothing lost
    assert int(rest[0]["id"]) == int(first[-1]["id"]) + 1
    assert [f["event"] for f in stage_frames if f["data"]["status"] == "completed"] == SCAN_STAGES
    done = stage_frames[-1]
    assert done["event"] == "done"
    assert done["data"]["result"]["status"] == "completed"
    # The result, fetched once after `done`, is the stored one.
    assert result["result"]["status"] == 200
    assert result["result"]["body"] == done["data"]["result"]
    pipeline = result["result"]["body"]["pipeline_result"]
    assert pipeline["classification_result"]["classification"]["middle_category"] == "무색페트병"
    assert result["result"]["body"]["reward"]["name"] == "페티"
    assert result["unknown"]["status"] == 404
    assert result["unknown"]["body"]["code"] == "JOB_NOT_FOUND"
    assert SSE_MAX_SECONDS < 5  # keeps the reconnect inside the model's latency (see conftest)


def check_collection(result: dict[str, Any], site: Site) -> None:
    characters = result["characters"]
    assert characters["status"] == 200
    assert [c["name"] for c in characters["body"]] == ["이코", "페티"]


def check_chat(result: dict[str, Any], site: Site) -> None:
    """The chat screen's flow. The answer needs the assistant (``services.chat.agent``, the other half
    of the chat service): until it is installed every job ends ``failed`` with LLM_UNAVAILABLE, which
    is what this checks then; with it, the full flow down to the reloaded history."""
    assert result["latest"] == {"status": 200, "body": {"chats": [], "next_cursor": None}, "retryAfter": None}
    created = result["created"]
    assert created["status"] == 201
    chat_id = created["body"]["id"]
    send = result["send"]
    assert send["status"] == 202
    job_id = send["body"]["job_id"]
    assert send["body"] == {"job_id": job_id, "stream_url": f"/api/v1/chat/{job_id}/events", "status": "queued"}
    frames = [f for c in result["events"]["connections"] for f in c]
    assert frames[0]["event"] == "queued"
    done = frames[-1]
    assert done["event"] == "done"
    messages = result["history"]["body"]["messages"]
    assert result["listed"]["body"]["chats"][0]["id"] == chat_id
    if importlib.util.find_spec("services.chat.agent") is None:
        assert done["data"]["status"] == "failed"
        assert done["data"]["result"]["error"]["code"] == "LLM_UNAVAILABLE"
        assert [m["role"] for m in messages] == ["user"]
        return
    assert done["data"]["status"] == "completed", done
    answer = done["data"]["result"]["answer"]
    assert answer
    assert result["bubble"] == answer
    persistence = done["data"]["result"]["persistence"]
    assert [m["id"] for m in messages] == [persistence["user_message"], persistence["assistant_message"]]
    assert [m["role"] for m in messages] == ["user", "assistant"]
    assert messages[1]["content"] == answer
    assert result["history"]["body"]["title"] == "페트병 어떻게 버려요?"


def check_logout(result: dict[str, Any], site: Site) -> None:
    assert result["out"]["status"] == 200
    assert result["out"]["body"]["success"] is True
    # The 401s are readable by the page: the client's refresh/logout handling can start.
    assert result["me"]["status"] == 401
    assert result["me"]["body"]["code"] in {"TOKEN_MISSING", "TOKEN_REVOKED"}
    assert result["refresh"]["status"] == 401
    assert result["refresh"]["body"]["code"].startswith("REFRESH_TOKEN_")


# One check per step of page/client.js, in its order (the chat stream adds one of each).
CHECKS: dict[str, Callable[[dict[str, Any], Site], None]] = {
    "session": check_session,
    "profile": check_profile,
    "upload": check_upload,
    "scan": check_scan,
    "collection": check_collection,
    "chat": check_chat,
    "logout": check_logout,
}


def test_client_flow(site: Site, driver: WebDriver) -> None:
    report = BrowserReport(driver, (site.api, site.page))
    try:
        _log_in_with_the_kakao_button(driver, site)
        WebDriverWait(driver, 90, poll_frequency=0.2).until(lambda d: d.execute_script("return window.__done === true"))
        results = driver.execute_script("return window.__results")
        assert set(results) == set(CHECKS), results
        for name, check in CHECKS.items():
            check(results[name], site)
        report.assert_clean()
    except Exception as exc:
        raise AssertionError(f"{exc}\n\n{report.describe()}\n{_server_log(site)}") from exc


def _log_in_with_the_kakao_button(driver: WebDriver, site: Site) -> None:
    driver.get(f"{site.page}/")
    driver.find_element(By.ID, "kakao").click()
    # No Kakao credentials in development: the development login form, marked for Kakao.
    WebDriverWait(driver, 20).until(lambda d: d.current_url.startswith(f"{site.api}/api/v1/auth/dev/authorize?"))
    assert driver.title.startswith("카카오 (Kakao) 개발용 로그인"), driver.title
    assert "DEVELOPMENT ONLY" in driver.page_source
    driver.find_element(By.ID, "login").send_keys("browser-user")
    driver.find_element(By.ID, "nickname").send_keys("브라우저")
    driver.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
    WebDriverWait(driver, 20).until(lambda d: d.current_url.startswith(f"{site.page}/#/"))
    assert driver.current_url == f"{site.page}/#/home", driver.current_url
    # Cookies are per host, not per port: the API's cookies show here, with the contract's attributes
    # (Secure included: Chromium keeps Secure cookies from http://localhost, a trustworthy origin).
    cookies = {c["name"]: c for c in driver.get_cookies()}
    for name in ("s_access", "s_refresh"):
        assert cookies[name]["secure"], cookies[name]
        assert cookies[name]["httpOnly"], cookies[name]
        assert cookies[name]["sameSite"] == "Lax"
        assert cookies[name]["path"] == "/"
    assert "s_oauth" not in cookies  # Path=/api/v1/auth, and cleared by the callback


class BrowserReport:
    """The browser's console and network errors: asserted clean at the end, printed on failure."""

    def __init__(self, driver: WebDriver, origins: tuple[str, ...]) -> None:
        self.driver = driver
        self.origins = origins  # the API's and the page's: the browser's own start page is not ours
        self.console: list[dict[str, Any]] = []
        self.network: list[dict[str, Any]] = []
        self.requests: dict[str, str] = {}

    def _collect(self) -> None:
        self.console += self.driver.get_log("browser")
        for entry in self.driver.get_log("performance"):
            message = json.loads(entry["message"])["message"]
            params = message.get("params", {})
            if message["method"] == "Network.requestWillBeSent":
                self.requests[params["requestId"]] = f"{params['request']['method']} {params['request']['url']}"
            elif message["method"] == "Network.loadingFailed" and params["requestId"] in self.requests:
                request = self.requests[params["requestId"]]
                if request.split(" ", 1)[1].startswith(self.origins):
                    self.network.append({**params, "request": request})

    def unexpected(self) -> tuple[list[str], list[str]]:
        self._collect()
        console = [
            entry["message"]
            for entry in self.console
            if entry["level"] == "SEVERE" and not _expected_status(entry["message"])
        ]
        # Closing an EventSource on `done` (as the client does) aborts its request: not a failure.
        network = [
            f"{n['request']}: {n.get('errorText')} {n.get('blockedReason') or ''} {n.get('corsErrorStatus') or ''}"
            for n in self.network
            if not (n.get("type") == "EventSource" and n.get("errorText") == "net::ERR_ABORTED")
        ]
        return console, network

    def assert_clean(self) -> None:
        console, network = self.unexpected()
        assert not console, f"browser console errors: {console}"
        assert not network, f"failed network requests: {network}"

    def describe(self) -> str:
        try:
            self._collect()
        except Exception as exc:  # the browser itself may be gone
            return f"(browser logs unavailable: {exc!r})"
        console = "\n".join(f"  {e['level']} {e['message']}" for e in self.console) or "  (none)"
        network = "\n".join(f"  {n['request']}: {n}" for n in self.network) or "  (none)"
        return f"browser console:\n{console}\nfailed network requests:\n{network}\nat {self.driver.current_url}"


def _server_log(site: Site) -> str:
    return "eco2 dev output (last 4000 characters):\n" + site.log.read_text(errors="replace")[-4000:]


def _expected_status(message: str) -> bool:
    found = re.search(r"the server responded with a status of (\d{3})", message)
    return found is not None and found.group(1) in EXPECTED_STATUSES
