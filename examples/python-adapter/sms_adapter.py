"""An example Switchboard adapter in Python: the SMS-gateway channel of examples/rust-adapter,
written against the bus contract directly with nats-py (no SDK). docs/adapters.md explains it.

Provider side (the toy SMS gateway, same API as the Rust example):
  in:  the gateway POSTs {"id", "from", "to"?, "text"} to POST /v1/sms/inbound with
       "Authorization: Bearer <token>"; we answer 200 only after JetStream stored the envelope.
  out: we POST {"reference", "to", "text"} to <gateway>/messages with the same token and the
       outbound id as Idempotency-Key; a 2xx means the gateway took it.

Bus side (docs/contract.md):
  - envelope/1 on sb.in.<channel>, headers Sb-Schema and Nats-Msg-Id = <channel>:<gateway id>,
    so a gateway retry is stored once;
  - a durable pull consumer out-<channel> on sb.out.<channel> (stream SB_OUTBOUND): ack only after
    the gateway's 2xx, nak with back-off on a retryable failure, and after max attempts or a
    permanent failure the original message goes to sb.dlq.<channel> with the Sb-Dlq-* headers,
    a delivery_failed event/1 is recorded, and the message is terminated;
  - the adapter never decides routing and never creates the contract's streams.

Configuration is environment variables:
  NATS_URL            nats://127.0.0.1:4222
  SB_CHANNEL          sms-py (the subject token)
  SMS_LISTEN          127.0.0.1:8090 (port 0 picks a free one; the chosen one is printed)
  SMS_GATEWAY_URL     the gateway's base URL (required)
  SMS_TOKEN           the token the gateway and we present to each other (required)
  SMS_MAX_ATTEMPTS    6
  SMS_BACKOFF_MS      500, doubling up to SMS_BACKOFF_MAX_MS (60000)

Once it is connected, consuming and listening it prints one line, "ready http=<host>:<port>".
Run: PYTHONPATH=tools/python python3 examples/python-adapter/sms_adapter.py (after `make tools`).
"""

import asyncio
import datetime
import hmac
import json
import logging
import os
import re
import signal
import threading
import time
import urllib.error
import urllib.request
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

try:
    import nats
    from nats.errors import TimeoutError as FetchTimeout
    from nats.js.api import AckPolicy, ConsumerConfig
    from nats.js.errors import NotFoundError
except ImportError as e:  # pragma: no cover - the message is the point
    raise SystemExit(f"nats-py is missing ({e}): run `make tools` and set PYTHONPATH=tools/python") from e

# Names from crates/core/src/contract.rs: keep them in step with the contract.
STREAM_INBOUND = "SB_INBOUND"
STREAM_OUTBOUND = "SB_OUTBOUND"
H_SCHEMA = "Sb-Schema"
H_MSG_ID = "Nats-Msg-Id"
H_DLQ_REASON = "Sb-Dlq-Reason"
H_DLQ_COMPONENT = "Sb-Dlq-Component"
H_DLQ_ATTEMPTS = "Sb-Dlq-Attempts"
H_DLQ_SUBJECT = "Sb-Dlq-Subject"
H_DLQ_STREAM_SEQ = "Sb-Dlq-Stream-Seq"

MAX_TEXT_BYTES = 256 * 1024  # envelope/1's limit
MAX_SMS_CHARS = 1600  # ten concatenated segments
E164 = re.compile(r"^\+[0-9]{8,15}$")
INBOUND_PATH = "/v1/sms/inbound"

log = logging.getLogger("sms_adapter")


def uuid7() -> uuid.UUID:
    """A UUIDv7 (time-ordered), as envelope/1 and event/1 require; Python 3.11 has none built in."""
    ms = time.time_ns() // 1_000_000
    rand = int.from_bytes(os.urandom(10), "big")
    value = (ms & ((1 << 48) - 1)) << 80
    value |= 0x7 << 76 | ((rand >> 62) & 0xFFF) << 64
    value |= 0b10 << 62 | (rand & ((1 << 62) - 1))
    return uuid.UUID(int=value)


