"""MCAP storage files read record by record, damage and all, in bounded memory.

Records are parsed by the ``mcap`` package (``mcap.records``); chunks are decompressed by
``zstandard`` / ``lz4`` with a bound. The walk over the file is ours, because ``mcap``'s readers
stop at the first damaged record. Measured on a 24-message bag (rosbags' and ``mcap.writer``'s,
13 zstd chunks with CRCs), mcap 1.6.0:

* a bit flip in chunk 2: ``make_reader().iter_messages()`` and ``NonSeekingReader`` (CRCs on)
  give 1 of 24 messages, then ``CRCValidationError``; with CRCs off they hand out all 24, the
  corrupted ones as good;
* the file cut inside chunk 3: the seeking reader finds no footer and raises
  ``RecordLengthLimitExceeded`` before any message (0 of 24);
* a message with an unknown channel id ends the iteration (``McapError`` / ``KeyError``);
* a record or chunk cut short is returned short (``read(n)`` is not checked), a declared length
  is read in one ``read()`` (a flipped length allocates up to ``record_size_limit``, 4 GiB), and
  ``NonSeekingReader(log_time_order=True)`` holds the whole file in memory.

Here the data section is walked in file order; each record is read after its length is
checked against the file and ``limit`` (memory: the largest chunk or message, about twice).
A damaged record or chunk is skipped and counted (from the message index records that follow
a chunk, or from the summary's chunk index), then the walk goes on: by the record's length, at
the next chunk the summary indexes, or at the next chunk header found by scanning. Inside a
chunk that breaks part-way, the messages its index points past the break are still read; of a
chunk cut short by the end of the file, every whole record is kept. Messages are released in
log-time order (each chunk sorted; overlapping chunks merged). The summary is used for topics
and counts when it reads cleanly; without it, one counting pass finds them.
The file's framing around the records (footer, summary, chunk and message indexes, where to
go on after damage) is read by :class:`~hpe3d_ros.replay.bag_mcap_index.McapIndex`.
"""

from __future__ import annotations

import heapq
import io
import struct
import zlib
from collections.abc import Collection, Generator, Iterator
from typing import BinaryIO

import lz4.frame
import zstandard
from mcap.opcode import Opcode
from mcap.records import Channel, Message, Schema

from hpe3d_ros.replay.bag_files import MCAP_MAGIC, BagReadError, Tally
from hpe3d_ros.replay.bag_mcap_index import (
    COMPRESSIONS,
    OPCODES,
    PARSE_ERRORS,
    Indexes,
    McapIndex,
    Strict,
    chunk_header,
)

MessageTuple = tuple[int, int, bytes]  # (log_time_ns, channel id, cdr bytes)


