#!/usr/bin/env bash
# Disappearing messages (issue 11, docs/protocol.md "Disappearing messages"):
#  - a per-conversation timer (1:1 and group) that any member changes; the
#    change reaches every member and the sender's linked laptop as a
#    visible "timer" event, and the newest change (by its timestamp) wins
#    when two cross (out of order);
#  - a message sent under the timer disappears, that long after it was read
#    (after it was sent, for its sender and the sender's other devices),
#    from every device's store.db AND store.db-wal (the files are searched
#    for a unique marker) and attachments directory -- at the next start
#    (SOTTO_TEST_CLOCK_OFFSET_MS jumps the clock) and while `listen` runs;
#  - the file the sender sent from is not touched; messages from before the
#    timer stay;
#  - the daemon: updateContact / updateGroup with expiration.
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "$0")/lib.sh"

HERE=$(cd "$(dirname "$0")" && pwd)
server_start
register_all alice bob carol

store_dir() { echo "$E2E_DIR/home/$1/sotto/$1"; }
# hits ACCOUNT NEEDLE: occurrences of NEEDLE in the account's store.db,
# store.db-wal and every file of its attachments directory
hits() {
    local d n=0 f
    d=$(store_dir "$1")
    for f in "$d/store.db" "$d/store.db-wal" "$d"/attachments/* "$d"/attachments/.[!.]*; do
        [ -f "$f" ] || continue
        n=$((n + $(grep -a -o -F -- "$2" "$f" | wc -l)))
    done
    echo "$n"
}
att_files() { find "$(store_dir "$1")/attachments" -type f | wc -l | tr -d ' '; }
timer_of() { # ACCOUNT ARGS...: the conversation's timer in seconds
    sc_ok "$1" --json timer "${@:2}"
    jfield expire_timer <"$E2E_DIR/last.out"
}
# history_has ACCOUNT NEEDLE ARGS...: how many events of `history ARGS` hold NEEDLE
history_has() {
    sc_ok "$1" --json history "${@:3}"
    grep -c -F -- "$2" "$E2E_DIR/last.out" || true
}
# timer_events FILE: "from expire_timer" of each timer event in FILE
timer_events() {
    events timer "$1" | python3 -c '
import json, sys
for line in sys.stdin:
    ev = json.loads(line)
    print(ev.get("from"), ev.get("expire_timer"))
'
}

log "alice <-> bob and carol know each other; alice links a laptop"
sc_ok alice send bob "hi bob"
sc_ok alice send carol "hi carol"
receive_json bob "$E2E_DIR/b0.json"
receive_json carol "$E2E_DIR/c0.json"
sc_ok bob send alice "BEFORE-TIMER-from-bob"
sc_ok bob send carol "hi carol from bob"
receive_json carol "$E2E_DIR/c0b.json"
receive_json alice "$E2E_DIR/a0.json"
link_device alice laptop
receive_json alice "$E2E_DIR/a0b.json"
receive_json laptop "$E2E_DIR/l0.json"

log "1:1: alice sets 1h for bob; bob and alice's laptop see it"
assert_eq "$(timer_of alice bob)" "0" "no timer at first"
sc_ok alice --json timer bob 1h
assert_eq "$(jfield expire_timer <"$E2E_DIR/last.out")" "3600" "timer set reply"
sc_ok alice timer bob
grep -q "disappearing messages with bob: 1h" "$E2E_DIR/last.out" ||
    fail "timer (text): $(cat "$E2E_DIR/last.out")"
sc alice timer bob 3x
assert_rc 2 "a bad duration"
receive_json bob "$E2E_DIR/b1.json"
assert_eq "$(timer_events "$E2E_DIR/b1.json")" "alice 3600" "bob's timer event"
assert_eq "$(timer_of bob alice)" "3600" "bob's timer with alice"
receive_json laptop "$E2E_DIR/l1.json"
assert_eq "$(timer_of laptop bob)" "3600" "the laptop's timer with bob"
sc_ok bob --json history alice
assert_eq "$(timer_events "$E2E_DIR/last.out")" "alice 3600" "bob's history shows the timer change"

log "a message (text and file) under the timer"
M1="DISAPPEAR-ONE-$RANDOM$RANDOM"
printf 'the file says %s\n' "$M1" >"$E2E_DIR/f1.txt"
sc_ok alice --json send --file "$E2E_DIR/f1.txt" --text "$M1" bob
receive_json bob "$E2E_DIR/b2.json"
assert_eq "$(count_message_bodies "$E2E_DIR/b2.json" "$M1")" "1" "bob got it"
assert_eq "$(events message "$E2E_DIR/b2.json" | jfield expire_timer)" "3600" "its timer"
assert_eq "$(events message "$E2E_DIR/b2.json" | jfield expires_at)" "" "not running before read"
receive_json laptop "$E2E_DIR/l2.json"
# the markers are there before: the searches below can find them
[ "$(hits bob "$M1")" -ge 2 ] || fail "bob's store/attachments do not hold the marker before expiry"
[ "$(hits laptop "$M1")" -ge 1 ] || fail "the laptop does not hold the marker before expiry"
[ "$(hits alice "$M1")" -ge 1 ] || fail "alice does not hold the marker before expiry"
assert_eq "$(att_files bob)" "1" "bob's attachment saved"

log "bob reads it: his timer starts; 30 min later it is still there"
sc_ok bob read alice
sc_ok bob --json history alice
[ "$(events message "$E2E_DIR/last.out" | jfield expires_at | grep -c '[0-9]')" -ge 1 ] ||
    fail "no expires_at after read: $(cat "$E2E_DIR/last.out")"
SOTTO_TEST_CLOCK_OFFSET_MS=1800000 sc_ok bob history alice
assert_eq "$(history_has bob "$M1" alice)" "1" "bob after 30 minutes"

log "two hours later: gone at the next start, everywhere (store, WAL, files)"
for who in bob alice laptop; do
    SOTTO_TEST_CLOCK_OFFSET_MS=7300000 sc_ok "$who" --json history bob
done
SOTTO_TEST_CLOCK_OFFSET_MS=7300000 sc_ok bob --json history alice
grep -q -F "$M1" "$E2E_DIR/last.out" && fail "bob's history still shows it"
for who in bob alice laptop; do
    assert_eq "$(hits "$who" "$M1")" "0" "$who's store.db, store.db-wal and attachments after expiry"
done
assert_eq "$(att_files bob)" "0" "bob's attachments directory"
[ -f "$E2E_DIR/f1.txt" ] || fail "alice's own file (sent from) was deleted"
assert_eq "$(history_has bob "BEFORE-TIMER-from-bob" alice)" "1" "a message from before the timer stays"
assert_eq "$(timer_of bob alice)" "3600" "the timer itself stays"

log "crossing changes: the newest wins on both sides"
sc_ok alice timer bob 30s
sc_ok bob timer alice 1w
receive_json alice "$E2E_DIR/a3.json"
receive_json bob "$E2E_DIR/b3.json"
assert_eq "$(timer_of alice bob)" "604800" "alice after both changes"
assert_eq "$(timer_of bob alice)" "604800" "bob after both changes (alice's older change came last)"
receive_json laptop "$E2E_DIR/l3.json"
assert_eq "$(timer_of laptop bob)" "604800" "the laptop after both changes"
sc_ok alice timer bob off
receive_json bob "$E2E_DIR/b4.json"
assert_eq "$(timer_of bob alice)" "0" "off"

log "group: carol (a member, not the creator) sets 5m"
sc_ok alice --json group create team bob carol
receive_json bob "$E2E_DIR/b5.json"
receive_json carol "$E2E_DIR/c5.json"
receive_json laptop "$E2E_DIR/l5.json"
sc_ok carol --json timer --group team 5m
for who in alice bob laptop; do
    receive_json "$who" "$E2E_DIR/$who.g1.json"
    assert_eq "$(timer_events "$E2E_DIR/$who.g1.json")" "carol 300" "$who's group timer event"
    assert_eq "$(timer_of "$who" --group team)" "300" "$who's group timer"
done
M2="DISAPPEAR-GROUP-$RANDOM$RANDOM"
sc_ok bob group send team "$M2"
for who in alice carol laptop; do
    receive_json "$who" "$E2E_DIR/$who.g2.json"
done
assert_eq "$(count_message_bodies "$E2E_DIR/alice.g2.json" "$M2")" "1" "alice got the group message"
assert_eq "$(events message "$E2E_DIR/alice.g2.json" | jfield expire_timer)" "300" "it carries 300"
sc_ok alice read --group team
sc_ok carol read --group team
receive_json laptop "$E2E_DIR/laptop.g3.json" # alice's read sync
for who in alice bob carol laptop; do
    [ "$(hits "$who" "$M2")" -ge 1 ] || fail "$who does not hold the group marker before expiry"
done
for who in alice bob carol laptop; do
    SOTTO_TEST_CLOCK_OFFSET_MS=400000 sc_ok "$who" --json history --group team
    grep -q -F "$M2" "$E2E_DIR/last.out" && fail "$who's group history still shows it"
    assert_eq "$(hits "$who" "$M2")" "0" "$who's files after the group message expired"
done

log "while listen runs: expired within about a second, without a restart"
sc_ok alice timer bob 3s
receive_json bob "$E2E_DIR/b6.json"
M3="DISAPPEAR-LIVE-$RANDOM$RANDOM"
sc_ok alice send bob "$M3"
sc_bg alice "$E2E_DIR/alice.listen" listen
sleep 1
[ "$(hits alice "$M3")" -ge 1 ] || fail "alice's marker before the live expiry"
for _ in $(seq 1 80); do
    [ "$(hits alice "$M3")" = "0" ] && break
    sleep 0.1
done
kill -0 "$BG_PID" 2>/dev/null || fail "listen ended early: $(cat "$E2E_DIR/alice.listen.err")"
assert_eq "$(hits alice "$M3")" "0" "alice's store while listen runs"
bg_stop "$BG_PID"

log "a device linked now gets the timers in its link sync"
link_device alice tablet
receive_json alice "$E2E_DIR/a8.json"
receive_json tablet "$E2E_DIR/t8.json"
assert_eq "$(timer_of tablet bob)" "3" "the tablet's timer with bob"
assert_eq "$(timer_of tablet --group team)" "300" "the tablet's group timer"

log "the daemon: updateContact and updateGroup with expiration"
daemon_start alice
SOCK="$SOCK" SOTTO="$SOTTO" HOME_BOB="$E2E_DIR/home/bob" python3 - "$HERE" <<'PY' || fail "daemon timer calls"
import os, subprocess, sys
sys.path.insert(0, sys.argv[1])
from rpc import Rpc, check
r = Rpc(os.environ["SOCK"])
r.call("subscribeReceive", {"account": "alice", "subscriber": "timers"})
# bob changes the timer: alice's subscriber gets a timer event
env = dict(os.environ, XDG_DATA_HOME=os.environ["HOME_BOB"])
subprocess.run([os.environ["SOTTO"], "--account", "bob", "timer", "alice", "2d"], env=env,
               check=True, stdout=subprocess.DEVNULL, timeout=30)
ok = False
for _ in range(20):
    r.wait_events(len(r.events) + 1, timeout=3)
    ok = any(e["params"]["event"].get("type") == "timer" and
             e["params"]["event"].get("expire_timer") == 172800 and
             e["params"]["event"].get("from") == "bob" for e in r.events)
    if ok:
        break
check(ok, "no timer event from bob: %r" % [e["params"]["event"] for e in r.events])
m = r.call("updateContact", {"account": "alice", "recipient": "bob", "expiration": 86400})
check(m.get("result", {}).get("expire_timer") == 86400, "updateContact: %r" % m)
m = r.call("updateGroup", {"account": "alice", "groupId": "team", "expiration": 60})
check(m.get("result", {}).get("expire_timer") == 60, "updateGroup: %r" % m)
m = r.call("updateContact", {"account": "alice", "recipient": "bob"})
check(m.get("error", {}).get("code") == -32602, "updateContact without expiration: %r" % m)
PY
kill -TERM "$DAEMON_PID"
wait "$DAEMON_PID" || true
receive_json bob "$E2E_DIR/b7.json"
assert_eq "$(timer_of bob alice)" "86400" "bob after updateContact"
assert_eq "$(timer_of bob --group team)" "60" "bob after updateGroup"

log "ok"
