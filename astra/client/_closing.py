"""``Closing``: ``with`` support for the client's objects that hold a thread or a socket."""

from __future__ import annotations

from types import TracebackType
from typing import Self


class Closing:
    """A context manager whose exit calls ``close()``: ``with Telemetry() as telemetry: ...``."""

    def close(self) -> None:
        """Release what the object holds; each subclass says what that is."""

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
