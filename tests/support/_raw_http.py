"""An HTTP POST written on a socket as bytes: headers that are not text (bytes that are not
UTF-8, which the aiohttp client cannot send) reach a server as an impostor could send them."""

from __future__ import annotations

import asyncio


async def post_raw(
    host: str,
    port: int,
    path: str,
    headers: dict[str, str],
    body: bytes = b"",
    *,
    split: int | None = None,
) -> int:
    """POST `body` to `path`; header values are written as their bytes (surrogate escapes stand
    for bytes that are not UTF-8). `split`: the request is written in two pieces, the second
    starting at that byte of the body a moment after the first, so the server has the headers
    before all of the body. Returns the status code."""
    reader, writer = await asyncio.open_connection(host, port)
    try:
        head = [f"POST {path} HTTP/1.1".encode(), b"Host: gateway"]
        head += [
            k.encode() + b": " + v.encode("utf-8", "surrogateescape") for k, v in headers.items()
        ]
        head += [b"Content-Length: %d" % len(body), b"Connection: close"]
        request = b"\r\n".join(head) + b"\r\n\r\n" + body
        if split is not None:
            first = len(request) - len(body) + split
            writer.write(request[:first])
            await writer.drain()
            await asyncio.sleep(0.1)
            request = request[first:]
        writer.write(request)
        status_line = await reader.readline()
        await reader.read()
    finally:
        writer.close()
        await writer.wait_closed()
    return int(status_line.split()[1])


async def post_headers(
    host: str,
    port: int,
    path: str,
    headers: dict[str, str],
    length: int,
    *,
    source: str | None = None,
) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """A connection that has sent a POST's headers, declaring a body of `length` bytes, and none
    of the body: the caller trickles it (or not). `source`: the local address to connect from
    (any 127.x.y.z on Linux), to be another client of the same server."""
    reader, writer = await asyncio.open_connection(
        host, port, local_addr=(source, 0) if source else None
    )
    head = [f"POST {path} HTTP/1.1".encode(), b"Host: gateway"]
    head += [k.encode() + b": " + v.encode() for k, v in headers.items()]
    head += [b"Content-Length: %d" % length]
    writer.write(b"\r\n".join(head) + b"\r\n\r\n")
    await writer.drain()
    return reader, writer


async def status_of(reader: asyncio.StreamReader) -> int | None:
    """The status of the answer on a raw connection, None when it closed without one."""
    line = await reader.readline()
    return int(line.split()[1]) if line else None


async def closed(reader: asyncio.StreamReader) -> bool:
    """Reads to the end: True once the server closed the connection (a reset counts)."""
    try:
        while await reader.read(65536):
            pass
    except ConnectionError:
        pass
    return True
