"""Reading FHIR R4 data from files: Bundles (.json, .json.gz) and bulk ndjson (.ndjson[.gz]).

Each file is one *unit*: the ingester writes a unit in one transaction, so a unit is never
half-written, and ``--strict`` rejects a unit whole when one of its entries is invalid.

Files are read as streams with a cap on the bytes they decompress to, so a hostile file (a
gzip bomb, a multi-gigabyte bundle) costs neither unbounded memory nor unbounded time:

* ndjson is read line by line; a line that is not a JSON object is reported with its line
  number and the other lines are kept;
* a Bundle up to :data:`IN_MEMORY_BYTES` is parsed whole with orjson (fast); a larger one
  is parsed entry by entry with ijson, so memory stays flat with file size;
* gzip input is refused as soon as it decompresses past the cap, or past
  :data:`MAX_GZIP_RATIO` times its compressed size (a gzip bomb).
"""

from __future__ import annotations

import gzip
import io
import sys
import zlib
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import ijson
import orjson

from ehrqa.core.errors import FhirValidationError, NotFoundError

SUFFIXES = (".json", ".json.gz", ".ndjson", ".ndjson.gz")
MIB = 1 << 20
# The most bytes one file may hold (after decompression) unless the caller says otherwise.
DEFAULT_MAX_BYTES = 1024 * MIB
# Bundles up to this size are parsed in one go; larger ones entry by entry.
IN_MEMORY_BYTES = 32 * MIB
# Longest ndjson line (one resource); a longer line is reported and skipped.
MAX_LINE_BYTES = 64 * MIB
# FHIR JSON compresses about 10:1; deflate's ceiling is about 1030:1. Past this ratio (once
# RATIO_CHECK_BYTES have come out) the file is a bomb, refused before the cap is reached.
MAX_GZIP_RATIO = 200
RATIO_CHECK_BYTES = 16 * MIB
_READ_CHUNK = 256 * 1024


@dataclass
class RawEntry:
    """One resource as read from a file, before validation.

    ``error`` says why an entry could not be read at all (a malformed ndjson line).
    """

    location: str
    index: int
    resource: Any
    method: str = "POST"
    full_url: str | None = None
    error: str | None = None


@dataclass
class SourceUnit:
    """The entries of one file (or one server patient), and its ``fullUrl`` map.

    ``entries`` may be iterated more than once: a list, or a :class:`FileEntries` stream
    that reads the file again each time. ``full_urls`` holds the map given by the source
    (a server fetch); entries carry their own ``full_url`` too.
    """

    path: Path
    entries: Iterable[RawEntry]
    full_urls: dict[str, str] = field(default_factory=dict)
    error: FhirValidationError | None = None


def find_files(paths: Iterable[str | Path]) -> list[Path]:
    """Expand files and folders (recursively) into the FHIR data files they hold, sorted."""
    found: list[Path] = []
    for raw in paths:
        path = Path(raw)
        if not path.exists():
            raise NotFoundError(f"{path}: no such file or folder")
        if path.is_dir():
            found.extend(p for p in sorted(path.rglob("*")) if _is_data_file(p))
        elif _is_data_file(path):
            found.append(path)
        else:
            raise FhirValidationError(
                f"unsupported file type; expected one of {', '.join(SUFFIXES)}",
                location=str(path),
            )
    return found


def _is_data_file(path: Path) -> bool:
    return path.is_file() and path.name.lower().endswith(SUFFIXES)


def size_text(n: int) -> str:
    """``n`` bytes as a short human size (``1.5 GiB``, ``200 MiB``)."""
    if n >= 1024 * MIB:
        return f"{n / (1024 * MIB):.1f} GiB"
    if n >= MIB:
        return f"{n / MIB:.0f} MiB"
    return f"{n} bytes"


