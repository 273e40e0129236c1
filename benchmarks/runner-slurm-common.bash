# What benchmarks/runner-slurm and benchmarks/runner-slurm-ssh share (sourced by both).
#
# The caller runs from the repository, as root, with ROOT (a folder made anew),
# PORT, PYTHON (a tox env's python, /usr/bin/python3-based, that every account
# can run) and DB (a database made anew) set, exports the FRACTAL_* settings of
# its backend, and calls in this order:
#
#   bench_prepare                       $ROOT with a world-readable copy of the mock
#                                       tasks ($ROOT/tasks) and $ROOT/server/slurm_config.json
#   bench_start_server [NAME=VALUE...]  the server as fractal-svc (setpriv), output in
#                                       $ROOT/server.log, stopped when the caller exits;
#                                       NAME=VALUE go into its environment only
#   bench_user_settings JSON            PATCH the default admin's user settings
#   bench_run [runner.py options...]    runner.py against the server, its task commands
#                                       /usr/bin/python3 -S <$ROOT/tasks/script>
SVC=fractal-svc

bench_prepare() {
    rm -rf "$ROOT"
    install -d -m 755 "$ROOT" "$ROOT/bin"
    install -d -m 755 -o "$SVC" -g "$SVC" "$ROOT/server"
    cp -r tests/mock_tasks/fractal_tasks_mock "$ROOT/tasks"
    chmod -R a+rX "$ROOT/tasks"
    # One SLURM job per phase, running its calls two at a time (the node's two CPUs).
    cat > "$ROOT/server/slurm_config.json" <<JSON
{
  "default_slurm_config": {"partition": "main", "cpus_per_task": 1, "mem": "100M"},
  "batching_config": {
    "target_cpus_per_job": 2, "max_cpus_per_job": 2,
    "target_mem_per_job": "1G", "max_mem_per_job": "1G",
    "target_num_jobs": 1, "max_num_jobs": 1
  }
}
JSON
}

bench_start_server() {
    psql -q -h 127.0.0.1 -U postgres -c "DROP DATABASE IF EXISTS $DB" -c "CREATE DATABASE $DB"
    export POSTGRES_DB=$DB POSTGRES_HOST=127.0.0.1 POSTGRES_USER=postgres \
        JWT_SECRET_KEY=a-benchmark-secret-key-that-is-long-enough \
        FRACTAL_TASKS_DIR=$ROOT/server/tasks FRACTAL_RUNNER_WORKING_BASE_DIR=$ROOT/server/jobs \
        FRACTAL_SLURM_CONFIG_FILE=$ROOT/server/slurm_config.json \
        FRACTAL_SLURM_POLL_INTERVAL=${FRACTAL_SLURM_POLL_INTERVAL:-1}
    local as_svc=(setpriv --reuid=$SVC --regid=$SVC --init-groups --) bin
    bin=$(dirname "$PYTHON")
    (cd / && "${as_svc[@]}" "$bin/fractalctl" set-db)
    (cd / && env "$@" setsid "${as_svc[@]}" "$bin/fractalctl" start --port "$PORT" \
        > "$ROOT/server.log" 2>&1 < /dev/null) &
    for _ in $(seq 120); do
        SERVER_PID=$(pgrep -u $SVC -f "fractalctl start --port $PORT" | head -1 || true)
        curl -sf "http://127.0.0.1:$PORT/api/alive/" > /dev/null && break
        sleep 1
    done
    trap 'kill "$SERVER_PID"' EXIT
}

bench_user_settings() {
    "$PYTHON" - "$PORT" "$1" <<'PY'
import json, sys, requests
base, settings = f"http://127.0.0.1:{sys.argv[1]}", json.loads(sys.argv[2])
token = requests.post(f"{base}/auth/token/login/", data={"username": "admin@fractal.xy", "password": "1234"}).json()["access_token"]
headers = {"Authorization": f"Bearer {token}"}
me = requests.get(f"{base}/auth/current-user/", headers=headers).json()
requests.patch(f"{base}/auth/users/{me['id']}/settings/", json=settings, headers=headers).raise_for_status()
PY
}

bench_run() {
    "$PYTHON" benchmarks/runner.py --base-url "http://127.0.0.1:$PORT" --server-pid "$SERVER_PID" \
        --task-python "/usr/bin/python3 -S" --tasks-dir "$ROOT/tasks" "$@"
}
