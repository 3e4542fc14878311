#!/usr/bin/env python3
"""Run the Mosquitto broker test suite (Debian source package `mosquitto`,
directory test/broker/) against an external MQTT 3.1.1 broker.

  mosq_shim.py list SUITE_DIR TEST_FILE
      print the cases of one test script, one per line: "INDEX<TAB>CALL".
      A case is one module-level call of the script (do_test(...),
      pattern_test(...)); a script with none is the single case 0.
  mosq_shim.py run SUITE_DIR HOST PORT TEST_FILE [INDEX]
      run one case (or the whole script) against HOST:PORT and print
      "RESULT PASS|FAIL|SKIP <file>#<index> <detail>".
      Exit code: 0 passed, 1 failed, 77 skipped.

SUITE_DIR is the unpacked source tree's test/ directory. Standard library
only; nothing of the suite is copied here, it is adapted at run time:
  * mosq_test.start_broker() starts no mosquitto. With INTEROP_BROKER_CMD
    (e.g. "node broker.mjs {port}") it starts that command afresh for each
    call, as the suite does with mosquitto; without it, it uses the broker
    already at HOST:PORT and first clears what earlier runs left there
    (sessions of the client ids the case uses, retained messages).
    A case that needs a mosquitto config file, a custom mosquitto command
    line or the broker's process is SKIP.
  * Only MQTT 3.1.1 runs (INTEROP_PROTOCOLS, default "4"; "3,4" adds 3.1):
    module-level calls for other protocol levels are not cases, and a case
    that still sends an MQTT 5 / 3.1 CONNECT is SKIP.
  * Some differences that MQTT 3.1.1 allows, or that plain Aedes has, are
    tolerated so the rest of a case is still checked: INTEROP_TOLERATE, see
    "Packet layer" below.
  * "localhost" resolves to HOST; PORT is given to the script as argv[1],
    as the suite's own runner does.
"""
import atexit
import os
import re
import signal
import socket
import struct
import subprocess
import sys
import time

CASE_RE = re.compile(r"^(do_test|pattern_test|helper)\((.*)\)\s*(#.*)?$")
SKIPPED = []


class Skip(Exception):
    def __init__(self, reason):
        super().__init__(reason)
        SKIPPED.append(reason)


def allowed_protocols():
    return {int(p) for p in os.environ.get("INTEROP_PROTOCOLS", "4").split(",") if p.strip()}


def call_protocol(args):
    m = re.search(r"proto_ver\s*=\s*(\d)", args) or re.match(r"\s*(\d)\s*(,|$)", args)
    return int(m.group(1)) if m else None


def cases(src):
    """[(index, line number, call text)] of the module-level calls kept."""
    found, protos = [], allowed_protocols()
    for n, line in enumerate(src.splitlines()):
        m = CASE_RE.match(line)
        if not m:
            continue
        p = call_protocol(m.group(2))
        if p is not None and p not in protos:
            continue
        found.append((len(found), n, line.strip()))
    return found


def select_case(src, index):
    """Source with every module-level call blanked except case `index`
    (and the calls of protocol levels not tested)."""
    keep = None
    if index is not None:
        kept = cases(src)
        if not kept and index == 0:
            pass
        elif index >= len(kept):
            raise SystemExit("no case %d" % index)
        else:
            keep = kept[index][1]
    protos = allowed_protocols()
    lines = src.splitlines()
    for n, line in enumerate(lines):
        m = CASE_RE.match(line)
        if not m:
            continue
        p = call_protocol(m.group(2))
        drop = (p is not None and p not in protos) or (index is not None and keep is not None and n != keep)
        if drop:
            lines[n] = "pass  # not run by mosq_shim: " + line.strip()
    return "\n".join(lines) + "\n"


