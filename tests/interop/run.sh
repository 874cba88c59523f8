#!/usr/bin/env bash
# Interop tests of the examples with independent clients:
#   1. Python `websockets` (sync client) against the echo example, --notify async and inline,
#      and with --deflate (permessage-deflate negotiated);
#   2. Node `ws` against the echo example (both modes, and --deflate) and the chat example;
#   3. headless Chromium (driven by playwright-core) on the chat example's page, two pages
#      (the chat runs with --deflate: the browser negotiates permessage-deflate).
#
# Installs what it needs on a fresh Debian machine (registries only: PyPI, npm, Debian):
# a venv in target/interop/venv, node modules in target/interop/node, and `chromium` via
# apt-get. A client that truly cannot be installed is skipped with a LOUD banner (set
# INTEROP_REQUIRE_ALL=1 to make that an error instead). Every step is bounded in time.
# Screenshots: target/interop/chat-two-pages.png (+ chat-page1.png, chat-page2.png).
set -euo pipefail
cd "$(dirname "$0")/../.."
ROOT="$PWD"
HERE="$ROOT/tests/interop"
OUT="$ROOT/target/interop"
mkdir -p "$OUT"
START=$SECONDS

step() { printf '\n=== interop: %s (%ss) ===\n' "$*" "$((SECONDS - START))"; }

SKIPPED=()
loud_skip() {
  local bar='!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!'
  printf '%s\n!!! SKIPPED: %s\n%s\n' "$bar" "$*" "$bar"
  # Also on stderr when that goes elsewhere than stdout.
  [ /proc/self/fd/1 -ef /proc/self/fd/2 ] || printf '%s\n!!! SKIPPED: %s\n%s\n' "$bar" "$*" "$bar" >&2
  SKIPPED+=("$*")
}

