"""The receivers of the notifications suite, on loopback: a real SMTP server (aiosmtpd) and an
HTTP webhook receiver that verifies every request with the Standard Webhooks reference library
(standardwebhooks). Prints {"smtp": port, "http": port, ...} once all listen; GET /received
returns what arrived. Given a certificate and key (PEM files), two more SMTP servers listen with
that certificate and require AUTH (user "mailer", password "s3cret"): "starttls" (STARTTLS
required before anything else) and "smtps" (implicit TLS); each mail records its server, whether
it came over TLS and whether the sender authenticated. POST /flaky answers 500 to the first three attempts of each webhook-id, then 200; POST /slack
takes a Slack incoming-webhook message (unsigned).
Exits when stdin closes (the test ends).

Usage: python receivers.py WHSEC_SECRET [CERT_PEM KEY_PEM]
"""

import email
import email.policy
import json
import socket
import ssl
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

SECRET = sys.argv[1]
LOCK = threading.Lock()
MAIL = []
HOOKS = []
ATTEMPTS = {}


def authenticator(server, session, envelope, mechanism, auth_data):
    ok = isinstance(auth_data, LoginPassword) and (
        auth_data.login == b"mailer" and auth_data.password == b"s3cret"
    )
    return AuthResult(success=ok)


class Mailbox:
    def __init__(self, name="plain"):
        self.name = name

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
                    "server": self.name,
                    # The transport itself: set after STARTTLS and from the start with
                    # implicit TLS (where aiosmtpd leaves session.ssl unset).
                    "tls": server.transport.get_extra_info("ssl_object") is not None,
                    "authenticated": bool(session.authenticated),
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


def free_port():
    # aiosmtpd checks its own port after starting, so it needs a real one: take a free one.
    probe = socket.socket()
    probe.bind(("127.0.0.1", 0))
    port = probe.getsockname()[1]
    probe.close()
    return port


def main():
    ports = {"smtp": free_port()}
    servers = [Controller(Mailbox(), hostname="127.0.0.1", port=ports["smtp"])]
    if len(sys.argv) > 3:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(sys.argv[2], sys.argv[3])
        ports["starttls"] = free_port()
        servers.append(
            Controller(
                Mailbox("starttls"), hostname="127.0.0.1", port=ports["starttls"],
                tls_context=context, require_starttls=True,
                authenticator=authenticator, auth_required=True,
            )
        )
        ports["smtps"] = free_port()
        servers.append(
            Controller(
                Mailbox("smtps"), hostname="127.0.0.1", port=ports["smtps"],
                ssl_context=context, authenticator=authenticator, auth_required=True,
                # The whole connection is TLS, but aiosmtpd only counts STARTTLS as such.
                auth_require_tls=False,
            )
        )
    for server in servers:
        server.start()
    http = ThreadingHTTPServer(("127.0.0.1", 0), Hooks)
    threading.Thread(target=http.serve_forever, daemon=True).start()
    ports["http"] = http.server_address[1]
    print(json.dumps(ports), flush=True)
    sys.stdin.read()
    http.shutdown()
    for server in servers:
        server.stop()


if __name__ == "__main__":
    main()
