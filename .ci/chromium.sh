#!/usr/bin/env bash
# Headless Chromium for the report's browser tests (tests/test_report_browser.py) and the README's
# screenshots (scripts/screenshots.py): Debian's `chromium` package, installed when
# /usr/bin/chromium is missing. CI runs as root on Debian, with the package registries as its
# only network.
set -euo pipefail
if [ -x /usr/bin/chromium ]; then
    exit 0
fi
if [ "$(id -u)" != 0 ]; then
    echo "chromium.sh: /usr/bin/chromium is missing; install it as root: apt-get install -y chromium" >&2
    exit 1
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq chromium >/dev/null
/usr/bin/chromium --version
