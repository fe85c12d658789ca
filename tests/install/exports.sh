#!/usr/bin/env bash
# exports.sh LIBNABLA_SO HEADER_DIR... : the shared library exports exactly the
# functions include/ declares NB_API, and nothing else (no nbi_* internals, no
# compiler-made globals). Fails listing every offender.
set -euo pipefail
lib=$1; shift
[ -f "$lib" ] || { echo "exports: $lib not found" >&2; exit 1; }

exported=$(nm -D --defined-only "$lib" | awk '{print $NF}' | sed 's/@.*//' | sort -u)
# The name of each NB_API declaration (on the line holding NB_API); dist.h
# only when the library has MPI (nb_dist_init exported).
declared=$(grep -rhoE --include='*.h' 'NB_API[^(]*\bnb_[A-Za-z0-9_]+[[:space:]]*\(' "$@" |
           grep -oE 'nb_[A-Za-z0-9_]+[[:space:]]*\($' | tr -d '( ' | sort -u)
if ! grep -qx nb_dist_init <<<"$exported"; then
  declared=$(comm -23 <(echo "$declared") \
    <(grep -rhoE 'NB_API[^(]*\bnb_dist_[A-Za-z0-9_]+' "$@" | grep -oE 'nb_dist_[A-Za-z0-9_]+$' | sort -u))
fi

status=0
# A top-level declaration without NB_API would be hidden, and so missed above.
unmarked=$(grep -rnE --include='*.h' '^[A-Za-z_].*\bnb_[A-Za-z0-9_]+[[:space:]]*\(' "$@" |
           grep -vE ':[0-9]+:(NB_API|typedef|#)' || true)
if [ -n "$unmarked" ]; then
  echo "exports: public declarations without NB_API:"; sed 's/^/  /' <<<"$unmarked"; status=1
fi
not_nb=$(grep -v '^nb_' <<<"$exported" || true)
if [ -n "$not_nb" ]; then
  echo "exports: $lib exports symbols outside the nb_ namespace:"; sed 's/^/  /' <<<"$not_nb"; status=1
fi
undeclared=$(comm -23 <(grep '^nb_' <<<"$exported" || true) <(echo "$declared"))
if [ -n "$undeclared" ]; then
  echo "exports: $lib exports nb_ symbols that no header in $* declares NB_API:"; sed 's/^/  /' <<<"$undeclared"; status=1
fi
missing=$(comm -13 <(echo "$exported") <(echo "$declared"))
if [ -n "$missing" ]; then
  echo "exports: declared NB_API but not exported by $lib (missing NB_API on the definition's declaration, or not built):"
  sed 's/^/  /' <<<"$missing"; status=1
fi
[ "$status" -ne 0 ] || echo "exports: $(wc -l <<<"$exported") symbols, all nb_* and all declared NB_API"
exit "$status"
