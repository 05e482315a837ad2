#!/usr/bin/env python3
"""Logs carol in through the form, reads /app with the session, logs out; again and again until
SECONDS passed. Prints one JSON line of counts.  Usage: login_loop.py BASE_URL SECONDS"""
import http.cookiejar
import json
import re
import sys
import time
import urllib.error
import urllib.parse
import urllib.request

base, seconds = sys.argv[1], float(sys.argv[2])


class NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None


def csrf(html):
    m = re.search(r'name="csrf"[^>]*value="([^"]*)"', html) or re.search(
        r'value="([^"]*)"[^>]*name="csrf"', html)
    return m.group(1) if m else None


counts = {"cycles": 0, "login_ok": 0, "login_5xx": 0, "login_other": 0, "app_ok": 0,
          "app_other": 0, "logout_ok": 0, "logout_other": 0, "errors": 0, "statuses": {},
          "requests": 0, "t5xx": []}


def call(opener, url, data=None):
    req = urllib.request.Request(url, data=urllib.parse.urlencode(data).encode() if data else None)
    try:
        with opener.open(req, timeout=10) as r:
            status, body = r.status, r.read().decode(errors="replace")
    except urllib.error.HTTPError as e:
        status, body = e.code, e.read().decode(errors="replace")
    counts["statuses"][str(status)] = counts["statuses"].get(str(status), 0) + 1
    counts["requests"] += 1
    if status >= 500:
        counts["t5xx"].append(time.time())
    return status, body


end = time.time() + seconds
while time.time() < end:
    counts["cycles"] += 1
    jar = http.cookiejar.CookieJar()
    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar), NoRedirect)
    try:
        _, page = call(opener, base + "/_auth/login")
        status, _ = call(opener, base + "/_auth/login",
                         {"username": "carol", "password": "carol-pw", "csrf": csrf(page) or ""})
        if status == 303:
            counts["login_ok"] += 1
        elif status >= 500:
            counts["login_5xx"] += 1
            time.sleep(0.1)
            continue
        else:
            counts["login_other"] += 1
            continue
        status, _ = call(opener, base + "/app")
        counts["app_ok" if status == 200 else "app_other"] += 1
        _, page = call(opener, base + "/_auth/logout")
        status, _ = call(opener, base + "/_auth/logout", {"csrf": csrf(page) or ""})
        counts["logout_ok" if status == 303 else "logout_other"] += 1
    except Exception as e:  # noqa: BLE001 - any transport failure is counted, not fatal
        counts["errors"] += 1
        print(f"login loop: {e}", file=sys.stderr)
        time.sleep(0.1)
print(json.dumps(counts))
