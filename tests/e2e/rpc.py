# tests/e2e/rpc.py -- a small JSON-RPC 2.0 client for the `sotto daemon`
# tests (newline-delimited JSON on a Unix socket, docs/rpc.md). Imported by
# the python parts of tests/e2e/e2e_daemon_*.sh.
import json
import socket
import time


class Rpc:
    def __init__(self, path, timeout=30.0):
        self.s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.s.connect(path)
        self.s.settimeout(timeout)
        self.buf = b""
        self.next_id = 1
        self.events = []  # notifications received, in order

    def close(self):
        self.s.close()

    def send_raw(self, data):
        if isinstance(data, str):
            data = data.encode()
        self.s.sendall(data)

    def read_line(self, timeout=None):
        """One line (parsed JSON) or None on timeout."""
        deadline = time.time() + (timeout if timeout is not None else self.s.gettimeout())
        while b"\n" not in self.buf:
            left = deadline - time.time()
            if left <= 0:
                return None
            self.s.settimeout(left)
            try:
                chunk = self.s.recv(1 << 16)
            except socket.timeout:
                return None
            if not chunk:
                raise EOFError("daemon closed the connection")
            self.buf += chunk
        line, self.buf = self.buf.split(b"\n", 1)
        return json.loads(line)

    def read_response(self, timeout=60.0):
        """The next line that is not a notification; notifications are kept."""
        deadline = time.time() + timeout
        while True:
            m = self.read_line(max(0.01, deadline - time.time()))
            if m is None:
                return None
            if isinstance(m, dict) and "method" in m and "id" not in m:
                self.events.append(m)
                continue
            return m

    def call(self, method, params=None, timeout=60.0):
        rid = self.next_id
        self.next_id += 1
        req = {"jsonrpc": "2.0", "id": rid, "method": method}
        if params is not None:
            req["params"] = params
        self.send_raw(json.dumps(req) + "\n")
        r = self.read_response(timeout)
        if r is None:
            raise TimeoutError("no answer to %s" % method)
        if r.get("id") != rid:
            raise AssertionError("answer for id %r, expected %r: %r" % (r.get("id"), rid, r))
        return r

    def wait_events(self, n, timeout=60.0):
        """Reads until at least n notifications were kept."""
        deadline = time.time() + timeout
        while len(self.events) < n and time.time() < deadline:
            m = self.read_line(max(0.01, deadline - time.time()))
            if m is None:
                break
            if isinstance(m, dict) and "method" in m and "id" not in m:
                self.events.append(m)
        return len(self.events) >= n


def check(cond, what):
    if not cond:
        raise SystemExit("FAIL: " + what)
