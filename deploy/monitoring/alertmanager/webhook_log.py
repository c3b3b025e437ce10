"""The default webhook receiver of deploy/monitoring/alertmanager/alertmanager.yml: each alert Alertmanager
posts is written to stdout as one JSON line (status, name, severity, labels, summary, since). Standard
library only, so it runs in a plain python image. Port: ALERT_LOG_PORT (default 9095), address ALERT_LOG_HOST (default all)."""

import json
import os
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class Receiver(BaseHTTPRequestHandler):
    def do_POST(self) -> None:  # noqa: N802 - http.server's name
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        try:
            alerts = json.loads(body or b"{}").get("alerts", [])
        except ValueError:
            self.send_response(400)
            self.end_headers()
            return
        for alert in alerts:
            labels = alert.get("labels", {})
            line = {
                "status": alert.get("status"),
                "alert": labels.get("alertname"),
                "severity": labels.get("severity"),
                "labels": labels,
                "summary": alert.get("annotations", {}).get("summary"),
                "since": alert.get("startsAt"),
            }
            print(json.dumps(line, ensure_ascii=False), flush=True)
        self.send_response(200)
        self.end_headers()

    def log_message(self, *args: object) -> None:  # one line per alert is enough
        return


if __name__ == "__main__":
    port = int(os.environ.get("ALERT_LOG_PORT") or 9095)
    print(f"alert-log listening on :{port}", file=sys.stderr, flush=True)
    host = os.environ.get("ALERT_LOG_HOST") or "0.0.0.0"
    ThreadingHTTPServer((host, port), Receiver).serve_forever()
