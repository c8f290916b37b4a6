#!/usr/bin/env bash
# Installs the Debian packages the test suite drives for real (browser, ffmpeg, RTSP server), when missing.
# Without root or apt the tests that need them skip with a reason; this script never fails the build.
set -u
need=()
command -v chromium >/dev/null 2>&1 || need+=(chromium)
command -v ffmpeg >/dev/null 2>&1 || need+=(ffmpeg)
/usr/bin/python3 -c 'import gi; gi.require_version("GstRtspServer", "1.0")' >/dev/null 2>&1 || need+=(
  python3-gi gir1.2-gst-rtsp-server-1.0 gstreamer1.0-plugins-good gstreamer1.0-plugins-bad gstreamer1.0-libav)
[ ${#need[@]} -eq 0 ] && exit 0
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then SUDO=""; elif command -v sudo >/dev/null; then SUDO="sudo -n"; else
  echo "system-deps: cannot install ${need[*]} (no root); tests needing them will skip"; exit 0; fi
echo "system-deps: installing ${need[*]}"
$SUDO apt-get update -qq >/dev/null 2>&1 || true
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null 2>&1 \
  || echo "system-deps: apt-get install failed; tests needing ${need[*]} will skip"
exit 0
