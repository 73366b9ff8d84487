package demo

import (
	"fmt"
	"os"
	"path/filepath"
)

// grubbyScript stands in for grubby on demo nodes, which are directories,
// not machines: the kernel command line is the file $STOKER_DEMO_KARGS.
// The agents run with `--os-backend grubby` and this script first on
// PATH, so kernel-argument changes go through the agent's real code path.
const grubbyScript = `#!/bin/sh
# grubby stand-in for stoker demo nodes: the kernel command line is $STOKER_DEMO_KARGS.
set -eu
f=$STOKER_DEMO_KARGS
[ -f "$f" ] || : > "$f"
case "${1:-}" in
--info=*) printf 'index=0\nkernel="/boot/vmlinuz-demo"\nargs="%s"\n' "$(cat "$f")" ;;
--update-kernel=*)
  shift
  cur=$(cat "$f")
  for a in "$@"; do
    case "$a" in
    --remove-args=*) for w in ${a#--remove-args=}; do cur=$(printf '%s\n' $cur | grep -vxF -- "$w" | tr '\n' ' ' || true); done ;;
    --args=*) cur="$cur ${a#--args=}" ;;
    esac
  done
  # Atomic, as the real boot loader entry update is: a kill leaves the
  # old or the new command line, never a truncated one.
  printf '%s\n' $cur | awk 'NF && !seen[$0]++' | tr '\n' ' ' | sed 's/ $//' > "$f.tmp.$$"
  mv -f "$f.tmp.$$" "$f" ;;
*) echo "grubby stand-in: unsupported: $*" >&2; exit 1 ;;
esac
`

// writeGrubby installs grubbyScript as dir/bin/grubby.
func writeGrubby(dir string) error {
	bin := filepath.Join(dir, "bin")
	if err := os.MkdirAll(bin, 0o755); err != nil {
		return fmt.Errorf("install grubby stand-in: %w", err)
	}
	if err := os.WriteFile(filepath.Join(bin, "grubby"), []byte(grubbyScript), 0o755); err != nil {
		return fmt.Errorf("install grubby stand-in: %w", err)
	}
	return nil
}
