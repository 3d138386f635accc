"""The chat example (examples/chat/) end to end, in real headless browsers:
a 3-node cluster of `tandemkv serve` processes, chat instances pointed at
different nodes, and Chromium sessions driven by Selenium.

In one room: ann (instance 1, node n1) and bob (instance 2, node n2) see
each other online; a message sent in one browser appears in the other; a
tab that joins later on a third instance (node n3) gets the room's last
HISTORY_MESSAGES_MAX messages from the durable topic; closing bob's tab
takes bob off ann's list; SIGKILLing instance 2 takes its remaining user
off ann's list within the presence session's TTL.

Needs Debian's chromium and chromium-driver; without them the test skips
naming the packages (and fails under TANDEMKV_REQUIRE_SYSTEM_TESTS=1, as
.ci/run sets). Every wait is a WebDriverWait or a polled deadline; every
process started is stopped.
"""

from __future__ import annotations

import contextlib
import shutil
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from tandemkv import limits
from tandemkv.client import Client
from tests.support.cluster import ServeCluster
from tests.support.ports import free_ports
from tests.support.system_needs import skip_needing

webdriver = pytest.importorskip("selenium.webdriver", reason="needs selenium (pip install -e '.[dev]')")
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.support.ui import WebDriverWait  # noqa: E402

from examples.chat.rooms import HISTORY_MESSAGES_MAX, encoded, messages_topic  # noqa: E402

CHROMIUM = "chromium and chromium-driver (apt-get install -y chromium chromium-driver)"
CHROMIUM_PATHS = ("/usr/bin/chromium", "/usr/bin/chromedriver")
REPO = Path(__file__).resolve().parent.parent
START_TIMEOUT_S = 120.0
APP_START_TIMEOUT_S = 60.0
BROWSER_TIMEOUT_S = 60.0
# A SIGKILLed instance's session is renewed no more: its users go after its TTL.
KILLED_GONE_TIMEOUT_S = limits.PRESENCE_SESSION_TTL_MS / 1000 + limits.PRESENCE_CLOCK_SKEW_MS_MAX / 1000 + 45.0
POLL_S = 0.1
STOP_TIMEOUT_S = 15.0
ROOM = "lobby"


def chromium_missing() -> str | None:
    missing = [path for path in CHROMIUM_PATHS if not shutil.which(path)]
    return ", ".join(missing) + " not found" if missing else None


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    missing = chromium_missing()
    if missing:
        skip_needing(CHROMIUM, missing)
    with ServeCluster(tmp_path_factory.mktemp("chat"), nodes=3) as cluster:
        cluster.wait_for_leader(START_TIMEOUT_S)
        yield cluster


class ChatInstance:
    """`python -m examples.chat` on a free port, against one node."""

    def __init__(self, endpoint: str, name: str, log_dir: Path):
        self.port = free_ports(1)[0]
        self.url = f"http://127.0.0.1:{self.port}/"
        self.log_path = log_dir / f"{name}.log"
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "examples.chat", "--port", str(self.port), "--endpoints", endpoint,
                 "--name", name], cwd=REPO, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        deadline = time.monotonic() + APP_START_TIMEOUT_S
        while time.monotonic() < deadline:
            assert self.process.poll() is None, f"{name} exited: {self.log_path.read_text()}"
            try:
                with urllib.request.urlopen(self.url, timeout=5) as response:
                    if response.status == 200:
                        return
            except (urllib.error.URLError, ConnectionError):
                time.sleep(POLL_S)
        raise AssertionError(f"{name} did not serve within {APP_START_TIMEOUT_S} s: {self.log_path.read_text()}")

    def kill(self) -> None:
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=STOP_TIMEOUT_S)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=STOP_TIMEOUT_S)


