#!/usr/bin/env bash
# Headless Chromium and its driver for the report tests (tests/test_browser.py, the smoke batch's report check),
# from Debian's packages. Never fails the build: where they cannot be installed those tests skip and say why.
set -u
if command -v chromium >/dev/null 2>&1 && command -v chromedriver >/dev/null 2>&1; then
  exit 0
fi
log=/tmp/lrkit-setup-browser.log
if ! command -v apt-get >/dev/null 2>&1; then
  echo "setup_browser: no apt-get here; install Chromium and chromedriver to run the browser tests" >&2
  exit 0
fi
if [ "$(id -u)" = 0 ]; then sudo=""; elif sudo -n true 2>/dev/null; then sudo="sudo -n"; else
  echo "setup_browser: not root and no password-less sudo; run: sudo apt-get install chromium chromium-driver" >&2
  exit 0
fi
echo "setup_browser: installing Debian's chromium and chromium-driver (log: $log)" >&2
if ! { $sudo apt-get update -qq && DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq \
       --no-install-recommends chromium chromium-driver; } >"$log" 2>&1; then
  echo "setup_browser: apt-get failed (see $log); the browser tests will skip" >&2
fi
exit 0
