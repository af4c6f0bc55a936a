#!/usr/bin/env bash
# The development secrets `make run` uses: generated once into DIR, readable by their owner only
# (directory 0700, files 0600, including files an older version wrote 0644), and printed on
# stdout as `export` lines for the caller to eval. A variable already set in the environment wins
# and no file is written for it. Notes for the person running it go to stderr.
set -euo pipefail
dir=${1:?usage: dev-secrets.sh DIR}
umask 077
mkdir -p "$dir"
chmod 0700 "$dir"

whsec() { echo "whsec_$(head -c 32 /dev/urandom | base64)"; }
token() { head -c 24 /dev/urandom | base64 | tr -d '/+='; }
key() { head -c 32 /dev/urandom | base64 | tr -d '/+='; }

# emit VAR FILE GENERATOR NOTE [show]: the variable's value, from the environment or FILE.
emit() {
    local var=$1 file=$dir/$2 generate=$3 note=$4 show=${5:-}
    if [ -n "${!var:-}" ]; then
        printf 'export %s=%q\n' "$var" "${!var}"
        return
    fi
    [ -s "$file" ] || "$generate" > "$file"
    chmod 0600 "$file"
    local value
    value=$(cat "$file")
    echo "$note (from $file)" >&2
    [ -z "$show" ] || echo "  export $var=$value" >&2
    printf 'export %s=%q\n' "$var" "$value"
}

emit SWITCHBOARD_DEMO_WEBHOOK_SECRET demo-webhook-secret whsec "development secret for webhook source 'demo'" show
emit SWITCHBOARD_DEMO_AGENT_TOKEN demo-agent-token token "agent API token for demo-agent" show
emit SWITCHBOARD_DEMO_AGENT_SECRET demo-agent-secret whsec "signing secret of demo-agent's helpdesk endpoint (the demo inbox)"
emit SWITCHBOARD_WEBCHAT_SECRET webchat-secret key "web chat demo page: http://127.0.0.1:8080/chat/demo, session key"
