"""The lab itself: hosts talk over TCP, ZeroMQ and multicast; faults do what they say;
teardown leaves nothing, whatever ran inside and however the test process ended.

Programs inside lab hosts are tiny Python scripts (below) run with this interpreter. Servers
print a READY line before the test goes on, so no test sleeps waiting for a server.
"""

import os
import signal
import subprocess
import sys
import textwrap

import pytest

import netlab

PY = sys.executable
HERE = os.path.dirname(os.path.abspath(__file__))

# TCP echo server: prints READY, then echoes one line per connection, until killed.
ECHO_SERVER = textwrap.dedent("""
    import socket, sys
    srv = socket.create_server((sys.argv[1], int(sys.argv[2])))
    print("READY", flush=True)
    while True:
        conn, _ = srv.accept()
        try:
            with conn:
                conn.sendall(conn.makefile().readline().upper().encode())
        except OSError:  # the client gave up (e.g. after a freeze)
            pass
""")

# TCP probe: prints the echoed line, or "unreachable" if no answer comes within 1 s.
TCP_PROBE = textwrap.dedent("""
    import socket, sys
    try:
        with socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=1.0) as s:
            s.sendall(b"ping\\n")
            print(s.makefile().readline().strip())
    except OSError as exc:
        print("unreachable", type(exc).__name__)
""")

# UDP receiver: joins a group (or not), prints READY, counts datagrams until END (or 3 s
# without any), prints "<count> <sender ip>".
UDP_RECEIVER = textwrap.dedent("""
    import socket, struct, sys
    bind_ip, port, group, local_ip = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.setsockopt(socket.SOL_SOCKET, 33, 1 << 21)  # SO_RCVBUFFORCE (root)
    s.bind((bind_ip, port))
    if group != "-":
        mreq = struct.pack("4s4s", socket.inet_aton(group), socket.inet_aton(local_ip))
        s.setsockopt(socket.IPPROTO_IP, socket.IP_ADD_MEMBERSHIP, mreq)
    s.settimeout(3.0)
    print("READY", flush=True)
    count, sender = 0, "-"
    try:
        while True:
            data, (sender, _) = s.recvfrom(100)
            if data == b"END":
                break
            count += 1
    except socket.timeout:
        pass
    print(count, sender)
""")

# UDP sender: N numbered datagrams, then 20 END markers (so one gets through 50 % loss).
UDP_SENDER = textwrap.dedent("""
    import socket, sys, time
    addr, port, n = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    for i in range(n):
        s.sendto(b"%d" % i, (addr, port))
        time.sleep(0.0005)  # pacing only: keeps the receiver's queue short
    for _ in range(20):
        s.sendto(b"END", (addr, port))
""")

ZMQ_ROUTER = textwrap.dedent("""
    import sys, zmq
    sock = zmq.Context().socket(zmq.ROUTER)
    port = sock.bind_to_random_port("tcp://" + sys.argv[1])
    print("READY", port, flush=True)
    ident, msg = sock.recv_multipart()
    sock.send_multipart([ident, b"pong:" + msg])
    sock.close(linger=1000)
""")

ZMQ_DEALER = textwrap.dedent("""
    import sys, zmq
    sock = zmq.Context().socket(zmq.DEALER)
    sock.connect("tcp://%s:%s" % (sys.argv[1], sys.argv[2]))
    sock.send(b"ping")
    print(sock.recv().decode() if sock.poll(20000) else "no reply")
    sock.close(linger=0)
""")


def start(lab, host, source, *args):
    """Start a script in ``host`` and wait for its READY line; returns (proc, rest of line)."""
    proc = lab.popen(host, [PY, "-c", source, *map(str, args)], stdout=subprocess.PIPE, text=True)
    line = proc.stdout.readline().split()
    assert line[:1] == ["READY"], f"{source.splitlines()[1]}... in {host} did not start: {line}"
    return proc, line[1:]


def echo_server(lab, host, port=7000):
    return start(lab, host, ECHO_SERVER, host.ip, port)[0]


def probe(lab, src, dst, port=7000):
    """What ``src`` gets back from ``dst``'s echo server: "PING" or "unreachable ..."."""
    return lab.run(src, [PY, "-c", TCP_PROBE, dst.ip, str(port)], timeout=30).stdout.strip()


