"""Ingest's error types: a located Problem, the IngestError users see, and the unusable-file signal."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

# How many problems an IngestError lists (the total is always given).
MAX_SHOWN = 5


@dataclass(frozen=True)
class Problem:
    """One thing wrong with the input: where (file and row), which column(s), and what was expected."""

    where: str
    message: str
    columns: tuple[str, ...] = ()

    def __str__(self) -> str:
        if not self.columns:
            return f"{self.where}: {self.message}"
        names = ", ".join(f"'{c}'" for c in self.columns)
        label = "column" if len(self.columns) == 1 else "columns"
        return f"{self.where}, {label} {names}: {self.message}"


class IngestError(Exception):
    """Input that does not meet the raw contract; str() names file, row, column and what was expected."""

    def __init__(self, problems: Sequence[Problem] | str) -> None:
        if isinstance(problems, str):
            problems = [Problem(where="aurora ingest", message=problems)]
        self.problems: list[Problem] = list(problems)
        super().__init__(self._render())

    def _render(self) -> str:
        if len(self.problems) == 1:
            return str(self.problems[0])
        shown = self.problems[:MAX_SHOWN]
        head = f"{len(self.problems)} problems in the input files"
        head += f" (the first {len(shown)}):" if len(self.problems) > len(shown) else ":"
        return "\n".join([head, *(f"  - {p}" for p in shown)])


class _FileUnusable(Exception):
    """A file that cannot be checked row by row (missing, empty, wrong delimiter, missing columns)."""

    def __init__(self, problem: Problem) -> None:
        super().__init__(str(problem))
        self.problem = problem
