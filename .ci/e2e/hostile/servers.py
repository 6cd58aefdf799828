#!/usr/bin/env python3
"""The hostile servers of the hostile-world suite, where Debian's servers cannot misbehave the
way an attacker's do. Standard library only; loopback only.

    servers.py dns --listen 127.0.30.53:53 --upstream 127.0.30.54:53
        The exporter's resolver: forwards every question to dnsmasq (UDP and TCP), except
          *.loop.hostile.test    answered here with a CNAME loop (dnsmasq refuses to load one)
          *.many.hostile.test    answered here with 4,000 A records over 200 addresses
                                 (dnsmasq merges duplicates; UDP says TC, TCP carries them all)
          *.flood.hostile.test   forwarded, but every UDP answer comes with --flood (200)
                                 copies with wrong message IDs: --flood-before (100) of them
                                 before the real answer, the rest after it
    servers.py tcp --pki DIR
        blackhole   accepts and then says nothing (127.0.30.20, 127.0.30.56-71: 443 and 80)
        syn-drop    a full accept queue: SYNs go unanswered (127.0.30.21: 443 and 80)
        slow drip   headers one byte a second (127.0.30.22: 443 TLS and 80), or the body one
                    byte a second after quick headers (127.0.30.23: 443 TLS)
        endless     200 with a chunked body that never ends (127.0.30.24: 443 TLS and 80)

Both run until SIGTERM. Each prints "ready" on stdout once every socket listens.
"""

import argparse
import asyncio
import os
import queue
import signal
import socket
import ssl
import struct
import sys
import threading
import time

# ------------------------------------------------------------------------------------------------
# DNS

TYPE_A, TYPE_CNAME, TYPE_AAAA = 1, 5, 28
MANY_RECORDS = 4000
MANY_FIRST = 56  # 127.0.30.56 ... 127.0.30.255: 200 distinct addresses, the first 16 blackholes
MANY_DISTINCT = 200
UDP_LIMIT = 1232


def encode_name(name):
    out = b""
    for label in name.rstrip(".").split("."):
        if label:
            raw = label.encode("ascii")
            out += bytes([len(raw)]) + raw
    return out + b"\0"


def parse_question(msg):
    """(id, flags, lower-case name, qtype, offset after the question) or None."""
    if len(msg) < 12:
        return None
    qid, flags, qdcount = struct.unpack("!HHH", msg[:6])
    if qdcount != 1:
        return None
    labels, pos = [], 12
    while True:
        if pos >= len(msg):
            return None
        n = msg[pos]
        pos += 1
        if n == 0:
            break
        if n & 0xC0 or pos + n > len(msg):
            return None
        labels.append(msg[pos:pos + n].decode("ascii", "replace").lower())
        pos += n
    if pos + 4 > len(msg):
        return None
    qtype = struct.unpack("!H", msg[pos:pos + 2])[0]
    return qid, flags, ".".join(labels), qtype, pos + 4


def response(query, question_end, answers, rcode=0, truncated=False):
    """An authoritative answer to `query` with these (name, type, rdata) records."""
    qid, qflags = struct.unpack("!HH", query[:4])
    flags = 0x8000 | 0x0400 | (qflags & 0x0100) | 0x0080 | rcode
    if truncated:
        flags |= 0x0200
        answers = []
    out = struct.pack("!HHHHHH", qid, flags, 1, len(answers), 0, 0) + query[12:question_end]
    asked = query[12:question_end - 4]
    for name, rtype, rdata in answers:
        owner = encode_name(name)
        # A pointer to the question's name where it is the owner: 4,000 A records fit in one
        # TCP message (64 KiB) only compressed.
        owner = b"\xc0\x0c" if owner == asked.lower() else owner
        out += owner + struct.pack("!HHIH", rtype, 1, 0, len(rdata)) + rdata
    return out


