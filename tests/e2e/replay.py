#!/usr/bin/env python3
"""tests/e2e/replay.py -- plays a hostile server for e2e_redelivery.sh.

  replay.py DB save FILE            copy every queued envelope row to FILE (JSON)
  replay.py DB restore FILE [--new-id]
                                    put the saved rows back into the queue;
                                    --new-id gives each a fresh random
                                    envelope id (in the row and inside the
                                    serialized Envelope, field 1), so the
                                    client cannot de-duplicate by id and must
                                    rely on the ratchet's replay protection.

DB is the server's sottod.db (WAL mode: safe next to the running server).
"""
import json
import os
import sqlite3
import sys


def set_envelope_id(body: bytes, new_id: bytes) -> bytes:
    # Envelope { bytes id = 1; ... }: protobuf-c writes fields in order, so
    # the body starts with tag 0x0a, length 16, then the id.
    if len(body) < 18 or body[0] != 0x0A or body[1] != 0x10:
        raise SystemExit("replay.py: envelope body does not start with a 16-byte id field")
    return body[:2] + new_id + body[18:]


def main() -> int:
    if len(sys.argv) < 4:
        print(__doc__, file=sys.stderr)
        return 2
    db, cmd, path = sys.argv[1], sys.argv[2], sys.argv[3]
    con = sqlite3.connect(db, timeout=10)
    if cmd == "save":
        rows = con.execute(
            "SELECT account_id, device_id, envelope_id, expires_at, body FROM envelopes ORDER BY seq"
        ).fetchall()
        out = [
            {"account_id": a, "device_id": d, "envelope_id": e.hex(), "expires_at": x, "body": b.hex()}
            for (a, d, e, x, b) in rows
        ]
        with open(path, "w") as f:
            json.dump(out, f)
        print(len(out))
        return 0
    if cmd == "restore":
        new_id = "--new-id" in sys.argv[4:]
        with open(path) as f:
            rows = json.load(f)
        with con:
            for r in rows:
                eid = bytes.fromhex(r["envelope_id"])
                body = bytes.fromhex(r["body"])
                if new_id:
                    eid = os.urandom(16)
                    body = set_envelope_id(body, eid)
                con.execute(
                    "INSERT INTO envelopes(account_id, device_id, envelope_id, expires_at, body)"
                    " VALUES (?, ?, ?, ?, ?)",
                    (r["account_id"], r["device_id"], eid, r["expires_at"], body),
                )
                con.execute(
                    "UPDATE devices SET queue_depth = queue_depth + 1"
                    " WHERE account_id = ? AND device_id = ?",
                    (r["account_id"], r["device_id"]),
                )
        print(len(rows))
        return 0
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
