"""rosbag2 sqlite3 storage files read in place, damage and all: no copy, bounded memory.

* Opened read-only and immutable through a URI: nothing is written beside the bag (no
  ``-journal``, ``-wal`` or ``-shm``), and a ``-wal`` file left by a killed recorder is not
  replayed (its messages are not read).
* ``PRAGMA writable_schema=ON`` makes SQLite accept a file shorter than the page count in its
  header (a file cut short, or a header claiming 2^32-1 pages): it reads the pages that are
  there and reports the missing ones as malformed. So no padded temporary copy is needed.
* Messages are read one row at a time in rowid order, which is rosbag2's write order. A
  damaged page raises; the reader then finds the next readable rowid by probing (doubling, then
  bisecting: a few dozen one-row queries) and goes on, counting the rows it skipped.
"""

from __future__ import annotations

import os
import sqlite3
import struct
import urllib.parse
from collections.abc import Collection, Iterator
from pathlib import Path

from hpe3d_ros.replay.bag_files import SQLITE_MAGIC, BagReadError, Tally, open_regular

MessageTuple = tuple[int, int, bytes]  # (log_time_ns, topic id, cdr bytes)
_ROW = "SELECT id, topic_id, timestamp, data FROM messages WHERE id >= ?"


class Sqlite3File:
    """One ``.db3`` file: ``channels`` (topic id -> (topic, type)), ``notes`` and
    :meth:`messages`; :meth:`count` counts messages per topic (a scan of the table)."""

    def __init__(self, path: Path, name: str) -> None:
        self.name = name
        with open_regular(path) as fh:
            head = fh.read(100)
            size = fh.seek(0, os.SEEK_END)
        if size == 0:
            raise BagReadError(f"{name} is empty (0 bytes)")
        if not head.startswith(SQLITE_MAGIC):
            raise BagReadError(f"{name} is not an SQLite database (bad magic)")
        self.notes: list[str] = []
        if len(head) == 100:
            page = struct.unpack_from(">H", head, 16)[0]
            pages = struct.unpack_from(">I", head, 28)[0]
            claimed = (65536 if page == 1 else page) * pages
            if claimed > size:
                self.notes.append(f"{name} holds {size} of the {claimed} bytes its header gives")
        uri = f"file:{urllib.parse.quote(os.path.abspath(path))}?mode=ro&immutable=1"
        try:
            self.con = sqlite3.connect(uri, uri=True, check_same_thread=False)
            self.con.execute("PRAGMA writable_schema=ON")
            rows = self.con.execute("SELECT id, name, type FROM topics").fetchall()
        except sqlite3.Error as exc:
            raise BagReadError(f"{name} is damaged: no topic table ({exc})") from exc
        self.channels = {int(i): (str(n), str(t)) for i, n, t in rows}

    def close(self) -> None:
        self.con.close()

    def count(self) -> dict[str, int] | None:
        """Messages per topic (None when the table cannot be scanned to its end)."""
        try:
            q = "SELECT topic_id, COUNT(*) FROM messages GROUP BY topic_id"
            rows = self.con.execute(q).fetchall()
        except sqlite3.Error:
            return None
        out: dict[str, int] = {}
        for tid, n in rows:
            if tid in self.channels:
                topic = self.channels[tid][0]
                out[topic] = out.get(topic, 0) + int(n)
        return out

    def messages(self, topics: Collection[str] | None, tally: Tally) -> Iterator[MessageTuple]:
        """``(log_ns, topic id, raw)`` of ``topics`` (None: all) in rowid order."""
        ids = [i for i, (t, _) in self.channels.items() if topics is None or t in topics]
        if not ids:
            return
        query = f"{_ROW} AND topic_id IN ({','.join('?' * len(ids))}) ORDER BY id"
        start: int | None = -(2**63)
        bad_rows = 0
        while start is not None:
            try:
                for rid, tid, ts, data in self.con.execute(query, (start, *ids)):
                    start = rid + 1
                    if not isinstance(ts, int) or not isinstance(data, bytes):
                        bad_rows += 1
                        continue
                    yield ts, tid, data
                start = None
            except sqlite3.Error as exc:
                nxt = self._next_readable(query + " LIMIT 1", ids, start)
                gap = "from here on" if nxt is None else f"{start}..{nxt - 1}"
                tally.add(f"row {start}", f"rows {gap} unreadable ({exc})", None)
                start = nxt
        if bad_rows:
            tally.add("messages table", f"{bad_rows} rows with a bad stamp or data", bad_rows)

    def _next_readable(self, query: str, ids: list[int], bad: int) -> int | None:
        """The smallest rowid > ``bad`` from which ``query`` reads a row (None: from none).

        Doubling steps until a probe reads, then bisecting: probe(lo) fails, probe(hi) reads.
        """

        def probe(rowid: int) -> int | str | None:  # first readable row id, "end", None: damaged
            try:
                row = self.con.execute(query, (rowid, *ids)).fetchone()
            except sqlite3.Error:
                return None
            return "end" if row is None else int(row[0])

        top = 2**63 - 1
        lo, step = bad, 1
        while True:  # lo fails; find hi that reads or has no row after it
            hi = min(lo + step, top)
            got = probe(hi)
            if got is not None:
                break
            if hi == top:
                return None
            lo, step = hi, step * 2
        first = None if got == "end" else got
        while hi - lo > 1:
            mid = (lo + hi) // 2
            got = probe(mid)
            if got is None:
                lo = mid
            else:
                hi, first = mid, (None if got == "end" else got)
        return None if first is None else int(first)
