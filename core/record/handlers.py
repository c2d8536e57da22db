"""Callback handler bases, with LangChain's hook names, flags and signatures.

A handler overrides the hooks it cares about; every other hook is a no-op, so
rtrace handlers can also be passed to LangChain (``callbacks=[handler]``). The
hooks are LangChain's, one by one (no catch-all ``__getattr__``: ``hasattr`` must
answer as it does for a LangChain handler).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any
from uuid import UUID


class BaseCallbackHandler:
    """Base for synchronous handlers (``langchain_core.callbacks.BaseCallbackHandler``)."""

    raise_error: bool = False
    """Re-raise exceptions from this handler into the traced code."""
    run_inline: bool = False
    """Under an async manager, call this handler on the event loop, in order, first."""

    @property
    def ignore_llm(self) -> bool:
        return False

    @property
    def ignore_retry(self) -> bool:
        return False

    @property
    def ignore_chain(self) -> bool:
        return False

    @property
    def ignore_agent(self) -> bool:
        return False

    @property
    def ignore_retriever(self) -> bool:
        return False

    @property
    def ignore_chat_model(self) -> bool:
        return False

    @property
    def ignore_custom_event(self) -> bool:
        return False

    # retriever runs
    def on_retriever_start(
        self,
        serialized: dict[str, Any] | None,
        query: str,
        *,
        run_id: UUID,
        parent_run_id: UUID | None = None,
        tags: list[str] | None = None,
        metadata: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> Any:
        """A retriever run started."""

    def on_retriever_end(
        self,
        documents: Sequence[Any],
        *,
        run_id: UUID,
        parent_run_id: UUID | None = None,
        **kwargs: Any,
    ) -> Any:
        """A retriever run returned ``documents``."""

    def on_retriever_error(
        self,
        error: BaseException,
        *,
        run_id: UUID,
        parent_run_id: UUID | None = None,
        **kwargs: Any,
    ) -> Any:
        """A retriever run raised ``error``."""

    # run-level events
    def on_retry(
        self,
        retry_state: Any,
        *,
        run_id: UUID,
        parent_run_id: UUID | None = None,
        **kwargs: Any,
    ) -> Any:
        """An attempt failed and will be retried (``retry_state`` is tenacity's)."""

    def on_text(
        self,
        text: str,
        *,
        run_id: UUID,
        parent_run_id: UUID | None = None,
        **kwargs: Any,
    ) -> Any:
        """Free text attached to a run."""

    def on_custom_event(
        self,
        name: str,
        data: Any,
        *,
        run_id: UUID,
        tags: list[str] | None = None,
        metadata: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> Any:
        """A user-defined event."""

    # LangChain's other run types: no-ops here, recorded as parents by JsonlHandler.
    def on_chain_start(self, serialized: Any, inputs: Any, *, run_id: UUID, **kwargs: Any) -> Any:
        """A chain run started."""

    def on_chain_end(self, outputs: Any, *, run_id: UUID, **kwargs: Any) -> Any:
        """A chain run ended."""

    def on_chain_error(self, error: BaseException, *, run_id: UUID, **kwargs: Any) -> Any:
        """A chain run raised."""

    def on_tool_start(self, serialized: Any, input_str: str, *, run_id: UUID, **kwargs: Any) -> Any:
        """A tool run started."""

    def on_tool_end(self, output: Any, *, run_id: UUID, **kwargs: Any) -> Any:
        """A tool run ended."""

    def on_tool_error(self, error: BaseException, *, run_id: UUID, **kwargs: Any) -> Any:
        """A tool run raised."""

    def on_llm_start(self, serialized: Any, prompts: list[str], *, run_id: UUID, **kwargs: Any) -> Any:
        """An LLM run started."""

    def on_chat_model_start(self, serialized: Any, messages: Any, *, run_id: UUID, **kwargs: Any) -> Any:
        """A chat model run started (LangChain falls back to ``on_llm_start``)."""
        raise NotImplementedError(f"{type(self).__name__} does not implement on_chat_model_start")

    def on_llm_new_token(self, token: Any, *, run_id: UUID, **kwargs: Any) -> Any:
        """A streamed token."""

    def on_stream_event(self, event: Any, *, run_id: UUID, **kwargs: Any) -> Any:
        """A protocol event of ``stream_events(version="v3")``."""

    def on_llm_end(self, response: Any, *, run_id: UUID, **kwargs: Any) -> Any:
        """An LLM run ended."""

    def on_llm_error(self, error: BaseException, *, run_id: UUID, **kwargs: Any) -> Any:
        """An LLM run raised."""

    def on_agent_action(self, action: Any, *, run_id: UUID, **kwargs: Any) -> Any:
        """An agent chose an action."""

    def on_agent_finish(self, finish: Any, *, run_id: UUID, **kwargs: Any) -> Any:
        """An agent finished."""


class AsyncCallbackHandler(BaseCallbackHandler):
    """Base for async handlers: every hook is a coroutine function."""

    async def on_retriever_start(self, serialized: Any, query: str, *, run_id: UUID, **kwargs: Any) -> None:  # type: ignore[override]
        """A retriever run started."""

    async def on_retriever_end(self, documents: Sequence[Any], *, run_id: UUID, **kwargs: Any) -> None:  # type: ignore[override]
        """A retriever run returned ``documents``."""

    async def on_retriever_error(self, error: BaseException, *, run_id: UUID, **kwargs: Any) -> None:  # type: ignore[override]
        """A retriever run raised ``error``."""

    async def on_retry(self, retry_state: Any, *, run_id: UUID, **kwargs: Any) -> None:  # type: ignore[override]
        """An attempt failed and will be retried."""

    async def on_text(self, text: str, *, run_id: UUID, **kwargs: Any) -> None:  # type: ignore[override]
        """Free text attached to a run."""

    async def on_custom_event(self, name: str, data: Any, *, run_id: UUID, **kwargs: Any) -> None:  # type: ignore[override]
        """A user-defined event."""

    async def on_chain_start(self, serialized: Any, inputs: Any, *, run_id: UUID, **kwargs: Any) -> None:  # type: ignore[override]
        """A chain run started."""

    async def on_chain_end(self, outputs: Any, *, run_id: UUID, **kwargs: Any) -> None:  # type: ignore[override]
        """A chain run ended."""

    async def on_chain_error(self, error: BaseException, *, run_id: UUID, **kwargs: Any) -> None:  # type: ignore[override]
        """A chain run raised."""

    async def on_tool_start(self, serialized: Any, input_str: str, *, run_id: UUID, **kwargs: Any) -> None:  # type: ignore[override]
        """A tool run started."""

    async def on_tool_end(self, output: Any, *, run_id: UUID, **kwargs: Any) -> None:  # type: ignore[override]
        """A tool run ended."""

    async def on_tool_error(self, error: BaseException, *, run_id: UUID, **kwargs: Any) -> None:  # type: ignore[override]
        """A tool run raised."""

    async def on_llm_start(self, serialized: Any, prompts: list[str], *, run_id: UUID, **kwargs: Any) -> None:  # type: ignore[override]
        """An LLM run started."""

    async def on_chat_model_start(self, serialized: Any, messages: Any, *, run_id: UUID, **kwargs: Any) -> None:  # type: ignore[override]
        """A chat model run started."""
        raise NotImplementedError(f"{type(self).__name__} does not implement on_chat_model_start")

    async def on_llm_new_token(self, token: Any, *, run_id: UUID, **kwargs: Any) -> None:  # type: ignore[override]
        """A streamed token."""

    async def on_stream_event(self, event: Any, *, run_id: UUID, **kwargs: Any) -> None:  # type: ignore[override]
        """A protocol event of ``astream_events(version="v3")``."""

    async def on_llm_end(self, response: Any, *, run_id: UUID, **kwargs: Any) -> None:  # type: ignore[override]
        """An LLM run ended."""

    async def on_llm_error(self, error: BaseException, *, run_id: UUID, **kwargs: Any) -> None:  # type: ignore[override]
        """An LLM run raised."""

    async def on_agent_action(self, action: Any, *, run_id: UUID, **kwargs: Any) -> None:  # type: ignore[override]
        """An agent chose an action."""

    async def on_agent_finish(self, finish: Any, *, run_id: UUID, **kwargs: Any) -> None:  # type: ignore[override]
        """An agent finished."""
