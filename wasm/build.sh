#!/usr/bin/env bash
# Builds the WebAssembly guests of podsearch reproducibly and writes them where the host
# packages embed them (wasm/modules/*.wasm, wasm/host/testdata/*.wasm).
#
#   wasm/build.sh           rebuild the committed .wasm files
#   wasm/build.sh --check   rebuild into a temporary folder and fail if any byte differs
#                           from the committed files (what CI runs)
#
# Needs clang-14 and wasm-ld-14 (Debian packages clang-14, lld-14) and Go. The outputs depend
# only on the sources, the pinned compiler versions and the flags below: no absolute paths
# (-ffile-prefix-map, -trimpath), no build ids, no VCS stamps, no debug sections.
set -euo pipefail

root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"

# The Go guests embed the toolchain version: build them with exactly the version go.mod names
# (its toolchain line, else its go line), so every machine emits the same bytes.
GO_GUEST_TOOLCHAIN="$(awk '$1 == "toolchain" { print $2; exit }' go.mod)"
if [ -z "$GO_GUEST_TOOLCHAIN" ]; then
  GO_GUEST_TOOLCHAIN="go$(awk '$1 == "go" { print $2; exit }' go.mod)"
fi
CLANG="${CLANG:-clang-14}"

mode=build
case "${1:-}" in
"") ;;
--check) mode=check ;;
*)
  echo "usage: wasm/build.sh [--check]" >&2
  exit 2
  ;;
esac

for tool in "$CLANG" wasm-ld-14; do
  if ! command -v "$tool" >/dev/null 2>&1; then
    echo "wasm/build.sh: $tool not found (install the Debian packages clang-14 and lld-14)" >&2
    exit 1
  fi
done

out="$root"
if [ "$mode" = check ]; then
  out="$(mktemp -d)"
  trap 'rm -rf "$out"' EXIT
  mkdir -p "$out/wasm/modules" "$out/wasm/host/testdata"
fi

# C guests: no libc, SIMD and bulk memory on, the memory imported from the host, the shadow
# stack pointer exported so the host can give each instance its own stack.
cflags=(--target=wasm32 -O3 -nostdlib -mbulk-memory -msimd128 -mmutable-globals
  -ffile-prefix-map="$root"=. -fno-ident -g0
  -Wall -Wextra -Werror
  -Wl,--no-entry -Wl,--import-memory -Wl,--export=__stack_pointer -Wl,--strip-all)

build_c() { # source output
  "$CLANG" "${cflags[@]}" -o "$out/$2" "$1"
}

build_go() { # package output
  env -u GOFLAGS GOTOOLCHAIN="$GO_GUEST_TOOLCHAIN" CGO_ENABLED=0 GOOS=wasip1 GOARCH=wasm \
    go build -trimpath -buildvcs=false -buildmode=c-shared -ldflags='-s -w -buildid=' \
    -o "$out/$2" "$1"
}

build_c wasm/guest/scan/scan.c wasm/modules/scan.wasm
build_c wasm/host/testdata/misbehave.c wasm/host/testdata/misbehave.wasm
build_go ./wasm/guest/tokenizer wasm/modules/tokenizer.wasm
build_go ./wasm/guest/goscan wasm/modules/goscan.wasm

files=(wasm/modules/scan.wasm wasm/host/testdata/misbehave.wasm
  wasm/modules/tokenizer.wasm wasm/modules/goscan.wasm)

if [ "$mode" = check ]; then
  status=0
  for f in "${files[@]}"; do
    if ! cmp -s "$out/$f" "$root/$f"; then
      echo "wasm/build.sh --check: $f differs from a fresh build (run wasm/build.sh and commit)" >&2
      status=1
    fi
  done
  if [ $status -eq 0 ]; then
    echo "wasm/build.sh --check: ${#files[@]} modules reproduce byte for byte"
  fi
  exit $status
fi
for f in "${files[@]}"; do
  printf '%8d  %s\n' "$(wc -c <"$f")" "$f"
done
