#!/bin/sh
# build-examples.sh OUTDIR: builds the example plugins (examples/plugins/*)
# and the WAT test plugins (plugins/testdata/*.wat) into OUTDIR/*.wasm.
# Needs Go (GOOS=wasip1 GOARCH=wasm) and wat2wasm (Debian package wabt).
set -eu
if [ $# -ne 1 ]; then
	echo "usage: $0 OUTDIR" >&2
	exit 2
fi
mkdir -p "$1"
out=$(cd "$1" && pwd)
root=$(cd "$(dirname "$0")/.." && pwd)

cd "$root/examples/plugins"
for dir in */; do
	name=${dir%/}
	[ -f "$name/main.go" ] || continue
	echo "go      $out/$name.wasm"
	GOOS=wasip1 GOARCH=wasm CGO_ENABLED=0 go build -buildmode=c-shared -trimpath -o "$out/$name.wasm" "./$name"
done

if ! command -v wat2wasm >/dev/null 2>&1; then
	echo "$0: wat2wasm not found: apt-get install -y wabt" >&2
	exit 1
fi
for wat in "$root"/plugins/testdata/*.wat; do
	name=$(basename "$wat" .wat)
	echo "wat2wasm $out/$name.wasm"
	wat2wasm "$wat" -o "$out/$name.wasm"
done
