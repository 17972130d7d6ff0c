"""Structure-aware chunking: a pure function from document text to retrieval chunks.

The rules, in order:

1. Markdown is split at its headings (ATX ``#`` lines outside code fences). Each part
   knows its heading path; a document's single leading ``#`` heading is its title and is
   left out of the paths (it is the chunk's ``title`` already).
2. A chunk never spans two ``##``-level (or ``#``-level) sections.
3. Inside one, small sibling subsections are merged while the chunk stays within
   ``target_tokens``; a merged chunk's section names them: ``"Dosing > Adults; Children"``.
4. A section longer than the target is split at paragraph, then line, then sentence,
   then word boundaries; each piece after the first starts with ~``overlap_tokens`` of the
   previous piece's tail, so a fact that straddles a cut is whole in one chunk.
5. Every chunk's text starts with its context: the heading lines above it (with their
   ``#`` markers), then its own heading line, so retrieval and readers see where it is.
6. A chunk text repeated within a document is kept once.

Tokens are counted by :func:`count_tokens`: words and punctuation marks (``\\w+`` runs and
single other characters). That approximates WordPiece counts: MiniLM's tokenizer splits
rare words further, so its counts run ~10-30% higher on clinical prose. It truncates
input at 256 word pieces, so the dense vector of a 350-token chunk reflects mostly its
head (context line included); BM25 indexes all of it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from ehrqa.core.errors import ConfigError

__all__ = ["ChunkConfig", "Section", "TextChunk", "chunk_text", "count_tokens", "parse_sections"]

_TOKEN = re.compile(r"\w+|[^\w\s]")
_HEADING = re.compile(r"^(#{1,6})[ \t]+(.+?)(?:[ \t]+#+)?[ \t]*$")
_FENCE = re.compile(r"^[ \t]{0,3}(```|~~~)")
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[A-Z0-9(\[\"'])")
_SEPARATORS = ("\n\n", "\n", "sentence", " ")  # coarsest first


def count_tokens(text: str) -> int:
    """Approximate token count: words plus punctuation marks (see the module docstring)."""
    return len(_TOKEN.findall(text))


@dataclass(frozen=True)
class ChunkConfig:
    """Chunk sizes in :func:`count_tokens` tokens."""

    target_tokens: int = field(default=350, metadata={"help": "size merged sections grow to"})
    max_tokens: int = field(default=500, metadata={"help": "hard cap, context lines included"})
    overlap_tokens: int = field(default=50, metadata={"help": "tail repeated after a cut"})

    def __post_init__(self) -> None:
        if not 0 <= self.overlap_tokens < self.target_tokens <= self.max_tokens:
            raise ConfigError(
                "chunk sizes must satisfy 0 <= overlap_tokens < target_tokens <= max_tokens, "
                f"got {self.overlap_tokens}, {self.target_tokens}, {self.max_tokens}"
            )


@dataclass(frozen=True)
class Section:
    """The text under one heading, up to the next heading.

    ``path`` holds the heading titles from the top (the title heading excluded),
    ``context`` the heading lines above this one as written, ``heading`` its own heading
    line (``""`` for text before any heading) and ``level`` its depth (0 before any).
    """

    path: tuple[str, ...]
    heading: str
    body: str
    level: int
    context: tuple[str, ...] = ()

    @property
    def block(self) -> str:
        """Heading line and body as they appear in the document."""
        return "\n\n".join(part for part in (self.heading, self.body) if part)


@dataclass(frozen=True)
class TextChunk:
    """One chunk: its section label (``" > "``-joined heading path) and its text."""

    section: str
    text: str


def parse_sections(text: str, *, markdown: bool = True) -> list[Section]:
    """Split ``text`` at its Markdown headings; plain text is one section with no path."""
    if not markdown:
        return [Section((), "", text.strip(), 0)] if text.strip() else []
    sections: list[Section] = []
    stack: list[tuple[int, str, str]] = []  # (level, title, heading line)
    heading, level, body, in_fence = "", 0, [], False
    for line in text.split("\n"):
        if _FENCE.match(line):
            in_fence = not in_fence
        match = None if in_fence else _HEADING.match(line)
        if match is None:
            body.append(line)
            continue
        sections.append(_section(stack, heading, level, body))
        level, heading, body = len(match.group(1)), line.strip(), []
        while stack and stack[-1][0] >= level:
            stack.pop()
        stack.append((level, match.group(2).strip(), heading))
    sections.append(_section(stack, heading, level, body))
    return _drop_title([s for s in sections if s.heading or s.body])


def _section(
    stack: list[tuple[int, str, str]], heading: str, level: int, body: list[str]
) -> Section:
    path = tuple(title for _, title, _ in stack) if heading else ()
    context = tuple(line for _, _, line in stack[:-1]) if heading else ()
    return Section(path, heading, "\n".join(body).strip(), level, context)


def _drop_title(sections: list[Section]) -> list[Section]:
    """Leave a lone leading level-1 heading (the document title) out of every path."""
    h1 = [s for s in sections if s.level == 1]
    first = next((s for s in sections if s.heading), None)
    if len(h1) != 1 or first is not h1[0]:
        return sections
    return [Section(s.path[1:], s.heading, s.body, s.level, s.context) for s in sections]


def chunk_text(
    text: str, *, markdown: bool = True, config: ChunkConfig | None = None
) -> list[TextChunk]:
    """Chunk a document's text (see the module docstring for the rules)."""
    config = config or ChunkConfig()
    chunks: list[TextChunk] = []
    for group in _top_level_groups(parse_sections(text, markdown=markdown)):
        chunks.extend(_chunk_group(group, config))
    unique: dict[str, TextChunk] = {}
    for chunk in chunks:
        unique.setdefault(chunk.text, chunk)
    return list(unique.values())


