#!/bin/sh
# The CustomScript extension handler (Microsoft.Compute.CustomScriptExtension), `enable` step:
# downloads every fileUris entry into the download folder, runs commandToExecute there under the
# handler timeout, and writes the status file: the exit code in words, with the tails of stdout and
# stderr as substatuses. Its log reads like the reference's CustomScriptHandler log.
#
# Called by the guest agent:  customscript.sh VERSION  with, in the environment,
#   CONFIG       the flattened settings (KEY=base64 lines, protected ones as protected.KEY=...)
#   PUBLIC_JSON  the public settings as JSON (for the log line)
#   PROTECTED_KEYS  the names of the protected settings (their values are never logged)
#   HANDLER_LOG  /var/log/fabric/extensions/<handler>/<version>/handler.log
#   DOWNLOADS    the folder to download into and run in
#   WORK         a scratch folder on tmpfs (stdout and stderr tails, the status file)
#   SEQ TIMEOUT  the sequence number and the command's time limit in seconds
LIB=${FABRICLAB_LIB:-/usr/lib/fabriclab}
. "$LIB/lib.sh"
VERSION=$1
TAIL=4096
log() { echo "[$$+00000001] [$(date -u '+%m/%d/%Y %H:%M:%S')] [$1] $2" >> "$HANDLER_LOG" 2>/dev/null; }

# status STATUS CODE MESSAGE: the handler status file, in the reference's status-file shape
status() {
    out=$(tail -c $TAIL "$WORK/stdout" 2>/dev/null)
    err=$(tail -c $TAIL "$WORK/stderr" 2>/dev/null)
    errstate=success
    [ "$1" = error ] && [ -n "$err" ] && errstate=error
    cat > "$WORK/status" <<JSON
[{"version": 1.0, "timestampUTC": "$(utc_now)", "status": {"name": "Microsoft.Compute.CustomScriptExtension", "operation": "Enable", "status": "$1", "code": $2, "formattedMessage": {"lang": "en-US", "message": $(json_str "$3")}, "substatus": [{"name": "StdOut", "status": "success", "code": 0, "formattedMessage": {"lang": "en-US", "message": $(json_str "$out")}}, {"name": "StdErr", "status": "$errstate", "code": 0, "formattedMessage": {"lang": "en-US", "message": $(json_str "$err")}}]}}]
JSON
}

: > "$WORK/stdout"; : > "$WORK/stderr"
command=$(setting "$CONFIG" commandToExecute)
shown="'$command'"      # a protected command is never shown: not in the log, not in the status
grep -q '^protected\.commandToExecute=' "$CONFIG" && shown="(protected commandToExecute)"
log INFO "HandlerSettings = ProtectedSettingsCertThumbprint: , ProtectedSettings: {${PROTECTED_KEYS:+$PROTECTED_KEYS: not shown}}, PublicSettings: $PUBLIC_JSON"
log INFO "CustomScript handler $VERSION, sequence number $SEQ"
if [ -z "$command" ]; then
    log ERROR "No commandToExecute in the settings"
    status error 1 "No commandToExecute in the public or protected settings"
    exit 0
fi
mkdir -p "$DOWNLOADS"
log INFO "Downloading files specified in configuration..."
i=0
while true; do
    uri=$(setting "$CONFIG" "fileUris.$i")
    [ -n "$uri" ] || break
    file=${uri%%\?*}
    file=${file##*/}
    case "$file" in
    ''|.|..)
        log ERROR "DownloadFiles: fileUris[$i] names no file: $uri"
        status error 1 "fileUris[$i] does not end in a file name: '$uri'"
        exit 0 ;;
    esac
    log INFO "DownloadFiles: fileUri = $uri"
    log INFO "DownloadFiles: fileDownloadPath = $DOWNLOADS"
    log INFO "DownloadFiles: downloading file to fileDownloadLocation = $DOWNLOADS/$file"
    if ! timeout 60 wget -q -O "$DOWNLOADS/$file.part" "$uri" 2> "$WORK/wget"; then
        why=$(sed -n 's/^wget: //p' "$WORK/wget" | tail -n 1)
        rm -f "$DOWNLOADS/$file.part"
        log ERROR "DownloadFiles: failed to download $file: ${why:-no answer within 60 s}"
        status error 1 "Failed to download '$file' (fileUris[$i]): ${why:-no answer within 60 s}"
        exit 0
    fi
    mv "$DOWNLOADS/$file.part" "$DOWNLOADS/$file"
    i=$((i + 1))
done
log INFO "Files downloaded ($i). Executing command: $shown"
if ! cd "$DOWNLOADS" 2> "$WORK/cd"; then
    log ERROR "Cannot enter the download folder $DOWNLOADS: $(cat "$WORK/cd")"
    status error 1 "The handler could not enter its download folder $DOWNLOADS: $(sed 's/^.*: //' "$WORK/cd")"
    exit 0
fi
# stdout and stderr through tails (a script printing megabytes keeps the last $TAIL bytes of each), the
# command in its own session so that the timeout kills everything it started
rm -f "$WORK/out.fifo" "$WORK/err.fifo" "$WORK/dog.fifo" "$WORK/late.fifo" "$WORK/timedout"
mkfifo "$WORK/out.fifo" "$WORK/err.fifo" "$WORK/dog.fifo" "$WORK/late.fifo"
tail -c $TAIL < "$WORK/out.fifo" > "$WORK/stdout" & t1=$!
tail -c $TAIL < "$WORK/err.fifo" > "$WORK/stderr" & t2=$!
setsid sh -c "$command" < /dev/null > "$WORK/out.fifo" 2> "$WORK/err.fifo" & pid=$!
log INFO "Command execution task started (pid $pid, time limit $TIMEOUT s). Awaiting completion..."
# timers without a sleep or a signal, so that none can be left behind: a timer reads its own fifo, which this
# shell holds open read-write from here on (a line written before the timer reads is kept; neither side blocks;
# the command, already started, does not inherit it). `expires S FD`: true if no line came on FD in S seconds;
# `call_off FD` writes that line
exec 4<> "$WORK/dog.fifo" 5<> "$WORK/late.fifo"
expires() { ! read -t "$1" _ <&"$2"; }
call_off() { echo off >&"$1"; }
watchdog() {
    expires "$TIMEOUT" 4 || return 0
    : > "$WORK/timedout"; kill -TERM -"$pid" 2>/dev/null
    expires 2 4 && kill -KILL -"$pid" 2>/dev/null
}
watchdog & dog=$!
wait $pid
rc=$?
call_off 4; wait $dog
# output tails are complete once every writer has gone; a daemon the script left behind may hold them open
reaper() { expires 5 5 && kill $t1 $t2 2>/dev/null; }
reaper & late=$!
wait $t1 $t2
call_off 5; wait $late
exec 4>&- 5>&-
rm -f "$WORK/out.fifo" "$WORK/err.fifo" "$WORK/dog.fifo" "$WORK/late.fifo"
if [ -e "$WORK/timedout" ]; then
    log ERROR "Command execution timed out after $TIMEOUT s: killed"
    status error "$rc" "Command $shown timed out after $TIMEOUT s and was killed"
elif [ "$rc" -eq 0 ]; then
    log INFO "Command execution finished. Command exited with code: 0"
    status success 0 "Command $shown exited with code 0"
else
    log ERROR "Command execution finished. Command exited with code: $rc"
    last=$(grep -v '^[[:space:]]*$' "$WORK/stderr" | tail -n 1)
    status error "$rc" "Command $shown exited with code $rc${last:+: $last}"
fi
exit 0