class Tab:
    """One headless Chromium session with the chat page, joined to a room."""

    def __init__(self, instance: ChatInstance, user: str, room: str = ROOM):
        options = webdriver.ChromeOptions()
        options.binary_location = CHROMIUM_PATHS[0]
        for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu"):
            options.add_argument(argument)
        self.driver = webdriver.Chrome(options=options, service=webdriver.ChromeService(CHROMIUM_PATHS[1]))
        self.user = user
        try:
            self.driver.get(instance.url)
            self.driver.find_element(By.ID, "user").send_keys(user)
            room_field = self.driver.find_element(By.ID, "room")
            room_field.clear()
            room_field.send_keys(room)
            self.driver.find_element(By.ID, "enter").click()
            self.wait(lambda: self.driver.find_element(By.ID, "chat").is_displayed(), "the room to open")
        except BaseException:
            self.close()
            raise

    def wait(self, condition, what: str, timeout_s: float = BROWSER_TIMEOUT_S):
        return WebDriverWait(self.driver, timeout_s, poll_frequency=POLL_S).until(
            lambda _driver: condition(), message=f"{self.user}'s tab: {what} within {timeout_s} s")

    # The page redraws its lists as events arrive: each is read in one script
    # (elements found one call and read the next may be gone by then).
    def online(self) -> set[str]:
        return set(self.driver.execute_script(
            "return [...document.querySelectorAll('#users li')].map((li) => li.dataset.user);"))

    def texts(self) -> list[str]:
        return self.driver.execute_script(
            "return [...document.querySelectorAll('#messages .text')].map((span) => span.textContent);")

    def send(self, text: str) -> None:
        self.driver.find_element(By.ID, "text").send_keys(text)
        self.driver.find_element(By.ID, "send").click()

    def close(self) -> None:
        if self.driver is not None:
            self.driver, driver = None, self.driver
            driver.quit()


def test_two_browsers_on_two_instances_chat_and_see_who_is_online(cluster, tmp_path):
    with contextlib.ExitStack() as stack:
        def instance(node: str) -> ChatInstance:
            started = ChatInstance(cluster.endpoint(node), f"chat-{node}", tmp_path)
            stack.callback(started.stop)
            return started

        def tab(on: ChatInstance, user: str) -> Tab:
            opened = Tab(on, user)
            stack.callback(opened.close)
            return opened

        first, second = instance("n1"), instance("n2")
        ann, bob = tab(first, "ann"), tab(second, "bob")
        ann.wait(lambda: ann.online() == {"ann", "bob"}, "ann and bob online")
        bob.wait(lambda: bob.online() == {"ann", "bob"}, "ann and bob online")

        ann.send("hello from ann")
        bob.wait(lambda: "hello from ann" in bob.texts(), "ann's message")
        bob.send("hi from bob")
        ann.wait(lambda: ann.texts()[-2:] == ["hello from ann", "hi from bob"], "both messages in order")

        # The room's log holds more than a joining tab gets: it gets the last ones.
        with Client(cluster.endpoints) as client:
            for k in range(HISTORY_MESSAGES_MAX - 1):
                client.pubsub.publish(messages_topic(ROOM), encoded("filler", f"filler {k}"), durable=True)
        expected = ["hi from bob"] + [f"filler {k}" for k in range(HISTORY_MESSAGES_MAX - 1)]
        later = tab(instance("n3"), "cat")
        later.wait(lambda: later.texts() == expected, f"the last {HISTORY_MESSAGES_MAX} messages")
        ann.wait(lambda: ann.online() == {"ann", "bob", "cat"}, "cat online")
        later.close()
        ann.wait(lambda: ann.online() == {"ann", "bob"}, "cat gone when its tab closed")

        dan = tab(second, "dan")
        ann.wait(lambda: ann.online() == {"ann", "bob", "dan"}, "dan online")
        bob.close()
        ann.wait(lambda: ann.online() == {"ann", "dan"}, "bob gone when his tab closed")
        dan.wait(lambda: dan.online() == {"ann", "dan"}, "bob gone when his tab closed")

        second.kill()
        ann.wait(lambda: ann.online() == {"ann"}, "dan gone when his instance was killed", KILLED_GONE_TIMEOUT_S)
        assert ann.texts()[-1] == f"filler {HISTORY_MESSAGES_MAX - 2}"
