"""Header stamps <-> one int64 key, bit for bit (ROS-free).

``builtin_interfaces/Time`` is an int32 ``sec`` and a uint32 ``nanosec``. The core keys frames,
seeds and CameraInfo matches by one integer; every output must carry back the very stamp its
input had, even one that is out of range or invalid, so the mapping is one-to-one.
"""

from __future__ import annotations

_NS = 1_000_000_000
_SEC_MIN = -(2**31)  # builtin_interfaces/Time: int32 sec, uint32 nanosec
_VALID_END = 2**31 * _NS  # valid stamps (nanosec < 1e9) fill [-2^31 * 1e9, 2^31 * 1e9)
_SPAN = 2**32 - _NS  # invalid nanosec values per second (1e9 .. 2^32 - 1)
_HALF = 2**63 - _VALID_END  # int64 room on each side of the valid range


def stamp_to_ns(stamp) -> int:
    """``builtin_interfaces/Time`` (or anything with ``sec``/``nanosec``) -> one int64 key.

    A valid stamp (``nanosec`` < 10^9) maps to its time in nanoseconds since the epoch,
    negative ``sec`` included. ``nanosec`` >= 10^9 is invalid per the message definition but
    is carried, not normalised: such stamps map one-to-one onto the int64 values outside the
    valid range, so :func:`ns_to_stamp` gives back the very same ``(sec, nanosec)`` for every
    pair (2^64 pairs onto 2^64 int64 values). Their key is not a time.
    """
    sec, nsec = int(stamp.sec), int(stamp.nanosec)
    if not (_SEC_MIN <= sec < 2**31 and 0 <= nsec < 2**32):
        raise ValueError(f"stamp ({sec}, {nsec}) is outside int32 sec / uint32 nanosec")
    if nsec < _NS:
        return sec * _NS + nsec
    index = (sec - _SEC_MIN) * _SPAN + (nsec - _NS)
    return _VALID_END + index if index < _HALF else -(2**63) + (index - _HALF)


def ns_to_sec_nanosec(ns: int) -> tuple[int, int]:
    """Inverse of :func:`stamp_to_ns` as a plain ``(sec, nanosec)`` pair (no ROS types)."""
    ns = int(ns)
    if -_VALID_END <= ns < _VALID_END:
        sec, nsec = divmod(ns, _NS)
        return sec, nsec
    if _VALID_END <= ns < 2**63:
        index = ns - _VALID_END
    elif -(2**63) <= ns < -_VALID_END:
        index = ns + 2**63 + _HALF
    else:
        raise ValueError(f"stamp key {ns} is outside int64")
    return _SEC_MIN + index // _SPAN, _NS + index % _SPAN


def stamp_is_valid(stamp) -> bool:
    """False for ``nanosec`` >= 10^9, which ``builtin_interfaces/Time`` does not allow."""
    return 0 <= int(stamp.nanosec) < _NS
