#!/usr/bin/env bash
# Content padding to size buckets (docs/protocol.md "Padding"), seen from the
# operator's side: two texts of different lengths in the same bucket are
# queued on the server as envelope bodies of exactly the same size (with the
# old 160-byte blocks they differed: 1300 and 1500 bytes of text are more
# than one block apart); a text in the next bucket is larger (the
# measurement sees sizes at all); and bob reads all of them unchanged.
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "$0")/lib.sh"

server_start
register alice
register bob

# texts of N ASCII bytes (a distinct letter per text, so that none is a
# prefix of another)
text() {
    python3 -c 'import sys; print(sys.argv[2] * int(sys.argv[1]), end="")' "$1" "$2"
}
# alice's first send to bob fetches (and holds) a key-transparency head; her
# next message to him carries it (Content.kt_head, ~210 bytes, once per
# gossip interval): two warm-ups, so that the measured texts carry none
t_warm="warm-up 1"
t_warm2="warm-up 2: this one carries alice's key-transparency head"
t_a=$(text 1300 a)
t_b=$(text 1500 b)
t_c=$(text 2000 c)

log "bob is offline; alice sends two warm-ups, then 1300, 1500 and 2000 bytes of text"
sc_ok alice send bob "$t_warm"
sc_ok alice send bob "$t_warm2"
sc_ok alice send bob "$t_a"
sc_ok alice send bob "$t_b"
sc_ok alice send bob "$t_c"
assert_eq "$(server_sql "SELECT count(*) FROM envelopes")" "5" "envelopes queued for bob"

mapfile -t all < <(server_sql "SELECT length(body) FROM envelopes ORDER BY seq")
log "queued envelope body sizes: ${all[*]}"
assert_eq "${#all[@]}" "5" "body sizes read"
sizes=("${all[@]:1}") # warm-up 2, the 1300, 1500 and 2000-byte texts
# 1300 and 1500 bytes of text (+ the content's own fields) both fall in the
# 1281..1920 bucket: the server sees the same size
assert_eq "${sizes[2]}" "${sizes[1]}" "body size of the 1500-byte text (same bucket as 1300)"
# 2000 bytes of text are past 1920: the next bucket (2560), 640 bytes more
assert_eq "$((sizes[3] - sizes[2]))" "640" "body size growth into the next bucket (1920 -> 2560)"

log "bob comes online and reads every text unchanged"
receive_json bob "$E2E_DIR/r.json"
for t in "$t_warm" "$t_warm2" "$t_a" "$t_b" "$t_c"; do
    assert_eq "$(count_message_bodies "$E2E_DIR/r.json" "$t")" "1" \
        "text of ${#t} bytes received once"
done

log "ok"
