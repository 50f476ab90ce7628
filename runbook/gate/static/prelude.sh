# shellcheck shell=bash
# Read by runbook/gate/static/shell.py; run as `bash --noprofile --norc prelude.sh` with
# __GATE_SNIPPET (the block), __GATE_CALLS (where each aws argv is appended, and each argv of
# a __GATE_RECORD tool).
# Static gate prelude: expands a snippet, recording each aws argv. Never calls AWS.
shopt -s expand_aliases
__gate_mark=gatestub
__gate_where() {  # line of the snippet the innermost call came from
  local i
  for ((i = 1; i < ${#BASH_SOURCE[@]}; i++)); do
    if [[ ${BASH_SOURCE[i]} == "$__GATE_SNIPPET" ]]; then
      printf '%s' "${BASH_LINENO[i-1]}"; return
    fi
  done
  printf '0'
}
aws() {
  printf '%s\0' CALL "$(__gate_where)" "$#" "$@" >> "$__GATE_CALLS"
  local out=json prev='' a
  for a in "$@"; do
    [[ $prev == --output ]] && out=$a
    [[ $a == --output=* ]] && out=${a#--output=}
    prev=$a
  done
  if [[ $out == json ]]; then printf '"%s"\n' "$__gate_mark"; else printf '%s\n' "$__gate_mark"; fi
  return 0
}
# Network and interpreters: never run.
curl() { printf '%s\n' "$__gate_mark"; return 0; }
wget() { printf '%s\n' "$__gate_mark"; return 0; }
python() { printf '%s\n' "$__gate_mark"; return 0; }
python3() { printf '%s\n' "$__gate_mark"; return 0; }
command_not_found_handle() { printf '%s\n' "$__gate_mark"; return 0; }
# Text filters: a value derived from a stubbed command stays recognisably unknown.
__gate_filter() {
  local tool=$1 input; shift
  input=$(command cat; printf x); input=${input%x}
  if [[ ${input,,} == *gatestub* ]]; then printf '%s\n' "$__gate_mark"; return 0; fi
  printf '%s' "$input" | command "$tool" "$@"
}
for __t in jq grep egrep awk sed cut head tr sort uniq base64 column; do
  eval "$__t() { __gate_filter $__t \"\$@\"; }"
done
tail() {
  local a; for a in "$@"; do [[ $a == -f || $a == -F || $a == --follow* ]] && return 0; done
  __gate_filter tail "$@"
}
# Wrappers that run a command: run it here so an aws inside is still captured.
timeout() {
  while [[ $1 == -* ]]; do [[ $1 == -s || $1 == -k || $1 == --signal || $1 == --kill-after ]] && shift; shift; done
  shift; "$@"
}
nohup() { "$@"; }
sudo() { while [[ $1 == -* ]]; do shift; done; "$@"; }
env() {
  (
    while (($#)); do
      # shellcheck disable=SC2163  # exports the NAME=value in $1
      case $1 in -i|-|--ignore-environment) shift ;; -u) shift 2 ;; *=*) export "$1"; shift ;; *) break ;; esac
    done
    if (($#)); then "$@"; else builtin command env; fi
  )
}
watch() {
  while [[ $1 == -* ]]; do case $1 in -n|--interval) shift ;; esac; shift; done
  "$@"
}
command() {
  if [[ $1 == aws ]]; then shift; aws "$@"; else builtin command "$@"; fi
}
xargs() {  # enough of xargs to run an aws function once per input item
  local repl='' items=() item a
  while [[ $1 == -* ]]; do
    case $1 in
      -I) repl=$2; shift ;;
      -I*) repl=${1#-I} ;;
      -n|-P|-L|-d|-s|-E) shift ;;
    esac
    shift
  done
  mapfile -t items < <(builtin command cat)
  (($#)) || set -- echo
  if [[ -n $repl ]]; then
    for item in "${items[@]}"; do
      local args=()
      for a in "$@"; do args+=("${a//"$repl"/$item}"); done
      "${args[@]}"
    done
  else
    local words=()
    for item in "${items[@]}"; do read -ra a <<<"$item"; words+=("${a[@]}"); done
    "$@" "${words[@]}"
  fi
}
# Polling loops: sleep is instant and breaks the enclosing loop after a few rounds.
declare -A __gate_sleeps
__gate_sleep() {
  local k=${BASH_LINENO[0]}
  __gate_sleeps[$k]=$(( ${__gate_sleeps[$k]:-0} + 1 ))
  (( __gate_sleeps[$k] <= 2 ))
}
alias sleep='__gate_sleep || break'
alias exit='__gate_exit'
__gate_exit() { return 0; }
declare -A __gate_reads
read() {  # stdin is /dev/null: an interactive prompt gets the marker once per line
  if [[ /dev/stdin -ef /dev/null ]]; then
    local k=${BASH_LINENO[0]} a names=() skip=0
    __gate_reads[$k]=$(( ${__gate_reads[$k]:-0} + 1 ))
    (( __gate_reads[$k] > 1 )) && return 1
    for a in "$@"; do
      if ((skip)); then skip=0; continue; fi
      case $a in -p|-t|-n|-N|-d|-i|-u) skip=1 ;; -a) skip=1 ;; -*) ;; *) names+=("$a") ;; esac
    done
    ((${#names[@]})) || names=(REPLY)
    for a in "${names[@]}"; do printf -v "$a" '%s' "$__gate_mark"; done
    return 0
  fi
  # shellcheck disable=SC2162  # the snippet's own options
  builtin read "$@"
}
# Tools whose options differ between GNU and BSD/macOS (__GATE_RECORD: runbook/data/portable.py's
# TOOLS): each call's argv is recorded as bash expanded it, then the call goes on as before.
__gate_record() { printf '%s\0' TOOL "$(__gate_where)" "$#" "$@" >> "$__GATE_CALLS"; }
for __t in $__GATE_RECORD; do
  if declare -F "$__t" >/dev/null; then  # already a function above: keep it under another name
    __f=$(declare -f "$__t"); eval "__gate_orig_$__f"
    eval "$__t() { __gate_record $__t \"\$@\"; __gate_orig_$__t \"\$@\"; }"
  else
    eval "$__t() { __gate_record $__t \"\$@\"; builtin command $__t \"\$@\"; }"
  fi
done
unset __t __f
# errexit/nounset would stop the expansion at the first harmless failure.
set -o functrace
trap 'builtin set +eu' DEBUG
# shellcheck source=/dev/null
source "$__GATE_SNIPPET"