def udp_count(lab, src, dst, n, group=None, port=7001):
    """Send ``n`` datagrams from ``src`` to ``dst`` (or to ``group``, joined in ``dst``);
    returns (received count, sender address seen)."""
    bind = "0.0.0.0" if group else dst.ip
    rx, _ = start(lab, dst, UDP_RECEIVER, bind, port, group or "-", dst.ip)
    sent = lab.run(src, [PY, "-c", UDP_SENDER, group or dst.ip, str(port), str(n)], timeout=60)
    assert sent.returncode == 0, sent.stderr
    out, _ = rx.communicate(timeout=30)
    count, sender = out.split()
    return int(count), sender


def root_links():
    out = subprocess.run(["ip", "-br", "link"], capture_output=True, text=True, check=True)
    return set(out.stdout.splitlines())


def lab_links_in_root(lab, before):
    """Links of the root namespace, not there ``before``, named like a lab's interfaces.
    (Only those: other test runs may add links of their own meanwhile.)"""
    ours = {"br0", "eth0", *(h.name for h in lab.hosts)}
    return [line for line in root_links() - before if line.split()[0].split("@")[0] in ours]


# --- the network works ---------------------------------------------------------------------

def test_hosts_get_addresses_lo_and_a_multicast_route(lab2):
    h1, h2 = lab2.hosts
    assert h1.ip != h2.ip and h1.ip.startswith("10.213.")
    routes = lab2.run(h1, ["ip", "route"]).stdout
    assert "224.0.0.0/4 dev eth0" in routes
    links = lab2.run(h2, ["ip", "-br", "addr"]).stdout
    assert f"{h2.ip}/24" in links and "lo " in links and "UP" in links.split("lo", 1)[1]


def test_nothing_is_added_to_the_root_namespace():
    if netlab.available():
        pytest.skip(netlab.available())
    before = root_links()
    with netlab.Lab(3) as lab:
        assert lab_links_in_root(lab, before) == []
        assert f"{lab.subnet}." not in subprocess.run(["ip", "route"], capture_output=True,
                                                      text=True).stdout
    assert lab_links_in_root(lab, before) == []


def test_tcp_between_hosts(lab2):
    h1, h2 = lab2.hosts
    echo_server(lab2, h1)
    assert probe(lab2, h2, h1) == "PING"


def test_zmq_router_dealer_round_trip(lab2):
    h1, h2 = lab2.hosts
    router, (port,) = start(lab2, h1, ZMQ_ROUTER, h1.ip)
    reply = lab2.run(h2, [PY, "-c", ZMQ_DEALER, h1.ip, port], timeout=60)
    assert reply.stdout.strip() == "pong:ping", reply.stderr
    assert router.wait(timeout=30) == 0


def test_multicast_reaches_other_hosts(lab4):
    h1, h2 = lab4.hosts[:2]
    count, sender = udp_count(lab4, h1, h2, 5, group="224.0.0.251", port=5353)
    assert count == 5 and sender == h1.ip


def test_hosts_have_their_own_hostname_on_request(lab2):
    h1, h2 = lab2.hosts
    script = ["-c", "import socket; print(socket.gethostname())"]
    assert lab2.run(h2, [PY, *script], hostname=True).stdout.strip() == "h2"
    assert lab2.run(h1, [PY, *script]).stdout.strip() == os.uname().nodename


# --- faults -----------------------------------------------------------------------------------

@pytest.mark.parametrize("lossy", ["sender", "receiver"])
def test_loss_drops_a_share_of_datagrams_each_way(lab2, lossy):
    h1, h2 = lab2.hosts
    assert udp_count(lab2, h1, h2, 1)[0] == 1  # ARP done first: loss would hit it too
    lab2.loss(h1 if lossy == "sender" else h2, 50)
    count, _ = udp_count(lab2, h1, h2, 200)
    assert 10 <= count <= 190  # about 100: some lost, not all


def test_no_loss_drops_nothing(lab2):
    h1, h2 = lab2.hosts
    lab2.loss(h1, 50)
    lab2.loss(h1, 0)
    assert udp_count(lab2, h1, h2, 200)[0] == 200
    switch = subprocess.run(["ip", "netns", "exec", lab2.switch_ns, "nft", "list", "ruleset"],
                            capture_output=True, text=True, check=True)
    assert switch.stdout.strip() == ""