def now_rfc3339() -> str:
    return datetime.datetime.now(datetime.timezone.utc).isoformat().replace("+00:00", "Z")


class Invalid(Exception):
    """A gateway request we refuse with 400, naming the field."""

    def __init__(self, field: str, reason: str):
        super().__init__(f"{field}: {reason}")
        self.field, self.reason = field, reason


class Failure(Exception):
    """A failed send; `retryable` says whether trying again may help."""

    def __init__(self, reason: str, retryable: bool):
        super().__init__(reason)
        self.reason, self.retryable = reason, retryable


def envelope_from_sms(channel: str, sms: object) -> dict:
    """envelope/1 for one gateway SMS; the checks mirror envelope/1's validation."""
    if not isinstance(sms, dict):
        raise Invalid("(body)", "must be a JSON object")
    sms_id, sender, text, to = sms.get("id"), sms.get("from"), sms.get("text"), sms.get("to")
    if not isinstance(sms_id, str) or not sms_id or len(sms_id) > 512:
        raise Invalid("id", "must be a string of 1 to 512 characters")
    if not isinstance(sender, str) or not E164.match(sender):
        raise Invalid("from", "must be an E.164 number (+ and 8-15 digits)")
    if not isinstance(text, str) or not text.strip():
        raise Invalid("text", "must not be empty")
    if len(text.encode()) > MAX_TEXT_BYTES:
        raise Invalid("text", f"must be at most {MAX_TEXT_BYTES} bytes")
    envelope = {
        "id": str(uuid7()),
        "channel": channel,
        "provider_message_id": sms_id,
        "received_at": now_rfc3339(),
        "customer": {"id": sender, "phone": sender},
        # SMS has no threads: one conversation per number.
        "thread_key": sender,
        "text": text,
    }
    if isinstance(to, str) and to:
        envelope["metadata"] = {"sms.to": to}
    return envelope


def classify_status(status: int) -> Failure:
    reason = f"HTTP {status} from the SMS gateway"
    # 408 and 429 say "later"; other 4xx say this request is wrong and will stay wrong.
    return Failure(reason, retryable=status >= 500 or status in (408, 429))


