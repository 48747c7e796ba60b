"""The live dashboard (``--dashboard``) and the timeline viewer, in a real headless Chromium.

The browser is the system's Chromium driven by Selenium through the system's chromedriver
(tools/setup-test-host installs both as root; ``pip install -e .[test]`` brings Selenium).
Without them the browser tests are skipped with the reason, except as root, where the
setup script should have installed them: there they fail, so CI cannot pass them silently.
The server's own tests (methods, routes, the Host check) need no browser.

Runs are real: ``python -m p2pscoop -n 3 --dashboard 127.0.0.1:0 prog.py`` and ``p2pscoop
join --dashboard``; the URL is read from the launcher's stderr. The programs loop until the
test creates a stop file, so "the numbers move while it runs" never depends on speed. Waits
are liveness bounds (``BOUND``), never measurements.

``P2PSCOOP_SCREENSHOTS=DIR`` also saves DIR/dashboard.png and DIR/timeline.png, taken by
this browser (docs/dashboard.md shows them).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from p2pscoop.dashboard import parse_address
from p2pscoop.dashboard.server import Dashboard

from launcher_helpers import ROOT, Launched, env, launcher, write_program

BOUND = 60.0  # seconds: liveness bound of every wait in this file
TIMELINE = ROOT / "p2pscoop" / "dashboard" / "timeline.html"

pytestmark = pytest.mark.slow

LOOP_PROGRAM = '''
def slow(x):
    time.sleep(0.05)
    return x


if __name__ == "__main__":
    stop = sys.argv[1]
    rounds = 0
    while not os.path.exists(stop):
        assert list(futures.map(slow, range(12))) == list(range(12))
        rounds += 1
    report("ROUNDS", rounds)
'''


# --- the browser -------------------------------------------------------------------------

def _need(reason: str):
    if os.geteuid() == 0:
        pytest.fail(f"{reason}; as root, tools/setup-test-host installs them (chromium, "
                    f"chromium-driver) and `pip install -e .[test]` installs selenium")
    pytest.skip(reason)


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service
    except ImportError:
        _need("selenium is not installed (pip install -e .[test])")
    chromium = next(filter(None, map(shutil.which, ("chromium", "chromium-browser"))), None)
    driver_path = shutil.which("chromedriver")
    if chromium is None or driver_path is None:
        _need("no Chromium or chromedriver on this machine (Debian: apt-get install "
              "chromium chromium-driver)")
    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--window-size=1280,1000", "--no-first-run", "--disable-extensions",
                f"--user-data-dir={tmp_path_factory.mktemp('chromium')}"):
        options.add_argument(arg)
    driver = webdriver.Chrome(options=options, service=Service(executable_path=driver_path))
    try:
        yield driver
    finally:
        driver.quit()


def wait_for(driver, predicate, what: str):
    """Wait (at most BOUND s) until ``predicate(driver)`` is truthy; return its value."""
    from selenium.common.exceptions import TimeoutException
    from selenium.webdriver.support.ui import WebDriverWait

    try:
        return WebDriverWait(driver, BOUND, poll_frequency=0.1).until(predicate)
    except TimeoutException:
        raise AssertionError(f"the page never showed {what} within {BOUND:.0f} s\n"
                             + driver.find_element("tag name", "body").text) from None


def text_of(driver, css: str) -> str:
    return driver.find_element("css selector", css).text


#: what the dashboard shows, read at once (the page rebuilds its tables every second, so
#: elements found by one call may be gone at the next)
SHOWN = """
const t = id => document.getElementById(id).textContent;
const num = id => Number(t(id).replace(/,/g, ""));
const cells = sel => [...document.querySelectorAll(sel)].map(
    r => [...r.cells].map(c => c.textContent));
const line = document.querySelector("#chart .done-line");
return {status: t("status"), program: t("program"), origin: t("origin"),
        peers: t("peer-count"), done: num("total-done"), known: num("total-known"),
        node: t("node-info"), rows: cells("tr.peer"), programs: cells("#programs tbody tr"),
        hosts: [...document.querySelectorAll("div.host")].map(h => h.dataset.host),
        chart: line ? line.getAttribute("points").split(" ").length : 0};