def test_bad_arguments_are_refused_clearly(lab2):
    with pytest.raises(ValueError, match="0..100"):
        lab2.loss(lab2.hosts[0], 150)
    with pytest.raises(KeyError, match="no host 'h3'"):
        lab2.cut("h3")
    with pytest.raises(ValueError, match="from itself"):
        lab2.partition("h1", ["h1", "h2"])
    with pytest.raises(netlab.LabError, match="already up"):
        lab2.up()
    assert lab2.run("h2", ["true"]).returncode == 0  # names work too; the lab is still up


def test_cut_and_heal(lab2):
    h1, h2 = lab2.hosts
    echo_server(lab2, h1)
    lab2.cut(h1)
    assert probe(lab2, h2, h1).startswith("unreachable")
    assert "NO-CARRIER" in lab2.run(h1, ["ip", "link", "show", "eth0"]).stdout
    assert f"{h1.ip}/24" in lab2.run(h1, ["ip", "-br", "addr"]).stdout  # keeps its address
    lab2.heal(h1)
    assert probe(lab2, h2, h1) == "PING"


def test_partition_separates_two_hosts_only(lab4):
    h1, h2, h3, _ = lab4.hosts
    for host in (h1, h2):
        echo_server(lab4, host)
    lab4.partition(h1, h2)
    assert probe(lab4, h2, h1).startswith("unreachable")
    assert probe(lab4, h1, h2).startswith("unreachable")
    assert probe(lab4, h3, h1) == "PING" and probe(lab4, h3, h2) == "PING"
    lab4.clear(h2)  # clears the partition on both sides
    assert probe(lab4, h2, h1) == "PING" and probe(lab4, h1, h2) == "PING"


def test_partition_of_groups(lab4):
    h1, h2, h3, h4 = lab4.hosts
    for host in lab4.hosts:
        echo_server(lab4, host)
    lab4.partition([h1, h2], [h3, h4])
    assert probe(lab4, h1, h2) == "PING" and probe(lab4, h4, h3) == "PING"
    assert probe(lab4, h1, h3).startswith("unreachable")
    assert probe(lab4, h4, h2).startswith("unreachable")
    lab4.unpartition([h1, h2], [h3, h4])
    assert probe(lab4, h1, h3) == "PING" and probe(lab4, h4, h2) == "PING"


def test_clear_all_removes_every_fault(lab4):
    h1, h2, h3, h4 = lab4.hosts
    echo_server(lab4, h1)
    lab4.cut(h1)
    lab4.loss(h2, 100)
    lab4.partition(h3, h1)
    lab4.clear()
    assert [probe(lab4, h, h1) for h in (h2, h3, h4)] == ["PING"] * 3


def test_freeze_and_thaw(lab2):
    h1, h2 = lab2.hosts
    proc = echo_server(lab2, h1)
    lab2.freeze(proc)
    assert probe(lab2, h2, h1).startswith("unreachable")  # connects, but no answer
    lab2.thaw(proc)
    assert probe(lab2, h2, h1) == "PING"


# --- teardown -------------------------------------------------------------------------------

STUBBORN = "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); " \
           "print('READY', flush=True); time.sleep(600)"
DAEMON = "sleep 600 & echo READY; sleep 600"  # leaves a child behind if sh alone dies


def populate(lab):
    """Start an ordinary, a stopped, a SIGTERM-ignoring and a forking process; return them."""
    h1, h2 = lab.hosts[:2]
    plain = echo_server(lab, h1)
    frozen = echo_server(lab, h2)
    lab.freeze(frozen)
    stubborn, _ = start(lab, h2, STUBBORN)
    lab.freeze(stubborn)
    forking = lab.popen(h1, ["sh", "-c", DAEMON], stdout=subprocess.PIPE, text=True)
    assert forking.stdout.readline().strip() == "READY"
    inside = set(lab.pids())
    assert {plain.pid, frozen.pid, stubborn.pid, forking.pid} < inside
    assert len(inside) >= 5  # and the sleep that sh forked
    return [plain, frozen, stubborn, forking]


