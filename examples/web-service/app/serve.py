"""A tiny service for the web-service example: GET /healthz answers 200 {"status": "ok"}."""
import http.server
import json
import sys


class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        if self.path == "/healthz":
            body = json.dumps({"status": "ok"}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
            print(f"GET {self.path} 200", file=sys.stderr, flush=True)
        else:
            self.send_response(404)
            self.send_header("Content-Length", "0")
            self.end_headers()
            print(f"GET {self.path} 404", file=sys.stderr, flush=True)

    def log_message(self, *args):
        pass


if __name__ == "__main__":
    port = int(sys.argv[1]) if len(sys.argv) > 1 else 8080
    http.server.ThreadingHTTPServer(("127.0.0.1", port), Handler).serve_forever()
