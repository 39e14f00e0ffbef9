# The guest agent's protocol with the wireserver (busybox sh), sourced by fabriclab-agent after lib.sh.
# Expects: wire (the wireserver's address), VERSION, LIB, STATE, EXT_STATE, EXT_LOGS, EXT_WORK, GOALSTATE (the
# last goal state's incarnation, container and instance, one a line), resource_disk, and log MESSAGE. Nothing here evaluates a value that came from the wireserver, IMDS or a status file.

wire_get() { timeout 5 wget -q -O - --header "x-ms-version: 2012-11-30" "http://$wire/machine?comp=$1"; }
wire_post() {  # wire_post COMP[&...] BODY CONTENT-TYPE
    timeout 5 wget -q -O /dev/null --header "x-ms-version: 2012-11-30" --header "Content-Type: $3" \
        --post-data "$2" "http://$wire/machine?comp=$1"
}

report_health() {
    # the goal state's values, one a line, read as data (never run as shell)
    { read -r incarnation; read -r container; read -r instance; } < "$GOALSTATE" 2>/dev/null
    health="<?xml version=\"1.0\" encoding=\"utf-8\"?><Health><GoalStateIncarnation>${incarnation:-1}</GoalStateIncarnation>"
    health="$health<Container><ContainerId>$container</ContainerId><RoleInstanceList><Role><InstanceId>$instance</InstanceId>"
    health="$health<Health><State>Ready</State></Health></Role></RoleInstanceList></Container>"
    health="$health<AgentVersion>$VERSION</AgentVersion><ResourceDisk>$resource_disk</ResourceDisk></Health>"
    wire_post health "$health" "text/xml; charset=utf-8"
}

# report_status NAME HANDLER VERSION SEQ STATUSFILE LOG: the handler's status file, wrapped with what the
# platform needs to match it to the goal state, and the tail of the handler log. When the wireserver refuses
# it (a 4xx: not JSON, too large, nested too deep), an error status of the agent's own saying so goes instead,
# at once. Returns non-zero when nothing could be posted.
report_status() {
    post_status "$@" && return 0
    case "$(cat "$EXT_WORK/post.err" 2>/dev/null)" in
    *"HTTP/1."?" 4"*)
        why=$(sed -n 's/^wget: //p' "$EXT_WORK/post.err" | tail -n 1)
        log "the wireserver refused the status of extension $1 ($why): reporting that instead"
        status_file "$EXT_WORK/refused.status" error 1 \
            "The guest agent could not report the status the handler $2 $3 wrote: the wireserver refused it ($why)"
        post_status "$1" "$2" "$3" "$4" "$EXT_WORK/refused.status" "$6" && return 0 ;;
    esac
    log "could not report the status of extension $1"
    return 1
}

post_status() {
    body="{\"name\": $(json_str "$1"), \"handler\": $(json_str "$2"), \"version\": $(json_str "$3"), \"seqNo\": $4,"
    body="$body \"status\": $(cat "$5"), \"handlerLog\": $(json_str "$(tail -c 4096 "$6" 2>/dev/null)")}"
    wire_post "status&extension=$1" "$body" "application/json" 2> "$EXT_WORK/post.err"
}

# status_file FILE STATUS CODE MESSAGE: a handler status file the agent writes itself (transitioning, or an
# error when the handler could not give one)
status_file() {
    echo "[{\"version\": 1.0, \"timestampUTC\": \"$(utc_now)\", \"status\": {\"operation\": \"Enable\", \"status\": \"$2\", \"code\": $3, \"formattedMessage\": {\"lang\": \"en-US\", \"message\": $(json_str "$4")}}}]" > "$1"
}

# hlog_line LEVEL MESSAGE: the agent's own line in the handler log of the extension being run ($hlog)
hlog_line() { echo "[agent] [$(date -u '+%m/%d/%Y %H:%M:%S')] [$1] $2" >> "$hlog"; }