# ---------------------------------------------------------------------------------------
# Servers: started in the background, stopped on exit whatever happens.
PIDS=()
cleanup() {
  local pid
  for pid in "${PIDS[@]}"; do
    kill "$pid" 2>/dev/null || true
  done
  for pid in "${PIDS[@]}"; do
    timeout 5 tail --pid="$pid" -f /dev/null 2>/dev/null || kill -9 "$pid" 2>/dev/null || true
  done
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# start_server NAME PATTERN CMD...: runs CMD, waits (10 s at most) for a stdout line matching
# the sed expression PATTERN, and sets URL to what it captures.
URL=""
start_server() {
  local name="$1" pattern="$2"
  shift 2
  "$@" >"$OUT/$name.out" 2>"$OUT/$name.err" &
  local pid=$!
  PIDS+=("$pid")
  URL=""
  for _ in $(seq 1 100); do
    URL="$(sed -n "$pattern" "$OUT/$name.out")"
    [ -n "$URL" ] && break
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  if [ -z "$URL" ]; then
    echo "ERROR: $name did not start: $*" >&2
    cat "$OUT/$name.out" "$OUT/$name.err" >&2 || true
    exit 1
  fi
  echo "$name: $URL (pid $pid)"
}

# ---------------------------------------------------------------------------------------
# Installing.
APT_UPDATED=0
apt_install() {
  local sudo=""
  if [ "$(id -u)" -ne 0 ]; then
    if command -v sudo >/dev/null && sudo -n true 2>/dev/null; then sudo="sudo -n"; else
      echo "not root and no password-less sudo: cannot apt-get install $*" >&2
      return 1
    fi
  fi
  command -v apt-get >/dev/null || { echo "no apt-get: cannot install $*" >&2; return 1; }
  if [ "$APT_UPDATED" -eq 0 ]; then
    timeout 300 $sudo apt-get update -qq || return 1
    APT_UPDATED=1
  fi
  DEBIAN_FRONTEND=noninteractive timeout 900 $sudo apt-get install -y -qq "$@"
}

HAVE_PY=0 HAVE_NODE=0 HAVE_CHROMIUM=0
VENV="$OUT/venv"
NODE_DIR="$OUT/node"

step "install Python websockets into target/interop/venv"
if [ -x "$VENV/bin/python" ] && "$VENV/bin/python" -c 'import websockets' 2>/dev/null &&
  timeout 120 "$VENV/bin/pip" install -q --disable-pip-version-check -r "$HERE/requirements.txt"; then
  HAVE_PY=1
else
  rm -rf "$VENV"
  if ! command -v python3 >/dev/null; then apt_install python3 python3-venv || true; fi
  if command -v python3 >/dev/null && ! timeout 120 python3 -m venv "$VENV" 2>"$OUT/venv.err"; then
    # Debian's python3 lacks ensurepip until python3-venv (python3.X-venv) is installed.
    rm -rf "$VENV"
    pyver="$(python3 -c 'import sys; print(f"{sys.version_info[0]}.{sys.version_info[1]}")')"
    apt_install python3-venv "python$pyver-venv" || apt_install python3-venv || true
    timeout 120 python3 -m venv "$VENV" || true
  fi
  if [ -x "$VENV/bin/pip" ] &&
    timeout 300 "$VENV/bin/pip" install -q --disable-pip-version-check -r "$HERE/requirements.txt"; then
    HAVE_PY=1
  fi
fi
if [ "$HAVE_PY" -eq 1 ]; then
  "$VENV/bin/python" -c 'import sys, websockets; print("python", sys.version.split()[0], "websockets", websockets.__version__)'
else
  loud_skip "Python websockets could not be installed (python3 -m venv + pip install -r tests/interop/requirements.txt): the Python client tests do not run"
fi

step "install Node ws and playwright-core into target/interop/node"
if ! command -v node >/dev/null || ! command -v npm >/dev/null; then apt_install nodejs npm || true; fi
if command -v node >/dev/null && command -v npm >/dev/null; then
  mkdir -p "$NODE_DIR"
  cp "$HERE/package.json" "$HERE"/*.mjs "$NODE_DIR/"
  if (cd "$NODE_DIR" && timeout 300 npm install --no-audit --no-fund --no-package-lock --loglevel=error); then
    HAVE_NODE=1
    echo "node $(node --version), $(cd "$NODE_DIR" && node -p '"ws " + require("ws/package.json").version + ", playwright-core " + require("playwright-core/package.json").version')"
  fi
fi
if [ "$HAVE_NODE" -eq 0 ]; then
  loud_skip "Node ws / playwright-core could not be installed (npm install): the Node and Chromium tests do not run"
fi

step "install Chromium (Debian package)"
CHROMIUM="${CHROMIUM:-/usr/bin/chromium}"
if [ ! -x "$CHROMIUM" ]; then
  apt_install chromium || true
fi
if [ -x "$CHROMIUM" ] && timeout 60 "$CHROMIUM" --version 2>/dev/null; then
  HAVE_CHROMIUM=1
else
  loud_skip "Chromium could not be installed (apt-get install chromium): the browser test does not run"
fi

# ---------------------------------------------------------------------------------------
step "build the examples"
timeout 1500 cargo build --release --example echo --example chat
# Run copies, under names of their own: a later `cargo build` by someone else does not swap
# them, and a `pkill -f examples/echo` or `killall echo` aimed at other servers spares them.
BIN="$OUT/bin"
mkdir -p "$BIN"
rm -f "$BIN/ws-mirror" "$BIN/ws-chatroom"
# (Where cargo put them: CARGO_TARGET_DIR when set, relative to here like cargo's.)
BUILT="${CARGO_TARGET_DIR:-target}/release/examples"
cp "$BUILT/echo" "$BIN/ws-mirror"
cp "$BUILT/chat" "$BIN/ws-chatroom"

step "start the servers"
LISTEN='s/^listening on \(ws:\/\/.*\)$/\1/p'
start_server echo-async "$LISTEN" "$BIN/ws-mirror" --addr 127.0.0.1:0 --notify async
ECHO_async="$URL"
start_server echo-async-limited "$LISTEN" "$BIN/ws-mirror" --addr 127.0.0.1:0 --notify async --max-message-size 1000
LIMITED_async="$URL"
start_server echo-inline "$LISTEN" "$BIN/ws-mirror" --addr 127.0.0.1:0 --notify inline
ECHO_inline="$URL"
start_server echo-inline-limited "$LISTEN" "$BIN/ws-mirror" --addr 127.0.0.1:0 --notify inline --max-message-size 1000
LIMITED_inline="$URL"
# permessage-deflate on, every message compressed (threshold 0).
start_server echo-deflate "$LISTEN" "$BIN/ws-mirror" --addr 127.0.0.1:0 --notify inline --deflate --deflate-threshold 0
ECHO_deflate="$URL"
start_server echo-deflate-limited "$LISTEN" "$BIN/ws-mirror" --addr 127.0.0.1:0 --notify async --deflate --max-message-size 1000
LIMITED_deflate="$URL"
# The chat with compression, as a browser negotiates it.
start_server chat 's/^open \(http:\/\/.*\/\) in a browser$/\1/p' "$BIN/ws-chatroom" --addr 127.0.0.1:0 --deflate --deflate-threshold 0
CHAT="$URL"

# ---------------------------------------------------------------------------------------
PASSED=0 FAILED=0 SUITES_FAILED=()
# run_suite NAME SECONDS CMD...: runs a client's tests, bounded in time; adds up the
# `N passed, N failed` line it closes with.
run_suite() {
  local name="$1" secs="$2"
  shift 2
  local log="$OUT/$name.log" rc=0
  timeout -k 5 "$secs" "$@" 2>&1 | tee "$log" || rc=$?
  local line p f
  line="$(grep -E ': [0-9]+ passed, [0-9]+ failed$' "$log" | tail -n 1 || true)"
  if [ -n "$line" ]; then
    p="$(sed -E 's/.* ([0-9]+) passed.*/\1/' <<<"$line")"
    f="$(sed -E 's/.* ([0-9]+) failed$/\1/' <<<"$line")"
    PASSED=$((PASSED + p))
    FAILED=$((FAILED + f))
  fi
  if [ "$rc" -ne 0 ] || [ -z "$line" ]; then
    [ "$rc" -eq 124 ] && echo "ERROR: $name timed out after ${secs}s" >&2
    [ -n "$line" ] && [ "${f:-0}" -gt 0 ] || FAILED=$((FAILED + 1))
    SUITES_FAILED+=("$name (exit $rc)")
  fi
}

