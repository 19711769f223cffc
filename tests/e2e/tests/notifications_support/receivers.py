"""The receivers of the notifications suite, on loopback: a real SMTP server (aiosmtpd) and an
HTTP webhook receiver that verifies every request with the Standard Webhooks reference library
(standardwebhooks). Prints {"smtp": port, "http": port} once both listen; GET /received returns
what arrived. POST /flaky answers 500 to the first three attempts of each webhook-id, then 200; POST /slack
takes a Slack incoming-webhook message (unsigned).
Exits when stdin closes (the test ends).

Usage: python receivers.py WHSEC_SECRET
"""

import email
import email.policy
import json
import socket
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from aiosmtpd.controller import Controller
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

SECRET = sys.argv[1]
LOCK = threading.Lock()
MAIL = []
HOOKS = []
ATTEMPTS = {}


class Mailbox:
    async def handle_DATA(self, server, session, envelope):
        message = email.message_from_bytes(envelope.content, policy=email.policy.default)
        text = message.get_body(preferencelist=("plain",))
        html = message.get_body(preferencelist=("html",))
        with LOCK:
            MAIL.append(
                {
                    "to": envelope.rcpt_tos,
                    "from": envelope.mail_from,
                    "messageId": message["Message-ID"],
                    "subject": str(message["Subject"]),
                    "text": text.get_content() if text else "",
                    "html": html.get_content() if html else "",
                }
            )
        return "250 Message accepted for delivery"


class Hooks(BaseHTTPRequestHandler):
    def log_message(self, *args):
        pass

    def do_GET(self):
        with LOCK:
            body = json.dumps({"mail": MAIL, "hooks": HOOKS, "attempts": ATTEMPTS}).encode()
        self.send_response(200)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("content-length", "0")))
        headers = {k.lower(): v for k, v in self.headers.items()}
        webhook_id = headers.get("webhook-id", "")
        with LOCK:
            ATTEMPTS[webhook_id] = ATTEMPTS.get(webhook_id, 0) + 1
            attempt = ATTEMPTS[webhook_id]
        if self.path == "/slack":
            # A Slack incoming webhook: unsigned JSON with a text.
            with LOCK:
                HOOKS.append({"path": self.path, "id": "", "verified": True,
                              "payload": json.loads(body or b"{}")})
            self.send_response(200)
            self.send_header("content-length", "0")
            self.end_headers()
            return
        if self.path == "/flaky" and attempt <= 3:
            self.send_response(500)
            self.send_header("content-length", "0")
            self.end_headers()
            return
        try:
            payload = Webhook(SECRET).verify(body, headers)
            verified = True
        except WebhookVerificationError:
            payload = json.loads(body or b"{}")
            verified = False
        with LOCK:
            HOOKS.append(
                {"path": self.path, "id": webhook_id, "verified": verified, "payload": payload}
            )
        self.send_response(204 if verified else 400)
        self.send_header("content-length", "0")
        self.end_headers()


def main():
    # aiosmtpd checks its own port after starting, so it needs a real one: take a free one.
    probe = socket.socket()
    probe.bind(("127.0.0.1", 0))
    smtp_port = probe.getsockname()[1]
    probe.close()
    smtp = Controller(Mailbox(), hostname="127.0.0.1", port=smtp_port)
    smtp.start()
    http = ThreadingHTTPServer(("127.0.0.1", 0), Hooks)
    threading.Thread(target=http.serve_forever, daemon=True).start()
    print(json.dumps({"smtp": smtp_port, "http": http.server_address[1]}), flush=True)
    sys.stdin.read()
    http.shutdown()
    smtp.stop()


if __name__ == "__main__":
    main()
