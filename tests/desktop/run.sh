#!/usr/bin/env bash
# The desktop example (examples/desktop), tested like a person would: build it, run its unit
# tests (no window), start it under Xvfb with Mesa's software OpenGL, connect a client that
# sends "hello from CI", and let the app save a screenshot of its window once the message is
# on screen: target/desktop/desktop.png. Checks the app's stdout (its log) for the line.
#
# Installs what it needs on a fresh Debian machine (xvfb, Mesa, the X libraries winit
# loads) with apt-get when missing. Every step is bounded in time.
set -euo pipefail
cd "$(dirname "$0")/../.."
ROOT="$PWD"
OUT="$ROOT/target/desktop"
mkdir -p "$OUT"
START=$SECONDS
step() { printf '\n=== desktop: %s (%ss) ===\n' "$*" "$((SECONDS - START))"; }

step "Xvfb and Mesa (Debian packages, installed if missing)"
PKGS=(xvfb xauth libgl1 libgl1-mesa-dri libegl1 libxkbcommon-x11-0 libxcursor1 libxi6 libxrandr2)
missing=()
for p in "${PKGS[@]}"; do
  dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
done
if [ "${#missing[@]}" -gt 0 ]; then
  SUDO=""
  if [ "$(id -u)" -ne 0 ]; then SUDO="sudo -n"; fi
  timeout 300 $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive timeout 600 $SUDO apt-get install -y -qq "${missing[@]}"
fi
command -v Xvfb >/dev/null

step "build (release), clippy -D warnings, unit tests"
# The root's target directory (shared dependencies are built once), or CARGO_TARGET_DIR's.
TARGET="${CARGO_TARGET_DIR:-$ROOT/target}"
MANIFEST=(--manifest-path examples/desktop/Cargo.toml --target-dir "$TARGET")
timeout 2400 cargo build --release --locked "${MANIFEST[@]}"
timeout 1200 cargo clippy --release --locked --all-targets "${MANIFEST[@]}" -- -D warnings
timeout 600 cargo test --release --locked "${MANIFEST[@]}"

PIDS=()
cleanup() {
  local pid
  for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${PIDS[@]}"; do
    timeout 5 tail --pid="$pid" -f /dev/null 2>/dev/null || kill -9 "$pid" 2>/dev/null || true
  done
}
trap cleanup EXIT
trap 'exit 130' INT TERM

step "Xvfb on a free display"
# -displayfd: Xvfb picks a free display and writes its number to fd 3 (a file here).
: >"$OUT/display"
Xvfb -displayfd 3 -screen 0 1280x800x24 -nolisten tcp 3>"$OUT/display" >"$OUT/xvfb.log" 2>&1 &
PIDS+=("$!")
DISPLAY_NUM=""
for _ in $(seq 1 100); do
  DISPLAY_NUM="$(tr -dc '0-9' <"$OUT/display")"
  [ -n "$DISPLAY_NUM" ] && break
  sleep 0.1
done
[ -n "$DISPLAY_NUM" ] || { echo "ERROR: Xvfb did not start" >&2; cat "$OUT/xvfb.log" >&2; exit 1; }
export DISPLAY=":$DISPLAY_NUM"
echo "DISPLAY=$DISPLAY"

step "the app: --active --addr 127.0.0.1:0, a client sends a message, the screenshot"
rm -f "$OUT/desktop.png"
t0=$SECONDS
LIBGL_ALWAYS_SOFTWARE=1 timeout 180 "$TARGET/release/syncws-desktop" --active --addr 127.0.0.1:0 \
  --screenshot "$OUT/desktop.png" >"$OUT/app.out" 2>"$OUT/app.err" &
PIDS+=("$!")
URL=""
for _ in $(seq 1 600); do
  URL="$(sed -n 's/^listening on //p' "$OUT/app.out")"
  [ -n "$URL" ] && break
  sleep 0.1
done
if [ -z "$URL" ]; then
  echo "ERROR: the desktop app did not start serving" >&2
  cat "$OUT/app.out" "$OUT/app.err" >&2
  exit 1
fi
echo "app serving at $URL after $((SECONDS - t0)) s"
timeout 60 python3 tests/desktop/client.py "$URL/quick-start" "hello from CI" 20 >"$OUT/client.out" 2>&1 &
PIDS+=("$!")
for _ in $(seq 1 600); do
  grep -q '^screenshot saved to ' "$OUT/app.out" && break
  sleep 0.1
done
cat "$OUT/app.out"
if ! grep -q '^screenshot saved to ' "$OUT/app.out"; then
  echo "ERROR: no screenshot" >&2
  cat "$OUT/app.err" "$OUT/client.out" >&2
  exit 1
fi
grep -qx 'Message Received From Client: hello from CI' "$OUT/app.out" || {
  echo "ERROR: the app's log lacks the client's message" >&2
  exit 1
}
file_size=$(stat -c %s "$OUT/desktop.png")
[ "$file_size" -gt 10000 ] || { echo "ERROR: the screenshot is suspiciously small ($file_size bytes)" >&2; exit 1; }
echo "desktop: screenshot $OUT/desktop.png ($file_size bytes); $((SECONDS - START)) s in all"
