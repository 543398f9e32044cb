#!/usr/bin/env bash
# The contract checks: the served OpenAPI document against the tools its users point at it.
#
#   tests/contract/run.sh [WORD]     (WORD: run only the checks whose name contains it)
#
# Installs what it needs (idempotently: Chromium and a Java runtime from Debian, a Python
# venv under target/contract/ from requirements.txt, `npm ci` from package-lock.json),
# builds target/debug/gatehouse, starts each service it needs on a free port with a fresh
# SQLite database, runs every check, and exits non-zero if any failed. Every tool reads
# the document from the running service's /openapi.json, as a user would, with no
# preprocessing. Screenshots and reports go to target/contract-artifacts/.
set -euo pipefail
cd "$(dirname "$0")/../.."
root=$PWD
here=$root/tests/contract
work=$root/target/contract
artifacts=$root/target/contract-artifacts
bin=$root/target/debug/gatehouse
only=${1:-}
# The Python tests import from tests/contract/python/: leave no __pycache__ there.
export PYTHONDONTWRITEBYTECODE=1
mkdir -p "$work/logs" "$artifacts"

# ---------------------------------------------------------------------------- tools

apt_install() {
  echo "== installing $* (Debian)"
  export DEBIAN_FRONTEND=noninteractive
  apt-get install -y -o DPkg::Lock::Timeout=600 "$@" ||
    { apt-get update && apt-get install -y -o DPkg::Lock::Timeout=600 "$@"; }
}

install_tools() {
  [ -x /usr/bin/chromium ] || apt_install chromium
  # openapi-generator is a Java program (the PyPI package bundles its jar).
  command -v java >/dev/null || apt_install default-jre-headless

  local venv=$work/venv
  if ! cmp -s "$here/requirements.txt" "$venv/requirements.txt"; then
    echo "== installing Python tools into $venv"
    rm -rf "$venv"
    python3 -m venv "$venv"
    "$venv/bin/pip" install --quiet --disable-pip-version-check -r "$here/requirements.txt"
    cp "$here/requirements.txt" "$venv/requirements.txt"
  fi

  if ! cmp -s "$here/package-lock.json" "$here/node_modules/.package-lock.json.installed"; then
    echo "== installing Node tools (npm ci)"
    (cd "$here" && npm ci --no-audit --no-fund --loglevel=error)
    cp "$here/package-lock.json" "$here/node_modules/.package-lock.json.installed"
  fi

  echo "== building target/debug/gatehouse"
  cargo build --locked --quiet --bin gatehouse
}

# ------------------------------------------------------------------------- services

pids=()
cleanup() {
  for pid in "${pids[@]}"; do
    kill "$pid" 2>/dev/null || true
  done
  wait 2>/dev/null || true
  rm -rf "$work/db"
}
trap cleanup EXIT

# start_service NAME [VAR=VALUE...]: `gatehouse serve --demo` on a free port with a fresh
# database; sets $url to its base URL.
start_service() {
  local name=$1
  shift
  local log=$work/logs/$name.log
  # Emptied here, not by the redirection below: that runs in the background job and
  # could come after the first look for the address, which would find the last run's.
  : >"$log"
  rm -rf "$work/db/$name" && mkdir -p "$work/db/$name"
  env SECRET_KEY=contract-checks-secret-key-not-for-production-0123 \
    DATABASE_URL="sqlite://$work/db/$name/gatehouse.db?mode=rwc" \
    LOG_FORMAT=json RUST_LOG=info "$@" \
    "$bin" serve --demo --bind 127.0.0.1:0 >"$log" 2>&1 &
  pids+=($!)
  local addr=""
  for _ in $(seq 100); do
    addr=$(grep '"gatehouse listening"' "$log" | sed -n 's/.*"addr":"\([0-9.:]*\)".*/\1/p' || true)
    [ -n "$addr" ] && break
    sleep 0.1
  done
  if [ -z "$addr" ]; then
    echo "service $name did not start:" >&2
    cat "$log" >&2
    return 1
  fi
  url=http://$addr
  # With METRICS_BIND, the metrics listener's address follows in the log.
  metrics_url=""
  if [[ " $* " == *" METRICS_BIND="* ]]; then
    for _ in $(seq 100); do
      addr=$(grep '"metrics listening"' "$log" | sed -n 's/.*"addr":"\([0-9.:]*\)".*/\1/p' || true)
      [ -n "$addr" ] && break
      sleep 0.1
    done
    metrics_url=http://$addr
  fi
}

