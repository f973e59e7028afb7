# The one option parser of every recipe and data_prep/ script (the role of ESPnet's utils/parse_options.sh).
# Sourcing it only defines functions (no install, no PATH change), so `--help` answers at once. Usage:
#
#   source "$(dirname "$0")/../parse_options.sh"
#   option stage 1 "first stage to run"                  # --stage N sets $stage (default 1)
#   option langs "" "languages, e.g. \"de fr\""           # --langs "de fr" sets $langs
#   option_list train_opt "KEY=VALUE for asrprune train"  # repeatable: each --train_opt X appends X to ${train_opt[@]}
#   pass_through asr_opts ../asr.sh langs                 # optional, see below
#   parse_options "$@"
#   [ -n "$langs" ] || usage_error "--langs is required"
#
# - `--name value` and `--name=value` set the variable `name`; dashes in the name read as underscores
#   (--stop-stage = --stop_stage). A later value replaces an earlier one, except for option_list options.
# - An option that is not declared is an error that names it and lists the known ones.
# - pass_through ARRAY SCRIPT [OPTION...] (SCRIPT relative to the calling script's folder): the options of the
#   nested SCRIPT that this script does not declare itself are accepted too, and kept with their values, in order,
#   in ARRAY, for the script to hand on (../asr.sh ... "${asr_opts[@]}"). The OPTIONs named after SCRIPT are not
#   passed: the calling script sets them itself. SCRIPT's options are read from its --help, so a misspelt option
#   fails here, before any stage runs.
# - `--help` prints the script's header comment (its comment lines after #!) and its options with their defaults
#   (and those passed through), then exits 0. A usage error exits 2.
# - To hand an option_list on to another command, one flag per value: "${train_opt[@]/#/--set=}" expands to
#   --set=A --set=B ... (to nothing when the list is empty).

_option_names=()        # in declaration order, for --help and for the "known options" of an error
declare -A _option_help=()
_pass_array=""          # pass_through's array, nested script and the options not passed
_pass_script=""
_pass_except=()

# option NAME DEFAULT DESCRIPTION: declare an option --NAME and its variable NAME (set to DEFAULT).
option() {
  _option_names+=("$1")
  _option_help[$1]=$3
  printf -v "$1" '%s' "$2"
}

# option_list NAME DESCRIPTION: declare a repeatable option --NAME; every use appends its value to array NAME.
option_list() {
  _option_names+=("$1")
  _option_help[$1]="$2 (repeatable)"
  declare -g -a "$1=()"
}

# pass_through ARRAY SCRIPT [OPTION...]: see the top of this file.
pass_through() {
  _pass_array=$1
  _pass_script=$2
  shift 2
  _pass_except=("$@")
  declare -g -a "$_pass_array=()"
}

# usage_error MESSAGE: print "<script>: MESSAGE (see <script> --help)" on stderr and exit 2.
usage_error() {
  echo "$(basename "$0"): $* (see $0 --help)" >&2
  exit 2
}

# _is_array NAME: whether variable NAME is an array (an option_list option).
_is_array() {
  [[ "$(declare -p "$1" 2>/dev/null)" == "declare -a"* ]]
}

# _option_lines: one line per option, "  --name  description [default: "value"]" (the current value is the default
# while nothing is parsed yet, which is when --help is handled).
_option_lines() {
  local name
  for name in "${_option_names[@]}"; do
    if _is_array "$name"; then
      printf '  --%-20s %s\n' "$name" "${_option_help[$name]}"
    else
      printf '  --%-20s %s [default: "%s"]\n' "$name" "${_option_help[$name]}" "${!name}"
    fi
  done
}

# _passed_lines: the option lines of the nested script (from its --help) that this script passes on.
_passed_lines() {
  local line name
  "$(dirname "$0")/$_pass_script" --help | sed -n '/^Options:$/,/^$/p' | while IFS= read -r line; do
    [[ "$line" =~ ^\ \ --([A-Za-z0-9_]+) ]] || continue
    name=${BASH_REMATCH[1]}
    [ -z "${_option_help[$name]+set}" ] || continue
    [[ " ${_pass_except[*]} " != *" $name "* ]] || continue
    echo "$line"
  done
}

_print_help() {
  sed -n '2,/^[^#]/{/^#/!d;s/^# \{0,1\}//;p}' "$0"
  echo
  echo "Options:"
  _option_lines
  if [ -n "$_pass_script" ]; then
    echo
    echo "Passed on to $_pass_script:"
    _passed_lines
  fi
}

# parse_options "$@": set the declared variables from the command line (see the top of this file).
parse_options() {
  local arg name value passed="" known
  while [ $# -gt 0 ]; do
    arg=$1
    shift
    case "$arg" in
      -h|--help) _print_help; exit 0 ;;
      --*) name=${arg%%=*}; name=${name#--}; name=${name//-/_} ;;
      *) usage_error "unexpected argument '$arg' (options are --name value)" ;;
    esac
    if [ -n "$_pass_script" ] && [ -z "$passed" ]; then
      passed=$(_passed_lines | sed 's/^  --\([A-Za-z0-9_]*\).*/\1/')
    fi
    if [ -z "${_option_help[$name]+set}" ] && ! grep -qx "$name" <<< "$passed"; then
      known=$(printf ' --%s' "${_option_names[@]}")
      [ -z "$passed" ] || known="$known; passed on to $_pass_script:$(printf ' --%s' $passed)"
      usage_error "unknown option --$name (known:$known)"
    fi
    if [[ "$arg" == *=* ]]; then
      value=${arg#*=}
    else
      [ $# -gt 0 ] || usage_error "option $arg needs a value"
      value=$1
      shift
    fi
    if [ -z "${_option_help[$name]+set}" ]; then
      local -n _pass=$_pass_array
      _pass+=("--$name" "$value")
      unset -n _pass
    elif _is_array "$name"; then
      local -n _list=$name
      _list+=("$value")
      unset -n _list
    else
      printf -v "$name" '%s' "$value"
    fi
  done
}
