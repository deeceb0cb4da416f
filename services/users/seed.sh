#!/usr/bin/env bash
# Fill the users table of a running stack up to STACKPROBE_ROWS rows: generated names streamed through
# psql's \copy in the db container (COPY, one statement, no round trip per row). It only adds rows: a
# table that already holds as many is left as it is. The table is the service's own, created when it
# first starts, so the stack must be up.
#
#   STACKPROBE_ROWS=1000000 services/users/seed.sh    the stack `make up` started (this folder's compose file)
#   stackprobe grow --rows 1k,1m                       runs it before each size, on the run's own stack
#
# stackprobe sets STACKPROBE_PROJECT, STACKPROBE_ROWS, STACKPROBE_SERVICE_URL and COMPOSE_FILE (the run's
# compose files), so `docker compose -p "$STACKPROBE_PROJECT" exec -T db ...` reaches the run's database.
set -euo pipefail

rows=${STACKPROBE_ROWS:?set STACKPROBE_ROWS to the number of rows the users table must hold}
if ! [[ $rows =~ ^[0-9]+$ ]]; then
  echo "seed.sh: STACKPROBE_ROWS must be a whole number of rows, not '$rows'" >&2
  exit 2
fi

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
compose=(docker compose)
if [[ -n ${STACKPROBE_PROJECT:-} ]]; then
  compose+=(--project-name "$STACKPROBE_PROJECT")
fi
if [[ -z ${COMPOSE_FILE:-} ]]; then
  compose+=(--file "$here/../../docker-compose.yml")
fi

# psql inside the db container, as the database's own user (from that container's environment).
psql_in_db() {
  # shellcheck disable=SC2016 # expanded by the container's shell, not this one
  "${compose[@]}" exec -T db sh -c \
    'exec psql -X -v ON_ERROR_STOP=1 -qtA -U "$POSTGRES_USER" -d "$POSTGRES_DB" "$@"' psql "$@"
}

if [[ $(psql_in_db -c "SELECT to_regclass('users') IS NOT NULL") != t ]]; then
  echo "seed.sh: the database has no users table yet; the users service creates it when it starts" >&2
  exit 1
fi
have=$(psql_in_db -c 'SELECT count(*) FROM users')
if ((have >= rows)); then
  echo "users: ${have} rows already (asked for ${rows}); nothing added"
  exit 0
fi

started=$SECONDS
awk -v from="$((have + 1))" -v to="$rows" 'BEGIN { for (i = from; i <= to; i++) print "seeded user " i }' |
  psql_in_db -c '\copy users (name) FROM pstdin'
# Fresh statistics, so the planner sees the table at its new size from the first request.
psql_in_db -c 'ANALYZE users'
echo "users: ${rows} rows (added $((rows - have)) in $((SECONDS - started)) s)"
