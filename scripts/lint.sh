#!/usr/bin/env bash
# Lint for CLoopCore's atomics rules (docs/memory-model.md, STYLE.md):
#  1. <stdatomic.h> is included by lk_atomic.h only;
#  2. every atomic operation is an *_explicit call with a named order (no implicit seq_cst);
#  3. no `volatile` (it is not a synchronisation primitive);
#  4. the C core builds warning-free with -Wall -Wextra -Wpedantic.
set -u
cd "$(dirname "$0")/.."
status=0
src=Sources/CLoopCore

bad=$(grep -rn --include='*.[ch]' '#include[[:space:]]*<stdatomic.h>' "$src" | grep -v "^$src/lk_atomic.h:")
if [ -n "$bad" ]; then
  echo "lint: <stdatomic.h> included outside $src/lk_atomic.h:"; echo "$bad"; status=1
fi

# Calls of the implicit-order forms: atomic_load(, atomic_fetch_add(, atomic_compare_exchange_weak(, ...
implicit='\batomic_(load|store|exchange|compare_exchange_(weak|strong)|fetch_(add|sub|or|xor|and)|flag_test_and_set|flag_clear)[[:space:]]*\('
bad=$(grep -rnE --include='*.[ch]' "$implicit" "$src")
if [ -n "$bad" ]; then
  echo "lint: atomic operation without an explicit memory order (use the *_explicit form):"; echo "$bad"; status=1
fi

# Arithmetic or assignment straight on an _Atomic object is an implicit seq_cst RMW/store. Atomics here are
# struct fields (reached through -> or .) or file-scope statics; comment lines are skipped.
for f in $(grep -rlE --include='*.[ch]' '_Atomic' "$src"); do
  names=$(grep -oE '_Atomic(\([^)]*\))?[[:space:]]+[A-Za-z_0-9 ]*[[:space:]]\**[A-Za-z_][A-Za-z_0-9]*(\[[^]]*\])?( = [^;]*)?;' "$f" \
          | sed -E 's/( = [^;]*)?;$//; s/.*[[:space:]*]([A-Za-z_][A-Za-z_0-9]*)(\[[^]]*\])?$/\1/' | sort -u)
  statics=$(grep -oE '^static _Atomic[^;]*[[:space:]]([A-Za-z_][A-Za-z_0-9]*)( = [^;]*)?;' "$f" \
          | sed -E 's/( = [^;]*)?;$//; s/.*[[:space:]]([A-Za-z_][A-Za-z_0-9]*)$/\1/')
  for n in $names; do
    ref="(->|\.)$n\b"
    case " $statics " in *" $n "*) ref="\b$n\b" ;; esac
    hit=$(grep -nE "(\+\+|--)[[:space:]]*[A-Za-z_>.-]*$ref|$ref[[:space:]]*(\[[^]]*\])?[[:space:]]*(\+\+|--|[-+*/|&^]?=[^=])" "$f" \
          | grep -vE '^[0-9]+:[[:space:]]*(/?\*|//)' | grep -v '_Atomic')
    if [ -n "$hit" ]; then
      echo "lint: implicit atomic access to '$n' in $f:"; echo "$hit"; status=1
    fi
  done
done

bad=$(grep -rnw --include='*.[ch]' 'volatile' "$src" | grep -v '__asm__ __volatile__')
if [ -n "$bad" ]; then
  echo "lint: volatile in the C core:"; echo "$bad"; status=1
fi

cc=${CC:-clang}
for f in "$src"/*.c; do
  if ! "$cc" -std=c11 -D_GNU_SOURCE -Wall -Wextra -Wpedantic -Werror -O2 -I"$src/include" -fsyntax-only "$f"; then
    status=1
  fi
done

[ $status -eq 0 ] && echo "lint: ok"
exit $status
