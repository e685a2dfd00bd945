"""An MCAP file's framing, read defensively: footer, summary, chunk and message indexes.

:class:`McapIndex` answers the questions the record walk of
:class:`~hpe3d_ros.replay.bag_mcap.McapFile` asks about the file around a record: where the
data section ends and what the summary holds (topics, counts, the chunk index), which message
index records follow a chunk, how many messages a skipped stretch held, and where the next
whole chunk starts after damage. Every read is bounded by the file's size and the caller's
``limit``; nothing here trusts a length it has not checked. Also the parsing primitives both
modules share (:class:`Strict`, :func:`chunk_header`).
"""

from __future__ import annotations

import bisect
import io
import struct
from typing import BinaryIO

from mcap.data_stream import ReadDataStream
from mcap.exceptions import EndOfFile, McapError
from mcap.opcode import Opcode
from mcap.records import Channel, ChunkIndex, Footer, MessageIndex, Schema, Statistics

from hpe3d_ros.replay.bag_files import MCAP_MAGIC

#: What a damaged record raises while ``mcap.records`` parses it.
PARSE_ERRORS = (McapError, struct.error, UnicodeDecodeError, ValueError, OverflowError)
COMPRESSIONS = ("", "lz4", "zstd")
OPCODES = frozenset(int(op) for op in Opcode)  # private records (>= 0x80) count as damage
_FOOTER_LEN = 9 + 20 + 8  # footer record + closing magic
_FOOTER_HEAD = struct.pack("<BQ", Opcode.FOOTER, 20)
_SUMMARY_MAX = 64 << 20
_SCAN_BLOCK = 1 << 20

#: channel id -> [(log time, offset in the chunk's records)], as MessageIndex records hold them
Indexes = dict[int, list[tuple[int, int]]]


class Strict(ReadDataStream):
    """A ReadDataStream over one record's bytes: reading past them is damage, not a short read."""

    def __init__(self, data: bytes | memoryview) -> None:
        super().__init__(io.BytesIO(data))

    def read(self, length: int) -> bytes:
        data = super().read(length) if length >= 0 else b""
        if len(data) != length:
            raise EndOfFile(f"record field of {length} bytes runs past its record")
        return data