# --------------------------------------------------------------------------
# Packet layer.
# The suite compares the bytes it reads with the bytes mosquitto sends. Where
# MQTT 3.1.1 leaves a choice to the server, or where plain Aedes is known to
# differ, INTEROP_TOLERATE (comma-separated; default "ids,order,dup,session")
# lets a case go on instead of failing, so that what follows is still checked:
#   ids      packet identifiers of the broker's own PUBLISH/PUBREL: mosquitto
#            numbers them 1, 2, 3... per client, the spec lets the server
#            choose (2.3.1). A broker-chosen id is accepted when every other
#            byte matches, is remembered per client id, later expectations of
#            it (PUBREL, re-sent PUBLISH after reconnecting) must carry the
#            same value, and the test's PUBACK/PUBREC/PUBCOMP are rewritten
#            to it.
#   order    a PUBLISH from the broker that arrives while the case expects some
#            other packet (e.g. the forwarded copy before the PUBREC of a
#            QoS 2 publish, allowed by 4.3.3) is held back and must be the
#            next PUBLISH the case expects; one never expected fails the case.
#   dup      the DUP flag of a re-sent PUBLISH (Aedes does not set it:
#            MQTT-3.3.1-1); the re-sent packet must otherwise match.
#   session  the session-present flag of CONNACK (Aedes reports 0 for a
#            session with no subscriptions: MQTT-3.2.2-2).
# INTEROP_TOLERATE="" compares byte for byte as the suite does (reads still
# wait for the whole expected length: the suite does a single recv()).
# --------------------------------------------------------------------------

def split_packets(buf):
    out, i = [], 0
    while i < len(buf):
        mult, rl, j = 1, 0, i + 1
        while True:
            if j >= len(buf):
                return out + [buf[i:]]
            b = buf[j]
            j += 1
            rl += (b & 127) * mult
            mult *= 128
            if b < 128:
                break
        out.append(buf[i:j + rl])
        i = j + rl
    return out


def mid_offset(pkt):
    """Offset of the packet identifier of a PUBLISH (QoS>0) or PUBREL."""
    if not pkt:
        return None
    kind, j = pkt[0] >> 4, 1
    while j < len(pkt) and pkt[j] & 128:
        j += 1
    j += 1
    if kind == 3 and (pkt[0] >> 1) & 3:
        if len(pkt) < j + 2:
            return None
        off = j + 2 + struct.unpack("!H", pkt[j:j + 2])[0]
    elif kind == 6:
        off = j
    else:
        return None
    return off if len(pkt) >= off + 2 else None


def connect_client_id(data):
    if data[:1] != b"\x10":
        return None
    try:
        j = 1
        while data[j] & 128:
            j += 1
        j += 1
        j += 2 + struct.unpack("!H", data[j:j + 2])[0] + 4  # name, level, flags, keepalive
        clen = struct.unpack("!H", data[j:j + 2])[0]
        return data[j + 2:j + 2 + clen].decode("utf-8", "replace")
    except (IndexError, struct.error):
        return None


def is_publish(pkt):
    return len(pkt) > 1 and pkt[0] >> 4 == 3


UNCONSUMED = []
HELD = {}            # id(socket) -> [PUBLISH packets that arrived early]


