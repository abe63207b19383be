#!/usr/bin/env bash
# The main job: the hub server with the embedded default (SQLite in .hub/, in-process queue)
# and the example flows in flows/, on http://127.0.0.1:8080. Extra arguments go to `hub serve`.
source "$(dirname "$0")/_setup.sh"
exec .venv/bin/hub serve --flows flows "$@"
