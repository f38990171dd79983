# Throwaway Python venvs holding the real Python stores the interop tests run against.
# Source this file, then call `py_venv`: it makes (or reuses, when the requirements are
# unchanged) these venvs and exports their interpreters:
#
# - SESSION_POOL_PYTHON: tests/python/requirements.txt (SQLSpec 0.41.1, the seed's layout;
#   google-adk; openai-agents), in $SESSION_POOL_PYVENV (default target/pyvenv);
# - SESSION_POOL_PYTHON_SQLSPEC_LATEST, _060, _050: tests/python/requirements-sqlspec-*.txt
#   (SQLSpec 0.69, 0.60 and 0.50, its three whole-event layouts; one SQLSpec per venv), in
#   target/pyvenv-sqlspec*;
# - SESSION_POOL_PYTHON_ADK1: tests/python/requirements-adk1.txt (google-adk 1.39.1, the
#   last 1.x), in target/pyvenv-adk1.
# These four are made side by side.
#
# PyPI must be reachable the first time.

py_venv() {
  py_venv_one tests/python/requirements.txt "${SESSION_POOL_PYVENV:-$PWD/target/pyvenv}" \
    SESSION_POOL_PYTHON || return 1
  local releases="sqlspec-latest:SESSION_POOL_PYTHON_SQLSPEC_LATEST:pyvenv-sqlspec
    sqlspec-060:SESSION_POOL_PYTHON_SQLSPEC_060:pyvenv-sqlspec-060
    sqlspec-050:SESSION_POOL_PYTHON_SQLSPEC_050:pyvenv-sqlspec-050
    adk1:SESSION_POOL_PYTHON_ADK1:pyvenv-adk1"
  local r tag var dir pids=() failed=0
  # Made in parallel (pip mostly waits on the network and unpacks), then each exported.
  for r in $releases; do
    IFS=: read -r tag var dir <<<"$r"
    py_venv_one "tests/python/requirements-$tag.txt" "$PWD/target/$dir" "$var" &
    pids+=($!)
  done
  for r in "${pids[@]}"; do wait "$r" || failed=1; done
  [ "$failed" -eq 0 ] || return 1
  for r in $releases; do
    IFS=: read -r tag var dir <<<"$r"
    py_venv_one "tests/python/requirements-$tag.txt" "$PWD/target/$dir" "$var" || return 1
  done
}

# py_venv_one REQUIREMENTS DIR VAR: the venv in DIR with REQUIREMENTS, its python in VAR.
py_venv_one() {
  local req=$1 dir=$2 var=$3
  local stamp; stamp=$(sha256sum "$req" | cut -d' ' -f1)
  if [ -x "$dir/bin/python" ] && [ "$(cat "$dir/.requirements" 2>/dev/null)" = "$stamp" ]; then
    export "$var=$dir/bin/python"
    return 0
  fi
  local py; py=$(command -v python3) || py=""
  if [ -z "$py" ] || ! "$py" -c 'import ensurepip, venv' >/dev/null 2>&1; then
    echo "py: installing python3 and venv" >&2
    if [ "$(id -u)" -ne 0 ]; then
      echo "py: python3 with venv is missing and installing it needs root" >&2
      return 1
    fi
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3 python3-venv >/dev/null
    py=$(command -v python3)
  fi
  rm -rf "$dir"
  "$py" -m venv "$dir" || return 1
  echo "py: installing $(grep -v '^#' "$req" | xargs) into $dir" >&2
  "$dir/bin/pip" install --quiet --disable-pip-version-check -r "$req" || return 1
  echo "$stamp" >"$dir/.requirements"
  export "$var=$dir/bin/python"
}