def install_packet_layer(mosq_test, tolerate):
    sock_client = {}     # id(socket) -> client id of its CONNECT
    broker_ids = {}      # client id -> {mid the suite expects: mid the broker chose}
    held = HELD
    real_send = socket.socket.send
    real_sendall = socket.socket.sendall
    real_close = socket.socket.close

    def table(sock):
        return broker_ids.setdefault(sock_client.get(id(sock), "?"), {})

    def outgoing(sock, data):
        cid = connect_client_id(data)
        if cid is not None:
            sock_client[id(sock)] = cid
        if "ids" not in tolerate or not data:
            return data
        ids, out = table(sock), []
        for p in split_packets(data):
            # PUBACK / PUBREC / PUBCOMP sent by the client ack broker-chosen ids
            if len(p) == 4 and p[0] in (0x40, 0x50, 0x70) and p[1] == 2:
                mid = struct.unpack("!H", p[2:4])[0]
                if mid in ids:
                    p = p[:2] + struct.pack("!H", ids[mid])
            out.append(p)
        return b"".join(out)

    def send(self, data, *a):
        data = bytes(data)
        new = outgoing(self, data)
        n = real_send(self, new, *a)
        return len(data) if n == len(new) else n

    def sendall(self, data, *a):
        return real_sendall(self, outgoing(self, bytes(data)), *a)

    def close(self):
        left = held.pop(id(self), [])
        if left:
            UNCONSUMED.extend(left)
            print("FAIL: PUBLISH received but never expected: " + mosq_test.to_string(left[0]))
        return real_close(self)

    socket.socket.send = send
    socket.socket.sendall = sendall
    socket.socket.close = close

    def match_one(sock, got, exp):
        if got == exp:
            return True
        if len(got) != len(exp) or not got:
            return False
        if "session" in tolerate and len(exp) == 4 and exp[0] == 0x20 and got[0] == 0x20 \
                and got[3] == exp[3] and (got[2] ^ exp[2]) == 1:
            return True
        if "dup" in tolerate and is_publish(got) and is_publish(exp) and (got[0] ^ exp[0]) == 0x08:
            got = exp[:1] + got[1:]
            if got == exp:
                return True
        if "ids" not in tolerate:
            return False
        off = mid_offset(exp)
        if off is None or mid_offset(got) != off:
            return False
        if got[:off] != exp[:off] or got[off + 2:] != exp[off + 2:]:
            return False
        emid = struct.unpack("!H", exp[off:off + 2])[0]
        gmid = struct.unpack("!H", got[off:off + 2])[0]
        ids = table(sock)
        if emid in ids:
            return ids[emid] == gmid
        if gmid in ids.values():
            return False
        ids[emid] = gmid
        return True

    def match(sock, got, exp):
        saved = {k: dict(v) for k, v in broker_ids.items()}
        if match_one(sock, got, exp):
            return True
        broker_ids.clear()
        broker_ids.update(saved)
        return False

    def read_packet(sock):
        """One whole MQTT packet; shorter on EOF or timeout."""
        buf = b""
        try:
            while len(buf) < 2 or (buf[-1] & 128 and len(buf) < 5):
                d = sock.recv(1)
                if not d:
                    return buf
                buf += d
            mult, rl = 1, 0
            for b in buf[1:]:
                rl += (b & 127) * mult
                mult *= 128
            while rl > 0:
                d = sock.recv(rl)
                if not d:
                    return buf
                buf += d
                rl -= len(d)
        except socket.timeout:
            print("TIMEOUT: waited %ss, got %d bytes" % (sock.gettimeout(), len(buf)))
        return buf

    def next_matching(sock, exp):
        """Return the received packet that should be compared with `exp`."""
        box = held.setdefault(id(sock), [])
        if is_publish(exp) and box:
            return box.pop(0)
        while True:
            got = read_packet(sock)
            if "order" in tolerate and is_publish(got) and not is_publish(exp) \
                    and not match(sock, got, exp):
                box.append(got)
                continue
            return got

    def expect_packet(sock, name, expected):
        if not expected:
            box = held.get(id(sock))
            if box:
                mosq_test.packet_matches(name, box[0], expected)
                raise mosq_test.TestError
            recvd = sock.recv(1)
            if recvd == expected:
                return True
            mosq_test.packet_matches(name, recvd, expected)
            raise mosq_test.TestError
        for exp in split_packets(expected):
            got = next_matching(sock, exp)
            if not match(sock, got, exp):
                mosq_test.packet_matches(name, got, exp)
                raise mosq_test.TestError
        return True

    def receive_unordered(sock, recv1_packet, recv2_packet, error_string):
        want = split_packets(recv1_packet) + split_packets(recv2_packet)
        box = held.setdefault(id(sock), [])
        while want:
            got = box.pop(0) if box and any(is_publish(w) for w in want) else read_packet(sock)
            if not got:
                raise ValueError(error_string)
            for i, w in enumerate(want):
                if match(sock, got, w):
                    del want[i]
                    break
            else:
                if "order" in tolerate and is_publish(got) and not any(is_publish(w) for w in want):
                    box.append(got)
                    continue
                mosq_test.packet_matches(error_string, got, want[0])
                raise ValueError(error_string)

    mosq_test.expect_packet = expect_packet
    mosq_test.receive_unordered = receive_unordered


# --------------------------------------------------------------------------