def local_answer(query, tcp):
    """The answer this server makes up itself, or None to forward the question."""
    parsed = parse_question(query)
    if parsed is None:
        return None
    _, _, name, qtype, end = parsed
    if name == "loop.hostile.test" or name.endswith(".loop.hostile.test"):
        # autodiscover.loop -> a.loop -> autodiscover.loop; the bare name points at itself.
        if name == "loop.hostile.test":
            chain = [(name, TYPE_CNAME, encode_name(name))]
        elif name in ("autodiscover.loop.hostile.test", "a.loop.hostile.test"):
            other = "a.loop.hostile.test" if name.startswith("autodiscover.") else "autodiscover.loop.hostile.test"
            chain = [(name, TYPE_CNAME, encode_name(other)), (other, TYPE_CNAME, encode_name(name))]
        else:
            return response(query, end, [], rcode=3)
        return response(query, end, chain)
    if name == "many.hostile.test" or name == "autodiscover.many.hostile.test":
        if qtype != TYPE_A:
            return response(query, end, [])
        records = [
            (name, TYPE_A, bytes([127, 0, 30, MANY_FIRST + i % MANY_DISTINCT]))
            for i in range(MANY_RECORDS)
        ]
        answer = response(query, end, records)
        if not tcp and len(answer) > UDP_LIMIT:
            return response(query, end, [], truncated=True)
        return answer
    if name.endswith(".many.hostile.test"):
        return response(query, end, [], rcode=3)
    return None


def is_flooded(query):
    parsed = parse_question(query)
    return parsed is not None and (parsed[2] == "flood.hostile.test" or parsed[2].endswith(".flood.hostile.test"))


class Upstream(asyncio.DatagramProtocol):
    """One socket to dnsmasq; questions get fresh IDs so answers find their way back."""

    def __init__(self, front):
        self.front = front
        self.transport = None
        self.pending = {}
        self.next_id = 1

    def connection_made(self, transport):
        self.transport = transport

    def forward(self, query, client, flood):
        now = time.monotonic()
        if len(self.pending) > 20000:
            self.pending = {k: v for k, v in self.pending.items() if now - v[3] < 10}
        for _ in range(65536):
            self.next_id = self.next_id % 65535 + 1
            if self.next_id not in self.pending:
                break
        orig = query[:2]
        self.pending[self.next_id] = (client, orig, flood, now)
        self.transport.sendto(struct.pack("!H", self.next_id) + query[2:])

    def datagram_received(self, data, addr):
        if len(data) < 12:
            return
        entry = self.pending.pop(struct.unpack("!H", data[:2])[0], None)
        if entry is None:
            return
        client, orig, flood, _ = entry
        answer = orig + data[2:]
        parsed = parse_question(answer)
        if len(answer) > UDP_LIMIT and parsed is not None:
            # dnsmasq sends its 1,000 SRV records (40 KB) in one datagram; a resolver keeps to
            # the client's EDNS size and says TC, so the client asks again over TCP.
            answer = answer[:2] + struct.pack("!H", struct.unpack("!H", answer[2:4])[0] | 0x0200) \
                + struct.pack("!HHHH", 1, 0, 0, 0) + answer[12:parsed[4]]
        if flood and self.front.flooder is not None:
            self.front.flooder.submit(answer, struct.unpack("!H", orig)[0], data[2:], client)
        else:
            self.front.transport.sendto(answer, client)


class Flooder(threading.Thread):
    """Sends the answers of flooded questions with their wrong-ID copies, from a thread of its
    own: a million datagrams in 40 s keep one Python thread busy, and the questions of the
    healthy domains must never wait behind them (their resolver would time out, and the
    exporter would rightly call that a probe error)."""

    def __init__(self, sock, flood, before):
        super().__init__(daemon=True)
        self.sock = sock
        self.flood = flood
        self.before = before
        self.jobs = queue.Queue(maxsize=5000)
        self.sent = 0

    def submit(self, answer, real_id, body, client):
        try:
            self.jobs.put_nowait((answer, real_id, body, client))
        except queue.Full:
            self.send(answer, client)

    def run(self):
        # The forwarding thread runs at the priority run.sh gives the world's DNS; the flood is
        # a hostile server's work, at the normal priority (Linux: the calling thread only).
        try:
            os.setpriority(os.PRIO_PROCESS, 0, 0)
        except OSError:
            pass
        while True:
            answer, real, body, client = self.jobs.get()
            # 100 wrong answers fit in a client's default receive buffer (212 KiB) with room to
            # spare, so the real one is never dropped because the client was not scheduled for
            # a few milliseconds on a loaded machine: the client must pick it out, every time.
            for k in range(1, self.flood + 1):
                if k == self.before + 1:
                    self.send(answer, client)
                self.send(struct.pack("!H", (real + k) % 65536) + body, client)
            if self.before >= self.flood:
                self.send(answer, client)
            self.sent += self.flood

    def send(self, data, client):
        try:
            self.sock.sendto(data, client)
        except OSError:
            pass  # a full buffer (the datagram is lost, as on any network)


