"""A shardmind agent in plain Python 3: raw NATS over a TCP socket, JSON bodies, the standard library only.

Usage:  python3 shardmind_agent.py [host] [port] [user] [password]
        (user and password only on a cluster whose nats-server was configured with `shardmind nats-config --auth`:
        the user is `agent` with the password the operator set in $SHARDMIND_AGENT_PASSWORD, or the agent's own
        login from `--agents` with its $SHARDMIND_AGENT_PASSWORD_<LOGIN>)

Run as a script it remembers a fact, recalls it, and follows a task that starts in email and moves to calendar.
Import it to use `Nats` and `Memory` in your own agent. The wire contract is docs/protocol.md; this file is one
reading of it, and nats-py (`pip install nats-py`) does the NATS part for you if you can install packages.
"""
import json
import os
import random
import socket
import sys
import threading
import time
import uuid

JSON_HEADERS = {"content-type": "application/json"}


class SmError(Exception):
    """An error reply ({"error": {code, message, retryable}}), or a NATS-level failure given a code of its own."""

    def __init__(self, code, message, retryable):
        super().__init__(f"{code}: {message}")
        self.code, self.message, self.retryable = code, message, retryable


class Nats:
    """Just enough NATS: CONNECT, PING/PONG, SUB, PUB/HPUB, MSG/HMSG, and request/reply on one inbox."""

    def __init__(self, host="127.0.0.1", port=4222, user=None, password=None):
        self.sock, self.buf = socket.create_connection((host, port), timeout=5), b""
        self.info = json.loads(self._line().split(b" ", 1)[1])  # INFO {...}: max_payload, headers, ...
        opts = {
            "verbose": False, "pedantic": False, "protocol": 1, "lang": "python-raw", "version": "1.0",
            "headers": True,        # without it the server closes the connection at the first HPUB, without -ERR
            "no_responders": True,  # without it "nobody is subscribed" is a plain timeout
        }
        if user is not None:
            opts.update({"user": user, "pass": password})
        self.sock.sendall(b"CONNECT " + json.dumps(opts).encode() + b"\r\nPING\r\n")
        line = self._line()
        if line.startswith(b"-ERR"):  # 'Authorization Violation'
            raise ConnectionError(line.decode())
        self.sock.settimeout(None)
        self.lock, self.subs, self.sid, self.waiting, self.closed = threading.Lock(), {}, 0, {}, None
        # An `agent` login may subscribe only under _INBOX.> (and sm.evt.>), an agent's own login (`--agents`) only
        # under _INBOX.<login>.>: replies must come there. _INBOX.<user>. suits both.
        named = user is not None and user != "" and not any(c in user for c in ". *>\t\r\n")
        self.inbox = "_INBOX." + (user + "." if named else "") + uuid.uuid4().hex
        self.subscribe(self.inbox + ".*", self._on_reply)
        threading.Thread(target=self._read_loop, daemon=True).start()

    def _send(self, data):
        with self.lock:
            self.sock.sendall(data)

    def _line(self):
        while b"\r\n" not in self.buf:
            self._fill()
        line, self.buf = self.buf.split(b"\r\n", 1)
        return line

    def _fill(self):
        chunk = self.sock.recv(65536)
        if not chunk:
            raise ConnectionError("connection closed by the server")
        self.buf += chunk

    def _read_loop(self):
        try:
            while True:
                line = self._line()
                op = line.split(b" ", 1)[0].upper()
                if op == b"PING":
                    self._send(b"PONG\r\n")
                elif op in (b"MSG", b"HMSG"):  # MSG subject sid [reply] size | HMSG subject sid [reply] hsize size
                    p = line.decode().split(" ")
                    size = int(p[-1])
                    hsize = int(p[-2]) if op == b"HMSG" else 0
                    reply = p[3] if len(p) == (6 if op == b"HMSG" else 5) else None
                    while len(self.buf) < size + 2:
                        self._fill()
                    raw, self.buf = self.buf[:size], self.buf[size + 2:]
                    cb = self.subs.get(int(p[2]))
                    if cb:
                        cb(p[1], reply, parse_headers(raw[:hsize]) if hsize else {}, raw[hsize:])
                elif op == b"-ERR":
                    self._on_server_error(line.decode())
        except (ConnectionError, OSError) as e:
            self.closed = e
            for slot in list(self.waiting.values()):
                slot["done"].set()

    def _on_server_error(self, line):
        # A permission violation is asynchronous and the refused request is never answered: fail the requests it
        # names at once, as FORBIDDEN (not retryable), instead of letting them time out and be retried.
        marker = 'Permissions Violation for Publish to "'
        if marker in line:
            subject = line.split(marker, 1)[1].split('"', 1)[0]
            for slot in list(self.waiting.values()):
                if slot["subject"] == subject:
                    slot["error"] = SmError("FORBIDDEN", f"this login may not publish to {subject}", False)
                    slot["done"].set()
        print("nats-server:", line, file=sys.stderr)

    def subscribe(self, subject, cb):
        self.sid += 1
        self.subs[self.sid] = cb
        self._send(f"SUB {subject} {self.sid}\r\n".encode())

    def publish(self, subject, data, reply=None, headers=None):
        if len(data) > self.info["max_payload"]:  # the server would close the connection, not answer TOO_LARGE
            raise SmError("TOO_LARGE", f"{len(data)} bytes > the server's max_payload {self.info['max_payload']}", False)
        r = f" {reply}" if reply else ""
        if not headers:
            return self._send(f"PUB {subject}{r} {len(data)}\r\n".encode() + data + b"\r\n")
        h = ("NATS/1.0\r\n" + "".join(f"{k}: {v}\r\n" for k, v in headers.items()) + "\r\n").encode()
        self._send(f"HPUB {subject}{r} {len(h)} {len(h) + len(data)}\r\n".encode() + h + data + b"\r\n")

    def _on_reply(self, subject, _reply, headers, data):
        slot = self.waiting.get(subject)
        if slot:
            slot["reply"] = (headers, data)
            slot["done"].set()

    def request(self, subject, data, headers=None, timeout=3.0):
        """(headers, body bytes) of the reply; SmError NATS_TIMEOUT, NO_RESPONDERS, FORBIDDEN or DISCONNECTED."""
        reply = f"{self.inbox}.{uuid.uuid4().hex}"
        slot = self.waiting[reply] = {"done": threading.Event(), "reply": None, "error": None, "subject": subject}
        try:
            self.publish(subject, data, reply, headers)
            if not slot["done"].wait(timeout):
                raise SmError("NATS_TIMEOUT", f"no reply on {subject} within {timeout} s", True)
            if slot["error"]:
                raise slot["error"]
            if slot["reply"] is None:
                raise SmError("DISCONNECTED", str(self.closed), False)
            if slot["reply"][0].get(":status") == "503":
                raise SmError("NO_RESPONDERS", f"nobody serves {subject} (a typo in the subject?)", True)
            return slot["reply"]
        finally:
            del self.waiting[reply]