def run(suite_dir, host, port, test_file, index):
    suite_dir = os.path.abspath(suite_dir)
    broker_dir = os.path.join(suite_dir, "broker")
    test_path = os.path.join(broker_dir, test_file)
    label = os.path.basename(test_file) + ("" if index is None else "#%d" % index)
    sys.path.insert(0, broker_dir)
    sys.path.insert(0, suite_dir)
    os.chdir(broker_dir)

    real_create_connection = socket.create_connection
    real_connect = socket.socket.connect
    real_connect_ex = socket.socket.connect_ex

    def fix(addr):
        if isinstance(addr, tuple) and addr and addr[0] in ("localhost", "127.0.0.1"):
            return (host,) + tuple(addr[1:])
        return addr

    socket.create_connection = lambda addr, *a, **kw: real_create_connection(fix(addr), *a, **kw)
    socket.socket.connect = lambda self, addr: real_connect(self, fix(addr))
    socket.socket.connect_ex = lambda self, addr: real_connect_ex(self, fix(addr))

    # The scripts wait up to 20-60 s for a packet that a loopback broker sends
    # at once or never; cap the waits (INTEROP_MAX_WAIT, seconds, default 5).
    max_wait = float(os.environ.get("INTEROP_MAX_WAIT", "5"))
    real_settimeout = socket.socket.settimeout

    def settimeout(self, t):
        return real_settimeout(self, t if t is None or t <= max_wait else max_wait)

    if max_wait > 0:
        socket.socket.settimeout = settimeout

    import mosq_test

    real_gen_connect = mosq_test.gen_connect
    broker_cmd = os.environ.get("INTEROP_BROKER_CMD")
    client_ids = set()
    protos = allowed_protocols()

    def gen_connect(*args, **kwargs):
        cid = args[0] if args else kwargs.get("client_id")
        if cid:
            client_ids.add(cid)
        p = kwargs.get("proto_ver", args[9] if len(args) > 9 else 4)
        if p in (3, 4, 5) and p not in protos:   # other values: invalid-level tests
            raise Skip("MQTT protocol level %s only" % p)
        return real_gen_connect(*args, **kwargs)

    mosq_test.gen_connect = gen_connect

    def wait_port(proc, deadline):
        while time.time() < deadline:
            if proc is not None and proc.poll() is not None:
                raise RuntimeError("broker command exited with %s" % proc.returncode)
            try:
                real_create_connection((host, int(port)), timeout=1).close()
                return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("nothing listens on %s:%s" % (host, port))

    class ExternalBroker:
        """Stand-in for the subprocess.Popen that start_broker() returns."""
        pid = 0
        returncode = 0

        def __init__(self, proc=None):
            self.proc = proc
            if proc is not None:
                self.pid = proc.pid
                atexit.register(self._stop)

        def _stop(self):
            proc = self.proc
            if proc is not None and proc.poll() is None:
                try:
                    os.killpg(proc.pid, signal.SIGTERM)
                    proc.wait(timeout=5)
                except subprocess.TimeoutExpired:
                    os.killpg(proc.pid, signal.SIGKILL)
                    proc.wait()
                except ProcessLookupError:
                    pass

        def terminate(self):
            self._stop()

        kill = terminate

        def send_signal(self, _sig):
            raise Skip("signals the broker process")

        def wait(self, timeout=None):
            self._stop()
            return 0

        def poll(self):
            return None if self.proc is None else self.proc.poll()

        def communicate(self, timeout=None):
            self._stop()
            err = b""
            if self.proc is not None and self.proc.stderr is not None:
                err = self.proc.stderr.read()[-4000:]
            return (b"", err)

    def clear_external_broker():
        """The suite assumes a freshly started broker: drop the sessions of the
        client ids this case uses, and every retained message."""
        wait_port(None, time.time() + 5)
        for cid in sorted(client_ids):
            try:
                s = real_create_connection((host, int(port)), timeout=5)
                s.sendall(real_gen_connect(cid, clean_session=True))
                s.recv(4)
                s.sendall(mosq_test.gen_disconnect())
                s.close()
            except OSError:
                pass
        for attempt in range(10):
            topics = set()
            try:
                s = real_create_connection((host, int(port)), timeout=5)
                s.sendall(real_gen_connect("mosq-shim-clear-%d" % os.getpid()))
                s.recv(4)
                s.sendall(mosq_test.gen_subscribe(1, "#", 0))
                s.settimeout(0.25)
                buf = b""
                try:
                    while True:
                        d = s.recv(65536)
                        if not d:
                            break
                        buf += d
                except socket.timeout:
                    pass
                for p in split_packets(buf):
                    if len(p) > 4 and p[0] >> 4 == 3 and p[0] & 1:
                        j = 1
                        while p[j] & 128:
                            j += 1
                        j += 1
                        tlen = struct.unpack("!H", p[j:j + 2])[0]
                        topics.add(p[j + 2:j + 2 + tlen].decode("utf-8", "replace"))
                for t in topics:
                    s.sendall(mosq_test.gen_publish(t, qos=0, retain=True))
                s.sendall(mosq_test.gen_pingreq())
                s.settimeout(5)
                s.recv(2)
                s.sendall(mosq_test.gen_disconnect())
                s.close()
            except OSError:
                return
            if not topics:
                return

    def start_broker(filename, cmd=None, port=0, use_conf=False, expect_fail=False):
        if use_conf:
            raise Skip("needs a mosquitto config file")
        if cmd is not None:
            raise Skip("needs a custom mosquitto command line")
        if expect_fail:
            raise Skip("expects mosquitto to fail to start")
        if port == 0 and os.path.exists(os.path.join(broker_dir, filename.replace(".py", ".conf"))):
            raise Skip("needs a mosquitto config file")
        if broker_cmd:
            command = broker_cmd.replace("{port}", str(port_arg)).replace("{host}", host)
            proc = subprocess.Popen(command, shell=True, start_new_session=True,
                                    stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
            b = ExternalBroker(proc)
            wait_port(proc, time.time() + float(os.environ.get("INTEROP_BROKER_START_TIMEOUT", "20")))
            return b
        clear_external_broker()
        return ExternalBroker()

    port_arg = port
    mosq_test.start_broker = start_broker
    tolerate = {t.strip() for t in os.environ.get("INTEROP_TOLERATE", "ids,order,dup,session").split(",") if t.strip()}
    install_packet_layer(mosq_test, tolerate)

    with open(test_path) as f:
        src = select_case(f.read(), index)
    sys.argv = [test_path, str(port)]
    status, detail = "PASS", ""
    try:
        exec(compile(src, test_path, "exec"), {"__name__": "__main__", "__file__": test_path})
    except Skip as e:
        status, detail = "SKIP", str(e)
    except ImportError as e:
        status, detail = "SKIP", "needs %s" % e
    except SystemExit as e:
        rc = e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
        if rc != 0:
            status, detail = "FAIL", "exit %s" % rc
    except BaseException as e:  # connection reset, timeout, ...
        status, detail = "FAIL", "%s: %s" % (type(e).__name__, e)
    if any(HELD.values()):
        UNCONSUMED.extend(p for box in HELD.values() for p in box)
    if UNCONSUMED and status == "PASS":
        status, detail = "FAIL", "a PUBLISH arrived that the case never expected"
    if SKIPPED and status != "PASS":
        # a Skip raised inside the script's try/finally turns into exit(1)
        status, detail = "SKIP", SKIPPED[0]
    sys.stdout.flush()
    print("RESULT %s %s %s" % (status, label, detail), flush=True)
    return {"PASS": 0, "FAIL": 1, "SKIP": 77}[status]


def main(argv):
    if len(argv) == 3 and argv[0] == "list":
        with open(os.path.join(argv[1], "broker", argv[2])) as f:
            found = cases(f.read())
        for i, _n, text in found or [(0, 0, "(whole script)")]:
            print("%d\t%s" % (i, text))
        return 0
    if argv and argv[0] == "run" and len(argv) in (5, 6):
        index = int(argv[5]) if len(argv) == 6 else None
        return run(argv[1], argv[2], argv[3], argv[4], index)
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