"""


def shown(driver) -> dict:
    return driver.execute_script(SHOWN)


def screenshot(driver, name: str) -> None:
    where = os.environ.get("P2PSCOOP_SCREENSHOTS")
    if where:
        Path(where).mkdir(parents=True, exist_ok=True)
        driver.save_screenshot(str(Path(where) / name))


# --- helpers -----------------------------------------------------------------------------

def dashboard_url(stderr, bound: float = BOUND) -> str:
    """The URL of the ``dashboard of this ... at URL`` line of a launcher's stderr
    (``stderr``: a callable returning the text so far)."""
    deadline = time.monotonic() + bound
    while time.monotonic() < deadline:
        for line in stderr().splitlines():
            if "dashboard of this" in line:
                return line.rsplit(" ", 1)[1]
        time.sleep(0.05)
    raise AssertionError(f"no dashboard URL on stderr within {bound:.0f} s:\n{stderr()}")


def request(url: str, method: str = "GET", headers: dict | None = None):
    """(status, headers, body) of one request; HTTP errors are answers too."""
    req = urllib.request.Request(url, method=method, headers=headers or {},
                                 data=b"x" if method in ("POST", "PUT") else None)
    try:
        with urllib.request.urlopen(req, timeout=BOUND) as r:
            return r.status, r.headers, r.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.headers, exc.read()


def refused(url: str) -> bool:
    try:
        urllib.request.urlopen(url, timeout=BOUND)
    except urllib.error.URLError as exc:
        return isinstance(exc.reason, ConnectionRefusedError)
    return False


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# --- the server alone --------------------------------------------------------------------

SNAPSHOT = {"program": "p", "origin": "abcd1234", "started": 1.0, "now": 2.0, "peers": [],
            "hosts": [], "totals": {}, "throughput": [], "programs": []}


def test_the_server_is_read_only_and_answers_loopback_names_only():
    calls = []

    def snapshot():
        calls.append(1)
        if len(calls) == 3:
            raise ValueError("broken on purpose")
        return SNAPSHOT

    board = Dashboard(snapshot)
    url = board.start()
    try:
        assert url.startswith("http://127.0.0.1:")
        status, headers, body = request(url)
        assert status == 200 and b"p2pscoop dashboard" in body
        assert "default-src 'self'" in headers["Content-Security-Policy"]
        status, _, body = request(url + "api/snapshot")
        assert status == 200 and json.loads(body) == SNAPSHOT
        status, headers, body = request(url + "api/snapshot", "HEAD")
        assert status == 200 and body == b"" and int(headers["Content-Length"]) > 0
        status, _, body = request(url + "api/snapshot")  # the third call raises
        assert status == 500 and "broken on purpose" in json.loads(body)["error"]
        for method in ("POST", "PUT", "DELETE", "PATCH", "OPTIONS"):
            status, headers, _ = request(url + "api/snapshot", method)
            assert status == 405, method
            assert headers["Allow"] == "GET, HEAD"
        assert request(url + "nothing-here")[0] == 404
        assert request(url + "api/trace")[0] == 404  # no --trace file
        assert request(url + "timeline")[0] == 200
        # DNS rebinding: a page of another site that resolves its name to 127.0.0.1
        assert request(url, headers={"Host": "evil.example:80"})[0] == 403
        assert request(url, headers={"Host": f"localhost:{board.port}"})[0] == 200
    finally:
        board.stop()
    assert refused(url)


def test_the_trace_of_the_run_is_served_when_given(tmp_path):
    board = Dashboard(lambda: SNAPSHOT, trace=lambda: {"traceEvents": []})
    url = board.start()
    try:
        status, _, body = request(url + "api/trace")
        assert status == 200 and json.loads(body) == {"traceEvents": []}
    finally:
        board.stop()


@pytest.mark.parametrize("text, expected", [
    ("8787", ("127.0.0.1", 8787)), ("0", ("127.0.0.1", 0)),
    ("0.0.0.0:80", ("0.0.0.0", 80)), ("localhost:0", ("localhost", 0)),
    ("[::1]:9000", ("::1", 9000)),
])
def test_dashboard_addresses(text, expected):
    assert parse_address(text) == expected


@pytest.mark.parametrize("text, says", [
    ("x", "must be a number"), (":80", "is empty"), ("::1:80", "[ADDR]:PORT"),
    ("70000", "between 0 and 65535"), ("[nope]:1", "not an IPv6 address"),
])
def test_bad_dashboard_addresses_are_usage_errors(tmp_path, text, says):
    prog = write_program(tmp_path, "pass", prelude=False)
    out = subprocess.run(launcher("--dashboard", text, prog, n=1), env=env(), cwd=tmp_path,
                         capture_output=True, text=True, timeout=BOUND)
    assert out.returncode == 2
    assert says in out.stderr and "Traceback" not in out.stderr


def test_a_dashboard_port_in_use_is_a_clear_error(tmp_path):
    prog = write_program(tmp_path, "if __name__ == '__main__':\n    report('RAN', 1)")
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        out = subprocess.run(launcher("--dashboard", f"127.0.0.1:{port}", prog, n=2),
                             env=env(), cwd=tmp_path, capture_output=True, text=True,
                             timeout=BOUND)
    assert out.returncode == 1
    assert "cannot serve the dashboard" in out.stderr and "Traceback" not in out.stderr
    assert "RAN" not in out.stdout


PEER_KEYS = {"peer", "host", "pid", "alive", "queue", "running", "units_done", "steals_sent",
             "steals_granted", "steals_denied", "units_redispatched", "age"}
TOTAL_KEYS = {"units_done", "units_known", "steals_sent", "steals_granted", "steals_denied",
              "units_redispatched"}


def test_a_runs_snapshot_follows_the_schema(tmp_path):
    """The snapshot the page reads (the origin's telemetry collector), once every peer's
    last report is in: every key of docs/dashboard.md, and the counts of the run."""
    prog = write_program(tmp_path, """
        if __name__ == "__main__":
            import time
            from p2pscoop.runtime import telemetry

            assert list(futures.map(abs, range(-30, 0))) == list(range(30, 0, -1))
            assert futures.submit(abs, -1).result() == 1
            snap = telemetry.collector().snapshot()
            deadline = time.monotonic() + 30  # the peers report every half second
            while snap["totals"]["units_done"] < 31 and time.monotonic() < deadline:
                time.sleep(0.1)
                snap = telemetry.collector().snapshot()
            report("AFTER", snap)
            report_peers()
    """)
    run = Launched(launcher("--dashboard", "127.0.0.1:0", prog, n=3), tmp_path)
    try:
        after, pids = run.wait_report("AFTER"), run.wait_report("PEERS")
        assert run.wait() == 0, run.describe()
    finally:
        run.cleanup()
    assert set(after) == {"program", "origin", "started", "now", "peers", "hosts", "totals",
                          "throughput", "programs"}
    assert after["totals"]["units_known"] == after["totals"]["units_done"] == 31
    assert set(after["totals"]) == TOTAL_KEYS
    assert len(after["peers"]) == 3 and all(set(r) == PEER_KEYS for r in after["peers"])
    assert sum(r["units_done"] for r in after["peers"]) == 31
    assert sorted(r["pid"] for r in after["peers"]) == pids
    assert run.pid in pids and all(r["alive"] for r in after["peers"])
    assert after["hosts"] == sorted({r["host"] for r in after["peers"]})
    assert after["programs"][0]["peers"] == 3
    assert after["started"] <= after["now"]
    assert len(after["throughput"]) <= 600


# --- a run, in the browser ---------------------------------------------------------------

def test_the_dashboard_of_a_run_shows_its_peers_and_moves(browser, tmp_path):
    prog = write_program(tmp_path, LOOP_PROGRAM)
    stop = tmp_path / "stop"
    run = Launched(launcher("--dashboard", "127.0.0.1:0", prog, stop, n=3), tmp_path)
    try:
        url = dashboard_url(lambda: run.stderr)
        browser.get(url)
        seen = wait_for(browser, lambda d: len((s := shown(d))["rows"]) == 3 and s,
                        "the 3 peers")
        assert seen["status"] == "live"
        assert seen["program"] == "prog.py"
        assert seen["peers"] == "3"
        assert len(seen["hosts"]) == 1  # one machine
        assert str(run.pid) in {row[1] for row in seen["rows"]}  # the origin's pid
        assert seen["programs"] == [["prog.py", "3"]]
        first = wait_for(browser, lambda d: shown(d)["done"], "units done")
        later = wait_for(browser, lambda d: (s := shown(d))["done"] > first and s,
                         f"units done growing past {first}")
        assert later["known"] >= later["done"]
        wait_for(browser, lambda d: shown(d)["chart"] >= 2, "the throughput line")
        if os.environ.get("P2PSCOOP_SCREENSHOTS"):  # a few seconds of history in the chart
            points = wait_for(browser, lambda d: len(json.loads(request(
                url + "api/snapshot")[2])["throughput"]) >= 8 and shown(d)["chart"],
                "8 s of throughput")
            wait_for(browser, lambda d: shown(d)["chart"] > points, "the chart redrawn")
            screenshot(browser, "dashboard.png")
        status, headers, _ = request(url + "api/snapshot", "POST")
        assert status == 405 and headers["Allow"] == "GET, HEAD"
        stop.touch()
        assert run.wait() == 0, run.describe()
        assert run.wait_report("ROUNDS") > 0
        assert refused(url), "the dashboard outlived its run"
        wait_for(browser, lambda d: shown(d)["status"] == "disconnected",
                 "that the run is gone")
    finally:
        stop.touch()
        run.cleanup()


# --- a node, in the browser --------------------------------------------------------------

def test_the_dashboard_of_a_node_shows_the_programs_it_serves(browser, tmp_path):
    secret = tmp_path / "lab.secret"
    subprocess.run([sys.executable, "-m", "p2pscoop", "secret", str(secret)], env=env(),
                   check=True, capture_output=True, timeout=BOUND)
    address = f"127.0.0.1:{free_port()}"
    cluster = ["--cluster", "dashlab", "--secret-file", str(secret), "--no-zeroconf"]
    node = Launched([sys.executable, "-m", "p2pscoop", "join", "-n", "2", *cluster,
                     "--listen", address, "--dashboard", "0"], tmp_path)
    prog = write_program(tmp_path, LOOP_PROGRAM)
    stop = tmp_path / "stop"
    run = None
    try:
        url = dashboard_url(lambda: node.stderr)
        browser.get(url)
        seen = wait_for(browser, lambda d: (s := shown(d))["origin"].startswith("n") and s,
                        "the node's id")
        assert seen["program"] == f"node {seen['origin']}"
        assert "dashlab" in seen["node"]
        assert seen["programs"] == [["no program"]] and seen["rows"] == []
        run = Launched(launcher(*cluster, "--nodes", address, "--listen", "127.0.0.1", prog,
                                stop, n=1), tmp_path)
        seen = wait_for(browser, lambda d: len((s := shown(d))["rows"]) == 2 and s,
                        "the node's 2 peers of the program")
        assert len(seen["programs"]) == 1 and seen["programs"][0][1] == "2"
        stop.touch()
        assert run.wait() == 0, run.describe()
        wait_for(browser, lambda d: shown(d)["programs"] == [["no program"]],
                 "that the program ended")
        node.proc.send_signal(signal.SIGTERM)
        assert node.wait() == 0, node.describe()
        assert refused(url), "the dashboard outlived its node"
    finally:
        stop.touch()
        if run is not None:
            run.cleanup()
        node.cleanup()


# --- the timeline viewer -----------------------------------------------------------------

def handmade_trace() -> dict:
    """A small trace in the Chrome trace-event format: two peers of two hosts, units as
    complete events, a steal as an instant event, names as metadata."""
    events = [
        {"ph": "M", "pid": 1, "name": "process_name", "args": {"name": "origin 3f2a91c0 (hostA)"}},
        {"ph": "M", "pid": 1, "tid": 1, "name": "thread_name", "args": {"name": "units"}},
        {"ph": "M", "pid": 1, "tid": 2, "name": "thread_name", "args": {"name": "steals"}},
        {"ph": "M", "pid": 2, "name": "process_name", "args": {"name": "peer 77b0e412 (hostB)"}},
        {"ph": "M", "pid": 2, "tid": 1, "name": "thread_name", "args": {"name": "units"}},
    ]
    t = 0
    for k in range(12):  # origin: map units of job 0, then a reduce
        dur = 40_000 + 9_000 * (k % 4)
        events.append({"ph": "X", "pid": 1, "tid": 1, "ts": t, "dur": dur,
                       "name": "prog.explore", "args": {"job": 0, "unit": k}})
        t += dur + 2_000
    events.append({"ph": "X", "pid": 1, "tid": 1, "ts": t, "dur": 60_000, "name": "prog.reduce",
                   "args": {"job": 1}})
    t = 25_000
    for k in range(12, 22):  # the other peer: units it stole
        dur = 45_000 + 7_000 * (k % 3)
        events.append({"ph": "X", "pid": 2, "tid": 1, "ts": t, "dur": dur,
                       "name": "prog.explore", "args": {"job": 0, "unit": k}})
        t += dur + 3_000
    events.append({"ph": "i", "pid": 1, "tid": 2, "ts": 20_000, "s": "t", "name": "steal",
                   "args": {"thief": "77b0e412", "victim": "3f2a91c0", "units": 10}})
    return {"traceEvents": events, "displayTimeUnit": "ms"}


def test_the_timeline_draws_a_trace_file_as_lanes(browser, tmp_path):
    trace = handmade_trace()
    path = tmp_path / "run.trace.json"
    path.write_text(json.dumps(trace))
    browser.get(TIMELINE.as_uri())
    browser.find_element("css selector", "#file").send_keys(str(path))
    wait_for(browser, lambda d: d.find_element("tag name", "body")
             .get_attribute("data-loaded") == "yes", "the loaded trace")
    lanes = browser.find_elements("css selector", "g.lane")
    assert [(e.get_attribute("data-pid"), e.get_attribute("data-tid")) for e in lanes] == \
        [("1", "1"), ("1", "2"), ("2", "1")]
    assert [e.text for e in browser.find_elements("css selector", "g.proc")] == \
        ["origin 3f2a91c0 (hostA)", "peer 77b0e412 (hostB)"]
    complete = sum(1 for e in trace["traceEvents"] if e["ph"] == "X")
    assert len(browser.find_elements("css selector", "rect.ev")) == complete
    assert len(browser.find_elements("css selector", "path.instant")) == 1
    assert text_of(browser, "#summary").startswith(f"run.trace.json: {complete + 1} events "
                                                   f"on 3 thread(s) of 2 process(es)")
    from selenium.webdriver.common.action_chains import ActionChains

    box = browser.find_elements("css selector", "rect.ev")[3]
    ActionChains(browser).move_to_element(box).perform()
    wait_for(browser, lambda d: '"unit":3' in text_of(d, "#detail"), "a unit's details")
    assert text_of(browser, "#detail").startswith("prog.explore\nstart ")


def test_the_timeline_opens_the_trace_of_a_real_run(browser, tmp_path):
    """``--trace`` of a nested run, opened in the viewer: a lane per peer, a box per unit."""
    prog = write_program(tmp_path, """
        def fib(n):
            if n < 10:
                return n if n < 2 else fib(n - 1) + fib(n - 2)
            a, b = futures.submit(fib, n - 1), futures.submit(fib, n - 2)
            return a.result() + b.result()

        if __name__ == "__main__":
            print(fib(17))
    """)
    trace_path = tmp_path / "fib.trace.json"
    run = Launched(launcher("--trace", trace_path, prog, n=3), tmp_path)
    try:
        assert run.wait() == 0, run.describe()
    finally:
        run.cleanup()
    trace = json.loads(trace_path.read_text())
    units = [e for e in trace["traceEvents"] if e["ph"] == "X"]
    threads = {(e["pid"], e["tid"]) for e in trace["traceEvents"]
               if e["ph"] == "M" and e["name"] == "thread_name"}
    browser.get(TIMELINE.as_uri())
    browser.find_element("css selector", "#file").send_keys(str(trace_path))
    wait_for(browser, lambda d: d.find_element("tag name", "body")
             .get_attribute("data-loaded") == "yes", "the loaded trace")
    lanes = {(int(e.get_attribute("data-pid")), int(e.get_attribute("data-tid")))
             for e in browser.find_elements("css selector", "g.lane")}
    assert lanes >= {(e["pid"], e["tid"]) for e in units}  # a lane for every peer with units
    assert lanes <= threads  # and only the trace's own
    assert len(browser.find_elements("css selector", "rect.ev")) == len(units)
    browser.set_window_size(1280, 480)
    try:
        screenshot(browser, "timeline.png")
    finally:
        browser.set_window_size(1280, 1000)


def test_the_timeline_says_why_a_file_is_not_a_trace(browser, tmp_path):
    path = tmp_path / "not-a-trace.json"
    path.write_text('{"hello": 1}')
    browser.get(TIMELINE.as_uri())
    browser.find_element("css selector", "#file").send_keys(str(path))
    wait_for(browser, lambda d: "traceEvents" in text_of(d, "#error"), "the error")