class LimitedReader:
    """A binary stream of a file, gunzipped when its name ends in ``.gz``, that raises a
    :class:`FhirValidationError` naming the file once more than ``max_bytes`` come out.

    Gzip errors (truncated, corrupt, not gzip at all) become the same error type.
    """

    def __init__(self, path: Path, max_bytes: int) -> None:
        if max_bytes < 1:
            raise ValueError("max_bytes must be positive")
        self.path = path
        self.max_bytes = max_bytes
        self.count = 0
        self._gzip = path.name.lower().endswith(".gz")
        self._file = path.open("rb")
        self._stream: IO[bytes] | gzip.GzipFile = self._file
        try:
            if self._gzip:
                self._check_trailer()
                self._stream = gzip.GzipFile(fileobj=self._file, mode="rb")
            elif path.stat().st_size > max_bytes:
                self._too_large()
        except BaseException:
            self._file.close()
            raise

    def _check_trailer(self) -> None:
        # A gzip member ends with its size mod 2**32: a bomb that says so is refused at once.
        size = self.path.stat().st_size
        if size >= 18:
            self._file.seek(size - 4)
            claimed = int.from_bytes(self._file.read(4), "little")
            self._file.seek(0)
            if claimed > self.max_bytes:
                self._too_large()

    def _too_large(self) -> None:
        raise FhirValidationError(
            f"larger than the {size_text(self.max_bytes)} limit per file (decompressed); "
            "split it, or raise the limit (ehrqa ingest --max-file-mb)",
            location=str(self.path),
        )

    def read(self, size: int = -1) -> bytes:
        """Up to ``size`` bytes (all that is left, within the cap, when negative)."""
        if size is None or size < 0:
            size = self.max_bytes - self.count + 1
        return self._counted(lambda: self._stream.read(size))

    def readline(self, limit: int = -1) -> bytes:
        """One line, at most ``limit`` bytes long."""
        return self._counted(lambda: self._stream.readline(limit))

    def _counted(self, read: Any) -> bytes:
        try:
            data: bytes = read()
        except (OSError, EOFError, zlib.error) as exc:
            raise FhirValidationError(
                f"not a valid gzip file ({exc or 'truncated'})", location=str(self.path)
            ) from exc
        self.count += len(data)
        if self.count > self.max_bytes:
            self._too_large()
        if (
            self._gzip
            and self.count > RATIO_CHECK_BYTES
            and self.count > MAX_GZIP_RATIO * max(self._file.tell(), 1)
        ):
            raise FhirValidationError(
                f"decompresses to more than {MAX_GZIP_RATIO} times its size (a gzip bomb?); "
                "refused after reading "
                f"{size_text(self.count)}: decompress it yourself and ingest the plain file",
                location=str(self.path),
            )
        return data

    def close(self) -> None:
        """Close the file."""
        self._stream.close()
        self._file.close()

    def __enter__(self) -> LimitedReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class _Prefixed:
    """A reader that gives ``head`` first, then the rest of ``reader`` (for ijson)."""

    def __init__(self, head: bytes, reader: LimitedReader) -> None:
        self._head: io.BytesIO | None = io.BytesIO(head)
        self._reader = reader

    def read(self, size: int = -1) -> bytes:
        if self._head is not None:
            if (data := self._head.read(size)) or size == 0:  # ijson first reads 0 bytes
                return data
            self._head = None  # up to 32 MiB: not kept for the rest of the file
        return self._reader.read(size)

    @property
    def count(self) -> int:
        """Bytes read from the file so far."""
        return self._reader.count


