"""LangChain's ``with_retry`` attempts: the one rule that makes them retries of one call.

LangChain's ``RunnableRetry`` records every attempt as a run of its own and tags the
second and later ones ``retry:attempt:N``. The readers (trees, filters, the run summary)
present such a run as the retry of the failed attempt before it.
"""

from __future__ import annotations

from typing import Any

RETRY_ATTEMPT_TAG = "retry:attempt:"


def retry_attempt(tags: Any) -> int | None:
    """N for a run tagged ``retry:attempt:N`` (N >= 2: the call was retried), else None."""
    if not isinstance(tags, list):
        return None
    for tag in tags:
        if isinstance(tag, str) and tag.startswith(RETRY_ATTEMPT_TAG):
            number = tag[len(RETRY_ATTEMPT_TAG):]
            return int(number) if number.isdigit() and int(number) >= 2 else None
    return None
