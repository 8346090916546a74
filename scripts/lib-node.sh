# Sourced by the scripts that need Node.js and npm (check-spec-types.sh,
# check-js-client.sh): one way to get them and to install a lock file.

# need_node FOR SKIPPED: makes node and npm (≥ 20) available, installing
# them through apt as root (saying so, for FOR). Without them: fails under
# CI, else prints "SKIPPED: SKIPPED" and exits the script with 0.
need_node() {
  local for=$1 skipped=$2
  if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
      echo "installing Node.js and npm through apt (Debian packages nodejs, npm) for $for"
      apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nodejs npm >/dev/null
    fi
  fi
  if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
    if [ -n "${CI:-}" ]; then
      echo "node and npm are missing and could not be installed: $for cannot run"; exit 1
    fi
    echo "SKIPPED: $skipped (install Node.js 20 with npm to run it)"
    exit 0
  fi
  local major
  major=$(node -p 'process.versions.node.split(".")[0]')
  if [ "$major" -lt 20 ]; then
    echo "node $(node --version) is older than 20, which $for needs"; exit 1
  fi
}

# npm_ci NAME: says what npm ci is about to install from the lock file of
# the current folder (NAME names it), then installs exactly that.
npm_ci() {
  node -e '
    const lock = require("./package-lock.json");
    const pkgs = lock.packages;
    const root = pkgs[""];
    const top = [...Object.keys(root.dependencies || {}), ...Object.keys(root.devDependencies || {})];
    const deps = Object.keys(pkgs).filter((k) => k !== "" && !top.some((n) => k === "node_modules/" + n));
    const optional = deps.filter((k) => pkgs[k].optional);
    console.log("npm ci (" + process.argv[1] + "): " +
      top.map((n) => n + "@" + pkgs["node_modules/" + n].version).join(", ") +
      ", " + (deps.length - optional.length) + " more they depend on" +
      (optional.length ? ", and of " + optional.length + " optional ones (one per platform) those for this platform" : "") +
      ", at the versions the lock file pins");
  ' "$1"
  npm ci --no-audit --no-fund --loglevel=error
}