class FileEntries:
    """The entries of one file, read again from disk on every iteration.

    Iterating raises :class:`FhirValidationError` (naming the file) when the file cannot
    be read as a whole: bad gzip, over the size cap, a bundle that is not valid JSON. A
    small bundle is parsed once and kept, so a second iteration costs nothing.
    """

    def __init__(self, path: Path, max_bytes: int = DEFAULT_MAX_BYTES) -> None:
        self.path = path
        self.max_bytes = max_bytes
        self._cached: list[RawEntry] | None = None

    @property
    def in_memory(self) -> bool:
        """Whether the entries are held in memory (a small bundle, once read)."""
        return self._cached is not None

    @property
    def is_ndjson(self) -> bool:
        """Whether the file is bulk ndjson (one resource per line)."""
        return self.path.name.lower().endswith((".ndjson", ".ndjson.gz"))

    def __iter__(self) -> Iterator[RawEntry]:
        if self._cached is not None:
            return iter(self._cached)
        return self._read()

    def _read(self) -> Iterator[RawEntry]:
        with LimitedReader(self.path, self.max_bytes) as reader:
            if self.is_ndjson:
                yield from _ndjson_entries(self.path, reader)
                return
            head = reader.read(IN_MEMORY_BYTES + 1)
            if len(head) <= IN_MEMORY_BYTES:
                self._cached = _json_entries(self.path, head)
                yield from self._cached
                return
            rtype = _top_level_type(self.path, head)
            stream = _Prefixed(head, reader)
            del head
            yield from _streamed_entries(self.path, rtype, stream)


def open_unit(path: Path, max_bytes: int = DEFAULT_MAX_BYTES) -> SourceUnit:
    """A unit whose entries stream from ``path`` (see :class:`FileEntries`)."""
    return SourceUnit(path, FileEntries(path, max_bytes))


def read_unit(path: Path, max_bytes: int = DEFAULT_MAX_BYTES) -> SourceUnit:
    """Read one file into a :class:`SourceUnit` whose entries are a list.

    A file that cannot be read at all gives a unit with ``error`` set and no entries, so
    that a batch can report it and go on.
    """
    try:
        return SourceUnit(path, list(FileEntries(path, max_bytes)))
    except FhirValidationError as exc:
        return SourceUnit(path, [], error=exc)


def _ndjson_entries(path: Path, reader: LimitedReader) -> Iterator[RawEntry]:
    number = 0
    while line := reader.readline(MAX_LINE_BYTES):
        number += 1
        location = f"{path}:line {number}"
        if not line.endswith(b"\n") and len(line) >= MAX_LINE_BYTES:
            while (rest := reader.readline(MAX_LINE_BYTES)) and not rest.endswith(b"\n"):
                pass  # skip the rest of the over-long line
            error = f"line longer than {size_text(MAX_LINE_BYTES)}"
            yield RawEntry(location, number, None, error=error)
            continue
        if not line.strip():
            continue
        try:
            yield RawEntry(location, number, orjson.loads(line))
        except orjson.JSONDecodeError as exc:
            yield RawEntry(location, number, None, error=f"invalid JSON ({exc})")


def _json_entries(path: Path, data: bytes) -> list[RawEntry]:
    try:
        document = orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        raise FhirValidationError(f"invalid JSON ({exc})", location=str(path)) from exc
    if not isinstance(document, dict):
        raise FhirValidationError(
            "expected a JSON object (a Bundle or a resource)", location=str(path)
        )
    if document.get("resourceType") != "Bundle":
        return [RawEntry(str(path), 0, document)]
    entries = document.get("entry") or []
    if not isinstance(entries, list):
        raise FhirValidationError(
            "Bundle.entry must be a list", location=str(path), path="Bundle.entry"
        )
    return [_bundle_entry(path, index, entry) for index, entry in enumerate(entries)]


def _bundle_entry(path: Path, index: int, entry: Any) -> RawEntry:
    location = f"{path} entry[{index}]"
    if not isinstance(entry, dict):
        return RawEntry(location, index, None)
    request = entry.get("request")
    method = request.get("method") if isinstance(request, dict) else None
    full_url = entry.get("fullUrl")
    return RawEntry(
        location,
        index,
        entry.get("resource"),
        str(method or "POST").upper(),
        full_url if isinstance(full_url, str) else None,
    )