if [ "$HAVE_PY" -eq 1 ]; then
  for mode in async inline deflate; do
    echo_url="ECHO_$mode" limited_url="LIMITED_$mode"
    step "Python websockets client, $mode"
    run_suite "python-$mode" 180 "$VENV/bin/python" -W error::DeprecationWarning -u \
      "$HERE/python_websockets.py" "$mode" "${!echo_url}" "${!limited_url}"
  done
fi

if [ "$HAVE_NODE" -eq 1 ]; then
  step "Node ws client (echo both modes and deflate, chat broadcast)"
  run_suite node-ws 180 node "$NODE_DIR/node_ws.mjs" "$ECHO_async/?mode=async,$ECHO_inline/?mode=inline,$ECHO_deflate/?mode=deflate" "$CHAT"
fi

if [ "$HAVE_NODE" -eq 1 ] && [ "$HAVE_CHROMIUM" -eq 1 ]; then
  step "headless Chromium on the chat page, two pages"
  rm -f "$OUT"/chat-*.png
  run_suite chromium 150 node "$NODE_DIR/browser_chat.mjs" "$CHAT" "$OUT" "$CHROMIUM"
  if [ ! -s "$OUT/chat-two-pages.png" ]; then
    echo "ERROR: no screenshot at $OUT/chat-two-pages.png" >&2
    FAILED=$((FAILED + 1))
  fi
fi

# ---------------------------------------------------------------------------------------
step "servers still alive after the clients"
for i in "${!PIDS[@]}"; do
  if kill -0 "${PIDS[$i]}" 2>/dev/null; then
    PASSED=$((PASSED + 1))
  else
    rc=0
    wait "${PIDS[$i]}" || rc=$?
    why="exit status $rc"
    [ "$rc" -gt 128 ] && why="killed by signal $((rc - 128)) ($(kill -l $((rc - 128)) 2>/dev/null || echo '?'))"
    echo "ERROR: server pid ${PIDS[$i]} died during the tests: $why" >&2
    FAILED=$((FAILED + 1))
    SUITES_FAILED+=("server pid ${PIDS[$i]} died: $why")
  fi
done
for f in "$OUT"/echo-*.err "$OUT"/chat.err; do
  if grep -qiE 'panic|thread .* panicked' "$f"; then
    echo "ERROR: a server panicked ($f):" >&2
    cat "$f" >&2
    FAILED=$((FAILED + 1))
    SUITES_FAILED+=("panic in $(basename "$f")")
  fi
done

step "summary"
for s in "${SKIPPED[@]}"; do echo "!!! SKIPPED: $s"; done
for s in "${SUITES_FAILED[@]}"; do echo "FAILED: $s"; done
[ -s "$OUT/chat-two-pages.png" ] && echo "screenshot: $OUT/chat-two-pages.png"
echo "(skipped counts client suites that could not be installed)"
echo "interop: $PASSED passed, $FAILED failed, ${#SKIPPED[@]} skipped"
if [ "$FAILED" -ne 0 ]; then exit 1; fi
if [ "${#SKIPPED[@]}" -ne 0 ] && [ "${INTEROP_REQUIRE_ALL:-0}" = 1 ]; then
  echo "ERROR: INTEROP_REQUIRE_ALL=1 and ${#SKIPPED[@]} suite(s) skipped" >&2
  exit 1
fi
