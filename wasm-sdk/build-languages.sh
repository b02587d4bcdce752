#!/bin/sh
# build-languages.sh OUTDIR: builds every example plugin written in a language
# other than Go (examples/plugins/NAME/{rust,c,assemblyscript}/) into
# OUTDIR/NAME-LANG.wasm, with the SDKs in wasm-sdk/{rust,c,assemblyscript},
# and each SDK's README plugin (wasm-sdk/LANG/example/) into OUTDIR/readme-LANG.wasm.
#
# Toolchains (Debian packages, and the assemblyscript npm package pinned in
# wasm-sdk/assemblyscript/package-lock.json):
#   rust:           apt-get install rustc libstd-rust-dev-wasm32      (RUSTC, default /usr/bin/rustc)
#   c:              apt-get install clang lld wasi-libc libclang-rt-14-dev-wasm32   (CC, default clang)
#   assemblyscript: node >= 20 and npm; this script runs `npm ci` in wasm-sdk/assemblyscript when
#                   node_modules is missing
# A missing toolchain stops the script with one line naming what to install.
# LANGUAGES (default "rust c assemblyscript") limits what is built.
set -eu
if [ $# -ne 1 ]; then
	echo "usage: $0 OUTDIR" >&2
	exit 2
fi
mkdir -p "$1"
out=$(cd "$1" && pwd)
root=$(cd "$(dirname "$0")/.." && pwd)
sdk=$root/wasm-sdk
RUSTC=${RUSTC:-/usr/bin/rustc}
CC=${CC:-clang}
LANGUAGES=${LANGUAGES:-rust c assemblyscript}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

missing() {
	echo "$0: $*" >&2
	exit 1
}

wants() {
	case " $LANGUAGES " in *" $1 "*) return 0 ;; esac
	return 1
}

examples() { # examples LANG: the example names that have a LANG version
	for d in "$root"/examples/plugins/*/"$1"/; do
		[ -d "$d" ] || continue
		basename "$(dirname "$d")"
	done
}

# Rust: the SDK as an rlib, each example as a cdylib linked against it.
# -C lto keeps the module small; opt-level 2 because a hook runs on every
# request (opt-level s made pii-redact's span-end hook 1.3 times slower for a
# module a fifth smaller); 64 KiB of stack (the default is 1 MiB) makes the
# instance small.
if wants rust; then
	if ! [ -x "$RUSTC" ] || ! [ -d "$("$RUSTC" --print sysroot 2>/dev/null)/lib/rustlib/wasm32-unknown-unknown" ]; then
		missing "rustc for wasm32 is missing: apt-get install rustc libstd-rust-dev-wasm32 (or set RUSTC to a rustc with the wasm32-unknown-unknown target)"
	fi
	rflags="--edition 2021 --target wasm32-unknown-unknown -C opt-level=2 -C panic=abort -C codegen-units=1 -C target-feature=+bulk-memory"
	# shellcheck disable=SC2086
	"$RUSTC" $rflags --crate-type rlib --crate-name sidetrace "$sdk/rust/src/lib.rs" -o "$tmp/libsidetrace.rlib"
	for name in $(examples rust); do
		echo "rust    $out/$name-rust.wasm"
		# shellcheck disable=SC2086
		"$RUSTC" $rflags --crate-type cdylib -C lto -C strip=symbols -C link-arg=-zstack-size=65536 \
			--crate-name "$(echo "$name" | tr - _)" --extern sidetrace="$tmp/libsidetrace.rlib" \
			"$root/examples/plugins/$name/rust/lib.rs" -o "$out/$name-rust.wasm"
	done
	echo "rust    $out/readme-rust.wasm"
	# shellcheck disable=SC2086
	"$RUSTC" $rflags --crate-type cdylib -C lto -C strip=symbols -C link-arg=-zstack-size=65536 \
		--crate-name plugin --extern sidetrace="$tmp/libsidetrace.rlib" "$sdk/rust/example/plugin.rs" -o "$out/readme-rust.wasm"
fi

# C: clang for wasm32-wasi with wasi-libc, as a reactor (the host calls
# _initialize); -Wl,--strip-all drops names and debug info.
if wants c; then
	printf '#include <stdlib.h>\n#include <string.h>\nint x(void){return (int)strlen(malloc(1));}\n' >"$tmp/probe.c"
	if ! command -v "$CC" >/dev/null 2>&1 || ! command -v wasm-ld >/dev/null 2>&1 ||
		! "$CC" --target=wasm32-wasi -mexec-model=reactor -O2 "$tmp/probe.c" -o "$tmp/probe.wasm" >/dev/null 2>&1; then
		missing "clang for wasm32-wasi is missing: apt-get install clang lld wasi-libc libclang-rt-14-dev-wasm32"
	fi
	cbuild() { # cbuild OUT SOURCES...
		out_c=$1
		shift
		"$CC" --target=wasm32-wasi -mexec-model=reactor -Oz -flto -Wall -Werror -I"$sdk/c" "$sdk/c/sidetrace.c" "$@" \
			-Wl,--strip-all -Wl,--gc-sections -Wl,-z,stack-size=65536 -o "$out_c"
	}
	for name in $(examples c); do
		echo "c       $out/$name-c.wasm"
		cbuild "$out/$name-c.wasm" "$root/examples/plugins/$name/c/"*.c
	done
	echo "c       $out/readme-c.wasm"
	cbuild "$out/readme-c.wasm" "$sdk/c/example/plugin.c"
fi

# AssemblyScript: asc from the pinned npm package; abort, trace and seed are
# routed to the SDK so that a module imports nothing the host lacks.
if wants assemblyscript; then
	if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
		missing "node and npm are missing (assemblyscript needs node >= 20): apt-get install nodejs npm"
	fi
	asc=$sdk/assemblyscript/node_modules/.bin/asc
	if ! [ -x "$asc" ]; then
		(cd "$sdk/assemblyscript" && npm ci --no-audit --no-fund --silent) >&2 ||
			missing "assemblyscript is missing: cd wasm-sdk/assemblyscript && npm ci --no-audit --no-fund"
	fi
	asbuild() { # asbuild OUT ENTRY (from the root: asconfig.json's "use" names the SDK's abort handler by its path)
		(cd "$root" && "$asc" "$2" --config wasm-sdk/assemblyscript/asconfig.json --target release -o "$1")
	}
	for name in $(examples assemblyscript); do
		echo "as      $out/$name-assemblyscript.wasm"
		asbuild "$out/$name-assemblyscript.wasm" "examples/plugins/$name/assemblyscript/index.ts"
	done
	echo "as      $out/readme-assemblyscript.wasm"
	asbuild "$out/readme-assemblyscript.wasm" wasm-sdk/assemblyscript/example/plugin.ts
fi
