"""When to try an upload again: a pure schedule, so it is tested without sleeping.

Exponential backoff with "equal jitter" (half the delay fixed, half random) and a cap: kiosks that
lost the same collector at the same moment do not come back in lockstep, and none waits less than
half its delay. A collector's ``Retry-After`` (on 429 and 503) is honoured, up to a ceiling so a
misconfigured collector cannot silence a kiosk for days.
"""

from __future__ import annotations

from datetime import datetime
from email.utils import parsedate_to_datetime

# The longest Retry-After the kiosk obeys; a longer one is treated as this.
MAX_RETRY_AFTER_S = 3600.0


def backoff_s(failures: int, base_s: float, cap_s: float, jitter: float) -> float:
    """Seconds to wait after ``failures`` failed attempts in a row.

    ``jitter`` is a number in [0, 1) (``random.random()`` in the kiosk, fixed in tests): the delay
    doubles from ``base_s`` per failure up to ``cap_s``, and the wait is between half and all of it.
    No failure means no wait.
    """
    if failures <= 0:
        return 0.0
    if not 0.0 <= jitter < 1.0:
        raise ValueError(f"jitter must be in [0, 1), got {jitter}")
    ceiling = max(base_s, cap_s)
    delay = min(ceiling, base_s * 2.0 ** min(failures - 1, 60))
    return delay / 2.0 + delay / 2.0 * jitter


def parse_retry_after(value: str | None, now: datetime) -> float | None:
    """A ``Retry-After`` header as seconds from ``now`` (delta-seconds or an HTTP date), or None.

    Unparseable values are ignored (None) rather than trusted; dates in the past mean "now" (0).
    """
    if value is None:
        return None
    text = value.strip()
    if text.isascii() and text.isdigit():  # "²" is a digit to isdigit(), not to float()
        return min(float(text), MAX_RETRY_AFTER_S)
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError, OverflowError):  # OverflowError: a zone offset of 20 digits
        return None
    if when is None or when.tzinfo is None:
        return None
    return min(max(0.0, (when - now).total_seconds()), MAX_RETRY_AFTER_S)


def next_delay_s(failures: int, base_s: float, cap_s: float, jitter: float, retry_after_s: float | None = None) -> float:
    """The wait before the next attempt: the backoff, or the collector's Retry-After if longer."""
    delay = backoff_s(failures, base_s, cap_s, jitter)
    if retry_after_s is not None:
        delay = max(delay, min(retry_after_s, MAX_RETRY_AFTER_S))
    return delay
