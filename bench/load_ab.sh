#!/bin/bash
# Same-run A/B of `rag serve` under bench/load_api.py: a server of each checkout, in turn, on its own copy
# of one built index, then the same load. What docs/performance.md's serving tables ran.
#
#   bench/load_ab.sh BASE_CHECKOUT NEW_CHECKOUT INDEX [load_api.py options…]
#   e.g. git worktree add --detach /tmp/before a0dafcb
#        bench/load_ab.sh /tmp/before . /tmp/seed-index --clients 20 --seconds 30
#
# Both servers run with this checkout's Python (.venv); the load comes from this checkout's load_api.py.
set -u
here=$(cd "$(dirname "$0")/.." && pwd)
py=${PYTHON:-$here/.venv/bin/python}
base=$(cd "$1" && pwd); new=$(cd "$2" && pwd); src=$3; shift 3
export HF_HUB_OFFLINE=1 TOKENIZERS_PARALLELISM=false RAG_PROGRESS=false
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
for code in "$base" "$new"; do
  port=$("$py" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
  idx=$work/index; rm -rf "$idx"; cp -r "$src" "$idx"; rm -f "$idx/.rag-serve.json"
  mod=ui.cli; [ -f "$code/ui/launch.py" ] && mod=ui.launch  # what the tree's `rag` console script runs
  (cd "$code" && exec "$py" -m "$mod" serve --index-dir "$idx" --port "$port" > "$work/serve.log" 2>&1) &
  server=$!
  for _ in $(seq 300); do curl -s "127.0.0.1:$port/health" > /dev/null && break; sleep 1; done
  echo "=== $code: $*; $(uptime)"
  "$py" "$here/bench/load_api.py" --url "http://127.0.0.1:$port" "$@"
  kill "$server"; wait "$server" 2> /dev/null
done
