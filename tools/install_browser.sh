#!/usr/bin/env bash
# Install the headless browser the page test (tests/test_browser.py) drives: Chromium from the
# distribution's packages. Playwright's Python package (requirements/dev.txt) drives it through
# `executable_path`; `playwright install` (which downloads its own browsers) is never used.
# Safe to re-run; does nothing when a chromium is already on PATH.
set -euo pipefail
if command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1; then
  echo "install_browser: $(command -v chromium || command -v chromium-browser) present"
  exit 0
fi
SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null 2>&1; then SUDO="sudo"; else
    echo "install_browser: not root and no sudo: install chromium yourself (the browser test skips)" >&2
    exit 0
  fi
fi
if command -v apt-get >/dev/null 2>&1; then
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq chromium
else
  echo "install_browser: no apt-get here: install Chromium with your package manager (the browser test skips)" >&2
fi