def _top_level_groups(sections: list[Section]) -> list[list[Section]]:
    """Sections grouped so that each ``#`` or ``##`` heading starts a new group."""
    groups: list[list[Section]] = []
    for section in sections:
        if not groups or 1 <= section.level <= 2:
            groups.append([])
        groups[-1].append(section)
    return groups


def _chunk_group(group: list[Section], config: ChunkConfig) -> list[TextChunk]:
    chunks: list[TextChunk] = []
    pending: list[Section] = []
    for section in group:
        size = count_tokens(section.block)
        if size > config.target_tokens:
            chunks.extend(_merge(pending))
            pending = []
            chunks.extend(_split_section(section, config))
            continue
        if pending and count_tokens("\n".join(s.block for s in pending)) + size > (
            config.target_tokens
        ):
            chunks.extend(_merge(pending))
            pending = []
        pending.append(section)
    chunks.extend(_merge(pending))
    return chunks


def _merge(sections: list[Section]) -> list[TextChunk]:
    """One chunk of consecutive small sections, prefixed with the first one's context."""
    if not sections:
        return []
    first = sections[0]
    context = [line for line in first.context if line not in {s.heading for s in sections}]
    text = "\n\n".join([*context, *(s.block for s in sections)])
    return [TextChunk(_merged_label([s.path for s in sections]), text)]


def _merged_label(paths: list[tuple[str, ...]]) -> str:
    """``" > "``-joined common heading path, then the distinct next headings ``"; "``-joined."""
    common = list(paths[0])
    for path in paths[1:]:
        while tuple(common) != path[: len(common)]:
            common.pop()
    tails = list(dict.fromkeys(p[len(common)] for p in paths if len(p) > len(common)))
    return " > ".join([*common, "; ".join(tails)] if tails else common)


def _split_section(section: Section, config: ChunkConfig) -> list[TextChunk]:
    """Pieces of a long section: each repeats the context and heading, then overlaps."""
    header = "\n\n".join([*section.context, section.heading]).strip()
    budget = config.max_tokens - count_tokens(header) - config.overlap_tokens
    budget = max(min(budget, config.target_tokens), 16)
    pieces = _pack(_units(section.body, budget, 0), budget)
    label = " > ".join(section.path)
    chunks: list[TextChunk] = []
    for index, piece in enumerate(pieces):
        overlap = _tail(pieces[index - 1], config.overlap_tokens) if index else ""
        text = "\n\n".join(part for part in (header, overlap, piece) if part)
        chunks.append(TextChunk(label, text))
    return chunks or [TextChunk(label, header)]


def _units(text: str, budget: int, depth: int) -> list[tuple[str, str]]:
    """``(separator_before, text)`` units no larger than ``budget`` tokens, coarsest first."""
    separator = _SEPARATORS[depth]
    parts = _SENTENCE_END.split(text) if separator == "sentence" else text.split(separator)
    joiner = " " if separator == "sentence" else separator
    units: list[tuple[str, str]] = []
    for position, part in enumerate(p for p in parts if p.strip()):
        lead = joiner if position else ""
        if count_tokens(part) <= budget or depth == len(_SEPARATORS) - 1:
            units.append((lead, part.strip() if separator != " " else part))
        else:
            inner = _units(part.strip(), budget, depth + 1)
            units.extend([(lead + inner[0][0], inner[0][1]), *inner[1:]] if inner else [])
    return units


def _pack(units: list[tuple[str, str]], budget: int) -> list[str]:
    """Greedily join units into pieces of at most ``budget`` tokens."""
    pieces: list[str] = []
    current, size = "", 0
    for lead, text in units:
        tokens = count_tokens(text)
        if current and size + tokens > budget:
            pieces.append(current)
            current, size = "", 0
        current = current + lead + text if current else text
        size += tokens
    if current.strip():
        pieces.append(current)
    return pieces


def _tail(text: str, limit: int) -> str:
    """The last whole sentences of ``text`` within ``limit`` tokens, else its last words."""
    if limit <= 0:
        return ""
    sentences = _SENTENCE_END.split(text.strip())
    taken: list[str] = []
    while sentences and count_tokens(" ".join([sentences[-1], *taken])) <= limit:
        taken.insert(0, sentences.pop())
    if taken:
        return " ".join(taken).strip()
    words = text.split()
    kept: list[str] = []
    while words and count_tokens(" ".join([words[-1], *kept])) <= limit:
        kept.insert(0, words.pop())
    return " ".join(kept)