# start_proxy PREFIX UPSTREAM_URL: serves the upstream under PREFIX; sets $url.
start_proxy() {
  local port_file=$work/proxy.port
  rm -f "$port_file"
  "$work/venv/bin/python" "$here/proxy.py" "$1" "${2##*:}" "$port_file" \
    2>"$work/logs/proxy.log" &
  pids+=($!)
  for _ in $(seq 100); do
    [ -s "$port_file" ] && break
    sleep 0.1
  done
  url=http://127.0.0.1:$(cat "$port_file")$1
}

# start_smtp_sink: aiosmtpd on a free port, saving every mail to the Maildir $maildir
# (which it creates: it must not exist before); sets $smtp_url.
start_smtp_sink() {
  maildir=$work/maildir
  rm -rf "$maildir"
  local port
  port=$("$work/venv/bin/python" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
  # -n: do not drop privileges (it would run as nobody, who cannot write the Maildir).
  "$work/venv/bin/python" -m aiosmtpd -n -l "127.0.0.1:$port" \
    -c aiosmtpd.handlers.Mailbox "$maildir" >"$work/logs/aiosmtpd.log" 2>&1 &
  pids+=($!)
  for _ in $(seq 100); do
    (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break
    sleep 0.1
  done
  smtp_url=smtp://127.0.0.1:$port
}

# --------------------------------------------------------------------------- checks

passed=0
failed=0
failures=()
# check NAME COMMAND...: runs one check, records its outcome and time, never stops the run.
check() {
  local name=$1
  shift
  if [ -n "$only" ] && [[ $name != *"$only"* ]]; then
    return 0
  fi
  echo
  echo "== $name"
  local start=$SECONDS
  if "$@"; then
    passed=$((passed + 1))
    echo "-- $name: ok ($((SECONDS - start)) s)"
  else
    failed=$((failed + 1))
    failures+=("$name")
    echo "-- $name: FAILED ($((SECONDS - start)) s)"
  fi
}

spec_is_valid_openapi() {
  # The validator reads files only: it gets the served document on stdin.
  "$work/venv/bin/python" -c 'import sys, urllib.request
sys.stdout.buffer.write(urllib.request.urlopen(sys.argv[1]).read())' "$url/openapi.json" |
    "$work/venv/bin/openapi-spec-validator" -
}

spec_passes_the_linter() {
  # No usage telemetry or update check: the run talks to nothing but this machine.
  (cd "$here" && REDOCLY_TELEMETRY=off REDOCLY_SUPPRESS_UPDATE_NOTICE=true \
    node_modules/.bin/redocly lint --config redocly.yaml --format stylish "$url/openapi.json")
}

# The generators run as docs/clients.md tells a user to run them, on the served document.
python_client_logs_in() {
  local out=$work/python
  rm -rf "$out" && mkdir -p "$out" &&
    (cd "$out" && PATH=$work/venv/bin:$PATH openapi-python-client generate \
      --url "$url/openapi.json" --meta none --output-path gatehouse_client) &&
    GATEHOUSE_URL=$url PYTHONPATH=$out:$here/python \
      "$work/venv/bin/python" -m pytest -q -p no:cacheprovider "$here/python"
}

# Real OAuth client libraries (Authlib, requests-oauthlib) through the password grant,
# refresh rotation, reuse detection and revocation (tests/contract/oauth/).
oauth_clients_run_the_token_lifecycle() {
  GATEHOUSE_URL=$url "$work/venv/bin/python" -m pytest -q -p no:cacheprovider "$here/oauth"
}

# A resource server with only the JWKS URL (PyJWT's PyJWKClient), before and after
# `gatehouse keys rotate`; Authlib validates the RFC 8414 metadata
# (tests/contract/resource_server/).
# Signup -> verify -> login and forgot -> reset -> login, the mail read from aiosmtpd's
# Maildir, the link's page submitted, Authlib signing in (tests/contract/accounts/).
accounts_sign_up_verify_and_reset_through_a_real_relay() {
  GATEHOUSE_URL=$url GATEHOUSE_PUBLIC_URL=$public_url MAILDIR=$maildir \
    "$work/venv/bin/python" -m pytest -q -p no:cacheprovider "$here/accounts"
}

resource_server_verifies_with_the_jwks() {
  GATEHOUSE_URL=$url GATEHOUSE_BIN=$bin \
    DATABASE_URL="sqlite://$work/db/eddsa/gatehouse.db?mode=rwc" \
    PYTHONPATH=$here/resource_server \
    "$work/venv/bin/python" -m pytest -q -p no:cacheprovider "$here/resource_server"
}

openapi_generator_python_client_logs_in() {
  local out=$work/python-generator
  rm -rf "$out" && mkdir -p "$out" &&
    "$work/venv/bin/openapi-generator-cli" generate --input-spec "$url/openapi.json" \
      --generator-name python --package-name gatehouse_openapi_client --output "$out" \
      >"$work/logs/openapi-generator.log" 2>&1 &&
    GATEHOUSE_URL=$url PYTHONPATH=$out:$here/python-generator \
      "$work/venv/bin/python" -m pytest -q -p no:cacheprovider "$here/python-generator" ||
    { tail -n 20 "$work/logs/openapi-generator.log"; return 1; }
}

typescript_client_logs_in() {
  local out=$work/typescript
  rm -rf "$out" && mkdir -p "$out"
  (cd "$here" &&
    node_modules/.bin/openapi-typescript "$url/openapi.json" -o typescript/api.d.ts &&
    node_modules/.bin/tsc -p typescript) || return 1
  # The compiled tests run from target/: they are ES modules and import openapi-fetch.
  echo '{"type": "module"}' >"$out/out/package.json" &&
    ln -sfn "$here/node_modules" "$out/node_modules" &&
    GATEHOUSE_URL=$url node --test "$out/out/"
}

# Sign in with gatehouse (SPEC §12): Authlib, requests-oauthlib and a browser played with
# requests through the authorization-code flow with PKCE and OpenID Connect
# (tests/contract/oidc/); $algorithm is the id tokens' algorithm the checks expect.
oidc_python_clients_sign_in() {
  GATEHOUSE_URL=$url GATEHOUSE_ALGORITHM=$algorithm PYTHONPATH=$here/oidc \
    "$work/venv/bin/python" -m pytest -q -p no:cacheprovider "$here/oidc"
}

# The same flow through openid-client (Node), the login page driven with fetch.
oidc_openid_client_signs_in() {
  (cd "$here" && GATEHOUSE_URL=$url GATEHOUSE_ALGORITHM=$algorithm node --test oidc/openid-client.mjs)
}

# The login and consent pages in headless Chromium, back to a client served by the test.
browser_signs_in() {
  (cd "$here" && GATEHOUSE_URL=$url SCREENSHOTS=$artifacts/$1 node --test browser/sign-in.mjs)
}

# sign_in_checks ALGORITHM: the sign-in checks on a service signing with ALGORITHM.
sign_in_checks() {
  algorithm=$1
  start_service "sign-in-${algorithm,,}" JWT_ALGORITHM="$algorithm"
  check "Sign in with gatehouse ($algorithm): Authlib and requests-oauthlib, code flow with PKCE and OpenID Connect" \
    oidc_python_clients_sign_in
  check "Sign in with gatehouse ($algorithm): openid-client (Node)" oidc_openid_client_signs_in
  check "Sign in with gatehouse ($algorithm): the login and consent pages in Chromium" \
    browser_signs_in "sign-in-${algorithm,,}"
}

swagger_ui_logs_in() {
  (cd "$here" && GATEHOUSE_URL=$url SCREENSHOTS=$artifacts/$1 node --test browser/swagger-ui.mjs)
}

metrics_parse_and_count_logins() {
  "$work/venv/bin/python" "$here/metrics.py" "$url" "$metrics_url"
}

redoc_renders() {
  (cd "$here" && GATEHOUSE_URL=$url SCREENSHOTS=$artifacts/$1 node --test browser/redoc.mjs)
}

schemathesis_finds_nothing() {
  local report=$artifacts/schemathesis
  rm -rf "$report" && mkdir -p "$report"
  # The client the client operations are fuzzed on, pinned beside fuzzed-user.
  sed "s|^\"path.username\" = \"fuzzed-user\"\$|&\n\"path.client_id\" = \"$fuzzed_client\"|" \
    "$here/schemathesis.toml" >"$work/schemathesis.toml"
  (cd "$work" && "$work/venv/bin/schemathesis" --config-file "$work/schemathesis.toml" \
    run "$url/openapi.json" --report junit,har --report-dir "$report" \
    --report-junit-path "$report/junit.xml" --report-har-path "$report/har.json") &&
    "$work/venv/bin/python" "$here/statuses_documented.py" "$url/openapi.json" "$report/har.json"
}

# ----------------------------------------------------------------------------- main

started=$SECONDS
install_tools
echo "tools: $(/usr/bin/chromium --version 2>/dev/null | head -n1); node $(node --version);" \
  "$("$work/venv/bin/schemathesis" --version)"

start_service clients METRICS_BIND=127.0.0.1:0
check "the served document is valid OpenAPI 3" spec_is_valid_openapi
check "the served document passes the linter (tests/contract/redocly.yaml)" spec_passes_the_linter
check "the Python client (openapi-python-client) logs in" python_client_logs_in
check "the Python client (openapi-generator, python) logs in" \
  openapi_generator_python_client_logs_in
check "the TypeScript client (openapi-typescript + openapi-fetch) logs in" typescript_client_logs_in
check "OAuth client libraries (Authlib, requests-oauthlib) log in, refresh and revoke" \
  oauth_clients_run_the_token_lifecycle
check "the metrics parse with prometheus_client and count logins" metrics_parse_and_count_logins
check "Swagger UI authorizes (password flow; code flow through the login page) and tries /users/me/" \
  swagger_ui_logs_in swagger-ui

start_smtp_sink
public_url=https://accounts.example.com/auth
start_service accounts SMTP_URL="$smtp_url" MAIL_FROM="gatehouse <noreply@accounts.example.com>" \
  PUBLIC_URL="$public_url" MAIL_RETRY_MAX_SECS=1
check "signup, verification and reset through aiosmtpd, read from its Maildir, signed in with Authlib" \
  accounts_sign_up_verify_and_reset_through_a_real_relay

start_service eddsa JWT_ALGORITHM=EdDSA JWKS_MAX_AGE_SECS=2
check "a resource server verifies tokens with only the JWKS URL, across keys rotate" \
  resource_server_verifies_with_the_jwks

# OpenID Connect needs asymmetric id tokens: RS256 (what relying parties expect) and EdDSA.
sign_in_checks RS256
sign_in_checks EdDSA

start_service behind-proxy ROOT_PATH=/auth
start_proxy /auth "$url"
check "Swagger UI behind a proxy under /auth" \
  swagger_ui_logs_in swagger-ui-behind-proxy
check "ReDoc behind a proxy under /auth" redoc_renders behind-proxy

# schemathesis sends many wrong logins: the brute-force limits must not stop it.
start_service fuzzing MAX_FAILED_LOGINS_PER_ACCOUNT=1000000 MAX_FAILED_LOGINS_PER_ADDRESS=1000000
# The user the admin API is fuzzed on (schemathesis.toml pins the username to it).
printf 'fuzzed-password\n' | DATABASE_URL="sqlite://$work/db/fuzzing/gatehouse.db?mode=rwc" \
  "$bin" user add fuzzed-user >/dev/null
# The OAuth client the client operations are fuzzed on (its id is random: see
# schemathesis_finds_nothing).
fuzzed_client=$(DATABASE_URL="sqlite://$work/db/fuzzing/gatehouse.db?mode=rwc" \
  "$bin" client add fuzzed-client --redirect-uri https://fuzzed.example/cb |
  sed -n 's/^client_id: //p')
check "schemathesis finds no failure and every status it sees is documented" \
  schemathesis_finds_nothing

echo
echo "== contract checks took $((SECONDS - started)) s; artifacts in target/contract-artifacts/"
for name in "${failures[@]}"; do
  echo "failed: $name"
done
echo "contract: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
