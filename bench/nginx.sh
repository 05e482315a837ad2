# Sourced by bench/run.sh and bench/instructions.sh: starts an nginx in the foreground (daemon
# off, so its PID is ours to stop) with its temp paths inside $WORK.
# Needs: WORK, PIDS (array), CLIENT (bench/client.py command), die.
# Env: NGINX_MASTER (on; `off` runs the worker alone, e.g. under valgrind),
#      NGINX_START_SECONDS (10: how long to wait for it to answer),
#      NGINX_WORKERS (1: worker_processes).

start_nginx() { # name port location-block http-block [command prefix...]
    local name=$1 port=$2 location=$3 http_extra=$4
    shift 4
    local dir=$WORK/$name
    mkdir -p "$dir"
    cat >"$dir/nginx.conf" <<CONF
worker_processes ${NGINX_WORKERS:-1};
master_process ${NGINX_MASTER:-on};
daemon off;
pid $dir/nginx.pid;
error_log $dir/error.log warn;
events { worker_connections 4096; }
http {
    access_log off;
    client_body_temp_path $dir/body;
    proxy_temp_path $dir/proxy;
    fastcgi_temp_path $dir/fastcgi;
    uwsgi_temp_path $dir/uwsgi;
    scgi_temp_path $dir/scgi;
    keepalive_requests 1000000;
    $http_extra
    server {
        listen 127.0.0.1:$port;
        location / { $location }
    }
}
CONF
    "$@" nginx -p "$dir" -e "$dir/error.log" -c "$dir/nginx.conf" >"$dir/stdout.log" 2>&1 &
    PIDS+=("$!")
    "${CLIENT[@]}" wait-http "http://127.0.0.1:$port/" "${NGINX_START_SECONDS:-10}" ||
        die "$name nginx did not start: $(tail -n 5 "$dir/error.log" "$dir/stdout.log")"
}
