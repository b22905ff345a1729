#!/usr/bin/env python3
"""Validates sotto-interop-peer by making two peer processes talk to each
other (libsignal-protocol-c on both sides), before the peer is trusted as
the reference in the libsotto interop tests.

Usage: peer_selftest.py PATH_TO_PEER        (exit status 0 = pass)
"""
import random
import subprocess
import sys


class Peer:
    def __init__(self, path):
        self.p = subprocess.Popen([path], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                  text=True, bufsize=1)

    def cmd(self, line):
        self.p.stdin.write(line + "\n")
        self.p.stdin.flush()
        resp = self.p.stdout.readline().rstrip("\n")
        if not resp:
            raise RuntimeError("peer died on: " + line.split(" ")[0])
        return resp

    def ok(self, line):
        resp = self.cmd(line)
        if resp != "ok" and not resp.startswith("ok "):
            raise AssertionError("%s -> %s" % (line[:60], resp))
        return resp.split(" ")[1:]

    def err(self, line, name):
        resp = self.cmd(line)
        if resp != "err " + name:
            raise AssertionError("%s -> %s, expected err %s" % (line[:60], resp, name))

    def close(self):
        self.cmd("quit")
        self.p.stdin.close()
        if self.p.wait(timeout=10) != 0:
            raise AssertionError("peer exit status %d" % self.p.returncode)


def hexs(s):
    return s.encode().hex()


def main(path):
    a, b = Peer(path), Peer(path)
    checks = 0

    def send(src, dst, src_name, dst_name, text, expect_type=None):
        nonlocal checks
        t, ct = src.ok("encrypt %s 1 %s" % (dst_name, hexs(text)))
        if expect_type is not None:
            assert t == str(expect_type), (t, expect_type)
        (pt,) = dst.ok("decrypt %s 1 %s %s" % (src_name, t, ct))
        assert bytes.fromhex(pt).decode() == text
        checks += 1
        return t, ct

    # Bob publishes a bundle with a one-time prekey, Alice starts.
    b.ok("prekeys 100 3")
    b.ok("signed_prekey 5")
    bundle = b.ok("bundle 1 100 5")
    a.ok("process_bundle bob 1 " + " ".join(bundle))
    send(a, b, "alice", "bob", "first", 3)
    t, ct = send(a, b, "alice", "bob", "second, still prekey", 3)
    assert b.ok("has_prekey 100") == ["0"], "one-time prekey not consumed"
    b.err("decrypt alice 1 %s %s" % (t, ct), "DUPLICATE")
    send(b, a, "bob", "alice", "reply", 2)
    send(a, b, "alice", "bob", "after reply", 2)
    assert a.ok("session_version bob 1") == ["3"]
    assert a.ok("remote_registration_id bob 1") == [bundle[0]]

    # Ping-pong and out-of-order delivery within a chain and across chains.
    for i in range(10):
        send(a, b, "alice", "bob", "ping %d" % i, 2)
        send(b, a, "bob", "alice", "pong %d" % i, 2)
    old = [a.ok("encrypt bob 1 %s" % hexs("old %d" % i)) for i in range(5)]
    send(b, a, "bob", "alice", "new chain", 2)
    new = [a.ok("encrypt bob 1 %s" % hexs("new %d" % i)) for i in range(5)]
    mixed = list(enumerate(old)) + [(i + 100, m) for i, m in enumerate(new)]
    random.Random(7).shuffle(mixed)
    for i, (t, ct) in mixed:
        (pt,) = b.ok("decrypt alice 1 %s %s" % (t, ct))
        want = ("old %d" % i) if i < 100 else ("new %d" % (i - 100))
        assert bytes.fromhex(pt).decode() == want
        checks += 1

    # Tampered message: rejected, session still fine.
    t, ct = a.ok("encrypt bob 1 %s" % hexs("tamper"))
    bad = bytearray(bytes.fromhex(ct))
    bad[-3] ^= 1
    b.err("decrypt alice 1 %s %s" % (t, bad.hex()), "INVALID_MESSAGE")
    (pt,) = b.ok("decrypt alice 1 %s %s" % (t, ct))
    assert bytes.fromhex(pt) == b"tamper"

    # Bundle without a one-time prekey (Carol = a third peer).
    c = Peer(path)
    b.ok("signed_prekey 6")
    bundle2 = b.ok("bundle 1 0 6")
    c.ok("process_bundle bob 1 " + " ".join(bundle2))
    send(c, b, "carol", "bob", "no opk", 3)
    send(b, c, "bob", "carol", "hi carol", 2)
    c.err("encrypt dave 1 00", "UNKNOWN")
    c.err("decrypt dave 1 2 %s" % ct, "NO_SESSION")

    # Sender keys.
    grp = hexs("group-1")
    (skdm,) = a.ok("group_create %s alice 1" % grp)
    b.ok("group_process %s alice 1 %s" % (grp, skdm))
    cts = [a.ok("group_encrypt %s alice 1 %s" % (grp, hexs("g%d" % i)))[0] for i in range(6)]
    for i in [3, 0, 5, 1, 2, 4]:
        (pt,) = b.ok("group_decrypt %s alice 1 %s" % (grp, cts[i]))
        assert bytes.fromhex(pt).decode() == "g%d" % i
        checks += 1
    b.err("group_decrypt %s alice 1 %s" % (grp, cts[2]), "DUPLICATE")

    # Fingerprints agree from both sides.
    (_, ka) = a.ok("identity")
    (_, kb) = b.ok("identity")
    da, sa = a.ok("fingerprint 1024 1 %s %s %s %s" % (hexs("+1555"), ka, hexs("+1666"), kb))
    db, sb = b.ok("fingerprint 1024 1 %s %s %s %s" % (hexs("+1666"), kb, hexs("+1555"), ka))
    assert da == db and len(da) == 60
    a.ok("fingerprint_compare %s %s" % (sa, sb))

    for p in (a, b, c):
        p.close()
    print("peer self-test: %d messages checked, all passed" % checks)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
