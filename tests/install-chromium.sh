#!/bin/sh
# Install Debian's chromium for the browser tests when it is missing.
set -e
if [ -x /usr/bin/chromium ]; then
    exit 0
fi
if [ "$(id -u)" != "0" ]; then
    echo "chromium is missing and this is not root: run 'sudo apt-get install chromium'" >&2
    exit 1
fi
apt-get update -qq
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
