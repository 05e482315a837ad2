#!/usr/bin/env python3
"""HTTP chores for bench/run.sh, with the standard library only.

  client.py free-port                       print a free TCP port on 127.0.0.1
  client.py wait-http URL SECONDS           exit 0 once URL answers (any status), 1 on timeout
  client.py login BASE USER PASSWORD COOKIE print the session cookie value after logging in
  client.py basic-headers HTPASSWD_USERS    print one `Basic ...` header value per user line
  client.py warm-up URL HEADERS SECONDS     send each Authorization header once (in parallel)
  client.py hold URL COOKIE N PID          open N keep-alive connections, one request each,
                                            print the gateway's VmRSS (kB) with them all open
"""

import base64
import concurrent.futures
import html
import http.client
import re
import socket
import sys
import time
import urllib.parse


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        print(s.getsockname()[1])


def request(url, method="GET", headers=None, body=None, timeout=10):
    u = urllib.parse.urlsplit(url)
    conn = http.client.HTTPConnection(u.hostname, u.port, timeout=timeout)
    try:
        path = (u.path or "/") + (f"?{u.query}" if u.query else "")
        conn.request(method, path, body=body, headers=headers or {})
        resp = conn.getresponse()
        return resp.status, resp.getheaders(), resp.read()
    finally:
        conn.close()


def wait_http(url, seconds):
    deadline = time.monotonic() + float(seconds)
    while time.monotonic() < deadline:
        try:
            request(url, timeout=1)
            return 0
        except OSError:
            time.sleep(0.2)
    return 1


def set_cookies(headers):
    """name -> value of every Set-Cookie."""
    out = {}
    for name, value in headers:
        if name.lower() == "set-cookie":
            pair = value.split(";", 1)[0]
            if "=" in pair:
                k, v = pair.split("=", 1)
                out[k.strip()] = v.strip()
    return out


def hidden_csrf_field(page):
    """(name, value) of the login form's hidden CSRF input, if any."""
    for tag in re.findall(r"<input\b[^>]*>", page, re.I):
        name = re.search(r'\bname\s*=\s*"([^"]*)"', tag, re.I)
        value = re.search(r'\bvalue\s*=\s*"([^"]*)"', tag, re.I)
        if name and value and "csrf" in name.group(1).lower():
            return html.unescape(name.group(1)), html.unescape(value.group(1))
    return None


def form_action(page, default):
    """The login form's `action`, or `default`."""
    for tag in re.findall(r"<form\b[^>]*>", page, re.I):
        action = re.search(r'\baction\s*=\s*"([^"]+)"', tag, re.I)
        if action:
            return html.unescape(action.group(1))
    return default


def login(base, user, password, cookie_name):
    """Logs in through the login form (GET for the CSRF token, then POST); falls back to one
    Basic request in case the gateway opens a session for it. Prints the cookie value."""
    base = base.rstrip("/")
    try:
        status, headers, body = request(f"{base}/_auth/login?next=/")
        if status == 200:
            cookies = set_cookies(headers)
            fields = {"username": user, "password": password, "next": "/"}
            page = body.decode("utf-8", "replace")
            csrf = hidden_csrf_field(page)
            action = urllib.parse.urljoin(f"{base}/_auth/login", form_action(page, "login"))
            if csrf:
                fields[csrf[0]] = csrf[1]
            req_headers = {"Content-Type": "application/x-www-form-urlencoded"}
            if cookies:
                req_headers["Cookie"] = "; ".join(f"{k}={v}" for k, v in cookies.items())
            status, headers, _ = request(
                action,
                method="POST",
                headers=req_headers,
                body=urllib.parse.urlencode(fields),
            )
            got = set_cookies(headers).get(cookie_name)
            if status in (200, 302, 303) and got:
                print(got)
                return 0
            print(f"login form: POST answered {status} without {cookie_name}", file=sys.stderr)
        else:
            print(f"login form: GET /_auth/login answered {status}", file=sys.stderr)
    except OSError as e:
        print(f"login form: {e}", file=sys.stderr)

    token = base64.b64encode(f"{user}:{password}".encode()).decode()
    status, headers, _ = request(f"{base}/", headers={"Authorization": f"Basic {token}"})
    got = set_cookies(headers).get(cookie_name)
    if got:
        print(got)
        return 0
    print(f"basic: answered {status} without a {cookie_name} cookie", file=sys.stderr)
    return 1


def basic_headers(users_file):
    """Lines `user:password` -> `Basic base64(user:password)`."""
    with open(users_file, encoding="utf-8") as f:
        for line in f:
            line = line.rstrip("\n")
            if line:
                print("Basic " + base64.b64encode(line.encode()).decode())


def warm_up(url, headers_file, seconds):
    with open(headers_file, encoding="utf-8") as f:
        values = [line.rstrip("\n") for line in f if line.strip()]
    deadline = time.monotonic() + float(seconds)
    statuses = {}

    def one(value):
        if time.monotonic() > deadline:
            return "skipped"
        try:
            return request(url, headers={"Authorization": value}, timeout=30)[0]
        except OSError as e:
            return type(e).__name__

    with concurrent.futures.ThreadPoolExecutor(max_workers=8) as pool:
        for result in pool.map(one, values):
            statuses[result] = statuses.get(result, 0) + 1
    summary = ", ".join(f"{k}: {v}" for k, v in sorted(statuses.items(), key=str))
    print(f"{len(values)} users -> {summary}")
    return 0 if set(statuses) == {200} else 1


def hold(url, cookie, count, pid):
    """Opens `count` connections, sends one authenticated GET on each (so each connection has
    gone through the whole request path), keeps them all open and idle, and prints the
    process's VmRSS in kB before and with them open."""
    import resource

    count = int(count)
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < count + 64:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, count + 64), hard))
    pid = int(pid)

    def rss():
        with open(f"/proc/{pid}/status", encoding="utf-8") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
        return -1

    before = rss()
    u = urllib.parse.urlsplit(url)
    raw = (
        f"GET {u.path or '/'} HTTP/1.1\r\nHost: {u.hostname}:{u.port}\r\n"
        f"Cookie: {cookie}\r\n\r\n"
    ).encode()
    socks, ok = [], 0
    try:
        for _ in range(count):
            s = socket.create_connection((u.hostname, u.port), timeout=10)
            socks.append(s)
            s.sendall(raw)
        for s in socks:
            head = s.recv(65536)
            if head.startswith(b"HTTP/1.1 200"):
                ok += 1
        time.sleep(1)
        with_open = rss()
        print(f"rss_before_kb={before} rss_open_kb={with_open} connections={len(socks)} ok={ok}")
    finally:
        for s in socks:
            s.close()
    return 0 if ok == count else 1


def main(argv):
    cmd, args = argv[1], argv[2:]
    if cmd == "free-port":
        free_port()
        return 0
    if cmd == "wait-http":
        return wait_http(*args)
    if cmd == "login":
        return login(*args)
    if cmd == "basic-headers":
        basic_headers(*args)
        return 0
    if cmd == "warm-up":
        return warm_up(*args)
    if cmd == "hold":
        return hold(*args)
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