def test_down_leaves_nothing_even_stopped_or_stubborn_processes():
    if netlab.available():
        pytest.skip(netlab.available())
    before = root_links()
    lab = netlab.Lab(2, grace=0.5).up()
    procs = populate(lab)
    assert lab.leftovers()  # namespaces and processes exist
    lab.down()
    assert lab.leftovers() == []
    assert all(p.returncode is not None for p in procs)
    assert not [ns for ns in os.listdir("/run/netns") if ns.startswith(lab.prefix + "-")]
    assert lab_links_in_root(lab, before) == []
    lab.down()  # idempotent
    assert lab.leftovers() == []


def test_down_again_spares_a_later_lab():
    """The kernel reuses a deleted namespace's inode number for the next one."""
    if netlab.available():
        pytest.skip(netlab.available())
    first = netlab.Lab(2).up()
    first.down()
    with netlab.Lab(2) as second:
        proc = echo_server(second, second.hosts[0])
        first.down()
        assert first.leftovers() == []
        assert proc.poll() is None and probe(second, second.hosts[1], second.hosts[0]) == "PING"


def test_with_block_tears_down_when_the_test_fails():
    if netlab.available():
        pytest.skip(netlab.available())
    with pytest.raises(ZeroDivisionError):
        with netlab.Lab(2, grace=0.5) as lab:
            populate(lab)
            1 / 0
    assert lab.leftovers() == []


def test_up_refuses_a_namespace_that_already_exists():
    if netlab.available():
        pytest.skip(netlab.available())
    lab = netlab.Lab(2)
    subprocess.run(["ip", "netns", "add", lab.hosts[1].ns], check=True)
    try:
        with pytest.raises(netlab.LabError, match="already exists"):
            lab.up()
        assert lab.leftovers() == []
        assert os.path.exists(f"/run/netns/{lab.hosts[1].ns}")  # not ours: left alone
    finally:
        subprocess.run(["ip", "netns", "del", lab.hosts[1].ns], check=True)


# A test process that builds a lab with a stopped process inside, prints the lab's prefix and
# that PID, then ends as the argument says (returns, SIGTERM, or SIGKILL).
ORPHANING = textwrap.dedent("""
    import os, signal, subprocess, sys, time
    import netlab
    lab = netlab.Lab(2, grace=0.5).up()
    proc = lab.popen(lab.hosts[1], ["sh", "-c", "echo READY; exec sleep 600"],
                     stdout=subprocess.PIPE, text=True)
    proc.stdout.readline()
    lab.freeze(proc)
    print(lab.prefix, proc.pid, flush=True)
    if sys.argv[1] == "exit":
        sys.exit(0)
    time.sleep(600)
""")


def orphaning_run(how):
    child = subprocess.Popen([PY, "-c", ORPHANING, how], stdout=subprocess.PIPE, text=True,
                             env={**os.environ, "PYTHONPATH": HERE})
    prefix, pid = child.stdout.readline().split()
    if how != "exit":
        child.send_signal(signal.SIGTERM if how == "sigterm" else signal.SIGKILL)
    child.communicate(timeout=60)
    return child, prefix, int(pid)


def alive(pid):
    """Whether ``pid`` runs (a zombie waiting for init to reap it does not)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def lab_namespaces(prefix):
    return [ns for ns in os.listdir("/run/netns") if ns.startswith(prefix + "-")]


@pytest.mark.parametrize("how", ["exit", "sigterm"])
def test_labs_left_up_are_torn_down_when_the_test_process_ends(how):
    if netlab.available():
        pytest.skip(netlab.available())
    child, prefix, pid = orphaning_run(how)
    assert child.returncode == (0 if how == "exit" else -signal.SIGTERM)
    assert lab_namespaces(prefix) == []
    assert not alive(pid)


def test_sweep_removes_labs_of_a_killed_test_process():
    if netlab.available():
        pytest.skip(netlab.available())
    child, prefix, pid = orphaning_run("sigkill")
    assert child.returncode == -signal.SIGKILL
    names = lab_namespaces(prefix)
    assert len(names) == 3 and netlab.stale(child.pid) == sorted(names)
    assert netlab.sweep(child.pid) == sorted(names)
    assert lab_namespaces(prefix) == [] and netlab.stale(child.pid) == []
    assert not alive(pid)