class Front(asyncio.DatagramProtocol):
    def __init__(self):
        self.transport = None
        self.upstream = None
        self.flooder = None

    def connection_made(self, transport):
        self.transport = transport

    def datagram_received(self, data, addr):
        answer = local_answer(data, tcp=False)
        if answer is not None:
            self.transport.sendto(answer, addr)
        elif self.upstream is not None:
            self.upstream.forward(data, addr, self.flooder is not None and is_flooded(data))


async def tcp_dns(reader, writer, upstream_addr):
    try:
        while True:
            head = await asyncio.wait_for(reader.readexactly(2), 30)
            query = await asyncio.wait_for(reader.readexactly(struct.unpack("!H", head)[0]), 10)
            answer = local_answer(query, tcp=True)
            if answer is None:
                up_reader, up_writer = await asyncio.wait_for(asyncio.open_connection(*upstream_addr), 5)
                try:
                    up_writer.write(head + query)
                    await up_writer.drain()
                    size = struct.unpack("!H", await asyncio.wait_for(up_reader.readexactly(2), 10))[0]
                    answer = await asyncio.wait_for(up_reader.readexactly(size), 10)
                finally:
                    up_writer.close()
            writer.write(struct.pack("!H", len(answer)) + answer)
            await writer.drain()
    except (asyncio.IncompleteReadError, asyncio.TimeoutError, ConnectionError, OSError):
        pass
    finally:
        writer.close()


async def run_dns(args):
    host, port = split(args.listen)
    upstream_addr = split(args.upstream)
    loop = asyncio.get_running_loop()
    front_transport, front = await loop.create_datagram_endpoint(Front, local_addr=(host, port))
    _, upstream = await loop.create_datagram_endpoint(lambda: Upstream(front), remote_addr=upstream_addr)
    front.upstream = upstream
    for transport in (front_transport, upstream.transport):
        # Room for bursts of questions while the process waits for the CPU.
        sock = transport.get_extra_info("socket")
        try:
            sock.setsockopt(socket.SOL_SOCKET, getattr(socket, "SO_RCVBUFFORCE", 33), 8 << 20)
        except OSError:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8 << 20)
    if args.flood > 0:
        # A second descriptor of the same socket: the answers leave from the address asked.
        dup = socket.socket(fileno=os.dup(front_transport.get_extra_info("socket").fileno()))
        front.flooder = Flooder(dup, args.flood, args.flood_before)
        front.flooder.start()
    server = await asyncio.start_server(lambda r, w: tcp_dns(r, w, upstream_addr), host, port)
    print("ready", flush=True)
    await until_stopped()
    server.close()
    front_transport.close()
    print(f"wrong-id packets sent: {front.flooder.sent if front.flooder else 0}", flush=True)
    print(f"cpu seconds: {cpu_seconds():.1f}", flush=True)


# ------------------------------------------------------------------------------------------------
# TCP: black holes, slow drips, endless bodies

MAX_CONNECTIONS = 2000  # per behaviour: past this, new connections are closed at once
open_counts = {}


def tracked(name, handler):
    async def wrapped(reader, writer):
        if open_counts.get(name, 0) >= MAX_CONNECTIONS:
            writer.close()
            return
        open_counts[name] = open_counts.get(name, 0) + 1
        try:
            await handler(reader, writer)
        except (ConnectionError, OSError, asyncio.IncompleteReadError, ssl.SSLError):
            pass
        finally:
            open_counts[name] -= 1
            try:
                writer.close()
            except (ConnectionError, OSError, ssl.SSLError):
                pass
    return wrapped


async def discard(reader, limit_seconds):
    """Reads and drops whatever comes, until EOF or the time limit."""
    deadline = time.monotonic() + limit_seconds
    while time.monotonic() < deadline:
        try:
            data = await asyncio.wait_for(reader.read(65536), deadline - time.monotonic())
        except asyncio.TimeoutError:
            return
        if not data:
            return


async def blackhole(reader, writer):
    await discard(reader, 300)


async def read_head(reader):
    """The request head (bounded), so an answer never comes before the question."""
    try:
        await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
    except (asyncio.LimitOverrunError, asyncio.TimeoutError):
        pass


