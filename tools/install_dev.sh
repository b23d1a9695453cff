#!/usr/bin/env bash
# Everything a developer or CI needs on a fresh Debian-like machine, in one command:
# the CPU build of PyTorch, mrpn (editable) with its test tools (requirements/dev.txt: pip only), then
# Debian's Chromium for the page test of `mrpn serve` (tools/install_browser.sh: apt, as root or sudo).
# Users who only run mrpn need just `pip install` (README); this is for running the test suite.
set -euo pipefail
cd "$(dirname "$0")/.."
python3 -m pip install -q -r requirements/dev.txt
# The GE2E speaker encoder's weights (17 MB, inside resemblyzer's wheel) for the tests of the `ge2e` audio
# extractor and the speaker-probe baseline. --no-deps: mrpn reads only the weights file
# (torch.load weights_only=True) and never imports resemblyzer, whose own imports need librosa and webrtcvad.
python3 -m pip install -q --no-deps 'resemblyzer>=0.1.4,<0.2'
bash tools/install_browser.sh
