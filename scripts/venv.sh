# Shared by run.sh and test.sh: a virtual environment in .venv, installed
# from a requirements file, reinstalled only when that file changes.
VENV="${VENV:-.venv}"

_as_root() {
  if [[ $(id -u) -eq 0 ]]; then "$@"; elif command -v sudo >/dev/null; then sudo "$@"; else
    echo "need root to run: $*" >&2; return 1; fi
}

_apt_install() {
  _as_root apt-get update -qq && _as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@"
}

ensure_venv() {
  local requirements="$1" python
  python="$(command -v python3.11 || command -v python3)"
  if [[ ! -x "$VENV/bin/python" ]]; then
    if ! "$python" -m venv "$VENV" 2>/dev/null; then
      rm -rf "$VENV"
      echo "python3 -m venv failed: installing python3-venv" >&2
      _apt_install python3-venv
      "$python" -m venv "$VENV"
    fi
    "$VENV/bin/python" -m pip install -q --upgrade pip
  fi
  local stamp="$VENV/.installed-$(basename "$requirements")"
  local digest
  digest="$(cat requirements*.txt | sha256sum | cut -c1-16)"
  if [[ ! -f "$stamp" || "$(cat "$stamp")" != "$digest" ]]; then
    "$VENV/bin/python" -m pip install -q -r "$requirements"
    echo "$digest" > "$stamp"
  fi
}

ensure_chromium() {
  if ! command -v chromium >/dev/null || ! command -v chromedriver >/dev/null; then
    echo "installing chromium and chromium-driver for the browser tests" >&2
    _apt_install chromium chromium-driver
  fi
}

ensure_postgresql() {
  # The store tests also run on a throwaway PostgreSQL cluster (tests/pg.py); BUILDMON_TEST_POSTGRES=0 opts out.
  [[ "${BUILDMON_TEST_POSTGRES:-1}" == "0" ]] && return 0
  if ! command -v pg_ctl >/dev/null && ! compgen -G "/usr/lib/postgresql/*/bin/pg_ctl" >/dev/null; then
    echo "installing postgresql for the tests on PostgreSQL" >&2
    _apt_install postgresql
  fi
}
