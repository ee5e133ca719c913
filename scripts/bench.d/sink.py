#!/usr/bin/env python3
"""The least an HTTP upload can cost: a reference for the file-store benchmark.

Serves one connection at a time on 127.0.0.1 (port 0: the port is printed on the first line),
any number of requests on it. Each request's body (Content-Length only) is received into one
reused 1 MiB buffer and written to a new file in DIR, which is removed once the answer (201)
is sent. No parsing beyond the headers, no checks, no metadata: a receive-and-write loop,
against which an upload to the server shows its own cost on the same machine, disk and client.

A request to /splice is received without the copy into user space: the kernel moves the bytes
from the socket into a pipe and from the pipe into the file (splice(2)). That is the least any
receiver can do, and shows what the client and the kernel leave for one.

Usage: sink.py DIR
"""

import fcntl
import os
import socket
import sys

BUFFER = 1 << 20
F_SETPIPE_SZ = 1031


def read_head(conn):
    """The request head, and the body bytes that came with it."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = conn.recv(65536)
        if not chunk:
            return None, b""
        data += chunk
    head, rest = data.split(b"\r\n\r\n", 1)
    return head, rest


def content_length(head):
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            return int(value.strip())
    return 0


def receive_copying(conn, fd, left, view):
    while left > 0:
        got = conn.recv_into(view[: min(left, BUFFER)])
        if got == 0:
            raise ConnectionError("the client went away")
        os.write(fd, view[:got])
        left -= got


def receive_splicing(conn, fd, left, pipe):
    readable, writable = pipe
    while left > 0:
        got = os.splice(conn.fileno(), writable, min(left, BUFFER))
        if got == 0:
            raise ConnectionError("the client went away")
        moved = 0
        while moved < got:
            moved += os.splice(readable, fd, got - moved)
        left -= got


def serve(conn, directory, number, view, pipe):
    """One request; False once the client has closed the connection."""
    head, rest = read_head(conn)
    if head is None:
        return False
    if b"100-continue" in head.lower():
        conn.sendall(b"HTTP/1.1 100 Continue\r\n\r\n")
    path = os.path.join(directory, f"sink-{number}")
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        os.write(fd, rest)
        left = content_length(head) - len(rest)
        if head.split(b" ", 2)[1] == b"/splice":
            receive_splicing(conn, fd, left, pipe)
        else:
            receive_copying(conn, fd, left, view)
    except BaseException:
        os.unlink(path)
        raise
    finally:
        os.close(fd)
    conn.sendall(b"HTTP/1.1 201 Created\r\nContent-Length: 2\r\n\r\n{}")
    os.unlink(path)
    return True


def main():
    directory = sys.argv[1]
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    print(listener.getsockname()[1], flush=True)
    view = memoryview(bytearray(BUFFER))
    pipe = os.pipe()
    fcntl.fcntl(pipe[1], F_SETPIPE_SZ, BUFFER)
    number = 0
    while True:
        conn, _ = listener.accept()
        try:
            while True:
                number += 1
                if not serve(conn, directory, number, view, pipe):
                    break
        except (ConnectionError, ValueError) as err:
            print(f"sink: request {number}: {err}", file=sys.stderr, flush=True)
        finally:
            conn.close()


if __name__ == "__main__":
    main()
