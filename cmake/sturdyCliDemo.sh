#!/bin/sh
# The last step of `run_examples` (examples/CMakeLists.txt): the command-line client against the
# demo server program, as README.md's "Try it" shows.
#   sh sturdyCliDemo.sh <sturdy-demo-server program> <sturdy program (the CLI)>
# Starts the demo server on a free port, runs a few CLI commands against it, stops the server.
set -eu
server=$1
cli=$2
log=$(mktemp)
"$server" --port 0 --quiet >"$log" 2>&1 &
server_pid=$!
trap 'kill "$server_pid" 2>/dev/null || true; wait "$server_pid" 2>/dev/null || true; rm -f "$log"' EXIT INT TERM

tries=0
until grep -q '^listening on ' "$log"; do
  tries=$((tries + 1))
  if [ "$tries" -gt 100 ] || ! kill -0 "$server_pid" 2>/dev/null; then
    cat "$log" >&2
    echo "the demo server did not start" >&2
    exit 1
  fi
  sleep 0.1
done
url=$(sed -n 's/^listening on //p' "$log")

run() {  # prints the command, quoted as a user would type it, then runs it
  printf '$ sturdy'
  for arg in "$@"; do
    case $arg in
      *" "*) printf ' "%s"' "$arg" ;;
      *) printf ' %s' "$arg" ;;
    esac
  done
  printf '\n'
  "$cli" "$@"
}
echo "[$server --port 0: listening on $url]"
run chat "hi" --base-url "$url"
run chat "Stream a reply, please" --stream --base-url "$url"
run chat "hi" --json --base-url "$url"
run models --base-url "$url"
