# shellcheck shell=sh
# PostgreSQL in the Debian guest: the cluster, its server and the checks
# its authors wrote.  Sourced by fpb-init and pgload.
PG_BIN=/usr/lib/postgresql/15/bin
PG_DATA=/var/lib/fpb-pg
PG_LOG=/var/log/fpb-pg.log
PG_DB=bench
# pgbench's scale, written at provisioning
PG_SCALE_FILE=/var/lib/fpb-pg.scale

as_pg() {
	setpriv --reuid=postgres --regid=postgres --init-groups "$@"
}

pg_start() {
	mkdir -p /run/postgresql && chown postgres:postgres /run/postgresql
	as_pg "$PG_BIN/pg_ctl" -D "$PG_DATA" -l "$PG_LOG" -w -t 300 start >/dev/null
}

# A clean shutdown: every dirty buffer written back (checkpoint).
pg_stop() {
	as_pg "$PG_BIN/pg_ctl" -D "$PG_DATA" -m fast -w -t 300 stop >/dev/null
}

psql_q() {
	as_pg "$PG_BIN/psql" -X -q -A -t -v ON_ERROR_STOP=1 -d "$PG_DB" -c "$1"
}

# The cluster, with data checksums (every page read from disk is
# verified), and pgbench's tables at SCALE (16 MiB per unit of scale).
pg_provision() {
	mkdir -p "$PG_DATA" && chown postgres:postgres "$PG_DATA" &&
	: > "$PG_LOG" && chown postgres:postgres "$PG_LOG" &&
	as_pg "$PG_BIN/initdb" -D "$PG_DATA" --data-checksums -E UTF8 --locale=C.UTF-8 \
		-U postgres >/dev/null &&
	cat >> "$PG_DATA/postgresql.conf" <<-CONF &&
		listen_addresses = ''
		shared_buffers = 64MB
		max_wal_size = 256MB
		log_line_prefix = '%m [%p] '
		# the guest's clock may jump at a migration: no timeout is wanted
		idle_in_transaction_session_timeout = 0
	CONF
	pg_start &&
	as_pg "$PG_BIN/createdb" "$PG_DB" &&
	as_pg "$PG_BIN/pgbench" -q -i -s "$1" "$PG_DB" &&
	psql_q "CREATE EXTENSION amcheck" &&
	pg_stop &&
	echo "$1" > "$PG_SCALE_FILE"
}

# What PostgreSQL's own tools say about the data, printed as
# "fpb-pg: check ..." lines; returns non-zero on the first problem.
# COMMITTED: the transactions pgbench reported processed since
# provisioning.  pgbench's invariant: every transaction adds the same
# delta to one account, one teller and one branch, and appends it to
# the history; so the balances' sums agree with the history's, and the
# history holds one row per committed transaction (a lost one keeps
# the sums in step).
pg_check() {
	scale=$(cat "$PG_SCALE_FILE")
	row=$(psql_q "SELECT concat_ws(' ',
			(SELECT coalesce(sum(abalance), 0) FROM pgbench_accounts),
			(SELECT coalesce(sum(bbalance), 0) FROM pgbench_branches),
			(SELECT coalesce(sum(tbalance), 0) FROM pgbench_tellers),
			(SELECT coalesce(sum(delta), 0) FROM pgbench_history),
			(SELECT count(*) FROM pgbench_history),
			(SELECT count(*) FROM pgbench_accounts),
			(SELECT count(*) FROM pgbench_tellers),
			(SELECT count(*) FROM pgbench_branches))") || return 1
	# shellcheck disable=SC2086 # eight numbers, split on purpose
	set -- $row
	# that is: $1 = $2 = $3 = $4, history rows = COMMITTED, rows per table
	if [ $# != 8 ] || [ "$1" != "$2" ] || [ "$2" != "$3" ] || [ "$3" != "$4" ] ||
	   [ "$5" != "$COMMITTED" ] || [ "$6 $7 $8" != "$((100000 * scale)) $((10 * scale)) $scale" ]; then
		echo "fpb-pg: check pgbench's tables wrong: sums of account, branch, teller balances" \
			"and history deltas $1 $2 $3 $4; history rows $5 for $COMMITTED committed;" \
			"accounts, tellers, branches $6 $7 $8 at scale $scale"
		return 1
	fi
	echo "fpb-pg: check pgbench's balances agree ($1) over $5 transactions, all committed ones"
	out=$(as_pg "$PG_BIN/pg_amcheck" --heapallindexed --install-missing -d "$PG_DB" 2>&1) || {
		echo "fpb-pg: check pg_amcheck: $out" | head -20
		return 1
	}
	echo "fpb-pg: check pg_amcheck --heapallindexed clean"
	# Offline: every page of every relation, against its checksum.
	pg_stop || { echo "fpb-pg: check the server did not stop"; return 1; }
	out=$(as_pg "$PG_BIN/pg_checksums" --check -D "$PG_DATA" 2>&1) || {
		echo "fpb-pg: check pg_checksums: $out" | head -20
		pg_start
		return 1
	}
	echo "fpb-pg: check pg_checksums: $(echo "$out" | grep -E 'Blocks scanned|Bad checksums' |
		tr -s ' \n' '  ')"
	pg_start || { echo "fpb-pg: check the server did not start again"; return 1; }
	bad=$(grep -E 'ERROR|FATAL|PANIC|terminated by signal|not properly shut down' "$PG_LOG" |
	      head -5)
	[ -z "$bad" ] || { echo "fpb-pg: check server log: $bad"; return 1; }
	echo "fpb-pg: check server log: no error, crash or recovery ($(wc -l < "$PG_LOG") lines)"
}