def parse_headers(raw):
    lines = raw.decode("utf-8", "replace").split("\r\n")
    status = lines[0].split(" ")  # "NATS/1.0", or "NATS/1.0 503" (no responders)
    out = {":status": status[1]} if len(status) > 1 and status[1] else {}
    for k, _, v in (ln.partition(":") for ln in lines[1:] if ":" in ln):
        out[k.strip().lower()] = v.strip()
    return out


def new_op_id():
    """Unique across processes and restarts (the shard remembers an opId for good), and time-ordered."""
    return f"{int(time.time() * 1000):012x}-{os.urandom(8).hex()}"


class Memory:
    """shardmind in JSON: an opId reused on every retry of a write, backoff, and read-your-writes via minSeq."""

    def __init__(self, nc, agent, node=None):
        self.nc, self.agent, self.node, self.seqs = nc, agent, node, {}

    def call(self, subject, body, deadline=10.0, attempt=3.0):
        """One request, retried while retryable until `deadline` s. `attempt` is above the server's 2 s minSeq wait,
        so a floor not reached yet comes back as the server's TIMEOUT rather than as a lost reply."""
        data, end, step = json.dumps({"v": 1, **body}).encode(), time.monotonic() + deadline, 0.01
        while True:
            try:
                _, raw = self.nc.request(subject, data, JSON_HEADERS, attempt)
                reply = json.loads(raw)
                err = reply.get("error")
                if err:
                    raise SmError(err["code"], err["message"], err.get("retryable", False))
                self._raise_floors(reply)
                return reply
            except SmError as e:
                if not e.retryable or time.monotonic() + step > end:
                    raise
                time.sleep(random.uniform(step / 2, step))
                step = min(step * 2, 0.25)

    def _raise_floors(self, reply):
        if isinstance(reply.get("seq"), int):
            self.seqs[reply["domain"]] = max(self.seqs.get(reply["domain"], 0), reply["seq"])
        for domain, seq in (reply.get("seqs") or {}).items():
            self.seqs[domain] = max(self.seqs.get(domain, 0), seq)

    def write(self, op, domain=None, **body):
        body = {"agent": self.agent, "opId": new_op_id(), **({"node": self.node} if self.node else {}), **body}
        return self.call(f"sm.mem.{op}", {**body, **({"domain": domain} if domain else {})})

    def remember(self, fact, domain=None, task=None):
        return self.write("remember", domain, fact=fact, **({"task": task} if task else {}))

    def retract(self, fact_id, **kw):  # validTo="...Z" optional
        return self.write("retract", fact_id.split(":", 1)[0], factId=fact_id, **kw)

    def forget(self, fact_id):
        return self.write("forget", fact_id.split(":", 1)[0], factId=fact_id)

    def recall(self, **q):
        """query=, subject=, predicate=, domain=, asOf=, task=, limit=, minConfidence=. A reply with `missing`
        lacks those domains: with minSeq, it did not see your writes there."""
        return self.call("sm.mem.recall", {"agent": self.agent, "minSeq": dict(self.seqs), **q})

    def history(self, subject, **q):
        return self.call("sm.mem.history", {"subject": subject, "minSeq": dict(self.seqs), **q})

    def task(self, op, **body):
        """begin / observe / reroute / get / end. A begin or an observe carries an opId, so a retry makes one task
        and counts an observation once. docs/protocol.md, Tasks, says which ops are safe to retry."""
        if op in ("begin", "observe"):
            body = {"opId": new_op_id(), **body}
        return self.call(f"sm.mem.task.{op}", body)


def main(argv):
    host = argv[1] if len(argv) > 1 else "127.0.0.1"
    port = int(argv[2]) if len(argv) > 2 else 4222
    m = Memory(Nats(host, port, *argv[3:5]), "py-agent")

    fact = {"text": "The user never takes meetings before 10am", "subject": "user",
            "predicate": "earliest_meeting_time", "object": "10:00"}
    wrote = m.remember(fact, domain="calendar")
    print("remember:", json.dumps({k: wrote[k] for k in ("domain", "seq", "factId", "status")}))
    found = m.recall(query="can I book a 9am call with the user?")
    print("recall:", json.dumps([f["text"] for f in found["facts"]]))

    t = m.task("begin", agent="py-agent", text="reply to Dana about her email")
    print("task:", t["task"], "began in", t["domain"])
    for hint in ("she wants to meet with us next week", "book a meeting with her on Tuesday at 9am"):
        step = m.task("observe", task=t["task"], text=hint)
    print("task rerouted:", json.dumps(step["rerouted"]), "context:", json.dumps([f["text"] for f in step["context"]]))
    m.task("end", task=t["task"])


if __name__ == "__main__":
    main(sys.argv)