# run_extension NAME HANDLER VERSION SEQ TIMEOUT CONFIG PUBLIC_JSON PROTECTED_KEYS
run_extension() {
    name=$1 handler=$2 hversion=$3 seq=$4 limit=$5
    logdir="$EXT_LOGS/$handler/$hversion"
    work="$EXT_WORK/$name/$seq"
    mkdir -p "$logdir" "$work"
    hlog="$logdir/handler.log"
    package="$LIB/handlers/$handler/$hversion"
    log "extension $name: handler $handler $hversion, sequence $seq"
    status_file "$work/status" transitioning 0 "Enabling $handler $hversion (sequence $seq)"
    report_status "$name" "$handler" "$hversion" "$seq" "$work/status" "$hlog"
    if [ ! -x "$package/enable" ]; then
        hlog_line ERROR "no package for $handler $hversion in this image"
        status_file "$work/status" error 1 "The guest image has no package for handler $handler version $hversion"
    else
        hlog_line INFO "Installing $handler $hversion from $package (download step); enabling sequence $seq"
        CONFIG="$6" PUBLIC_JSON="$7" PROTECTED_KEYS="$8" HANDLER_LOG="$hlog" SEQ="$seq" TIMEOUT="$limit" \
            DOWNLOADS="$EXT_STATE/$handler/$hversion/Downloads/$seq" WORK="$work" \
            timeout $((limit + 30)) "$package/enable" < /dev/null > "$work/handler.out" 2>&1
        hrc=$?
        if [ -z "$(final_status "$work/status")" ]; then
            status_file "$work/status" error "$hrc" \
                "The handler $handler $hversion exited with code $hrc without a status: $(tail -n 3 "$work/handler.out")"
        fi
    fi
    echo "$seq" > "$EXT_STATE/$name.seq"            # run once: a status that could not be posted is posted again,
    cp "$work/status" "$EXT_STATE/$name.status"       # the command never runs again for it
    sync
    report_status "$name" "$handler" "$hversion" "$seq" "$work/status" "$hlog" || : > "$EXT_STATE/$name.unreported"
    log "extension $name sequence $seq: $(final_status "$work/status")"
}

attr() { printf '%s\n' "$line" | sed -n "s/.* $1=\"\([^\"]*\)\".*/\1/p"; }

# process_extensions: read the extensions config and run what is new
process_extensions() {
    cfg="$EXT_WORK/config.xml"
    wire_get extensionsconfig > "$cfg" || { log "could not read the extensions config"; return 1; }
    rm -f "$EXT_WORK"/plugins
    name="" unreported=""
    while read -r line <&3; do
        case "$line" in
        "<Plugin "*)
            name=$(attr name) handler=$(attr handler) hversion=$(attr version) seq=$(attr seqNo)
            limit=$(attr timeoutSeconds)
            # values from the wireserver are data: names become file names, numbers go into arithmetic
            case "$name$handler$hversion" in *[!A-Za-z0-9._-]*|*..*) log "extension '$name': unusable names in the goal state; skipped"; name="" ;; esac
            case "$seq" in ''|*[!0-9]*) seq=0 ;; esac
            case "$limit" in ''|*[!0-9]*) limit=300 ;; esac
            conf="$EXT_WORK/$name.settings"
            : > "$conf"
            public="{}" pkeys=""
            ;;
        "<PublicSettings>"*) public=$(echo "$line" | sed 's:<[^>]*>::g' | base64 -d) ;;
        "<ProtectedSettingKeys>"*) pkeys=$(echo "$line" | sed 's:<[^>]*>::g' | base64 -d) ;;
        "<Setting "*)
            key=$(echo "$line" | sed -n 's/.* name="\([^"]*\)".*/\1/p')
            val=$(echo "$line" | sed 's:<[^>]*>::g')
            case "$line" in *'protected="true"'*) key="protected.$key" ;; esac
            echo "$key=$val" >> "$conf"
            ;;
        "</Plugin>")
            [ -n "$name" ] || continue
            echo "$name" >> "$EXT_WORK/plugins"
            last=$(cat "$EXT_STATE/$name.seq" 2>/dev/null)
            if [ "$last" != "$seq" ]; then
                run_extension "$name" "$handler" "$hversion" "$seq" "$limit" "$conf" "$public" "$pkeys"
            elif [ -e "$EXT_STATE/$name.unreported" ]; then
                report_status "$name" "$handler" "$hversion" "$seq" "$EXT_STATE/$name.status" \
                    "$EXT_LOGS/$handler/$hversion/handler.log" && rm -f "$EXT_STATE/$name.unreported"
            fi
            [ -e "$EXT_STATE/$name.unreported" ] && unreported=1
            rm -f "$conf"
            ;;
        esac
    done 3< "$cfg"
    for f in "$EXT_STATE"/*.seq; do
        [ -e "$f" ] || continue
        n=${f##*/}
        n=${n%.seq}
        grep -qx "$n" "$EXT_WORK/plugins" 2>/dev/null && continue
        rm -f "$f" "$EXT_STATE/$n.status" "$EXT_STATE/$n.unreported"
        log "extension $n is no longer in the goal state; forgotten (its handler log stays)"
    done
    [ -z "$unreported" ]       # not done with this incarnation while a status waits to be posted
}
