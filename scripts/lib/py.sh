# Throwaway Python venv holding the real Python ADK stores the interop tests run against
# (tests/python/requirements.txt). Source this file, then call `py_venv`: it makes (or
# reuses, when the requirements are unchanged) the venv and exports SESSION_POOL_PYTHON.
#
# The venv lives in $SESSION_POOL_PYVENV (default target/pyvenv); PyPI must be reachable
# the first time.

py_venv() {
  local req=tests/python/requirements.txt
  local dir=${SESSION_POOL_PYVENV:-$PWD/target/pyvenv}
  local stamp; stamp=$(sha256sum "$req" | cut -d' ' -f1)
  if [ -x "$dir/bin/python" ] && [ "$(cat "$dir/.requirements" 2>/dev/null)" = "$stamp" ]; then
    export SESSION_POOL_PYTHON="$dir/bin/python"
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
  export SESSION_POOL_PYTHON="$dir/bin/python"
}