class McapIndex:
    """Bounded reads of one open MCAP file and what its summary and indexes say (module doc).

    ``data_end``: where the data section ends (the summary's start, else the file's end);
    ``chunks``: the summary's chunk index in file order (empty without a readable summary).
    """

    def __init__(self, fh: BinaryIO, size: int, limit: int) -> None:
        self.fh, self.size, self.limit = fh, size, limit
        self.data_end = size
        self.chunks: list[ChunkIndex] = []

    def pread(self, pos: int, n: int) -> bytes:
        """Up to ``n`` bytes at ``pos``, never past the end of the file."""
        self.fh.seek(pos)
        return self.fh.read(max(0, min(n, self.size - pos)))

    def read_summary(
        self, notes: list[str]
    ) -> tuple[Statistics | None, list[Channel], dict[int, str]]:
        """Footer and summary section: (statistics, channels, schema id -> name), all empty
        when there is none; a damaged or missing one is said in ``notes``."""
        tail = self.pread(self.size - _FOOTER_LEN, _FOOTER_LEN) if self.size > 16 else b""
        if len(tail) < _FOOTER_LEN or tail[-8:] != MCAP_MAGIC or tail[:9] != _FOOTER_HEAD:
            notes.append("no MCAP footer (file cut short?)")
            return None, [], {}
        footer = Footer.read(Strict(tail[9:29]))
        start, stop = footer.summary_start, self.size - _FOOTER_LEN
        if start == 0:
            return None, [], {}
        if not 8 <= start <= stop or stop - start > _SUMMARY_MAX:
            notes.append(f"footer points at a summary outside the file ({start})")
            return None, [], {}
        self.data_end = start
        buf, at = self.pread(start, stop - start), 0
        stats, channels, chunks, schemas = None, [], [], {}
        try:
            while at < len(buf):
                op, n = struct.unpack_from("<BQ", buf, at)
                body = memoryview(buf)[at + 9 : at + 9 + n]
                if at + 9 + n > len(buf):
                    raise EndOfFile("record runs past the summary")
                if op == Opcode.SCHEMA:
                    schema = Schema.read(Strict(body))
                    schemas[schema.id] = schema.name
                elif op == Opcode.CHANNEL:
                    channels.append(Channel.read(Strict(body)))
                elif op == Opcode.CHUNK_INDEX:
                    chunks.append(ChunkIndex.read(Strict(body)))
                elif op == Opcode.STATISTICS:
                    stats = Statistics.read(Strict(body))
                at += 9 + n
        except PARSE_ERRORS as exc:
            notes.append(f"summary unreadable at byte {start + at} ({exc or 'cut short'})")
            return None, [], {}
        self.chunks = sorted(chunks, key=lambda c: c.chunk_start_offset)
        return stats, channels, schemas

    def message_indexes(self, pos: int) -> tuple[Indexes, int]:
        """The message index records that follow a chunk ending at ``pos``; and where they end."""
        out: Indexes = {}
        while pos + 9 <= self.data_end:
            op, n = struct.unpack("<BQ", self.pread(pos, 9))
            if op != Opcode.MESSAGE_INDEX or pos + 9 + n > self.data_end or n > self.limit:
                break
            try:
                idx = MessageIndex.read(Strict(self.pread(pos + 9, n)))
            except PARSE_ERRORS:
                break
            out[idx.channel_id] = idx.records
            pos += 9 + n
        return out, pos

    def lost_between(self, start: int, stop: int) -> int | None:
        """Messages in the indexed chunks that start in [start, stop); None without an index."""
        if not self.chunks:
            return None
        lost = 0
        for ci in self.chunks:
            if start <= ci.chunk_start_offset < stop:
                for off in ci.message_index_offsets.values():
                    lost += self._index_count(off)
        return lost

    def resync(self, pos: int) -> int:
        """The next offset from ``pos`` where a whole chunk record starts (index or scan)."""
        indexed = [c.chunk_start_offset for c in self.chunks]
        nxt = indexed[i] if (i := bisect.bisect_left(indexed, pos)) < len(indexed) else None
        stop = min(nxt if nxt is not None else self.data_end, self.data_end)
        at = pos
        while at < stop:
            block = self.pread(at, min(_SCAN_BLOCK, stop - at) + 64)
            i = block.find(b"\x06")
            while 0 <= i < min(_SCAN_BLOCK, stop - at):
                if self._chunk_at(at + i, block[i : i + 64]):
                    return at + i
                i = block.find(b"\x06", i + 1)
            at += _SCAN_BLOCK
        return stop

    def _index_count(self, off: int) -> int:
        head = self.pread(off, 9 + 6)
        if len(head) < 15 or head[0] != Opcode.MESSAGE_INDEX:
            return 0
        return struct.unpack_from("<I", head, 11)[0] // 16

    def _chunk_at(self, pos: int, head: bytes) -> bool:
        if len(head) < 9 + 40:
            return False
        n = struct.unpack_from("<Q", head, 1)[0]
        parsed = chunk_header(head[9:])
        return parsed is not None and parsed[0] == n and pos + 9 + n <= self.data_end


def chunk_header(body: bytes) -> tuple[int, tuple[int, int, str, bytes]] | None:
    """(whole chunk record length, (uncompressed size, crc, compression, records)) of a chunk
    body, or None when its fields do not add up; ``records`` may be shorter (file cut)."""
    if len(body) < 32:
        return None
    _, _, usize, crc, clen = struct.unpack_from("<QQQII", body)
    if clen > 4 or len(body) < 32 + clen + 8:
        return None
    comp = body[32 : 32 + clen]
    if comp.decode("ascii", "replace") not in COMPRESSIONS:
        return None
    rlen = struct.unpack_from("<Q", body, 32 + clen)[0]
    start = 32 + clen + 8
    return start + rlen, (usize, crc, comp.decode(), body[start : start + rlen])
