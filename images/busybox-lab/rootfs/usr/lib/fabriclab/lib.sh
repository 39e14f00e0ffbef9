# Shell functions shared by the fabriclab guest agent and its extension handlers (busybox sh).

# json_str TEXT: TEXT as a JSON string literal (quotes, backslashes and control characters escaped).
json_str() {
    printf '%s' "$1" | tr -d '\000-\010\013\014\016-\037' | awk '
        BEGIN { ORS = ""; print "\"" }
        { gsub(/\\/, "\\\\"); gsub(/"/, "\\\""); gsub(/\t/, "\\t"); gsub(/\r/, "\\r")
          if (NR > 1) print "\\n"
          print }
        END { print "\"" }'
}

# final_status FILE: success or error, as a handler's status file says in any JSON spacing (the first "status"
# whose value is one of those), or nothing while it has none
final_status() {
    tr -d ' \t\r\n' < "$1" 2>/dev/null | grep -o '"status":"\(success\|error\)"' | head -n 1 | cut -d'"' -f4
}

# utc_now: the time as the status files and handler logs show it
utc_now() { date -u '+%Y-%m-%dT%H:%M:%SZ'; }

# setting FILE KEY: the decoded value of KEY in a flattened settings file (lines KEY=base64), the protected
# value first, as CustomScript takes protected settings over public ones.
setting() {
    v=$(awk -v k="protected.$2=" 'index($0, k) == 1 { print substr($0, length(k) + 1); exit }' "$1")
    [ -n "$v" ] || v=$(awk -v k="$2=" 'index($0, k) == 1 { print substr($0, length(k) + 1); exit }' "$1")
    [ -n "$v" ] && printf '%s' "$v" | base64 -d
}
