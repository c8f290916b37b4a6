#!/usr/bin/env bash
# Installs the Debian packages the test suite drives for real (browser, ffmpeg, RTSP server), when missing.
# Outside CI, without root or apt, the tests that need them skip with a reason and this script exits 0.
# In CI (CI set and not 0/false/no) a part it cannot install fails the build here, before the tests
# (which would fail anyway: tests/conftest.py turns those skips into failures in CI).
set -u
missing() {
  need=()
  command -v chromium >/dev/null 2>&1 || need+=(chromium)
  command -v ffmpeg >/dev/null 2>&1 || need+=(ffmpeg)
  /usr/bin/python3 -c 'import gi; gi.require_version("GstRtspServer", "1.0")' >/dev/null 2>&1 || need+=(
    python3-gi gir1.2-gst-rtsp-server-1.0 gstreamer1.0-plugins-good gstreamer1.0-plugins-bad gstreamer1.0-libav)
}
give_up() {
  case "$(echo "${CI:-}" | tr '[:upper:]' '[:lower:]')" in
    "" | 0 | false | no) echo "system-deps: $1; tests needing ${need[*]} will skip"; exit 0 ;;
    *) echo "system-deps: $1: CI=${CI} needs ${need[*]} (the tests would fail without them)" >&2; exit 1 ;;
  esac
}
missing
[ ${#need[@]} -eq 0 ] && exit 0
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then SUDO=""
elif command -v sudo >/dev/null && command -v apt-get >/dev/null; then SUDO="sudo -n"
else give_up "cannot install ${need[*]} (no root or no apt-get)"; fi
echo "system-deps: installing ${need[*]}"
$SUDO apt-get update -qq >/dev/null 2>&1 || true
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null 2>&1 \
  || give_up "apt-get install ${need[*]} failed"
missing
[ ${#need[@]} -eq 0 ] || give_up "still missing after apt-get install"
exit 0