class McapFile:
    """One MCAP file: ``channels`` (id -> (topic, type)), ``counts`` (topic -> messages),
    ``notes`` (structural damage found when opening) and :meth:`messages`."""

    def __init__(self, fh: BinaryIO, name: str, limit: int) -> None:
        self.fh, self.name, self.limit = fh, name, limit
        self.size = fh.seek(0, io.SEEK_END)
        if self.size == 0:
            raise BagReadError(f"{name} is empty (0 bytes)")
        self._index = McapIndex(fh, self.size, limit)
        if self._index.pread(0, 8) != MCAP_MAGIC:
            raise BagReadError(f"{name} is not an MCAP file (bad magic)")
        self.notes: list[str] = []
        self.channels: dict[int, tuple[str, str]] = {}
        self.counts: dict[str, int] = {}
        stats, channels, self._schema_names = self._index.read_summary(self.notes)
        for ch in channels:
            self._add_channel(ch)
        if stats is not None and set(stats.channel_message_counts) <= set(self.channels):
            for cid, n in stats.channel_message_counts.items():
                topic = self.channels[cid][0]
                self.counts[topic] = self.counts.get(topic, 0) + n
        else:  # no usable summary: one pass counts what can be read
            tally = Tally()
            for _, cid, _ in self._merged(None, tally):
                topic = self.channels[cid][0]
                self.counts[topic] = self.counts.get(topic, 0) + 1
            self.notes += tally.problems[:1]
            if len(tally.problems) > 1:
                self.notes.append(f"{len(tally.problems) - 1} more damaged places")

    def close(self) -> None:
        self.fh.close()

    # -------------------------------------------------------------------------- reading
    def messages(self, topics: Collection[str] | None, tally: Tally) -> Iterator[MessageTuple]:
        """``(log_ns, channel id, raw)`` of ``topics`` (None: all) in log-time order."""
        yield from self._merged(None if topics is None else set(topics), tally)

    def _merged(self, topics: set[str] | None, tally: Tally) -> Iterator[MessageTuple]:
        heap: list[tuple[int, int, int, bytes]] = []
        held = seq = 0
        for unit in self._units(topics, tally):
            first = unit[0][0]
            while heap and (heap[0][0] < first or held > self.limit):
                log, _, cid, raw = heapq.heappop(heap)
                held -= len(raw)
                yield log, cid, raw
            for log, cid, raw in unit:
                heapq.heappush(heap, (log, seq, cid, raw))
                held, seq = held + len(raw), seq + 1
        while heap:
            log, _, cid, raw = heapq.heappop(heap)
            yield log, cid, raw

    def _units(self, topics: set[str] | None, tally: Tally) -> Iterator[list[MessageTuple]]:
        """Messages of the data section, one sorted list per chunk (or lone message)."""
        pos = 8
        while pos < self._index.data_end:
            head = self._index.pread(pos, 9)
            if len(head) < 9:
                self._bad(tally, pos, "the file is cut short inside a record header", None)
                return
            op, n = struct.unpack("<BQ", head)
            end = pos + 9 + n
            if op in (Opcode.DATA_END, Opcode.FOOTER):
                return
            if op == Opcode.CHUNK:
                parsed = chunk_header(self._index.pread(pos + 9, 44))
                if parsed is None or parsed[0] != n or end > self.size or n > self.limit:
                    pos = yield from self._odd_chunk(pos, n, parsed, topics, tally)
                    if pos < 0:  # the file ends inside it
                        return
                    continue
            if end > self.size or op not in OPCODES:
                nxt = self._index.resync(pos + 1)
                why = f"bad record (opcode {op:#x}, {n} bytes), {nxt - pos} bytes skipped"
                self._bad(tally, pos, why, self._index.lost_between(pos, nxt))
                pos = nxt
                continue
            if n > self.limit:
                why = f"record of {n} bytes over the {self.limit}-byte limit"
                self._bad(tally, pos, why, int(op == Opcode.MESSAGE))
                pos = end
                continue
            if op in (Opcode.SCHEMA, Opcode.CHANNEL, Opcode.MESSAGE):
                unit = self._records(self._index.pread(pos + 9, n), pos, topics, tally, op)
            elif op == Opcode.CHUNK:
                indexes, end = self._index.message_indexes(end)
                unit = self._chunk(self._index.pread(pos + 9, n), pos, indexes, topics, tally)
            else:
                unit = []  # headers, indexes, attachments, metadata
            if unit:
                yield sorted(unit, key=lambda m: m[0])
            pos = end
        if self._index.data_end == self.size:
            self._bad(tally, pos, "the file is cut short before its footer", None)

    def _odd_chunk(
        self,
        pos: int,
        n: int,
        parsed: tuple[int, tuple[int, int, str, bytes]] | None,
        topics: set[str] | None,
        tally: Tally,
    ) -> Generator[list[MessageTuple], None, int]:
        """A chunk whose length field disagrees with its fields, the file or the limit.

        Returns where to go on: after it, at the next chunk found, or -1 (the file ends in it).
        """
        room = self.size - pos - 9
        body_len = parsed[0] if parsed is not None else -1
        if body_len == n and n <= room:  # a whole chunk, over the limit
            indexes, after = self._index.message_indexes(pos + 9 + n)
            lost = sum(len(v) for c, v in indexes.items() if self._wanted(c, topics))
            self._bad(tally, pos, f"chunk of {n} bytes over the {self.limit}-byte limit", lost)
            return after
        if 0 <= body_len <= min(room, self.limit):  # only the record's length field is bad
            self._bad(
                tally, pos, f"chunk record length {n} is wrong (its fields say {body_len})", 0
            )
            indexes, after = self._index.message_indexes(pos + 9 + body_len)
            unit = self._chunk(self._index.pread(pos + 9, body_len), pos, indexes, topics, tally)
            if unit:
                yield sorted(unit, key=lambda m: m[0])
            return after
        if min(n, body_len if body_len >= 0 else n) > room and room <= self.limit:  # cut short
            body = self._index.pread(pos + 9, room)
            unit = self._chunk(body, pos, {}, topics, Tally(), cut=True)
            why = f"the file is cut short at byte {self.size}, inside this chunk"
            self._bad(tally, pos, why + f" ({len(unit)} of its messages kept)", None)
            if unit:
                yield sorted(unit, key=lambda m: m[0])
            return -1
        if n <= room and n <= self.limit:  # framing fits, fields do not: read it as it says
            self._bad(tally, pos, f"chunk fields disagree with its length ({n})", 0)
            indexes, after = self._index.message_indexes(pos + 9 + n)
            unit = self._chunk(self._index.pread(pos + 9, n), pos, indexes, topics, tally)
            if unit:
                yield sorted(unit, key=lambda m: m[0])
            return after
        nxt = self._index.resync(pos + 1)
        self._bad(tally, pos, f"bad chunk record ({n} bytes)", self._index.lost_between(pos, nxt))
        return nxt

    def _chunk(
        self,
        body: bytes,
        pos: int,
        indexes: Indexes,
        topics: set[str] | None,
        tally: Tally,
        cut: bool = False,
    ) -> list[MessageTuple]:
        """Messages of one chunk record body (``cut``: the file ends inside it)."""
        indexed = sum(len(v) for c, v in indexes.items() if self._wanted(c, topics))
        lost = None if cut else indexed
        parsed = chunk_header(body)
        if parsed is None:
            self._bad(tally, pos, "chunk header unreadable", lost if indexes else None)
            return []
        _, (usize, crc, comp, data) = parsed
        if comp not in COMPRESSIONS or usize > self.limit:
            why = f"chunk of {usize} bytes ({comp!r} compression) not read"
            self._bad(tally, pos, why, lost if indexes else None)
            return []
        try:
            raw = _decompress(comp, data, usize)
        except (zstandard.ZstdError, RuntimeError, ValueError) as exc:
            self._bad(tally, pos, f"chunk does not decompress ({exc})", lost if indexes else None)
            return []
        if not cut and (len(raw) != usize or (crc and zlib.crc32(raw) != crc)):
            self._bad(tally, pos, "chunk fails its CRC/size check", lost if indexes else None)
            return []
        return self._records(raw, pos, topics, tally, None, cut=cut, indexes=indexes)

    def _records(
        self,
        buf: bytes,
        pos: int,
        topics: set[str] | None,
        tally: Tally,
        only: int | None,
        cut: bool = False,
        indexes: Indexes | None = None,
    ) -> list[MessageTuple]:
        """Schema/Channel/Message records of ``buf`` (a chunk's records, or one record's body
        when ``only`` gives its opcode). A message is kept once the record after it starts
        sensibly (its length is then believable); a break falls back to the message index."""
        if only is not None:
            try:
                msg = self._record(only, memoryview(buf))
            except PARSE_ERRORS as exc:
                self._bad(tally, pos, f"record unreadable ({exc})", int(only == Opcode.MESSAGE))
                return []
            return self._keep([msg] if msg else [], topics, tally, pos)
        msgs: list[tuple[int, Message]] = []
        at, bad = 0, None
        while at < len(buf):
            nxt = _framed(buf, at)
            if nxt is None:  # a cut chunk ends in a partial record: expected
                bad = None if cut else at
                break
            try:
                msg = self._record(buf[at], memoryview(buf)[at + 9 : nxt])
            except PARSE_ERRORS:
                bad = at
                break
            if msg is not None:
                msgs.append((at, msg))
            at = nxt
        if bad is not None and msgs and _framed(buf, bad) is None and msgs[-1][0] < bad:
            bad = msgs.pop()[0]  # the message before a garbled header may have a bad length
        out = self._keep([m for _, m in msgs], topics, tally, pos)
        if bad is not None:
            out += self._by_index(buf, bad, pos, indexes or {}, topics, tally)
        return out

    def _keep(
        self, msgs: list[Message], topics: set[str] | None, tally: Tally, pos: int
    ) -> list[MessageTuple]:
        unknown = sum(m.channel_id not in self.channels for m in msgs)
        if unknown:
            self._bad(tally, pos, f"{unknown} messages name an unknown channel", unknown)
        return [
            (m.log_time, m.channel_id, m.data) for m in msgs if self._wanted(m.channel_id, topics)
        ]

    def _record(self, op: int, body: memoryview) -> Message | None:
        if op == Opcode.MESSAGE:
            return Message.read(Strict(body), len(body))
        if op == Opcode.SCHEMA:
            schema = Schema.read(Strict(body))
            self._schema_names.setdefault(schema.id, schema.name)
        elif op == Opcode.CHANNEL:
            ch = Channel.read(Strict(body))
            self._add_channel(ch)
        return None

    def _by_index(
        self,
        buf: bytes,
        bad: int,
        pos: int,
        indexes: Indexes,
        topics: set[str] | None,
        tally: Tally,
    ) -> list[MessageTuple]:
        """Messages the index places at or after the break at ``bad`` inside a chunk, each
        kept when it parses, names the indexed channel and is followed by a sensible record."""
        out: list[MessageTuple] = []
        lost = 0
        for cid, entries in indexes.items():
            if not self._wanted(cid, topics):
                continue
            for _, off in entries:
                if off < bad:
                    continue
                nxt = _framed(buf, off) if 0 <= off < len(buf) else None
                try:
                    if nxt is None or buf[off] != Opcode.MESSAGE:
                        raise ValueError("index points at no message")
                    if nxt < len(buf) and _framed(buf, nxt) is None:
                        raise ValueError("no record follows the message")
                    msg = Message.read(Strict(memoryview(buf)[off + 9 : nxt]), nxt - off - 9)
                    if msg.channel_id != cid:
                        raise ValueError("index and message disagree on the channel")
                    out.append((msg.log_time, cid, msg.data))
                except PARSE_ERRORS:
                    lost += 1
        why = f"chunk records break at chunk byte {bad}"
        found = f" ({len(out)} messages after it found by the index)" if out else ""
        self._bad(tally, pos, why + found, lost if indexes else None)
        return out

    # -------------------------------------------------------------------------- structure
    def _add_channel(self, ch: Channel) -> None:
        if ch.id in self.channels:
            return
        schema = self._schema_names.get(ch.schema_id, "")
        self.channels[ch.id] = (ch.topic, schema)

    @staticmethod
    def _bad(tally: Tally, pos: int, why: str, lost: int | None) -> None:
        tally.add(f"byte {pos}", why, lost)

    def _wanted(self, cid: int, topics: set[str] | None) -> bool:
        ch = self.channels.get(cid)
        return ch is not None and (topics is None or ch[0] in topics)


def _framed(buf: bytes, at: int) -> int | None:
    """End of the record starting at ``buf[at]`` when its opcode is known and it fits."""
    if at + 9 > len(buf) or buf[at] not in OPCODES:
        return None
    end = at + 9 + struct.unpack_from("<Q", buf, at + 1)[0]
    return end if end <= len(buf) else None


def _decompress(comp: str, data: bytes, usize: int) -> bytes:
    """At most ``usize`` bytes (+1, to see an overrun) of a chunk's records; partial input
    gives the whole blocks it holds."""
    if comp == "zstd":
        with zstandard.ZstdDecompressor().stream_reader(io.BytesIO(data)) as r:
            return r.read(usize + 1)
    if comp == "lz4":
        return lz4.frame.LZ4FrameDecompressor().decompress(data, max_length=usize + 1)
    return data
