#!/usr/bin/env bash
# Start a Ray head on this machine for `ray job submit`, secure by default (README: "Submit to a local cluster").
#
#   export RAY_AUTH_MODE=token
#   deploy/local/start-head.sh --dashboard-port=8265 --metrics-export-port=8080   # any other `ray start` options
#
# - Token authentication, required: the cluster's token is ~/.ray/auth_token, generated here if there is none,
#   and made mode 0600 (Ray writes it with the caller's umask, often 0644: readable by every user). The head
#   starts with RAY_AUTH_MODE=token, so the dashboard, the Jobs API and the cluster's gRPC services refuse any
#   request without the token. (Without a token, `ray start --head` runs with authentication disabled: anyone
#   who can reach the Jobs API can run a shell command on this machine.)
# - Bind addresses: the node's address is 127.0.0.1 and the dashboard and Jobs API listen on 127.0.0.1 only.
#   Ray 2.60 has no option to keep its GCS (--port, 6379), raylet, object manager, Ray Client server (10001)
#   and agent ports off the other interfaces: the token is what protects them; firewall those ports on a machine
#   that untrusted networks can reach. To add other machines to this cluster, give the machine's LAN address
#   (--node-ip-address=ADDR, after this script's own) and keep the token on every machine.
set -euo pipefail
umask 077
token="${HOME}/.ray/auth_token"
mkdir -p "${HOME}/.ray"
if [ ! -s "${token}" ]; then
    ray get-auth-token --generate > /dev/null
fi
chmod 600 "${token}"
export RAY_AUTH_MODE=token
exec ray start --head --node-ip-address=127.0.0.1 --dashboard-host=127.0.0.1 "$@"