class Adapter:
    def __init__(self, env: dict):
        self.nats_url = env.get("NATS_URL", "nats://127.0.0.1:4222")
        self.channel = env.get("SB_CHANNEL", "sms-py")
        host, _, port = env.get("SMS_LISTEN", "127.0.0.1:8090").rpartition(":")
        self.listen = (host, int(port))
        self.gateway_url = env["SMS_GATEWAY_URL"].rstrip("/")
        self.token = env["SMS_TOKEN"]
        self.max_attempts = max(1, int(env.get("SMS_MAX_ATTEMPTS", "6")))
        self.backoff_ms = int(env.get("SMS_BACKOFF_MS", "500"))
        self.backoff_max_ms = int(env.get("SMS_BACKOFF_MAX_MS", "60000"))
        self.stop = asyncio.Event()

    # -- inbound: gateway -> sb.in.<channel> ------------------------------------------------

    async def store(self, sms: object) -> dict:
        """Publishes the envelope and waits for JetStream's ack; only then may the gateway hear 200."""
        envelope = envelope_from_sms(self.channel, sms)
        headers = {
            H_SCHEMA: "envelope/1",
            # The de-duplication id of the contract: <channel>:<provider message id>.
            H_MSG_ID: f"{self.channel}:{envelope['provider_message_id']}",
        }
        ack = await self.js.publish(f"sb.in.{self.channel}", json.dumps(envelope).encode(), headers=headers)
        log.debug("sms stored envelope=%s duplicate=%s", envelope["id"], bool(ack.duplicate))
        return {"id": envelope["id"], "duplicate": bool(ack.duplicate)}

    def serve_http(self, loop: asyncio.AbstractEventLoop) -> ThreadingHTTPServer:
        adapter = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 (the stdlib's name)
                if self.path != INBOUND_PATH:
                    return self.answer(404, {"error": "not found"})
                presented = self.headers.get("Authorization", "")
                # Constant time, so the token cannot be guessed from response times.
                if not hmac.compare_digest(presented.encode(), f"Bearer {adapter.token}".encode()):
                    return self.answer(401, {"error": "unauthorized"})
                length = int(self.headers.get("Content-Length") or 0)
                if length > 2 * MAX_TEXT_BYTES:
                    return self.answer(413, {"error": "too large"})
                try:
                    sms = json.loads(self.rfile.read(length))
                except ValueError as e:
                    return self.answer(400, {"error": "invalid", "field": "(body)", "reason": str(e)})
                future = asyncio.run_coroutine_threadsafe(adapter.store(sms), loop)
                try:
                    self.answer(200, future.result(timeout=15))
                except Invalid as e:
                    self.answer(400, {"error": "invalid", "field": e.field, "reason": e.reason})
                except Exception as e:  # the bus did not take it: nothing stored, the gateway retries
                    log.warning("sms not stored, the gateway will retry: %s", e)
                    self.answer(503, {"error": "not stored, retry"})

            def answer(self, status: int, body: dict):
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, fmt, *args):  # requests are logged at debug, never their bodies
                log.debug("http %s", fmt % args)

        server = ThreadingHTTPServer(self.listen, Handler)
        threading.Thread(target=server.serve_forever, name="http", daemon=True).start()
        return server

    # -- outbound: sb.out.<channel> -> gateway -----------------------------------------------

    def post_to_gateway(self, message: dict) -> None:
        """Blocking (run in a thread): POST one reply; raises Failure unless the gateway took it."""
        to, text = message["to"]["customer_id"], message["text"]
        if not E164.match(to):
            raise Failure(f"customer id {to!r} is not a phone number", retryable=False)
        if len(text) > MAX_SMS_CHARS:
            raise Failure(f"text of {len(text)} characters is over {MAX_SMS_CHARS}", retryable=False)
        body = json.dumps({"reference": message["id"], "to": to, "text": text}).encode()
        request = urllib.request.Request(
            f"{self.gateway_url}/messages",
            data=body,
            method="POST",
            headers={
                "Content-Type": "application/json",
                "Authorization": f"Bearer {self.token}",
                # The gateway drops a retry it already took (a crash between its 2xx and our ack).
                "Idempotency-Key": message["id"],
            },
        )
        try:
            with urllib.request.urlopen(request, timeout=10):
                return
        except urllib.error.HTTPError as e:
            raise classify_status(e.code) from None
        except (urllib.error.URLError, TimeoutError, ConnectionError) as e:
            raise Failure(f"SMS gateway unreachable: {e}", retryable=True) from None

    async def handle(self, msg) -> None:
        attempt = msg.metadata.num_delivered
        headers = msg.headers or {}
        try:
            if headers.get(H_SCHEMA) != "outbound/1":
                raise Failure(f"unsupported schema {headers.get(H_SCHEMA)}, expected outbound/1", retryable=False)
            try:
                message = json.loads(msg.data)
                if message["channel"] != self.channel:
                    raise Failure(f"message for channel {message['channel']} on {self.channel}", retryable=False)
            except (ValueError, KeyError, TypeError) as e:
                raise Failure(f"invalid outbound/1: {e}", retryable=False) from None
            await asyncio.to_thread(self.post_to_gateway, message)
        except Failure as failure:
            if failure.retryable and attempt < self.max_attempts:
                delay_ms = min(self.backoff_ms * 2 ** (attempt - 1), self.backoff_max_ms)
                log.warning("send failed, will retry attempt=%d reason=%s", attempt, failure.reason)
                await msg.nak(delay=delay_ms / 1000)
                return
            try:
                await self.dead_letter(msg, failure.reason, attempt)
            except Exception as e:  # the bus refused the dead letter: keep the message, try later
                log.error("cannot dead-letter, will redeliver: %s", e)
                await msg.nak(delay=self.backoff_max_ms / 1000)
            return
        # Only now, the gateway having taken it: ack, and wait for the server to confirm the ack.
        await msg.ack_sync()

    async def dead_letter(self, msg, reason: str, attempts: int) -> None:
        """The original message on sb.dlq.<channel> with the Sb-Dlq-* headers, a delivery_failed
        event, then terminate it. Both ids are derived, so doing this twice after a crash stores once."""
        seq = msg.metadata.sequence.stream
        headers = dict(msg.headers or {})
        headers.update({
            H_DLQ_REASON: " ".join(reason.split()),  # header values hold one line
            H_DLQ_COMPONENT: self.channel,
            H_DLQ_ATTEMPTS: str(attempts),
            H_DLQ_SUBJECT: msg.subject,
            H_DLQ_STREAM_SEQ: str(seq),
            H_MSG_ID: f"dlq:{self.channel}:{STREAM_OUTBOUND}:{seq}",
        })
        log.warning("dead-lettering message attempts=%d reason=%s", attempts, reason)
        await self.js.publish(f"sb.dlq.{self.channel}", msg.data, headers=headers)
        try:
            message = json.loads(msg.data)
            event = {
                "id": str(uuid7()),
                "at": now_rfc3339(),
                "kind": "delivery_failed",
                "conversation_id": message["conversation_id"],
                "channel": self.channel,
                "data": {"outbound_id": message["id"], "reason": reason, "attempts": attempts},
            }
            if message.get("agent_id"):
                event["agent_id"] = message["agent_id"]
            event_headers = {H_SCHEMA: "event/1", H_MSG_ID: f"delivery-failed:{message['id']}"}
            await self.js.publish("sb.events.delivery_failed", json.dumps(event).encode(), headers=event_headers)
        except (ValueError, KeyError, TypeError):
            pass  # an unreadable message has no conversation to tell; the dead letter is the record
        await msg.term()

    async def consume(self, sub) -> None:
        while not self.stop.is_set():
            try:
                msgs = await sub.fetch(batch=8, timeout=1)
            except FetchTimeout:
                continue
            except Exception as e:  # NATS away: nats-py reconnects; ask again shortly
                log.warning("fetch failed, retrying: %s", e)
                await asyncio.sleep(1)
                continue
            for outcome in await asyncio.gather(*(self.handle(m) for m in msgs), return_exceptions=True):
                if isinstance(outcome, Exception):
                    # Unacked, so JetStream redelivers it after ack_wait: late, not lost.
                    log.error("message left for redelivery: %s", outcome)

    # -- lifecycle ----------------------------------------------------------------------------

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self.stop.set)
        self.nc = await nats.connect(self.nats_url, name=f"sms-adapter-{self.channel}", max_reconnect_attempts=-1)
        self.js = self.nc.jetstream()
        for stream in (STREAM_INBOUND, STREAM_OUTBOUND):
            try:
                await self.js.stream_info(stream)
            except NotFoundError:
                raise SystemExit(f"stream {stream} missing: start switchboard (it sets the contract up) first")
        config = ConsumerConfig(
            durable_name=f"out-{self.channel}",
            ack_policy=AckPolicy.EXPLICIT,
            ack_wait=30,
            max_deliver=-1,  # unlimited on the server, as in the contract: we dead-letter ourselves
        )
        sub = await self.js.pull_subscribe(
            f"sb.out.{self.channel}", durable=f"out-{self.channel}", stream=STREAM_OUTBOUND, config=config
        )
        server = self.serve_http(loop)
        host, port = server.server_address[:2]
        print(f"ready http={host}:{port}", flush=True)
        log.info("channel running channel=%s http=%s:%d", self.channel, host, port)
        try:
            await self.consume(sub)
        finally:
            server.shutdown()
            # Every publish and ack above was awaited, so nothing is buffered: close, not drain
            # (nats-py's drain of a pull subscription waits for a fetch that never comes).
            await self.nc.close()
            log.info("channel stopped channel=%s", self.channel)


def main() -> None:
    logging.basicConfig(level=os.environ.get("LOG_LEVEL", "INFO"), format="%(asctime)s %(levelname)s %(message)s")
    asyncio.run(Adapter(dict(os.environ)).run())


if __name__ == "__main__":
    main()