def _streamed_entries(path: Path, rtype: str | None, stream: _Prefixed) -> Iterator[RawEntry]:
    """Entries of a large file, parsed one at a time with ijson."""
    try:
        if rtype not in (None, "Bundle"):
            # One large resource (a Binary, a DocumentReference with an attachment).
            for document in ijson.items(stream, "", use_float=True):
                yield RawEntry(str(path), 0, document)
            return
        items = ijson.items(stream, "entry.item", use_float=True)
        for index, entry in enumerate(items):
            yield _bundle_entry(path, index, entry)
    except ijson.JSONError as exc:
        lines = str(exc).strip().splitlines() or ["truncated"]
        reason = f"{lines[0]}, after {size_text(stream.count)}"
        raise FhirValidationError(f"invalid JSON ({reason})", location=str(path)) from exc


def _top_level_type(path: Path, head: bytes) -> str | None:
    """The top-level ``resourceType`` if the file's head names it before ``entry``.

    Raises when the file is not a JSON object or its ``entry`` is not a list.
    """
    rtype: str | None = None
    try:
        for prefix, event, value in ijson.parse(io.BytesIO(head)):
            if prefix == "" and event not in ("start_map", "map_key"):
                raise FhirValidationError(
                    "expected a JSON object (a Bundle or a resource)", location=str(path)
                )
            if prefix == "resourceType" and event == "string":
                rtype = str(value)
                if rtype != "Bundle":
                    return rtype
            elif prefix == "entry" and event not in ("map_key", "end_map", "end_array"):
                if event != "start_array":
                    raise FhirValidationError(
                        "Bundle.entry must be a list", location=str(path), path="Bundle.entry"
                    )
                return rtype
    except ijson.JSONError:
        pass  # the head ends mid-value, or is broken: the full parse will say where
    return rtype


class FullUrls(Mapping[str, str]):
    """``fullUrl`` → ``Type/id``, compact for the usual ``urn:uuid:<id>`` (a large bundle
    has hundreds of thousands: only the id's type is kept for those)."""

    def __init__(self, initial: Mapping[str, str] | None = None) -> None:
        self._uuid_types: dict[str, str] = {}
        self._other: dict[str, str] = dict(initial or {})

    def add(self, full_url: str, rtype: str, rid: str) -> None:
        """Map ``full_url`` to ``rtype/rid``."""
        if full_url.startswith(_URN) and full_url[len(_URN) :] == rid:
            self._uuid_types[rid] = sys.intern(rtype)
        else:
            self._other[full_url] = f"{rtype}/{rid}"

    def __getitem__(self, key: str) -> str:
        found = self._other.get(key)
        if found is not None:
            return found
        if key.startswith(_URN) and (rtype := self._uuid_types.get(key[len(_URN) :])):
            return f"{rtype}/{key[len(_URN) :]}"
        raise KeyError(key)

    def __contains__(self, key: object) -> bool:
        if not isinstance(key, str):
            return False
        return key in self._other or (key.startswith(_URN) and key[len(_URN) :] in self._uuid_types)

    def __iter__(self) -> Iterator[str]:
        yield from self._other
        yield from (_URN + rid for rid in self._uuid_types)

    def __len__(self) -> int:
        return len(self._other) + len(self._uuid_types)


_URN = "urn:uuid:"


def rewrite_references(node: Any, full_urls: Mapping[str, str]) -> Any:
    """Replace ``urn:uuid:`` references with ``Type/id``, as a FHIR server does on a transaction.

    Works in place on dicts and lists and returns ``node``.
    """
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "reference" and isinstance(value, str) and value in full_urls:
                node[key] = full_urls[value]
            elif isinstance(value, dict | list):
                rewrite_references(value, full_urls)
    elif isinstance(node, list):
        for item in node:
            if isinstance(item, dict | list):
                rewrite_references(item, full_urls)
    return node