DRIP_HEAD = (
    b"HTTP/1.1 401 Unauthorized\r\nWWW-Authenticate: Negotiate\r\nWWW-Authenticate: NTLM\r\n"
    b"X-SOAP-Enabled: True\r\n" + b"X-Drip: " + b"." * 4000 + b"\r\n\r\n"
)


async def drip(writer, data):
    """One byte a second, until the client goes away."""
    for i in range(len(data)):
        if writer.is_closing():
            return
        writer.write(data[i:i + 1])
        await writer.drain()
        await asyncio.sleep(1)


async def drip_headers(reader, writer):
    await read_head(reader)
    await drip(writer, DRIP_HEAD)


async def drip_body(reader, writer):
    await read_head(reader)
    writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: text/xml\r\nContent-Length: 100000\r\n\r\n")
    await writer.drain()
    await drip(writer, b"<?xml version=\"1.0\"?><Autodiscover>" + b" " * 99000)


async def endless(reader, writer):
    await read_head(reader)
    writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: text/xml\r\nTransfer-Encoding: chunked\r\n\r\n")
    chunk = b"<Autodiscover>" + b"<a/>" * 4096
    framed = b"%x\r\n" % len(chunk) + chunk + b"\r\n"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and not writer.is_closing():
        writer.write(framed)
        await writer.drain()
        # drain() returns at once while the kernel takes the data: yield, or one fast reader
        # starves every other connection of this server.
        await asyncio.sleep(0)


def syn_drop_listener(host, port):
    """A listener whose accept queue is full and never drained: further SYNs go unanswered."""
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind((host, port))
    listener.listen(0)
    fillers = []
    for _ in range(3):
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.setblocking(False)
        try:
            s.connect((host, port))
        except (BlockingIOError, OSError):
            pass
        fillers.append(s)
    return [listener] + fillers


async def run_tcp(args):
    pki = args.pki

    def tls(name):
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(f"{pki}/{name}.chain.pem", f"{pki}/{name}.key")
        return ctx

    servers = []

    async def serve(name, handler, host, port, ctx=None):
        servers.append(await asyncio.start_server(tracked(name, handler), host, port, ssl=ctx,
                                                  ssl_handshake_timeout=10 if ctx else None,
                                                  backlog=1024))

    for port in (443, 80):
        await serve("blackhole", blackhole, "127.0.30.20", port)
        for last in range(MANY_FIRST, MANY_FIRST + 16):
            await serve("blackhole", blackhole, f"127.0.30.{last}", port)
    keep = syn_drop_listener("127.0.30.21", 443) + syn_drop_listener("127.0.30.21", 80)
    await serve("drip-headers", drip_headers, "127.0.30.22", 443, tls("slowdrip"))
    await serve("drip-headers", drip_headers, "127.0.30.22", 80)
    await serve("drip-body", drip_body, "127.0.30.23", 443, tls("slowdrip"))
    await serve("endless", endless, "127.0.30.24", 443, tls("endless"))
    await serve("endless", endless, "127.0.30.24", 80)
    print("ready", flush=True)
    await until_stopped()
    for server in servers:
        server.close()
    for s in keep:
        s.close()
    print(f"cpu seconds: {cpu_seconds():.1f}", flush=True)


# ------------------------------------------------------------------------------------------------


def cpu_seconds():
    import resource
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def split(text):
    host, port = text.rsplit(":", 1)
    return host, int(port)


async def until_stopped():
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()


def main():
    parser = argparse.ArgumentParser()
    sub = parser.add_subparsers(dest="command", required=True)
    a = sub.add_parser("dns")
    a.add_argument("--listen", required=True)
    a.add_argument("--upstream", required=True)
    # More after the real answer would only meet the client's closed socket (and take the CPU
    # the exporter needs on a 2-core machine).
    a.add_argument("--flood", type=int, default=200)
    a.add_argument("--flood-before", type=int, default=100)
    a = sub.add_parser("tcp")
    a.add_argument("--pki", required=True)
    args = parser.parse_args()
    try:
        import resource
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(max(soft, 8192), hard), hard))
    except (ImportError, ValueError, OSError):
        pass
    asyncio.run(run_dns(args) if args.command == "dns" else run_tcp(args))


if __name__ == "__main__":
    sys.exit(main())
