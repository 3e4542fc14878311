# Sourced by the suite runners: takes HOST PORT, prints the script's header comment as
# usage when they are missing, and refuses any target that is not this machine.
if [[ $# -ne 2 ]]; then
  sed -n '2,/^set /p' "$0" | sed '$d; s/^# \{0,1\}//' >&2
  exit 2
fi
HOST=$1
PORT=$2
case "$HOST" in
  127.*|localhost|::1) ;;
  *) echo "$(basename "$0"): only loopback targets are allowed, got $HOST" >&2; exit 2 ;;
esac
[[ "$HOST" == localhost ]] && HOST=127.0.0.1
[[ "$PORT" =~ ^[0-9]+$ ]] || { echo "$(basename "$0"): PORT must be a number, got $PORT" >&2; exit 2; }
