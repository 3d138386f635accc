"""The dashboard page a node serves (`/dashboard`), in real headless
Chromium: a 3-node cluster of `tandemkv serve` processes with their
observability ports; the page, opened on a follower, shows the three
members with one leader and the CRDT table made before; after the leader
is SIGKILLed, it shows that member unreachable and another one leading
within LEADER_KILL_SHOWN_S, and itself ready again. Before that, a job
queue's counts on the page follow an enqueue, a claim and a worker's
heartbeat. A screenshot of the page is saved under the
test's tmp dir, and copied to $TANDEMKV_ARTIFACTS_DIR when that is set.

Needs Debian's chromium and chromium-driver; without them the test skips
naming the packages (and fails under TANDEMKV_REQUIRE_SYSTEM_TESTS=1, as
.ci/run sets). Every wait is a WebDriverWait; every process is stopped.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from tandemkv.client import Client
from tests.support.cluster import ServeCluster
from tests.support.observed import observe
from tests.support.system_needs import skip_needing
from tests.test_chat_example import CHROMIUM, CHROMIUM_PATHS, chromium_missing

webdriver = pytest.importorskip("selenium.webdriver", reason="needs selenium (pip install -e '.[dev]')")
from selenium.webdriver.support.ui import WebDriverWait  # noqa: E402

START_TIMEOUT_S = 120.0
PAGE_TIMEOUT_S = 60.0
# The survivors elect a new leader (Raft timeouts), the page polls every
# second and a peer's status call gives up after OBSERVE_PEER_STATUS_TIMEOUT_MS.
LEADER_KILL_SHOWN_S = 60.0
POLL_S = 0.2
ARTIFACTS_ENV = "TANDEMKV_ARTIFACTS_DIR"
# A worker stays on the page this long after its beat: on a loaded machine
# the page may take longer than the default JOB_WORKER_STALE_MS to show it.
WORKER_STALE_MS = 10 * 60 * 1000


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    missing = chromium_missing()
    if missing:
        skip_needing(CHROMIUM, missing)
    cluster = ServeCluster(tmp_path_factory.mktemp("dashboard"), nodes=3,
                           limits={"JOB_WORKER_STALE_MS": WORKER_STALE_MS})
    cluster.urls = observe(cluster)
    with cluster:
        cluster.wait_for_leader(START_TIMEOUT_S)
        yield cluster


@pytest.fixture
def browser():
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM_PATHS[0]
    for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                     "--window-size=1280,900"):
        options.add_argument(argument)
    driver = webdriver.Chrome(options=options, service=webdriver.ChromeService(CHROMIUM_PATHS[1]))
    try:
        yield driver
    finally:
        driver.quit()


def members_shown(driver) -> dict[str, str]:
    """Member name -> role, as the page shows them now (read in one script:
    the page redraws its rows every second)."""
    rows = driver.execute_script(
        "return [...document.querySelectorAll('#members tbody tr')].map((row) => [row.dataset.name, row.dataset.role]);")
    return dict(rows)


def tables_shown(driver) -> list[str]:
    return driver.execute_script(
        "return [...document.querySelectorAll('#tables tbody tr')].map((row) => row.cells[0].textContent);")


def wait(driver, condition, what: str, timeout_s: float = PAGE_TIMEOUT_S):
    WebDriverWait(driver, timeout_s, poll_frequency=POLL_S).until(
        lambda _driver: condition(), message=f"the dashboard: {what} within {timeout_s} s")


def save_screenshot(driver, tmp_path: Path) -> Path:
    path = tmp_path / "dashboard.png"
    assert driver.save_screenshot(str(path)), "Chromium saved no screenshot"
    artifacts = os.environ.get(ARTIFACTS_ENV)
    if artifacts:
        Path(artifacts).mkdir(parents=True, exist_ok=True)
        shutil.copy(path, Path(artifacts) / path.name)
    return path


def queue_counts_shown(driver, queue: str) -> dict[str, str]:
    """The job queue's row as the page shows it now: column class -> text."""
    return driver.execute_script(
        "const row = [...document.querySelectorAll('#jobs tbody tr')].find((r) => r.dataset.queue === arguments[0]);"
        "return row ? Object.fromEntries([...row.cells].slice(1).map((c) => [c.classList[1], c.textContent])) : {};",
        queue)


def test_the_dashboard_counts_a_queues_jobs_and_workers_as_they_change(cluster, browser):
    leader = cluster.wait_for_leader(START_TIMEOUT_S)
    follower = next(m.name for m in cluster.members if m.name != leader)
    browser.get(cluster.urls[follower] + "/dashboard")
    with Client(cluster.endpoints) as client:
        client.jobs.enqueue("dashboard-mail", b"first")
        wait(browser, lambda: queue_counts_shown(browser, "dashboard-mail").get("available") == "1",
             "the queue with one available job")
        client.jobs.enqueue("dashboard-mail", b"second")
        wait(browser, lambda: queue_counts_shown(browser, "dashboard-mail").get("available") == "2",
             "the available count moving to 2 after an enqueue")
        with client.lease(ttl_s=30) as lease:
            client.jobs.claim("dashboard-mail", lease.id)
            client.jobs.heartbeat("dashboard-mail", "dash-worker", running=1)
            wait(browser, lambda: queue_counts_shown(browser, "dashboard-mail") == {
                "available": "1", "scheduled": "0", "claimed": "1", "retryable": "0", "dead": "0",
                "completed": "0", "cancelled": "0", "limit": "-", "workers": "1", "running": "1"},
                 "one claimed job and its worker")
            client.jobs.heartbeat("dashboard-mail", "dash-worker", stopping=True)
        client.jobs.set_queue_limit("dashboard-mail", 5)
        wait(browser, lambda: queue_counts_shown(browser, "dashboard-mail").get("limit") == "5",
             "the queue's cluster-wide limit")


def test_the_dashboard_shows_the_members_and_a_leader_kill(cluster, browser, tmp_path):
    leader = cluster.wait_for_leader(START_TIMEOUT_S)
    with Client(cluster.endpoints) as client:
        client.crdt.create("dashboard-visits", "g_counter")
    follower = next(m.name for m in cluster.members if m.name != leader)
    browser.get(cluster.urls[follower] + "/dashboard")
    names = {m.name for m in cluster.members}
    wait(browser, lambda: set(members_shown(browser)) == names, "the three members")
    wait(browser, lambda: members_shown(browser)[leader] == "leader", f"{leader} as the leader")
    wait(browser, lambda: "dashboard-visits" in tables_shown(browser), "the CRDT table")
    assert list(members_shown(browser).values()).count("leader") == 1

    cluster.kill(leader)
    wait(browser, lambda: members_shown(browser)[leader] == "unreachable"
         and "leader" in [role for name, role in members_shown(browser).items() if name != leader],
         f"{leader} unreachable and a new leader", LEADER_KILL_SHOWN_S)
    wait(browser, lambda: browser.execute_script("return document.getElementById('ready').textContent;") == "ready",
         f"{follower}, serving the page, ready under the new leader", LEADER_KILL_SHOWN_S)
    shown = members_shown(browser)
    assert set(shown) == names and list(shown.values()).count("leader") == 1, shown
    assert save_screenshot(browser, tmp_path).stat().st_size > 0
