#!/usr/bin/env python3
"""The soak's `http` backend: POST /authenticate {"username","password"} -> 200 JSON user for
carol/carol-pw, 401 for a wrong password, 404 for anyone else.  Usage: auth_service.py PORT"""
import json
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("content-length", "0") or 0))
        try:
            creds = json.loads(body)
        except ValueError:
            creds = {}
        if creds.get("username") == "carol":
            if creds.get("password") == "carol-pw":
                status, answer = 200, {"authenticated": True, "username": "carol",
                                       "email": "carol@example.org", "cv": "x"}
            else:
                status, answer = 401, {}
        else:
            status, answer = 404, {}
        out = json.dumps(answer).encode()
        self.send_response(status)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(out)))
        self.end_headers()
        self.wfile.write(out)

    def log_message(self, *args):
        pass


ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), Handler).serve_forever()
